// Twin benchmark (`npm run bench:twin`): the full city (219,300 devices,
// 130,000 cameras, 70,728 grids).
//   1. memory of the live twin and the time to load it from the store;
//   2. reducer throughput: reading and connectivity elements applied per second (one core);
//   3. API latency of the city summary and of a community grid's state while
//      elements arrive at the city's rate (22k/s) through the bus, one in ten
//      a device disconnecting or reconnecting;
//   4. live WebSocket fan-out: N clients following every community grid.
// Parts 1-4 run in this one process (the load, the server and the clients
// share the machine), so the figures are a floor for a deployment.
//   5. end to end: `citytwin start --full --workers 2` in its own processes,
//      the device simulator publishing real MQTT at the city's rate (fewer
//      devices, each faster), and the API's latency measured from here.
// Writes bench/results/twin-<date>.json.
//
//   npm run bench:twin -- [--part core|ingest|all] [--elements N] [--requests N] [--clients N] [--rate N] [--seconds S]
//                         [--sim-devices N] [--sim-rate-scale X] [--profile-dir DIR]   (CPU profiles of the system's processes in part 5)
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import WebSocket from 'ws'
import { MemoryBus } from '../lib/bus/bus.ts'
import type { Element } from '../lib/bus/elements.ts'
import { loadConfig } from '../lib/config.ts'
import { generateCity } from '../simulators/city/generate.ts'
import { writeCity } from '../registry/city-store.ts'
import { apiConfig } from '../twin/api/config.ts'
import { ApiServer } from '../twin/api/server.ts'
import { DEVICE_TYPE_BY_NAME } from '../registry/device-types.ts'
import { LiveTwin } from '../twin/state/live-twin.ts'
import { Twin } from '../twin/state/twin.ts'
import { openMigratedStore } from '../store/index.ts'
import { CpuLedger, processTree, waitForLine } from './proc.ts'
import { twinConfig } from '../twin/state/config.ts'

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const { values } = parseArgs({
  options: {
    elements: { type: 'string', default: '3000000' },
    requests: { type: 'string', default: '100000' },
    clients: { type: 'string', default: '50' },
    rate: { type: 'string', default: '22000' },
    seconds: { type: 'string', default: '30' },
    part: { type: 'string', default: 'all' },
    'sim-devices': { type: 'string', default: '20000' },
    'profile-dir': { type: 'string' },
    'sim-rate-scale': { type: 'string', default: '11' },
  },
})
if (!['core', 'ingest', 'all'].includes(values.part)) throw new Error('--part must be core, ingest or all')

const gc = (): void => (globalThis as { gc?: () => void }).gc?.()
const mib = (n: number): number => Math.round(n / 2 ** 20)
const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return Math.round((s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0) * 100) / 100
}

const results: Record<string, unknown> = {
  bench: 'twin', at: new Date().toISOString(),
  machine: { cpu: cpus()[0]?.model ?? '', cpus: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
}

async function core(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'citytwin-bench-twin-'))
  try {
    const city = generateCity({ seed: 1, scale: 1 })
    const { store, writerCfg } = await openMigratedStore({ env: {} }, { dataDir: join(dir, 'db') })
    await writeCity(store.client, city, writerCfg)

    // 1. Load from the store, and what the twin holds.
    gc()
    const before = process.memoryUsage()
    const bus = new MemoryBus()
    const live = new LiveTwin({ client: store.client, bus, config: { ...twinConfig.schema.parse({}), silentAfterIntervals: 3, maxLagMs: 300_000, degradedAfterMs: 60_000, sweepIntervalMs: 1_000, checkpointIntervalMs: 60_000 } })
    const t0 = performance.now()
    await live.start()
    const loadS = (performance.now() - t0) / 1000
    gc()
    const after = process.memoryUsage()
    const twin: Twin = live.twin
    results.load = { seconds: Math.round(loadS * 10) / 10, heapMiB: mib(after.heapUsed - before.heapUsed), externalMiB: mib(after.external + after.arrayBuffers - before.external - before.arrayBuffers), devices: twin.devices.length, cameras: twin.cameras.length, grids: twin.grids.length }
    console.log(`load: full city twin from the store in ${loadS.toFixed(1)} s; holds ${mib(after.heapUsed - before.heapUsed)} MiB of heap (+${mib(after.arrayBuffers - before.arrayBuffers)} MiB typed arrays)`)

    // 2. Reducer throughput on one core.
    const n = Number(values.elements)
    const now = Date.now()
    const metricsOf = twin.devices.map((d) => DEVICE_TYPE_BY_NAME.get(d.type)?.metrics ?? [])
    const batch: Element[] = []
    let applied = 0
    const t1 = performance.now()
    for (let k = 0; k < n; k++) {
      const i = k % twin.devices.length
      const d = twin.devices[i]
      if (!d) continue
      if (k % 20 === 0) batch.push({ kind: 'connectivity', deviceId: d.id, ts: now - n + k, state: 'connected' })
      else {
        const vals: Record<string, number> = {}
        for (const m of metricsOf[i] ?? []) vals[m.name] = m.typical
        batch.push({ kind: 'reading', deviceId: d.id, ts: now - n + k, values: vals })
      }
      if (batch.length === 1_000) {
        twin.apply(batch, now)
        applied += batch.length
        batch.length = 0
      }
    }
    const reduceS = (performance.now() - t1) / 1000
    const perS = Math.round(applied / reduceS)
    results.reducer = { elements: applied, seconds: Math.round(reduceS * 100) / 100, elementsPerS: perS, note: 'includes building the element objects' }
    console.log(`reducer: ${applied} elements in ${reduceS.toFixed(2)} s = ${perS} elements/s (building the elements included)`)
    twin.drainChanges()

    // 3 and 4. API latency and live fan-out under the city's element rate.
    const api = new ApiServer({ config: loadConfig(apiConfig, { env: {}, overrides: { port: 0, openReads: true, liveTickMs: 250, maxLiveClients: 1_000 } }), client: store.client, twin: live })
    await api.start()
    const rate = Number(values.rate)
    let cursor = 0
    const feed = setInterval(() => {
      const out: Element[] = []
      const t = Date.now()
      for (let k = 0; k < rate / 100; k++) {
        const i = cursor++ % twin.devices.length
        const d = twin.devices[i]
        if (!d) continue
        // One element in ten is a device dropping off or coming back, so grid counts keep changing.
        if (cursor % 10 === 0) {
          out.push({ kind: 'connectivity', deviceId: d.id, ts: t, state: (cursor / 10) % 2 === 0 ? 'disconnected' : 'connected' })
          continue
        }
        const vals: Record<string, number> = {}
        for (const m of metricsOf[i] ?? []) vals[m.name] = m.typical
        out.push({ kind: 'reading', deviceId: d.id, ts: t, values: vals })
      }
      bus.publish(out)
    }, 10)

    const clients = Number(values.clients)
    const received = { messages: 0, bytes: 0, rows: 0, lags: [] as number[] }
    const sockets: WebSocket[] = []
    for (let k = 0; k < clients; k++) {
      const ws = new WebSocket(`${api.url.replace('http', 'ws')}/api/live`)
      sockets.push(ws)
      ws.on('message', (m: Buffer) => {
        received.messages++
        received.bytes += m.length
        const msg = JSON.parse(m.toString('utf8')) as { type: string; t?: number; grids?: unknown[] }
        if (msg.type === 'delta' && msg.t !== undefined) {
          received.rows += msg.grids?.length ?? 0
          received.lags.push(Date.now() - msg.t)
        }
      })
      await new Promise((r) => ws.once('open', r))
      ws.send(JSON.stringify({ subscribe: { level: 'community' } }))
    }
    await new Promise((r) => setTimeout(r, 3_000)) // first full state goes out
    received.messages = received.bytes = received.rows = 0
    received.lags = []

    const community = twin.grids.find((g) => g.level === 'community')?.id ?? 0
    const lat: Record<string, number[]> = { city: [], grid: [] }
    const seconds = Number(values.seconds)
    const until = performance.now() + seconds * 1000
    let requests = 0
    const fedAtStart = cursor
    const t2 = performance.now()
    // Requests paced over the window (one pair every 20 ms), as dashboards poll, not back to back.
    while (performance.now() < until && requests < Number(values.requests)) {
      for (const [k, path] of [['city', '/api/city'], ['grid', `/api/grids/${community}`]] as const) {
        const s = performance.now()
        const res = await fetch(`${api.url}${path}`)
        await res.arrayBuffer()
        lat[k]?.push(performance.now() - s)
        requests++
      }
      await new Promise((r) => setTimeout(r, 20))
    }
    const windowS = (performance.now() - t2) / 1000
    clearInterval(feed)
    const fed = cursor - fedAtStart
    for (const ws of sockets) ws.close()
    await api.stop(Date.now() + 2_000)
    await live.stop()
    await store.close()
    results.api = {
      offeredElementsPerS: rate, deliveredElementsPerS: Math.round(fed / windowS), requests,
      cityP50Ms: quantile(lat.city ?? [], 0.5), cityP99Ms: quantile(lat.city ?? [], 0.99), gridP50Ms: quantile(lat.grid ?? [], 0.5), gridP99Ms: quantile(lat.grid ?? [], 0.99),
    }
    results.live = {
      clients, subscription: 'every community grid (19,136)', seconds: Math.round(windowS),
      messagesPerSPerClient: Math.round(received.messages / windowS / clients * 10) / 10,
      rowsPerSPerClient: Math.round(received.rows / windowS / clients), kibPerSPerClient: Math.round(received.bytes / windowS / clients / 1024),
      lagP50Ms: quantile(received.lags, 0.5), lagP99Ms: quantile(received.lags, 0.99),
    }
    console.log(`api under ${Math.round(fed / windowS)} elements/s: /api/city p50 ${String((results.api as Record<string, number>).cityP50Ms)} ms, p99 ${String((results.api as Record<string, number>).cityP99Ms)} ms; /api/grids/{community} p50 ${String((results.api as Record<string, number>).gridP50Ms)} ms, p99 ${String((results.api as Record<string, number>).gridP99Ms)} ms`)
    console.log(`live: ${clients} clients following every community grid: ${JSON.stringify(results.live)}`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function ingest(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'citytwin-bench-twin-ingest-'))
  const cli = join(REPO, 'bin', 'citytwin.js')
  const env = { ...process.env, CITYTWIN_LOG_LEVEL: 'warn', CITYTWIN_DATA_DIR: join(dir, 'db'), CITYTWIN_MQTT_RATE_PER_DEVICE_PER_S: '100', CITYTWIN_MQTT_BURST_PER_DEVICE: '200', CITYTWIN_API_OPEN_READS: 'true' }
  const profile = values['profile-dir'] ? ['--cpu-prof', `--cpu-prof-dir=${resolve(values['profile-dir'])}`] : []
  const system = spawn(process.execPath, [...profile, cli, 'start', '--full', '--workers', '2', '--port', '0', '--mqtt-port', '0'], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'inherit'] })
  try {
    const ready = await waitForLine(system, /MQTT\s+port (\d+)[\s\S]*API\s+(http:\/\/\S+)\/api\/city/)
    const mqttPort = ready[1] ?? ''
    const api = ready[2] ?? ''
    const seconds = Number(values.seconds) * 2
    const sim = spawn(process.execPath, [cli, 'sim', 'devices', '--limit', values['sim-devices'], '--rate-scale', values['sim-rate-scale'], '--processes', '2',
      '--duration-s', String(seconds + 30), '--mqtt-port', mqttPort, '--json'], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'inherit'] })
    let simOut = ''
    sim.stdout.on('data', (d: Buffer) => { simOut += d.toString() })
    const simDone = new Promise<void>((r) => sim.once('exit', () => r()))
    await new Promise((r) => setTimeout(r, 25_000)) // the devices connect and settle
    const community = ((await (await fetch(`${api}/api/grids?level=community&limit=1`)).json()) as { items: { id: number }[] }).items[0]?.id ?? 0
    const lat: Record<string, number[]> = { city: [], grid: [] }
    // The CPU of each role over the window (the simulator runs below the system: nice, sim/cli.ts).
    const ledger = new CpuLedger()
    const cpuAtStart = ledger.sample(processTree(system.pid ?? 0))
    const windowStart = performance.now()
    const until = performance.now() + seconds * 1000
    while (performance.now() < until) {
      for (const [k, path] of [['city', '/api/city'], ['grid', `/api/grids/${community}`]] as const) {
        const s = performance.now()
        const res = await fetch(`${api}${path}`)
        await res.arrayBuffer()
        lat[k]?.push(performance.now() - s)
      }
      await new Promise((r) => setTimeout(r, 20))
    }
    const systemCores = (ledger.sample(processTree(system.pid ?? 0)) - cpuAtStart) / (performance.now() - windowStart)
    const applied = ((await (await fetch(`${api}/api/health`)).json()) as { twin: { applied: number } }).twin.applied
    await simDone
    const s = JSON.parse(simOut.trim().split('\n').pop() ?? '{}') as { ackedPerS?: number; sentPerS?: number; p99Ms?: number; peakConnected?: number; cpuS?: number; seconds?: number }
    results.endToEnd = {
      command: `citytwin start --full --workers 2; citytwin sim devices --limit ${values['sim-devices']} --rate-scale ${values['sim-rate-scale']} --processes 2`,
      simulator: { devices: Number(values['sim-devices']), connected: s.peakConnected, offeredPerS: s.sentPerS, storedPerS: s.ackedPerS, publishToStoredP99Ms: s.p99Ms },
      cpu: { systemCoresDuringRequests: Math.round(systemCores * 100) / 100, simulatorCoresOverItsRun: s.cpuS && s.seconds ? Math.round((s.cpuS / s.seconds) * 100) / 100 : null },
      twinElementsApplied: applied, requests: (lat.city?.length ?? 0) + (lat.grid?.length ?? 0),
      cityP50Ms: quantile(lat.city ?? [], 0.5), cityP99Ms: quantile(lat.city ?? [], 0.99), gridP50Ms: quantile(lat.grid ?? [], 0.5), gridP99Ms: quantile(lat.grid ?? [], 0.99),
    }
    console.log(`end to end: ${JSON.stringify(results.endToEnd)}`)
  } finally {
    await new Promise<void>((r) => {
      system.once('exit', () => r())
      system.kill('SIGTERM')
      setTimeout(() => system.kill('SIGKILL'), 30_000).unref()
    })
    rmSync(dir, { recursive: true, force: true })
  }
}

if (values.part !== 'ingest') await core()
if (values.part !== 'core') await ingest()
mkdirSync(join(REPO, 'bench', 'results'), { recursive: true })
const file = join(REPO, 'bench', 'results', `twin-${String(results.at).replace(/[:.]/g, '-')}.json`)
writeFileSync(file, JSON.stringify(results, null, 2))
console.log(`results: ${file}`)
