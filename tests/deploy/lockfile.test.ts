// `npm ci` refuses a lock file that lacks any optional dependency of a
// package. chdb ships its engine as one optional package per platform, and
// the registry reachable here serves only the Linux x64 one, so `npm install`
// drops the others from package-lock.json and CI's `npm ci` then fails. The
// missing entries are kept in the lock file by hand; this test says so
// before CI does.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { REPO } from '../helpers.ts'

describe('package-lock.json', () => {
  it('lists every platform package of chdb, so npm ci accepts it', () => {
    const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; optional?: boolean }> }
    const chdb = JSON.parse(readFileSync(join(REPO, 'node_modules', 'chdb', 'package.json'), 'utf8')) as { optionalDependencies?: Record<string, string> }
    for (const [name, version] of Object.entries(chdb.optionalDependencies ?? {})) {
      const entry = lock.packages[`node_modules/${name}`]
      expect(entry, `package-lock.json lacks node_modules/${name}: add { "version": "${version}", "os": [...], "cpu": [...], "optional": true } by hand (see tests/deploy/lockfile.test.ts)`).toBeDefined()
      expect(entry?.version).toBe(version)
      expect(entry?.optional).toBe(true)
    }
  })
})
