// `citytwin gateway mqtt --workers 2`: two gateway processes share one port
// (node:cluster), each accepting its own connections up to its cap and
// passing the rest to the other, relay
// their rows to the primary's writers, and stop cleanly on SIGTERM.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { getPriority } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { afterAll, describe, expect, it } from 'vitest'
import { deviceToken } from '../../ingest/mqtt/tokens.ts'
import { runCli, spawnCli, tempDir } from '../helpers.ts'

describe('MQTT gateway in cluster mode', () => {
  // A test that times out never reaches its finally: its gateway must not outlive the file.
  const running: { kill: () => void }[] = []
  afterAll(() => {
    for (const r of running) r.kill()
  })

  it('spreads devices over two worker processes and stores what they send', async () => {
    const dataDir = join(tempDir(), 'db')
    expect((await runCli(['city', 'generate', '--seed', '6', '--scale', '0.01', '--data-dir', dataDir])).code).toBe(0)
    // Each worker holds at most 10 connections, and the kernel gives a new
    // connection to whichever worker accepts first, so 20 devices connected
    // at once fill one worker before the other (an even split is rare). A
    // full worker passes what it accepts to the other (hand-over.ts): every
    // device gets in at its first try, with its CONNECT read where it lands.
    const config = join(tempDir(), 'citytwin.json')
    writeFileSync(config, JSON.stringify({ mqtt: { maxConnections: 10 } }))
    const run = await spawnCli(['gateway', 'mqtt', '--workers', '2', '--port', '0', '--data-dir', dataDir, '--config', config], /listening on port (\d+) \(2 workers/)
    running.push({ kill: () => run.child.kill('SIGTERM') })
    const port = Number(run.match[1])
    try {
      const list = await runCli(['devices', 'list', '--limit', '21', '--json', '--data-dir', dataDir])
      const all = list.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: string; type: string; topic: string })
      expect(all).toHaveLength(21)
      const devices = all.slice(0, 20)
      const ts = Date.now()
      // The workers share the secret generated into the data directory; the CLI derives the same tokens.
      const secret = readFileSync(join(dataDir, 'device-secret'), 'utf8').trim()
      const first = devices[0]?.id ?? ''
      expect((await runCli(['device-token', first, '--data-dir', dataDir])).stdout.trim()).toBe(deviceToken(secret, first))
      const connectOnce = (id: string): Promise<mqtt.MqttClient> =>
        mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { username: id, password: deviceToken(secret, id), reconnectPeriod: 0, connectTimeout: 10_000 }, false)
      const clients = await Promise.all(devices.map((d) => connectOnce(d.id)))
      // With both full, the 21st is closed: there is no room anywhere.
      await expect(connectOnce(all[20]?.id ?? '')).rejects.toThrow()
      await Promise.all(clients.map(async (c, i) => {
        const id = devices[i]?.id ?? ''
        await c.publishAsync(`devices/${id}/events`, JSON.stringify({ kind: 'self_test', ts }), { qos: 1 })
        await c.publishAsync(`devices/${id}/telemetry`, '{"ts":', { qos: 1 }) // dead-lettered, through the primary
        await c.endAsync()
      }))
      const stored = await runCli(['store', 'query', "SELECT toUInt32(uniqExact(source_id)) AS devices FROM events WHERE kind = 'self_test'", '--data-dir', dataDir])
      expect(JSON.parse(stored.stdout)).toEqual({ devices: 20 })
      const dead = await runCli(['store', 'query', "SELECT toUInt32(count()) AS n FROM dead_letters WHERE code = 'INGEST_BAD_JSON'", '--data-dir', dataDir])
      expect(JSON.parse(dead.stdout)).toEqual({ n: 20 })
      const pids = await runCli(['store', 'query', "SELECT toUInt32(uniqExact(JSONExtractUInt(attributes, 'gatewayPid'))) AS pids FROM events WHERE kind = 'connected'", '--data-dir', dataDir])
      expect(JSON.parse(pids.stdout)).toEqual({ pids: 2 })
      // The workers run below the primary (mqtt.workerNice, 10), which keeps the CPU for the store they wait on.
      const workerPids = await runCli(['store', 'query', "SELECT groupUniqArray(JSONExtractUInt(attributes, 'gatewayPid')) AS pids FROM events WHERE kind = 'connected'", '--data-dir', dataDir])
      const primaryNice = getPriority(run.child.pid)
      // Every thread of each worker: a nice value is a thread's, and V8 starts its threads before the primary lowers the worker.
      const want = Math.min(19, primaryNice + 10)
      for (const pid of (JSON.parse(workerPids.stdout) as { pids: number[] }).pids) {
        const threads = readdirSync(`/proc/${pid}/task`).map(Number)
        expect(threads.length).toBeGreaterThan(1)
        expect(threads.map((tid) => getPriority(tid))).toEqual(threads.map(() => want))
      }
    } finally {
      run.child.kill('SIGTERM')
    }
    expect(await run.exited).toBe(0)
  })
})
