// `npm start`, i.e. `citytwin start`: the embedded system comes up with a
// demo city, serves its API and metrics, lets other processes use its store,
// and stops gracefully on SIGTERM.
import { join } from 'node:path'
import mqtt from 'mqtt'
import { describe, expect, it } from 'vitest'
import { runCli, spawnCli, tempDir } from '../helpers.ts'

describe('citytwin start', () => {
  it('runs the embedded system until told to stop', async () => {
    const dataDir = join(tempDir(), 'db')
    const run = await spawnCli(['start', '--no-demo', '--port', '0', '--mqtt-port', '0', '--data-dir', dataDir], /API\s+(http:\/\/\S+)\/api\/city/)
    const api = run.match[1] ?? ''
    const stdout = run.stdout()
    try {
      expect(stdout).toMatch(/191 community grids, 2193 devices, 1300 cameras/)
      const health = await fetch(`${api}/healthz`)
      expect(health.status).toBe(200)
      expect(await health.json()).toMatchObject({ ok: true, checks: { store: { ok: true } } })
      const city = await (await fetch(`${api}/api/v1/city`)).json() as { devices: number; grids: Record<string, number> }
      expect(city).toMatchObject({ devices: 2193, grids: { community: 191 } })
      const metrics = await (await fetch(`${api}/metrics`)).text()
      expect(metrics).toMatch(/citytwin_api_requests_total\{.*route="GET \/api\/v1\/city".*\} 1/)
      expect(metrics).toMatch(/citytwin_store_rows_total\{.*table="devices_new".*outcome="inserted".*\} 2193/)
      const openapi = await (await fetch(`${api}/openapi.json`)).json() as { openapi: string; paths: Record<string, unknown> }
      expect(openapi.openapi).toBe('3.1.0')
      expect(Object.keys(openapi.paths)).toContain('/api/v1/city')
      expect((await fetch(`${api}/api/nowhere`)).status).toBe(404)
      // A malformed percent-escape in a path parameter is that request's 400; it once stopped the whole process.
      const bad = await fetch(`${api}/api/devices/%ZZ`)
      expect({ status: bad.status, body: await bad.json() }).toMatchObject({ status: 400, body: { error: { code: 'BAD_REQUEST' } } })
      expect((await fetch(`${api}/healthz`)).status).toBe(200)
      // The viewer at /: built by npm start (prestart); without a build, it says how to make one.
      const root = await fetch(`${api}/`)
      const page = await root.text()
      if (root.status === 503) expect(page).toContain('npm run build:viewer')
      else expect({ status: root.status, app: page.includes('<div id="app">') }).toEqual({ status: 200, app: true })
      // A device connects with the token the CLI gives it, and its reading is stored.
      const mqttPort = Number(/MQTT\s+port (\d+)/.exec(stdout)?.[1])
      const list = await runCli(['devices', 'list', '--type', 'smoke', '--limit', '1', '--json', '--data-dir', dataDir])
      const device = JSON.parse(list.stdout) as { id: string; topic: string }
      const token = (await runCli(['device-token', device.id, '--data-dir', dataDir])).stdout.trim()
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { username: device.id, password: token, reconnectPeriod: 0 })
      await c.publishAsync(device.topic, JSON.stringify({ ts: Date.now(), seq: 1, values: { temperature_c: 23 } }), { qos: 1 })
      await c.endAsync()
      const stored = await runCli(['store', 'query', `SELECT toUInt32(count()) AS n FROM readings WHERE device_id = '${device.id}'`, '--data-dir', dataDir])
      expect(JSON.parse(stored.stdout)).toEqual({ n: 1 })
      // ... and reaches the live twin through the bus: its last value, and offline after its clean disconnect.
      const live = await (await fetch(`${api}/api/devices/${device.id}`)).json() as { status: string; values: Record<string, { value: number }> }
      expect(live).toMatchObject({ status: 'offline', values: { temperature_c: { value: 23 } } })
      // A CLI command run while the system is up goes through the running owner.
      const stats = await runCli(['city', 'stats', '--json', '--data-dir', dataDir])
      expect(stats.code).toBe(0)
      expect(JSON.parse(stats.stdout)).toMatchObject({ devices: 2193 })
      // A second `start` on the same store is refused.
      const second = await runCli(['start', '--port', '0', '--mqtt-port', '0', '--data-dir', dataDir])
      expect(second.code).toBe(1)
      expect(second.stderr).toMatch(/STORE_LOCKED: citytwin is already running/)
    } finally {
      run.child.kill('SIGTERM')
    }
    expect(await run.exited).toBe(0)
    expect(run.stdout()).toMatch(/citytwin stopped/)
  })
})
