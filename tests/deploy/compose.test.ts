// docker-compose.yml must stay a valid description of the scale-out
// topology. There is no Docker engine here, but `docker-compose config`
// validates the file without one.
import { spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { REPO } from '../helpers.ts'

describe('docker-compose.yml', () => {
  it('validates and names the services of the topology', () => {
    const r = spawnSync('docker-compose', ['config'], { cwd: REPO, encoding: 'utf8' })
    if (r.error) throw new Error(`docker-compose is not installed (${r.error.message}); install it with: apt-get install -y docker-compose`)
    expect(r.stderr).not.toMatch(/error/i)
    expect(r.status).toBe(0)
    for (const s of ['clickhouse:', 'kafka:', 'citytwin:']) expect(r.stdout).toContain(s)
    expect(r.stdout).toMatch(/CLICKHOUSE_URL: http:\/\/clickhouse:8123/)
  })
})
