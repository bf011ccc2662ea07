// The gateway worker bundle: written under the install's node_modules, and a
// clear error where it cannot be (the cluster then runs the CLI instead).
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { bundleGatewayWorker } from '../../ingest/mqtt/worker-bundle.ts'
import { bundleEntry } from '../../lib/bundle.ts'
import { tempDir } from '../helpers.ts'

describe('gateway worker bundle', () => {
  it('names the directory it could not write, with a stable code', async () => {
    const repo = tempDir('citytwin-bundle-')
    mkdirSync(join(repo, 'node_modules', '.cache'), { recursive: true })
    writeFileSync(join(repo, 'node_modules', '.cache', 'citytwin'), 'a file where the directory should be')
    await expect(bundleGatewayWorker(repo)).rejects.toMatchObject({ code: 'INTERNAL', message: expect.stringContaining(join(repo, 'node_modules', '.cache', 'citytwin')) as unknown })
  })

  it('removes the bundles of processes that were killed before they could, and keeps those of running ones', async () => {
    const repo = tempDir('citytwin-bundle-')
    const dir = join(repo, 'node_modules', '.cache', 'citytwin')
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(repo, 'entry.ts'), 'export const answer: number = 42\n')
    const gone = spawnSync(process.execPath, ['-e', '']).pid
    const orphan = join(dir, `gateway-worker-${gone}-0123abcd.mjs`)
    const running = join(dir, `api-thread-${process.pid}-4567cdef.mjs`)
    const other = join(dir, 'notes.txt')
    for (const f of [orphan, running, other]) writeFileSync(f, '')
    const bundle = await bundleEntry('entry.ts', 'probe', repo)
    try {
      expect(existsSync(bundle.file)).toBe(true)
      expect([existsSync(orphan), existsSync(running), existsSync(other)]).toEqual([false, true, true])
    } finally {
      bundle.remove()
    }
    expect(existsSync(bundle.file)).toBe(false)
  })
})
