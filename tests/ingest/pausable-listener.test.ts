// A gateway worker's listener closed and opened again (pausable-listener.ts)
// in a real node:cluster: while closed, the kernel gives new connections to
// the other workers; opened again, it listens on the same shared port (also
// with port 0) and takes connections.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { REPO } from '../helpers.ts'

describe('pausable listener in a cluster', () => {
  it('sends new connections to the workers still listening, and listens again on the same port', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(REPO, 'tests', 'ingest', 'cluster-listener', 'main.ts')], { cwd: REPO, encoding: 'utf8', timeout: 60_000 })
    expect(r.status, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as { ports: number[]; first: number[]; reopenedPort: number; second: number[] }
    const port = out.ports[0]
    expect(port).toBeGreaterThan(0)
    expect(out.ports).toEqual([port, port, port])
    // Workers 0 and 1 closed: all ten to worker 2.
    expect(out.first).toEqual([0, 0, 10])
    // Worker 0 open again on the same port, 1 and 2 closed: the next ten to worker 0.
    expect(out.reopenedPort).toBe(port)
    expect(out.second).toEqual([10, 0, 10])
  })
})
