// Ingest benchmark (`npm run bench:ingest`), in two parts; writes its figures
// to bench/results/ingest-<date>.json.
//
// throughput: the same QoS 1 load from the device simulator goes (a) through
//   the whole citytwin pipeline, PUBLISH to stored row (a `citytwin gateway
//   mqtt` process on a fresh embedded store), and (b) through bare Mosquitto
//   (Debian's) to one raw subscriber, side by side, with the ratio.
// city: all 219,300 devices connected at once at their normal intervals for
//   a steady window, then a reconnect storm (see ingest-city.ts).
//
//   npm run bench:ingest -- [--part throughput|city|all] [--devices N] [--rate-scale X] [--duration-s S] [--workers W] [--processes P]
//                           [--city-devices N] [--city-workers W] [--city-processes P] [--city-rate-scale X] [--steady-s S] [--reconnect-spread-s S]
//                           [--pin-system 0,1 [--pin-simulator 2-15]]   (on a bigger machine: the system on two CPUs, the simulator on the rest)
//                           [--profile-dir DIR]   (CPU profiles of the gateway's primary and workers, node --cpu-prof; with --part throughput, of its one process)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import mqtt from 'mqtt'
import { generateCity } from '../simulators/city/generate.ts'
import { writeCity } from '../registry/city-store.ts'
import { defaultSources, randomPortOffset, runSimulation, SIM_NICE, type SimSummary } from '../simulators/devices/cli.ts'
import type { FleetOptions, SimDevice } from '../simulators/devices/fleet.ts'
import { openMigratedStore } from '../store/index.ts'
import { DRAIN_MAX_S, runCityScale } from './ingest-city.ts'
import { processTree, schedOfAll, waitForLine } from './proc.ts'

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const CLI = join(REPO, 'bin', 'citytwin.js')
const SECRET = 'bench-ingest-secret'

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '5000' },
    'rate-scale': { type: 'string', default: '100' },
    'duration-s': { type: 'string', default: '20' },
    workers: { type: 'string', default: '1' },
    processes: { type: 'string', default: '1' },
    part: { type: 'string', default: 'all' },
    'city-devices': { type: 'string' },
    'city-workers': { type: 'string', default: '13' },
    'city-processes': { type: 'string', default: '15' },
    'city-rate-scale': { type: 'string', default: '1' },
    'steady-s': { type: 'string', default: '300' },
    'connect-timeout-s': { type: 'string', default: '600' },
    'reconnect-spread-s': { type: 'string', default: '60' },
    'pin-system': { type: 'string' },
    'pin-simulator': { type: 'string' },
    'profile-dir': { type: 'string' },
  },
})
if (!['throughput', 'city', 'all'].includes(values.part)) throw new Error('--part must be throughput, city or all')
const devicesWanted = Number(values.devices)
const rateScale = Number(values['rate-scale'])
const durationS = Number(values['duration-s'])
const workers = Number(values.workers)
const processes = Number(values.processes)

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  await new Promise<void>((r) => {
    child.once('exit', () => r())
    child.kill('SIGTERM')
    setTimeout(() => child.kill('SIGKILL'), 30_000).unref()
  })
}

function print(label: string, s: SimSummary, extra = ''): void {
  console.log(`${label.padEnd(34)} offered ${String(s.sentPerS).padStart(7)} msg/s  acknowledged ${String(s.ackedPerS).padStart(7)} msg/s  p50 ${s.p50Ms} ms  p99 ${s.p99Ms} ms${extra}`)
}

/** CPU per role over a run: the system's processes (from /proc, every thread) and the simulator's (it reports its own), in total and per acknowledged message. */
function cpuSplit(systemMs: number, s: SimSummary): { systemS: number; systemUsPerMsg: number; simulatorS: number; simulatorUsPerMsg: number } {
  const per = (ms: number): number => (s.acked > 0 ? Math.round((ms * 1000) / s.acked) : 0)
  return { systemS: Math.round(systemMs) / 1000, systemUsPerMsg: per(systemMs), simulatorS: s.cpuS, simulatorUsPerMsg: per(s.cpuS * 1000) }
}

function printCpu(label: string, c: ReturnType<typeof cpuSplit>, seconds: number): void {
  console.log(`${''.padEnd(34)} CPU ${label} ${c.systemS.toFixed(1)} s (${(c.systemS / seconds).toFixed(2)} cores, ${c.systemUsPerMsg} µs/msg); simulator at nice ${SIM_NICE} ${c.simulatorS.toFixed(1)} s (${(c.simulatorS / seconds).toFixed(2)} cores, ${c.simulatorUsPerMsg} µs/msg)`)
}

/** Every CPU of this machine not in the taskset list `list` (e.g. "0,1" on 16 CPUs: "2-15"). */
function otherCpus(list: string): string {
  const taken = new Set<number>()
  for (const part of list.split(',')) {
    const [a, b] = part.split('-').map(Number)
    for (let c = a ?? 0; c <= (b ?? a ?? 0); c++) taken.add(c)
  }
  const rest = cpus().map((_, i) => i).filter((i) => !taken.has(i))
  if (rest.length === 0) throw new Error(`--pin-system ${list} leaves no CPU for the simulator`)
  return rest.join(',')
}

const machine = { cpu: cpus()[0]?.model ?? '', cpus: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version }

function save(results: { bench: string; at: string }): void {
  mkdirSync(join(REPO, 'bench', 'results'), { recursive: true })
  const file = join(REPO, 'bench', 'results', `${results.bench}-${results.at.replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify(results, null, 2))
  console.log(`results: ${file}`)
}

async function city(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'citytwin-bench-city-'))
  try {
    const r = await runCityScale({
      cli: CLI, repo: REPO, dataDir: join(dir, 'db'), secret: SECRET, log: (line) => console.log(line),
      devices: values['city-devices'] === undefined ? undefined : Number(values['city-devices']),
      rateScale: Number(values['city-rate-scale']),
      workers: Number(values['city-workers']), processes: Number(values['city-processes']), steadyS: Number(values['steady-s']),
      connectTimeoutS: Number(values['connect-timeout-s']), reconnectSpreadS: Number(values['reconnect-spread-s']),
      profileDir: values['profile-dir'] === undefined ? undefined : resolve(values['profile-dir']),
      pinSystem: values['pin-system'], pinSimulator: values['pin-simulator'] ?? (values['pin-system'] ? otherCpus(values['pin-system']) : undefined),
    })
    console.log(`city scale: ${r.devices} devices; all connected after ${r.allConnectedAfterS === null ? 'never (timed out)' : `${r.allConnectedAfterS.toFixed(0)} s`}` +
      `; what devices queued meanwhile ${r.connectBacklogDrainedAfterS === null ? `had not drained after ${DRAIN_MAX_S} s (the steady window starts anyway)` : `drained ${r.connectBacklogDrainedAfterS.toFixed(0)} s later`}`)
    if (r.steady) {
      console.log(`  steady ${r.steady.seconds.toFixed(0)} s: ${r.steady.connectedAtEnd} connected, offered ${r.steady.sentPerS} msg/s (${r.steady.skippedPerS} more skipped with a full QoS 1 window), acknowledged ${r.steady.ackedPerS} msg/s, publish-to-stored p50 ${r.steady.p50Ms} ms, p99 ${r.steady.p99Ms} ms`)
      const c = r.steady.cpu
      console.log(`  steady CPU: system ${c.systemCores} cores (${c.systemUsPerMsg} µs per stored message: primary with the store ${c.primaryUsPerMsg}, workers ${c.workersUsPerMsg}), simulator at nice ${SIM_NICE} ${c.simulatorCores} cores (${c.simulatorUsPerMsg} µs/msg); workers RSS ${Math.round(r.steady.workersRssBytesPerConnection / 1024)} KiB per connection` +
        (r.pinSystem ? `; system pinned to CPUs ${r.pinSystem}, simulator to ${r.pinSimulator}` : ''))
    }
    console.log(`  gateway memory at peak: workers RSS ${r.memoryPeak.workersRssGiB} GiB (PSS ${r.memoryPeak.workersPssGiB} GiB) over ${r.memoryPeak.workers} workers; primary with the embedded store ${r.memoryPeak.primaryWithStoreRssGiB} GiB`)
    console.log(`  reconnect storm: ${r.storm.dropped} dropped, ${r.storm.allBackS === null ? 'not all back' : `all back after ${r.storm.allBackS.toFixed(1)} s`}, ${r.storm.reconnectAttempts} reconnect attempts, errors ${r.storm.errorsDuring}` +
      ` (connect errors over the whole run by code: ${Object.entries(r.overall.connectErrorCodes).map(([c, n]) => `${c} ${n}`).join(', ') || 'none'}); in the storm the kernel's listen queue (somaxconn ${r.storm.somaxconn ?? '?'}) dropped ${r.storm.listenOverflows} connections and failed ${r.storm.syncookiesFailed} SYN cookies (a reset to the device)`)
    console.log(`  acknowledged ${r.acknowledged}; stored ${r.storedMessages} messages, dead-lettered ${r.deadLettered} ${JSON.stringify(r.deadLetterCodes)}; acknowledged but neither stored nor dead-lettered: ${r.lostAcknowledged} (${r.devicesWithLoss} devices)`)
    save({ bench: 'ingest-city', at: new Date().toISOString(), machine, ...r } as { bench: string; at: string })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function throughput(): Promise<void> {
  const check = spawnSync('mosquitto', ['-h'], { encoding: 'utf8' })
  if (check.error) throw new Error('mosquitto is not installed: apt-get install -y mosquitto')
  const dir = mkdtempSync(join(tmpdir(), 'citytwin-bench-ingest-'))
  const dataDir = join(dir, 'db')
  try {
    // A city with enough devices, written to a fresh store.
    const city = generateCity({ seed: 1, scale: Math.min(1, Math.max(0.01, devicesWanted / 219_300 * 1.05)) })
    {
      const { store, writerCfg } = await openMigratedStore({ env: {} }, { dataDir })
      await writeCity(store.client, city, writerCfg)
      await store.close()
    }
    const devices: SimDevice[] = city.devices.slice(0, devicesWanted).map((d) => ({ id: d.id, type: d.type, intervalS: d.intervalS }))
    const perDevice = devices.reduce((s, d) => s + 1 / d.intervalS, 0)
    console.log(`bench:ingest: ${devices.length} devices at ${rateScale}x their intervals = ${Math.round(perDevice * rateScale)} msg/s offered, QoS 1, ${durationS} s each, ` +
      `gateway workers ${workers}, simulator processes ${processes}`)
    const fleet = (port: number): FleetOptions => ({ host: '127.0.0.1', port, sources: defaultSources(), portOffset: randomPortOffset(), secret: SECRET, qos: 1, rateScale, connectConcurrency: 500, keepaliveS: 120, reconnect: false, reconnectSpreadMs: 1_000 })

    // (a) citytwin: gateway process(es) on the embedded store.
    const profileDir = values['profile-dir'] === undefined ? undefined : resolve(values['profile-dir'])
    const profile = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []
    const gw = spawn(process.execPath, [...profile, CLI, 'gateway', 'mqtt', '--workers', String(workers), '--port', '0', '--data-dir', dataDir], {
      cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, CITYTWIN_LOG_LEVEL: 'warn', CITYTWIN_DEVICE_SECRET: SECRET, CITYTWIN_MQTT_RATE_PER_DEVICE_PER_S: '100000', CITYTWIN_MQTT_BURST_PER_DEVICE: '100000' },
    })
    const port = Number((await waitForLine(gw, /listening on port (\d+)/))[1])
    let citytwin: SimSummary
    let citytwinCpu: ReturnType<typeof cpuSplit>
    try {
      const before = schedOfAll(processTree(gw.pid ?? 0)).cpuMs
      citytwin = await runSimulation({ devices, processes, fleet: fleet(port), durationMs: durationS * 1000, cli: CLI })
      citytwinCpu = cpuSplit(schedOfAll(processTree(gw.pid ?? 0)).cpuMs - before, citytwin)
    } finally {
      await stopChild(gw)
    }
    print('citytwin (PUBLISH -> stored row)', citytwin)
    printCpu('gateway and store', citytwinCpu, citytwin.seconds)

    // (b) Mosquitto to one raw subscriber.
    const conf = join(dir, 'mosquitto.conf')
    const mosquittoPort = 18_000 + Math.floor(Math.random() * 2_000)
    writeFileSync(conf, `listener ${mosquittoPort} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\nmax_inflight_messages 0\n`)
    const mosq = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'ignore'] })
    let received = 0
    let mosquittoRun: SimSummary
    let mosquittoCpu: ReturnType<typeof cpuSplit>
    try {
      const before = schedOfAll([mosq.pid ?? 0]).cpuMs
      await new Promise((r) => setTimeout(r, 500))
      const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${mosquittoPort}`, { clientId: 'bench-subscriber', reconnectPeriod: 0 })
      sub.on('message', () => received++)
      await sub.subscribeAsync('devices/+/telemetry', { qos: 1 })
      const t0 = performance.now()
      mosquittoRun = await runSimulation({ devices, processes, fleet: fleet(mosquittoPort), durationMs: durationS * 1000, cli: CLI })
      const seconds = (performance.now() - t0) / 1000
      mosquittoCpu = cpuSplit(schedOfAll([mosq.pid ?? 0]).cpuMs - before, mosquittoRun)
      await new Promise((r) => setTimeout(r, 1_000))
      await sub.endAsync()
      print('mosquitto (PUBLISH -> subscriber)', mosquittoRun, `  subscriber received ${Math.round(received / seconds)} msg/s`)
      printCpu('mosquitto', mosquittoCpu, mosquittoRun.seconds)
    } finally {
      await stopChild(mosq)
    }
    const ratio = citytwin.ackedPerS / Math.max(1, mosquittoRun.ackedPerS)
    console.log(`ratio citytwin / mosquitto (acknowledged msg/s): ${ratio.toFixed(2)}`)
    const strip = ({ latency: _h, ...rest }: SimSummary) => rest
    save({
      bench: 'ingest-throughput', at: new Date().toISOString(), machine,
      options: { devices: devices.length, rateScale, durationS, workers, processes, offeredPerS: Math.round(perDevice * rateScale) },
      citytwin: { ...strip(citytwin), cpu: citytwinCpu }, mosquitto: { ...strip(mosquittoRun), subscriberReceived: received, cpu: mosquittoCpu }, ratio, simulatorNice: SIM_NICE,
    } as { bench: string; at: string })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (values.part !== 'city') await throughput()
if (values.part !== 'throughput') await city()
