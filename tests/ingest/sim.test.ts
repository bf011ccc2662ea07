// `citytwin sim devices` against a real gateway process: every device
// connects, every QoS 1 message is acknowledged, and what was acknowledged
// is in the store; a reconnect storm; one district's devices only.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runCli, spawnCli, tempDir } from '../helpers.ts'
import type { SimSummary } from '../../simulators/devices/cli.ts'

describe('device fleet simulator', () => {
  it('connects devices from two processes and every acknowledged message is stored', async () => {
    const dataDir = join(tempDir(), 'db')
    expect((await runCli(['city', 'generate', '--seed', '8', '--scale', '0.01', '--data-dir', dataDir])).code).toBe(0)
    const gw = await spawnCli(['gateway', 'mqtt', '--port', '0', '--data-dir', dataDir], /listening on port (\d+)/)
    const port = Number(gw.match[1])
    try {
      const sim = await runCli(['sim', 'devices', '--limit', '400', '--processes', '2', '--duration-s', '4', '--rate-scale', '4',
        '--mqtt-port', String(port), '--sources', '127.0.0.2,127.0.0.3', '--json', '--data-dir', dataDir])
      expect(sim.code, sim.stderr).toBe(0)
      const s = JSON.parse(sim.stdout) as SimSummary
      expect(s).toMatchObject({ devices: 400, processes: 2, peakConnected: 400, refused: 0, connectErrors: 0, inflight: 0 })
      expect(s.sent).toBeGreaterThan(0)
      expect(s.acked).toBe(s.sent)
      const stored = await runCli(['store', 'query', 'SELECT toUInt32(uniqExact(device_id, seq)) AS messages FROM readings', '--data-dir', dataDir])
      expect(JSON.parse(stored.stdout)).toEqual({ messages: s.acked })

      // A reconnect storm: every connection dropped at once; the devices come back by themselves.
      const storm = await runCli(['sim', 'devices', '--limit', '300', '--processes', '2', '--duration-s', '8', '--drop-at-s', '3', '--reconnect-spread-s', '2',
        '--mqtt-port', String(port), '--json', '--data-dir', dataDir])
      expect(storm.code, storm.stderr).toBe(0)
      const t = JSON.parse(storm.stdout) as SimSummary
      expect(t).toMatchObject({ connectedBeforeDrop: 300, refused: 0, connectErrors: 0 })
      expect(t.reconnectS).toBeGreaterThan(0)
      expect(t.reconnectAttempts).toBeGreaterThanOrEqual(300)

      // One district's devices only (the viewer benchmark's load): exactly those, and a clear error for a district with none.
      const q = await runCli(['store', 'query', 'SELECT toUInt32(district_id) AS district, toUInt32(count()) AS n FROM devices GROUP BY district_id ORDER BY district_id LIMIT 1', '--data-dir', dataDir])
      const { district, n } = JSON.parse(q.stdout) as { district: number; n: number }
      const one = await runCli(['sim', 'devices', '--district', String(district), '--processes', '1', '--duration-s', '3',
        '--mqtt-port', String(port), '--json', '--data-dir', dataDir])
      expect(one.code, one.stderr).toBe(0)
      expect(JSON.parse(one.stdout) as SimSummary).toMatchObject({ devices: n, peakConnected: n, refused: 0 })
      const none = await runCli(['sim', 'devices', '--district', '999999', '--duration-s', '1', '--mqtt-port', String(port), '--data-dir', dataDir])
      expect(none.code).not.toBe(0)
      expect(none.stderr).toMatch(/no devices match --district/)
      const bad = await runCli(['sim', 'devices', '--district', '1.5', '--mqtt-port', String(port), '--data-dir', dataDir])
      expect(bad.code).not.toBe(0)
      expect(bad.stderr).toMatch(/--district must be a district's grid id/)
    } finally {
      gw.child.kill('SIGTERM')
    }
    expect(await gw.exited).toBe(0)
  })
})
