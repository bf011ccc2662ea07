// `citytwin sim devices`: drive a gateway with the city's devices over raw
// MQTT, from several processes (one may hold 20,000 open files here) and
// several loopback source addresses, and report connections, messages and
// acknowledgement latency while it runs.
import { fork, type ChildProcess } from 'node:child_process'
import { getPriority } from 'node:os'
import type { Command } from '../../lib/command.ts'
import { numberOption, UsageError } from '../../lib/command.ts'
import { loadConfig } from '../../lib/config.ts'
import { lowerOwnThreads, lowerProcess, lowerThanMe } from '../../lib/priority.ts'
import { mqttConfig } from '../../ingest/mqtt/config.ts'
import { resolveDeviceSecret } from '../../ingest/mqtt/tokens.ts'
import { withStore } from '../../store/index.ts'
import { DEFAULT_WINDOW, DeviceFleet, LOCAL_PORT_COUNT, slotsFor, type FleetOptions, type FleetStats, type SimDevice } from './fleet.ts'
import { devicesFromStore } from './from-store.ts'
import { LatencyHistogram } from './latency.ts'

/** Connections one simulator process takes on (the limit is 20,000 open files). */
export const DEVICES_PER_PROCESS = 15_000

type ToChild = { type: 'run'; devices: SimDevice[]; options: FleetOptions } | { type: 'stop' } | { type: 'drop' } | { type: 'rate'; rateScale: number }
type FromChild = { type: 'stats'; stats: FleetStats; final: boolean; cpuMs: number }

/** How much lower than the command that starts it a load generator runs by default (nice): below the system it measures, gateway workers (mqtt.workerNice, 10) included. */
export const SIM_NICE = 15

/** The fleet's counters added up over the processes, with rates and latency quantiles. */
export type SimSummary = Omit<FleetStats, 'latency' | 'ackedByDevice'> & {
  processes: number
  /** With a drop: devices connected just before it, and seconds until as many were back (null if they never were). */
  connectedBeforeDrop?: number
  reconnectS?: number | null
  seconds: number
  sentPerS: number
  ackedPerS: number
  p50Ms: number
  p99Ms: number
  /** The merged latency histogram (see LatencyHistogram), so a caller can take quantiles over a window. */
  latency: number[]
  /** When asked for: acknowledged messages per device id. */
  ackedByDevice?: Record<string, number>
  /** CPU seconds the simulator processes used, all threads. */
  cpuS: number
}

function summarise(all: FleetStats[], processes: number, seconds: number, cpuMs = 0): SimSummary {
  const sum = (k: keyof Omit<FleetStats, 'latency' | 'ackedByDevice' | 'connectErrorCodes'>) => all.reduce((s, x) => s + x[k], 0)
  const connectErrorCodes: Record<string, number> = {}
  for (const s of all) for (const [code, n] of Object.entries(s.connectErrorCodes ?? {})) connectErrorCodes[code] = (connectErrorCodes[code] ?? 0) + n
  const h = new LatencyHistogram()
  for (const s of all) h.add(s.latency)
  const sent = sum('sent')
  const acked = sum('acked')
  return {
    devices: sum('devices'), processes, connected: sum('connected'), peakConnected: sum('peakConnected'), refused: sum('refused'), connectErrors: sum('connectErrors'), connectErrorCodes,
    disconnects: sum('disconnects'), reconnectAttempts: sum('reconnectAttempts'), sent, skipped: sum('skipped'), acked, inflight: sum('inflight'), seconds,
    sentPerS: Math.round(sent / Math.max(seconds, 0.001)), ackedPerS: Math.round(acked / Math.max(seconds, 0.001)),
    p50Ms: Math.round(h.quantile(0.5) * 10) / 10, p99Ms: Math.round(h.quantile(0.99) * 10) / 10, latency: h.counts, cpuS: Math.round(cpuMs) / 1000,
  }
}

/** The body of a simulator child process: runs its slice until told to stop, reporting every second. */
function runChild(): void {
  let fleet: DeviceFleet | undefined
  let timer: NodeJS.Timeout | undefined
  // The parent may be gone (killed, or Ctrl-C'd first): a send then would throw ERR_IPC_CHANNEL_CLOSED.
  const send = (m: FromChild): void => {
    if (process.connected) process.send?.(m)
  }
  const cpuMs = (): number => {
    const u = process.cpuUsage()
    return (u.user + u.system) / 1000
  }
  // The parent lowered this process's main thread; the threads started before that follow it.
  if (process.env.CITYTWIN_SIM_PRIORITY !== undefined) lowerOwnThreads(Number(process.env.CITYTWIN_SIM_PRIORITY))
  // Without its parent no one reads the figures: stop sending and let go of every connection, so the process ends.
  process.once('disconnect', () => {
    clearInterval(timer)
    fleet?.stopPublishing()
    fleet?.dropAll()
  })
  process.on('message', (m: ToChild) => {
    if (m.type === 'run') {
      fleet = new DeviceFleet(m.devices, m.options)
      timer = setInterval(() => fleet && send({ type: 'stats', stats: fleet.stats(), final: false, cpuMs: cpuMs() }), 1_000)
      void fleet.start()
    } else if (m.type === 'drop') {
      fleet?.dropAll()
    } else if (m.type === 'rate') {
      fleet?.setRateScale(m.rateScale)
    } else if (m.type === 'stop') {
      clearInterval(timer)
      void (async () => {
        await fleet?.stop()
        if (fleet) send({ type: 'stats', stats: { ...fleet.stats(), ackedByDevice: fleet.ackedByDevice() }, final: true, cpuMs: cpuMs() })
        process.disconnect?.()
      })()
    }
  })
}

export const simCommands: Command[] = [
  {
    name: 'sim devices',
    summary: 'Simulate the city\'s devices over raw MQTT against a gateway, multi-process, and report throughput and latency',
    options: {
      limit: { type: 'string', description: 'how many devices (default: all in the city)', valueName: 'n' },
      type: { type: 'string', description: 'only devices of this type', valueName: 'type' },
      district: { type: 'string', description: 'only devices of this district (its grid id, as in /api/city): the whole district reporting, as the full city would in that view', valueName: 'id' },
      processes: { type: 'string', description: `simulator processes (default: one per ${DEVICES_PER_PROCESS} devices)`, valueName: 'n' },
      'duration-s': { type: 'string', description: 'how long to run, in seconds, from when every simulator process has started (default 60)', valueName: 's' },
      host: { type: 'string', description: 'gateway host (default 127.0.0.1)', valueName: 'host' },
      'mqtt-port': { type: 'string', description: 'gateway port (default 1883)', valueName: 'port' },
      sources: { type: 'string', description: `comma-separated local addresses to connect from, ${LOCAL_PORT_COUNT} devices each (default 127.0.0.2 to 127.0.0.17)`, valueName: 'list' },
      qos: { type: 'string', description: '0 or 1 (default 1)', valueName: 'q' },
      window: { type: 'string', description: `most QoS 1 messages a device leaves unacknowledged; a reading due while the window is full is skipped, as a device with a bounded queue drops it (default ${DEFAULT_WINDOW})`, valueName: 'n' },
      'rate-scale': { type: 'string', description: 'send this many times as often as the devices\' intervals (default 1)', valueName: 'x' },
      'drop-at-s': { type: 'string', description: 'reconnect storm: drop every connection this many seconds into the run, then report how long until all are back', valueName: 's' },
      'reconnect-spread-s': { type: 'string', description: 'devices spread their first reconnect over this many seconds (default 1)', valueName: 's' },
      'no-reconnect': { type: 'boolean', description: 'devices do not reconnect after losing their connection' },
      nice: { type: 'string', description: `run the simulator processes this much lower in the CPU scheduler than this command (default ${SIM_NICE}): a load generator must not outrank the system it drives`, valueName: 'n' },
      json: { type: 'boolean', description: 'print the summary as JSON' },
      child: { type: 'boolean', description: '(internal) run as a simulator child process' },
    },
    async run({ values, configFile, stdout }) {
      if (values.child) {
        runChild()
        await new Promise<void>((resolve) => process.once('disconnect', () => resolve()))
        return
      }
      const limit = numberOption(values, 'limit')
      const durationS = numberOption(values, 'duration-s') ?? 60
      const qos = numberOption(values, 'qos') ?? 1
      if (qos !== 0 && qos !== 1) throw new UsageError('--qos must be 0 or 1')
      const rateScale = numberOption(values, 'rate-scale') ?? 1
      if (!(rateScale > 0)) throw new UsageError('--rate-scale must be positive')
      const window = numberOption(values, 'window') ?? DEFAULT_WINDOW
      if (!(Number.isInteger(window) && window >= 1 && window <= 65_535)) throw new UsageError('--window must be a whole number from 1 to 65535')
      const district = numberOption(values, 'district')
      if (district !== undefined && !(Number.isInteger(district) && district > 0)) throw new UsageError('--district must be a district\'s grid id, a positive whole number (see GET /api/city)')
      const { devices, dataDir } = await withStore({ file: configFile }, async ({ store, storeCfg }) => ({
        devices: await devicesFromStore(store.client, { type: typeof values.type === 'string' ? values.type : undefined, district, limit }),
        dataDir: storeCfg.dataDir,
      }))
      if (devices.length === 0) {
        throw new UsageError(district !== undefined || typeof values.type === 'string'
          ? 'no devices match --district/--type in this city (districts: GET /api/city)'
          : 'no devices to simulate: generate a city first (citytwin city generate)')
      }
      const processes = numberOption(values, 'processes') ?? Math.ceil(devices.length / DEVICES_PER_PROCESS)
      const options: FleetOptions = {
        ...fleetOptions(values, configFile, dataDir),
        qos, rateScale, window, reconnect: values['no-reconnect'] !== true, reconnectSpreadMs: (numberOption(values, 'reconnect-spread-s') ?? 1) * 1000,
      }
      if (options.sources.length > 0 && devices.length > slotsFor(options.sources.length)) {
        throw new UsageError(`${devices.length} devices need at least ${Math.ceil(devices.length / LOCAL_PORT_COUNT)} source addresses (--sources); each carries ${LOCAL_PORT_COUNT}`)
      }
      const dropAtS = numberOption(values, 'drop-at-s')
      if (dropAtS !== undefined && !(dropAtS > 0 && dropAtS < durationS)) throw new UsageError('--drop-at-s must be within --duration-s')
      const nice = numberOption(values, 'nice') ?? SIM_NICE
      if (!(Number.isInteger(nice) && nice >= 0 && nice <= 19)) throw new UsageError('--nice must be a whole number from 0 to 19')
      let printedAt = 0
      const summary = await runSimulation({ devices, processes, fleet: options, durationMs: durationS * 1000, dropAtMs: dropAtS === undefined ? undefined : dropAtS * 1000, priority: lowerThanMe(nice) }, (s) => {
        // A line a second on a terminal (rewritten in place), every 5 s into a log.
        const now = performance.now()
        if (now - printedAt < (process.stderr.isTTY ? 1_000 : 5_000)) return
        printedAt = now
        const line = `sim: ${s.connected}/${s.devices} connected, sent ${s.sent} (${s.sentPerS}/s), acked ${s.acked}, p50 ${s.p50Ms} ms, p99 ${s.p99Ms} ms, refused ${s.refused}, errors ${s.connectErrors}`
        if (process.stderr.isTTY) process.stderr.write(`\r${line}   `)
        else process.stderr.write(line + '\n')
      })
      if (process.stderr.isTTY) process.stderr.write('\n')
      const { latency: _histogram, ...printed } = summary
      stdout.write(values.json ? JSON.stringify(printed) + '\n' : formatSummary(summary))
      return summary.refused + summary.connectErrors > 0 ? 1 : 0
    },
  },
]

/**
 * What every simulator run shares, from its command line (--host, --mqtt-port,
 * --sources) and the deployment: the gateway, the source addresses and the
 * device secret. QoS 1 at the devices' own intervals, reconnecting; a caller
 * changes what its run needs.
 */
export function fleetOptions(values: Record<string, string | boolean | undefined>, configFile: Record<string, unknown>, dataDir: string): FleetOptions {
  return {
    host: typeof values.host === 'string' ? values.host : '127.0.0.1',
    port: numberOption(values, 'mqtt-port') ?? 1883,
    sources: typeof values.sources === 'string' ? values.sources.split(',').map((s) => s.trim()).filter(Boolean) : defaultSources(),
    portOffset: randomPortOffset(),
    secret: resolveDeviceSecret(loadConfig(mqttConfig, { file: configFile }).deviceSecret, dataDir),
    qos: 1, rateScale: 1, connectConcurrency: 500, keepaliveS: 60, reconnect: true, reconnectSpreadMs: 1_000,
  }
}

/** 127.0.0.2 to 127.0.0.17: 16 loopback addresses, room for 364,288 devices. */
export const defaultSources = (): string[] => Array.from({ length: 16 }, (_, i) => `127.0.0.${i + 2}`)

export const randomPortOffset = (): number => Math.floor(Math.random() * LOCAL_PORT_COUNT)

export function formatSummary(s: SimSummary): string {
  return `simulated ${s.devices} devices from ${s.processes} processes for ${s.seconds.toFixed(1)} s\n` +
    `  connected at most ${s.peakConnected}, refused ${s.refused}, connect errors ${s.connectErrors}${s.connectErrors > 0 ? ` (${Object.entries(s.connectErrorCodes).map(([c, n]) => `${c} ${n}`).join(', ')})` : ''}, disconnects ${s.disconnects}\n` +
    `  sent ${s.sent} (${s.sentPerS} msg/s), skipped with a full window ${s.skipped}, acknowledged ${s.acked} (${s.ackedPerS} msg/s), unacknowledged at the end ${s.inflight}\n` +
    `  publish-to-PUBACK latency p50 ${s.p50Ms} ms, p99 ${s.p99Ms} ms\n` +
    `  simulator CPU ${s.cpuS.toFixed(1)} s (${s.sent > 0 ? Math.round(s.cpuS * 1e6 / s.sent) : 0} µs per message sent)\n` +
    (s.connectedBeforeDrop === undefined ? '' : `  reconnect storm: ${s.connectedBeforeDrop} connections dropped; ${s.reconnectS === null || s.reconnectS === undefined ? 'not all back by the end' : `all back in ${s.reconnectS.toFixed(1)} s`} (${s.reconnectAttempts} reconnect attempts)\n`)
}

export interface SimulationRun {
  devices: readonly SimDevice[]
  processes: number
  fleet: FleetOptions
  /**
   * How long the fleet runs, from when every simulator process is running
   * (has reported once; at the latest CHILD_START_MAX_MS after the fork):
   * on a loaded machine their start-up must not eat the run.
   */
  durationMs: number
  /** Drop every connection this long into the run, counted as durationMs is (a reconnect storm). */
  dropAtMs?: number | undefined
  /** The `citytwin` CLI the children run (default: this process's script). */
  cli?: string
  /** Also return acknowledged messages per device (for a check against the store). */
  ackedByDevice?: boolean
  /**
   * Called with each progress summary; may answer 'drop' (drop every
   * connection now, as dropAtMs does), 'stop' (end the run before
   * durationMs, which is then the longest it runs) or a new rate scale
   * for every device from now on.
   */
  control?: (s: SimSummary) => 'drop' | 'stop' | { rateScale: number } | undefined
  /**
   * The nice value the simulator processes run at, itself, not steps below this process: the load
   * generator must not outrank the system. Default SIM_NICE, or this process's own where that is lower
   * still. Not SIM_NICE below this process: a benchmark lowers itself once the system is up, and its
   * children were then lowered twice (to 19, under every part of the system: not the load it means to offer).
   */
  priority?: number
}

/** The longest the simulator processes may take to start before the run's clock starts without them. */
const CHILD_START_MAX_MS = 30_000

/** Forks the children, hands out slices, reports progress four times a second, stops them `durationMs` after they run. */
export async function runSimulation(run: SimulationRun, progress: (s: SimSummary) => void = () => undefined): Promise<SimSummary> {
  const { devices, processes, fleet: options, durationMs, dropAtMs } = run
  const cli = run.cli ?? process.argv[1] ?? ''
  const latest = new Map<ChildProcess, FleetStats>()
  const finals = new Map<ChildProcess, FleetStats>()
  const cpu = new Map<ChildProcess, number>()
  const cpuMs = (): number => [...cpu.values()].reduce((a, b) => a + b, 0)
  const priority = run.priority ?? Math.max(SIM_NICE, getPriority())
  const children: ChildProcess[] = []
  const slices: SimDevice[][] = []
  const started = performance.now()
  for (let k = 0; k < processes; k++) {
    const child = fork(cli, ['sim', 'devices', '--child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, CITYTWIN_SIM_PRIORITY: String(priority) } })
    lowerProcess(child.pid, priority, 'a simulator process')
    children.push(child)
    child.on('message', (m: FromChild) => {
      if (m.type !== 'stats') return
      latest.set(child, m.stats)
      cpu.set(child, m.cpuMs)
      if (m.final) finals.set(child, m.stats)
    })
    const slice = devices.flatMap((d, i) => (i % processes === k ? [{ ...d, slot: i }] : []))
    slices.push(slice)
    child.send({ type: 'run', devices: slice, options } satisfies ToChild)
  }
  const seconds = (): number => (performance.now() - started) / 1000
  let drop: { at: number; before: number; backAfterS: number | null } | undefined
  const connectedNow = (): number => [...latest.values()].reduce((n, s) => n + s.connected, 0)
  const dropAll = (): void => {
    drop = { at: performance.now(), before: connectedNow(), backAfterS: null }
    // A child that has died is no longer connected: a send would throw from a timer.
    for (const c of children) if (c.connected) c.send({ type: 'drop' } satisfies ToChild)
  }
  let endRun: () => void = () => undefined
  const ended = new Promise<void>((resolve) => {
    endRun = resolve
  })
  let dropTimer: NodeJS.Timeout | undefined
  let endTimer: NodeJS.Timeout | undefined
  const armClock = (): void => {
    if (endTimer) return
    if (dropAtMs !== undefined) dropTimer = setTimeout(dropAll, dropAtMs)
    endTimer = setTimeout(endRun, durationMs)
  }
  const ticker = setInterval(() => {
    if (!endTimer && (latest.size >= processes || performance.now() - started > CHILD_START_MAX_MS)) armClock()
    const s = summarise([...latest.values()], processes, seconds(), cpuMs())
    if (drop && drop.backAfterS === null && performance.now() - drop.at > 1_000 && s.connected >= drop.before) drop.backAfterS = (performance.now() - drop.at) / 1000
    progress(s)
    const action = run.control?.(s)
    if (action === 'drop') dropAll()
    else if (action === 'stop') endRun()
    else if (action) for (const c of children) if (c.connected) c.send({ type: 'rate', rateScale: action.rateScale } satisfies ToChild)
  }, 250)
  await ended
  clearInterval(ticker)
  clearTimeout(dropTimer)
  clearTimeout(endTimer)
  const elapsed = seconds()
  await Promise.all(children.map((c) => new Promise<void>((resolve) => {
    // One that has already ended would never say so again.
    if (c.exitCode !== null || c.signalCode !== null) return resolve()
    c.once('exit', () => resolve())
    if (c.connected) c.send({ type: 'stop' } satisfies ToChild)
    setTimeout(() => c.kill('SIGKILL'), 15_000).unref()
  })))
  const summary: SimSummary = summarise(children.map((c) => finals.get(c) ?? latest.get(c)).filter((s): s is FleetStats => s !== undefined), processes, elapsed, cpuMs())
  if (run.ackedByDevice) {
    const acked: Record<string, number> = {}
    children.forEach((c, k) => {
      const counts = finals.get(c)?.ackedByDevice ?? []
      slices[k]?.forEach((d, i) => { acked[d.id] = counts[i] ?? 0 })
    })
    summary.ackedByDevice = acked
  }
  return drop ? { ...summary, connectedBeforeDrop: drop.before, reconnectS: drop.backAfterS } : summary
}
