// `npm ci` refuses a lock file that lacks any optional dependency of a
// package. chdb and rollup ship native code as one optional package per
// platform; the registry reachable here serves only some of them, so
// `npm install` drops the others from package-lock.json and CI's `npm ci`
// then fails. `npm run fix:lock` (tests/deploy/fill-lock.ts) puts them back;
// this test says so before CI does.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { REPO } from '../helpers.ts'
import { missingOptional, platformOf } from './fill-lock.ts'

describe('package-lock.json', () => {
  it('lists every optional dependency of every package, so npm ci accepts it', () => {
    const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as Parameters<typeof missingOptional>[0]
    const missing = missingOptional(lock)
    expect(missing.map((m) => `${m.name} (of ${m.parent})`), 'run npm run fix:lock after npm install').toEqual([])
    // The chdb engine's platforms, which the store cannot run without on its own platform.
    for (const p of ['darwin-arm64', 'darwin-x64', 'linux-arm64-gnu', 'linux-x64-gnu']) expect(lock.packages[`node_modules/@chdb/lib-${p}`]?.optional).toBe(true)
  })

  it('reads a platform package name as npm would describe it', () => {
    expect(platformOf('@rollup/rollup-linux-arm64-musl')).toEqual({ os: ['linux'], cpu: ['arm64'], libc: ['musl'] })
    expect(platformOf('@rollup/rollup-linux-arm-gnueabihf')).toEqual({ os: ['linux'], cpu: ['arm'], libc: ['glibc'] })
    expect(platformOf('@chdb/lib-darwin-x64')).toEqual({ os: ['darwin'], cpu: ['x64'] })
    expect(platformOf('@rollup/rollup-win32-ia32-msvc')).toEqual({ os: ['win32'], cpu: ['ia32'] })
  })
})
