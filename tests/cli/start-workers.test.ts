// `citytwin start --workers 2`: the gateway runs as two worker processes,
// their rows are relayed to the primary's writers, and what is stored
// reaches the live twin on the primary's bus; a stalled worker's backlog
// counts in the twin's lag.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { describe, expect, it } from 'vitest'
import { metricSum } from '../../bench/metrics.ts'
import { gatewayWorkerPids } from '../../bench/proc.ts'
import { runCli, spawnCli, tempDir } from '../helpers.ts'

describe('citytwin start with gateway workers', () => {
  it('feeds the twin with what the workers store', async () => {
    const dataDir = join(tempDir(), 'db')
    let bundle: string | undefined
    // Ingest counts as degraded after 2 s of data waiting (60 s by default), so a stalled worker shows it here.
    const run = await spawnCli(['start', '--no-demo', '--workers', '2', '--port', '0', '--mqtt-port', '0', '--data-dir', dataDir], /API\s+(http:\/\/\S+)\/api\/city/, { CITYTWIN_TWIN_DEGRADED_AFTER_MS: '2000' })
    const api = run.match[1] ?? ''
    try {
      const mqttPort = Number(/MQTT\s+port (\d+) \(2 processes\)/.exec(run.stdout())?.[1])
      expect(mqttPort).toBeGreaterThan(0)
      const list = await runCli(['devices', 'list', '--type', 'water_level', '--limit', '4', '--json', '--data-dir', dataDir])
      const devices = list.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: string; topic: string })
      const ts = Date.now()
      const clients = await Promise.all(devices.map(async (d, k) => {
        const token = (await runCli(['device-token', d.id, '--data-dir', dataDir])).stdout.trim()
        const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { username: d.id, password: token, reconnectPeriod: 0 })
        await c.publishAsync(d.topic, JSON.stringify({ ts, seq: 1, values: { level_cm: 10 + k } }), { qos: 1 })
        return c
      }))
      // Acknowledged means stored; the twin hears of it right after, on the primary's bus.
      const views: { status: string; values: Record<string, { value: number }> }[] = []
      for (let attempt = 0; attempt < 50; attempt++) {
        views.length = 0
        for (const d of devices) views.push(await (await fetch(`${api}/api/devices/${d.id}`)).json() as (typeof views)[number])
        if (views.every((v) => v.values.level_cm !== undefined)) break
        await new Promise((r) => setTimeout(r, 100))
      }
      expect(views.map((v) => [v.status, v.values.level_cm?.value])).toEqual(devices.map((_, k) => ['online', 10 + k]))
      // One scrape of the primary counts what the workers took (their own registries, merged into its /metrics).
      const metrics = await (await fetch(`${api}/metrics`)).text()
      expect(metricSum(metrics, 'citytwin_ingest_messages_total', 'outcome="stored"')).toBe(4)
      expect(metricSum(metrics, 'citytwin_mqtt_connections')).toBe(4)
      expect(metricSum(metrics, 'citytwin_metrics_workers_unanswered')).toBe(0)
      // One series per worker slot: a replaced worker's restart is that series' reset, not a drop of the sum.
      expect([metricSum(metrics, 'citytwin_mqtt_connections', 'worker="0"'), metricSum(metrics, 'citytwin_mqtt_connections', 'worker="1"')].every((n) => n !== undefined)).toBe(true)
      await Promise.all(clients.map((c) => c.endAsync()))

      // A worker that gets no CPU holds its devices' data unseen: the twin counts how long as lag, so it judges no
      // silence for them meanwhile, and stops counting once the worker runs again.
      const worker = gatewayWorkerPids(run.child.pid ?? 0)[0]
      if (worker === undefined) throw new Error('no gateway worker found under the citytwin process')
      // The workers run the bundled JavaScript, without tsx's loader (its thread and heap in every worker).
      const cmdline = readFileSync(`/proc/${worker}/cmdline`, 'utf8').split('\0')
      bundle = cmdline.find((a) => a.endsWith('.mjs'))
      expect(bundle).toMatch(/node_modules\/\.cache\/citytwin\/gateway-worker-.*\.mjs$/)
      expect(cmdline.join(' ')).not.toMatch(/tsx/)
      expect(existsSync(bundle ?? '')).toBe(true)
      const lagS = async (): Promise<number> => metricSum(await (await fetch(`${api}/metrics`)).text(), 'citytwin_twin_lag_seconds') ?? Number.NaN
      process.kill(worker, 'SIGSTOP')
      try {
        // The worker's silence is the backlog: one alarm, not silence tickets. (Not the lag gauge alone: the readings
        // above were stamped before the CLI calls that connected their devices, so they may arrive seconds late.)
        const ingestNow = async (): Promise<{ degraded: boolean; spells: number; lagMs: number }> => (await (await fetch(`${api}/api/ingest`)).json()) as { degraded: boolean; spells: number; lagMs: number }
        let ingest = await ingestNow()
        for (let i = 0; i < 300 && !ingest.degraded; i++) {
          await new Promise((r) => setTimeout(r, 100))
          ingest = await ingestNow()
        }
        expect(ingest).toMatchObject({ degraded: true, spells: 1 })
        expect(ingest.lagMs).toBeGreaterThanOrEqual(2_000)
        expect(await lagS()).toBeGreaterThanOrEqual(2)
        const stalled = await (await fetch(`${api}/metrics`)).text()
        expect(metricSum(stalled, 'citytwin_ingest_degraded')).toBe(1)
        // The stopped worker cannot answer the scrape: left out, and counted.
        expect(metricSum(stalled, 'citytwin_metrics_workers_unanswered')).toBe(1)
      } finally {
        process.kill(worker, 'SIGCONT')
      }
      let lag = Number.POSITIVE_INFINITY
      for (let i = 0; i < 300 && lag >= 1; i++) {
        await new Promise((r) => setTimeout(r, 100))
        lag = await lagS()
      }
      expect(lag).toBeLessThan(1)
      // The worker runs again: the alarm clears, once.
      let ingest = { degraded: true, spells: 0 }
      for (let i = 0; i < 100 && ingest.degraded; i++) {
        await new Promise((r) => setTimeout(r, 100))
        ingest = (await (await fetch(`${api}/api/ingest`)).json()) as typeof ingest
      }
      expect(ingest).toMatchObject({ degraded: false, spells: 1 })
      // Both turns are kept in the store's events, for the day's record.
      let kinds: string[] = []
      for (let i = 0; i < 50 && kinds.length < 2; i++) {
        const q = await runCli(['store', 'query', "SELECT kind FROM events WHERE source = 'system' AND source_id = 'ingest' ORDER BY ts", '--data-dir', dataDir])
        kinds = q.stdout.trim().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { kind: string }).kind)
        if (kinds.length < 2) await new Promise((r) => setTimeout(r, 100))
      }
      expect(kinds).toEqual(['ingest_degraded', 'ingest_recovered'])
    } finally {
      run.child.kill('SIGTERM')
    }
    expect(await run.exited).toBe(0)
    // Stopped, the system leaves no bundle behind.
    expect(bundle).toBeDefined()
    expect(existsSync(bundle ?? '')).toBe(false)
  })
})
