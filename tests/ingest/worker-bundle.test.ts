// The gateway worker bundle: written under the install's node_modules, and a
// clear error where it cannot be (the cluster then runs the CLI instead).
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { bundleGatewayWorker } from '../../ingest/mqtt/worker-bundle.ts'
import { tempDir } from '../helpers.ts'

describe('gateway worker bundle', () => {
  it('names the directory it could not write, with a stable code', async () => {
    const repo = tempDir('citytwin-bundle-')
    mkdirSync(join(repo, 'node_modules', '.cache'), { recursive: true })
    writeFileSync(join(repo, 'node_modules', '.cache', 'citytwin'), 'a file where the directory should be')
    await expect(bundleGatewayWorker(repo)).rejects.toMatchObject({ code: 'INTERNAL', message: expect.stringContaining(join(repo, 'node_modules', '.cache', 'citytwin')) as unknown })
  })
})
