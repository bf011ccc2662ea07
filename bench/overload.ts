// npm run bench:overload: overload is a state, not a collapse (issue 13).
//
//   1. `citytwin start --full` on a fresh full-scale city: the gateway, the
//      store, the twin and the rules, as a city runs them.
//   2. The simulator connects --devices of it at their normal intervals; once
//      all are connected (or --connect-timeout-s) and what they queued
//      meanwhile has drained (at most DRAIN_MAX_S),
//   3. a base window (--base-s) at the normal rate,
//   4. --scale times the normal rate for --overload-s (default 2× for 5 min),
//   5. then --after-scale times it (default 1) for --after-s.
// Every 10 s a line: offered and stored msg/s, p99 publish-to-stored over
// those 10 s, memory per role, gateway workers alive and replaced, the
// ingest alarm, open tickets and the primary's event-loop delay (its p99 and
// longest wait, read from /metrics every 5 s). At the end, per phase: stored
// msg/s, CPU per role, memory, the worst loop delay, API latency (GET
// /api/city and /api/grids/{id}, four times a second, from a prober at nice 0
// and one raised to -10: "raised" in the figures), and over the run: degraded
// spells, tickets by type (every device keeps reporting, so each silence or
// area-outage ticket is a false one),
// seconds from the load dropping until a 10 s window's p99 is under 1 s, and
// every acknowledged message checked against the store. Figures go to
// bench/results/overload-<date>.json, the system's log beside them.
//
//   npm run bench:overload -- [--devices N] [--workers W] [--scale X] [--overload-s S] [--after-scale X] [--after-s S]
//                             [--base-s S] [--connect-timeout-s S] [--processes P] [--profile-dir DIR]   (CPU profiles of the system's processes)
import { spawn } from 'node:child_process'
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { generateCity } from '../simulators/city/generate.ts'
import { lowerOwnThreads } from '../lib/priority.ts'
import { harnessNice } from './proc.ts'
import { DEVICES_PER_PROCESS, defaultSources, randomPortOffset, runSimulation, SIM_NICE, type SimSummary } from '../simulators/devices/cli.ts'
import type { FleetOptions, SimDevice } from '../simulators/devices/fleet.ts'
import { LatencyHistogram } from '../simulators/devices/latency.ts'
import { fetchTickets } from '../simulators/scenarios/cli.ts'
import { quantile } from '../simulators/scenarios/evaluate.ts'
import { DRAIN_MAX_S } from './ingest-city.ts'
import { checkAcknowledged } from './loss.ts'
import { histogramBuckets, metricSum, primaryMetric, quantileAtMost } from './metrics.ts'
import { startApiProbe } from './api-probe.ts'
import { CpuLedger, gatewayWorkerPids, listenOverflows, memoryOf, processTree, somaxconn, waitForLine } from './proc.ts'

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const SECRET = 'bench-overload-secret'
/** Ticket types a device that keeps reporting must never raise: silence and area outage. */
const SILENCE_TYPES = new Set(['device_offline', 'power_outage'])
/** A 10 s window's p99 under this is recovered (the issue's aim). */
const RECOVERED_P99_MS = 1_000
/** The nice of the second API prober: above every part of the system, so its figures hold none of its own waits for a CPU. */
const RAISED_PROBER_NICE = -10

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '219300' },
    workers: { type: 'string', default: '13' },
    processes: { type: 'string' },
    scale: { type: 'string', default: '2' },
    'overload-s': { type: 'string', default: '300' },
    'after-scale': { type: 'string', default: '1' },
    'after-s': { type: 'string', default: '120' },
    'base-s': { type: 'string', default: '60' },
    'connect-timeout-s': { type: 'string', default: '600' },
    'profile-dir': { type: 'string' },
  },
})
const num = (name: keyof typeof values, min: number): number => {
  const v = Number(values[name])
  if (!(v >= min)) throw new Error(`--${name} must be a number, at least ${min}`)
  return v
}
const o = {
  devices: num('devices', 1), workers: num('workers', 1), scale: num('scale', 0.01), overloadS: num('overload-s', 10), afterScale: num('after-scale', 0.01),
  afterS: num('after-s', 10), baseS: num('base-s', 10), connectTimeoutS: num('connect-timeout-s', 10),
}

const city = generateCity({ seed: 1, scale: 1 })
const devices: SimDevice[] = city.devices.slice(0, o.devices).map((d) => ({ id: d.id, type: d.type, intervalS: d.intervalS }))
const offered = devices.reduce((s, d) => s + 1 / d.intervalS, 0)
const processes = values.processes === undefined ? Math.ceil(devices.length / DEVICES_PER_PROCESS) : num('processes', 1)
const district = city.grids.find((g) => g.level === 'district')?.id ?? 1

const dir = mkdtempSync(join(tmpdir(), 'citytwin-bench-overload-'))
const dataDir = join(dir, 'db')
const cli = join(REPO, 'bin', 'citytwin.js')
const at = new Date().toISOString()
const env = { ...process.env, CITYTWIN_LOG_LEVEL: 'warn', CITYTWIN_DATA_DIR: dataDir, CITYTWIN_API_OPEN_READS: 'true', CITYTWIN_DEVICE_SECRET: SECRET }
console.log(`bench:overload: citytwin start --full --workers ${o.workers}; ${devices.length} devices (${Math.round(offered)} msg/s at the normal rate) from ${processes} simulator processes at nice ${SIM_NICE}; ` +
  `${o.baseS} s at 1×, ${o.overloadS} s at ${o.scale}× (${Math.round(offered * o.scale)} msg/s), then ${o.afterS} s at ${o.afterScale}×`)
// Profiled, the system's processes (the primary and the gateway workers it forks with its flags) write CPU profiles there.
const profile = values['profile-dir'] === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${resolve(values['profile-dir'])}`]
const system = spawn(process.execPath, [...profile, cli, 'start', '--full', '--workers', String(o.workers), '--port', '0', '--mqtt-port', '0'], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'inherit'] })
/** How the system ended, once it has: its exit code or the signal that ended it. */
let systemExit: string | undefined
system.once('exit', (code, signal) => {
  systemExit = signal ?? String(code)
})
// This process ending any way (an uncaught error included) takes the system with it.
process.once('exit', () => {
  if (systemExit === undefined) system.kill('SIGKILL')
})
const systemLog = join(REPO, 'bench', 'results', `overload-${at.replace(/[:.]/g, '-')}.log`)
mkdirSync(dirname(systemLog), { recursive: true })

type Phase = 'connect' | 'drain' | 'base' | 'overload' | 'after'
interface Mark {
  at: number; s: SimSummary; systemMs: number; rss: { primary: number; workers: number }
  /** The API thread's answer-time histogram per probed route, as of the latest scrape (histogramBuckets). */
  answers: { city: Map<number, number>; grid: Map<number, number> }
}
interface Window {
  phase: Phase; atS: number; sentPerS: number; ackedPerS: number; p99Ms: number
  rssGiB: { primary: number; workers: number }; workers: number; workersReplaced: number; degraded: boolean; spells: number; openTickets: number
  /** The primary's event loop over the window: its longest delay and the worst p99 of a 5-s read, ms. */
  loopLagMs: { max: number; p99: number }
  /** Percent of one core: the primary (its main process; the store's threads are in it), the gateway workers, the simulator. */
  cpuPct: { primary: number; workers: number; simulator: number }
}

const gib = (n: number): number => Math.round((n / 2 ** 30) * 100) / 100
/** A sample's q-quantile in ms to a tenth; 0 when empty. */
const msAt = (xs: readonly number[], q: number): number => Math.round((quantile(xs, q) ?? 0) * 10) / 10

try {
  const ready = await waitForLine(system, /MQTT\s+port (\d+)[\s\S]*API\s+(http:\/\/\S+)\/api\/city/, createWriteStream(systemLog))
  const port = Number(ready[1])
  const api = ready[2] ?? ''
  console.log(`the system's log: ${systemLog}`)
  const primary = system.pid ?? 0
  const overflowsBefore = listenOverflows()
  const ledger = new CpuLedger()
  const systemMs = (): number => ledger.sample(processTree(primary))
  const rss = (): { primary: number; workers: number } => ({ primary: memoryOf(primary).rss, workers: gatewayWorkerPids(primary).reduce((t, p) => t + memoryOf(p).rss, 0) })

  // Gateway workers seen, and those gone while the system ran: a worker that died and was re-forked.
  const seenWorkers = new Set<number>()
  let replaced = 0
  const trackWorkers = (): number => {
    // Once the system has ended its workers are gone with it: not replaced.
    if (systemExit !== undefined) return 0
    const now = new Set(gatewayWorkerPids(primary))
    for (const p of seenWorkers) if (!now.has(p)) replaced++
    seenWorkers.clear()
    for (const p of now) seenWorkers.add(p)
    return now.size
  }
  trackWorkers()

  // What the system says of itself, read every 5 s off the simulator's path: the ingest alarm and open tickets.
  let ingest = { degraded: false, spells: 0 }
  let openTickets = 0
  // The primary's event loop (prom-client's delay histogram, reset at each scrape): the longest wait and the p99 since the last read, the worst per window.
  const loopLag = { maxMs: 0, p99Ms: 0 }
  // The API thread's own answer times (citytwin_api_answer_seconds), as of the latest scrape: what the thread spent, beside what the prober waited.
  const answerRoutes = { city: 'route="GET /api/city"', grid: 'route="GET /api/grids/' } as const
  let answers = { city: new Map<number, number>(), grid: new Map<number, number>() }
  const readState = async (): Promise<void> => {
    try {
      const answer = async (path: string): Promise<Response> => {
        const r = await fetch(`${api}${path}`, { signal: AbortSignal.timeout(5_000) })
        if (!r.ok) throw new Error(`GET ${path} answered ${r.status}`)
        return r
      }
      ingest = (await (await answer('/api/ingest')).json()) as { degraded: boolean; spells: number }
      const metrics = await (await answer('/metrics')).text()
      openTickets = metricSum(metrics, 'citytwin_tickets_open') ?? 0
      loopLag.maxMs = Math.max(loopLag.maxMs, 1000 * (primaryMetric(metrics, 'citytwin_process_nodejs_eventloop_lag_max_seconds') ?? 0))
      loopLag.p99Ms = Math.max(loopLag.p99Ms, 1000 * (primaryMetric(metrics, 'citytwin_process_nodejs_eventloop_lag_p99_seconds') ?? 0))
      answers = { city: histogramBuckets(metrics, 'citytwin_api_answer_seconds', answerRoutes.city), grid: histogramBuckets(metrics, 'citytwin_api_answer_seconds', answerRoutes.grid) }
    } catch (e) {
      console.log(`  (could not read the system's state: ${String(e)})`)
    }
  }
  await readState()
  const stateTimer = setInterval(() => void readState(), 5_000)

  // The API as an operator sees it meanwhile: four times a second, the city and a district, timed per phase, from a process of its own.
  let phase: Phase = 'connect'
  const apiMs: Record<string, number[]> = {}
  const apiPaths = ['/api/city', `/api/grids/${district}?limit=1`]
  /** Keeps a prober's answers by phase and path, its own `label` after the path. */
  const sampleAs = (label: string) => (path: string, ms: number, ok: boolean): void => {
    const key = `${phase} ${path.startsWith('/api/city') ? 'city' : 'grid'}${label}${ok ? '' : ' failed'}`
    ;(apiMs[key] ??= []).push(ms)
  }
  const probe = startApiProbe(api, apiPaths, sampleAs(''))
  // A second prober at nice -10, above every part of the system: what an operator on a machine of their own would
  // see, without this prober's own waits for a CPU ("raised" in the figures; the first prober's minus this one's is that wait).
  const raisedProbe = startApiProbe(api, apiPaths, sampleAs(' raised'), { raise: RAISED_PROBER_NICE })
  if (raisedProbe.notRaised) console.log(`  the raised API prober ${raisedProbe.notRaised}: its figures are at nice 0 too`)
  // This process drives and checks the load (every acknowledgement is kept to check against the store): from
  // here it runs at the gateway workers' nice, outranking no part of the system (see ingest-city.ts). The
  // API's probers, started just above, keep nice 0 and -10: they stand for an operator's browser on a machine of its own.
  lowerOwnThreads(harnessNice())

  const fleet: FleetOptions = {
    host: '127.0.0.1', port, sources: defaultSources(), portOffset: randomPortOffset(), secret: SECRET, qos: 1, rateScale: 1,
    connectConcurrency: 500, keepaliveS: 120, reconnect: true, reconnectSpreadMs: 60_000,
  }
  const marks: Partial<Record<Phase | 'end', Mark>> = {}
  const spellsAt: Partial<Record<Phase | 'end', { degraded: boolean; spells: number }>> = {}
  const windows: Window[] = []
  let phaseAt = performance.now()
  const startedAt = performance.now()
  let connectedAfterS = null as number | null // set inside the control callback, which the compiler cannot follow
  let recoveredAfterS = null as number | null
  let lastWindow: { at: number; s: SimSummary; primaryMs: number; workersMs: number } | undefined
  // The CPU of each role per window: the primary with the store, twin and rules; the gateway workers; the simulator.
  const primaryLedger = new CpuLedger()
  const workersLedger = new CpuLedger()
  const primaryMs = (): number => primaryLedger.sample([primary])
  const workersMs = (): number => workersLedger.sample(gatewayWorkerPids(primary).flatMap(processTree))
  const sinceS = (t: number): number => (performance.now() - t) / 1000
  // A line every 10 s, and at each phase change (so a window holds one phase's load), with the window's p99 from the histogram's difference.
  const closeWindow = (s: SimSummary): void => {
    if (!lastWindow) return
    const w = (performance.now() - lastWindow.at) / 1000
    if (w < 1) return
    const h = new LatencyHistogram()
    h.counts = s.latency.map((n, i) => n - (lastWindow?.s.latency[i] ?? 0))
    const m = rss()
    const cpu = { primaryMs: primaryMs(), workersMs: workersMs() }
    const share = (ms: number): number => Math.round(ms / w / 10)
    const win: Window = {
      phase, atS: Math.round(sinceS(startedAt)), sentPerS: Math.round((s.sent - lastWindow.s.sent) / w), ackedPerS: Math.round((s.acked - lastWindow.s.acked) / w),
      p99Ms: Math.round(h.quantile(0.99)), rssGiB: { primary: gib(m.primary), workers: gib(m.workers) }, workers: trackWorkers(), workersReplaced: replaced,
      degraded: ingest.degraded, spells: ingest.spells, openTickets, loopLagMs: { max: Math.round(loopLag.maxMs), p99: Math.round(loopLag.p99Ms) },
      cpuPct: { primary: share(cpu.primaryMs - lastWindow.primaryMs), workers: share(cpu.workersMs - lastWindow.workersMs), simulator: share((s.cpuS - lastWindow.s.cpuS) * 1000) },
    }
    windows.push(win)
    loopLag.maxMs = 0
    loopLag.p99Ms = 0
    console.log(`  [${phase} ${Math.round(sinceS(phaseAt))} s] connected ${s.connected}/${s.devices} (refused ${s.refused}, connect errors ${s.connectErrors}); offered ${win.sentPerS}/s (skipped with a full window ${s.skipped}), stored ${win.ackedPerS}/s, p99 ${win.p99Ms} ms; ` +
      `CPU primary ${win.cpuPct.primary}%, workers ${win.cpuPct.workers}%, simulator ${win.cpuPct.simulator}%; RSS primary ${win.rssGiB.primary} GiB, ${win.workers} workers ${win.rssGiB.workers} GiB (${replaced} replaced); ingest ${win.degraded ? 'DEGRADED' : 'healthy'} (${win.spells} spells); open tickets ${openTickets}; primary's loop delay p99 ${win.loopLagMs.p99} ms, max ${win.loopLagMs.max} ms`)
    // Recovered: a window after the drop whose acknowledgements kept up with what was offered, at p99 under the aim (an empty one is a stall, not a recovery).
    if (phase === 'after' && recoveredAfterS === null && h.count > 0 && win.ackedPerS >= 0.9 * win.sentPerS && win.p99Ms < RECOVERED_P99_MS) recoveredAfterS = Math.round(sinceS(phaseAt))
    lastWindow = { at: performance.now(), s, ...cpu }
  }
  const enter = (next: Phase | 'end', s: SimSummary): void => {
    closeWindow(s)
    marks[next] = { at: performance.now(), s, systemMs: systemMs(), rss: rss(), answers }
    spellsAt[next] = { ...ingest }
    if (next !== 'end') {
      phase = next
      phaseAt = performance.now()
    }
  }

  const summary = await runSimulation({
    devices, processes, fleet, cli, ackedByDevice: true,
    durationMs: (o.connectTimeoutS + DRAIN_MAX_S + o.baseS + o.overloadS + o.afterS + 60) * 1000,
    control: (s) => {
      if (systemExit !== undefined) {
        console.log(`the system exited (${systemExit}) during ${phase}: the run stops`)
        enter('end', s)
        return 'stop'
      }
      if (!lastWindow) lastWindow = { at: performance.now(), s, primaryMs: primaryMs(), workersMs: workersMs() }
      else if (performance.now() - lastWindow.at >= 10_000) closeWindow(s)
      if (phase === 'connect' && (s.connected >= devices.length || sinceS(phaseAt) > o.connectTimeoutS)) {
        if (s.connected >= devices.length) connectedAfterS = Math.round(sinceS(startedAt))
        enter('drain', s)
      } else if (phase === 'drain' && (s.inflight <= offered || sinceS(phaseAt) > DRAIN_MAX_S)) {
        enter('base', s)
      } else if (phase === 'base' && sinceS(phaseAt) >= o.baseS) {
        enter('overload', s)
        return { rateScale: o.scale }
      } else if (phase === 'overload' && sinceS(phaseAt) >= o.overloadS) {
        enter('after', s)
        return { rateScale: o.afterScale }
      } else if (phase === 'after' && sinceS(phaseAt) >= o.afterS) {
        enter('end', s)
        return 'stop'
      }
      return undefined
    },
  })
  await probe.stop()
  await raisedProbe.stop()
  clearInterval(stateTimer)
  trackWorkers()
  const workersReplaced = replaced
  // Connects the kernel dropped with the accept queue full (each a SYN retried after 1, 2, 4... s), and its cap.
  const listen = { overflows: listenOverflows() - overflowsBefore, somaxconn: somaxconn() ?? null }
  const tickets = await fetchTickets(api, undefined).catch((e: unknown) => {
    console.log(`could not read the tickets: ${String(e)}`)
    return []
  })
  const byType: Record<string, number> = {}
  for (const t of tickets) byType[t.type] = (byType[t.type] ?? 0) + 1
  const falseSilence = tickets.filter((t) => SILENCE_TYPES.has(t.type)).length
  const systemAlive = systemExit === undefined
  await new Promise<void>((r) => {
    if (systemExit !== undefined) return r()
    system.once('exit', () => r())
    system.kill('SIGTERM')
    setTimeout(() => system.kill('SIGKILL'), 60_000).unref()
  })
  const loss = await checkAcknowledged(dataDir, summary.ackedByDevice ?? {})

  // Per phase: stored rate, CPU per role, memory at its start and end, API latency.
  const order: (Phase | 'end')[] = ['base', 'overload', 'after', 'end']
  const phases: Record<string, unknown> = {}
  for (let i = 0; i + 1 < order.length; i++) {
    const a = marks[order[i] as Phase]
    const b = marks[order[i + 1] as Phase | 'end']
    if (!a || !b) continue
    const seconds = (b.at - a.at) / 1000
    const acked = Math.max(1, b.s.acked - a.s.acked)
    const sys = b.systemMs - a.systemMs
    const sim = (b.s.cpuS - a.s.cpuS) * 1000
    const name = order[i] as Phase
    const ws = windows.filter((w) => w.phase === name)
    phases[name] = {
      seconds: Math.round(seconds), offeredPerS: Math.round((b.s.sent - a.s.sent) / seconds), skippedPerS: Math.round((b.s.skipped - a.s.skipped) / seconds), storedPerS: Math.round((b.s.acked - a.s.acked) / seconds),
      worstWindowP99Ms: Math.max(0, ...ws.map((w) => w.p99Ms)),
      primaryLoopDelayMs: { worstP99: Math.max(0, ...ws.map((w) => w.loopLagMs.p99)), max: Math.max(0, ...ws.map((w) => w.loopLagMs.max)) },
      cpu: { systemCores: Math.round(sys / seconds) / 1000, systemUsPerMsg: Math.round((sys * 1000) / acked), simulatorCores: Math.round(sim / seconds) / 1000, simulatorUsPerMsg: Math.round((sim * 1000) / acked) },
      rssGiB: { start: { primary: gib(a.rss.primary), workers: gib(a.rss.workers) }, end: { primary: gib(b.rss.primary), workers: gib(b.rss.workers) },
        max: { primary: Math.max(0, ...ws.map((w) => w.rssGiB.primary)), workers: Math.max(0, ...ws.map((w) => w.rssGiB.workers)) } },
      apiMs: Object.fromEntries(Object.entries(apiMs).filter(([k]) => k.startsWith(`${name} `)).map(([k, xs]) => [k.slice(name.length + 1), { n: xs.length, p50: msAt(xs, 0.5), p99: msAt(xs, 0.99) }])),
      // In the thread, from its histogram (read every 5 s, so a phase's edges are within 5 s): the p99 as the bucket that holds it.
      apiThreadMs: Object.fromEntries((['city', 'grid'] as const).map((k) => {
        const t = quantileAtMost(a.answers[k], b.answers[k], 0.99)
        return [k, { n: t.n, p99AtMost: t.atMost * 1000 }]
      })),
    }
  }
  const over = spellsAt.overload
  const result = {
    bench: 'overload', at,
    command: `npm run bench:overload -- ${process.argv.slice(2).join(' ')}`,
    machine: { cpu: cpus()[0]?.model ?? '', cpus: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
    devices: devices.length, normalPerS: Math.round(offered), processes, connectedAfterS, phases,
    systemAlive, workersReplaced, listen,
    // Alarms raised from the overload on: one already up when it began counts as the one.
    degradedAlarms: over && spellsAt.end ? spellsAt.end.spells - over.spells + (over.degraded ? 1 : 0) : null,
    spellsAt, ticketsByType: byType, falseSilenceTickets: falseSilence, recoveredAfterS,
    acknowledged: summary.acked, ...loss, windows,
  }
  const file = join(REPO, 'bench', 'results', `overload-${at.replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify(result, null, 2))
  for (const [name, p] of Object.entries(phases)) console.log(`${name.padEnd(9)} ${JSON.stringify(p)}`)
  console.log(`system ${systemAlive ? 'alive throughout' : `exited (${systemExit ?? ''})`}; gateway workers replaced: ${workersReplaced}; degraded alarms from the overload on: ${String(result.degradedAlarms)}; ` +
    `tickets ${JSON.stringify(byType)} (false silence or outage: ${falseSilence}); p99 under ${RECOVERED_P99_MS} ms ${recoveredAfterS === null ? 'never after the drop' : `${recoveredAfterS} s after the drop`}`)
  console.log(`connects dropped with the listen queue full: ${listen.overflows} (net.core.somaxconn ${String(listen.somaxconn)})`)
  console.log(`acknowledged ${summary.acked}; stored ${loss.storedMessages}, dead-lettered ${loss.deadLettered} ${JSON.stringify(loss.deadLetterCodes)}; acknowledged but neither: ${loss.lostAcknowledged} (${loss.devicesWithLoss} devices)`)
  console.log(`results: ${file}`)
} finally {
  if (systemExit === undefined) system.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
}
