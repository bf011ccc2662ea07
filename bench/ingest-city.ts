// Ingest benchmark, parts 2 and 3 of issue 3: the whole city at once, then
// a reconnect storm, in one run against one gateway.
//
//   1. A fresh embedded store with the full city (219,300 devices).
//   2. `citytwin gateway mqtt --workers W` (the primary serves the store).
//   3. `citytwin sim`'s fleet connects every device, each publishing QoS 1
//      telemetry at its type's normal interval (~22k msg/s for the city).
//   4. Once all are connected, and what the devices queued while connecting
//      has drained (less than a second of the offered rate waiting for its
//      PUBACK, at most DRAIN_MAX_S): a steady window (default 5 min) measuring
//      msg/s and publish-to-PUBACK latency (the PUBACK goes out only once the
//      rows are stored, so this is publish-to-stored). Without the drain,
//      a minute's window at 50,000 devices carried the connect phase's
//      backlog and its p99 of 5 to 10 s, not the steady state's.
//   5. Then every connection is dropped at once; devices reconnect with
//      jittered backoff spread over 60 s; time until all are back.
//   6. Stop, and check every acknowledged message against the store, device
//      by device: acknowledged but not stored = lost.
// Gateway memory is sampled from /proc all along (RSS and PSS, the primary
// apart: it also runs the embedded ClickHouse, which a deployment would put
// on its own server).
import { spawn, spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { generateCity } from '../simulators/city/generate.ts'
import { writeCity } from '../registry/city-store.ts'
import { lowerOwnThreads } from '../lib/priority.ts'
import { harnessNice } from './proc.ts'
import { defaultSources, randomPortOffset, runSimulation, type SimSummary } from '../simulators/devices/cli.ts'
import type { FleetOptions, SimDevice } from '../simulators/devices/fleet.ts'
import { LatencyHistogram } from '../simulators/devices/latency.ts'
import { openMigratedStore } from '../store/index.ts'
import { checkAcknowledged } from './loss.ts'
import { CpuLedger, gatewayWorkerPids, listenOverflows, memoryOf, processTree, somaxconn, tcpExtCounter, waitForLine } from './proc.ts'

export interface CityRunOptions {
  cli: string
  repo: string
  dataDir: string
  secret: string
  /** Devices to simulate (default: the whole city). */
  devices?: number
  /** Times their normal rate the devices report at (default 1): the whole city at a fraction of its rate separates what grows with connections from what grows with the rate. */
  rateScale?: number
  workers: number
  processes: number
  steadyS: number
  /** Longest wait for everyone to connect, and for everyone to come back after the drop. */
  connectTimeoutS: number
  reconnectSpreadS: number
  log: (line: string) => void
  /** CPUs (a taskset list, e.g. "0,1") the system runs on; the simulator then runs on `pinSimulator`. Unset: no pinning. */
  pinSystem?: string | undefined
  /** CPUs the simulator runs on (default: all but pinSystem's, which the caller works out). */
  pinSimulator?: string | undefined
  /** Where the gateway's processes (primary and workers) write CPU profiles (node --cpu-prof); unset: not profiled. */
  profileDir?: string | undefined
}

/** Pins a running process, all its threads, to `cpus` (taskset from util-linux). */
export function pin(pid: number, cpus: string): void {
  const r = spawnSync('taskset', ['-a', '-c', '-p', cpus, String(pid)], { encoding: 'utf8' })
  if (r.error || r.status !== 0) throw new Error(`taskset could not pin pid ${pid} to CPUs ${cpus}: ${r.error?.message ?? r.stderr}`)
}

interface Memory {
  workersRss: number
  workersPss: number
  primaryRss: number
  workers: number
}

/** RSS and PSS of a process and its gateway workers, from /proc. */
function sampleMemory(primary: number): Memory {
  const children = gatewayWorkerPids(primary)
  let workersRss = 0
  let workersPss = 0
  for (const pid of children) {
    const m = memoryOf(pid)
    workersRss += m.rss
    workersPss += m.pss
  }
  return { workersRss, workersPss, primaryRss: memoryOf(primary).rss, workers: children.length }
}

/** Open files of each gateway worker (its connections and a few dozen of its own): how evenly the kernel spreads accepts. */
function workerFds(primary: number): number[] {
  const out: number[] = []
  for (const pid of gatewayWorkerPids(primary)) {
    try {
      out.push(readdirSync(`/proc/${pid}/fd`).length)
    } catch {
      // ended meanwhile
    }
  }
  return out
}

const gib = (n: number): string => (n / 2 ** 30).toFixed(2)

/** Longest wait, after all are connected, for what the devices queued meanwhile to drain before the steady window (s). */
export const DRAIN_MAX_S = 60

export async function runCityScale(o: CityRunOptions) {
  const city = generateCity({ seed: 1, scale: 1 })
  {
    const { store, writerCfg } = await openMigratedStore({ env: {} }, { dataDir: o.dataDir })
    await writeCity(store.client, city, writerCfg)
    await store.close()
  }
  const devices: SimDevice[] = city.devices.slice(0, o.devices ?? city.devices.length).map((d) => ({ id: d.id, type: d.type, intervalS: d.intervalS }))
  const rateScale = o.rateScale ?? 1
  const offered = devices.reduce((s, d) => s + 1 / d.intervalS, 0) * rateScale
  o.log(`city scale: ${devices.length} devices at ${rateScale === 1 ? 'their normal intervals' : `${rateScale}x their normal rate`} (${Math.round(offered)} msg/s offered), QoS 1; gateway workers ${o.workers}, simulator processes ${o.processes}`)

  // Pinned, the system runs on its CPUs (its workers inherit them) and this
  // process, whose children are the simulator, on the others: the system's
  // figure without the load generator's cost, as a deployment would run it.
  // The workers are forked with the primary's flags, so they are profiled too.
  const profile = o.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${o.profileDir}`] : []
  const gwArgs = [...profile, o.cli, 'gateway', 'mqtt', '--workers', String(o.workers), '--port', '0', '--data-dir', o.dataDir]
  if (o.pinSimulator) pin(process.pid, o.pinSimulator)
  const gw = spawn(o.pinSystem ? 'taskset' : process.execPath, o.pinSystem ? ['-c', o.pinSystem, process.execPath, ...gwArgs] : gwArgs, {
    cwd: o.repo, stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, CITYTWIN_LOG_LEVEL: 'warn', CITYTWIN_DEVICE_SECRET: o.secret },
  })
  // This process drives and checks the load (it keeps every acknowledgement to check against the store, and
  // reads the workers' memory every 2 s): 3 to 4% of the machine at full city, a quarter of it in V8's
  // collector (perf, 2026-12-02). At nice 0 it outranked the gateway's workers; from here it runs at their
  // nice (mqtt.workerNice), so it outranks no part of the system. Not at the simulator's: there, in a
  // saturated run, its 10-s lines came 8 to 16 s apart, and so would its reading of when a storm ends.
  lowerOwnThreads(harnessNice())
  const port = Number((await waitForLine(gw, /listening on port (\d+)/))[1])
  // The system's CPU (the primary with the store, and the workers), every thread, from /proc.
  // Ledgers, so a worker replaced mid-run keeps the CPU it used.
  const systemLedger = new CpuLedger()
  const workersLedger = new CpuLedger()
  const systemCpuMs = (): number => systemLedger.sample(processTree(gw.pid ?? 0))
  // The workers' share of it (their threads), so the primary's is the rest: where a cut pays.
  const workersCpuMs = (): number => workersLedger.sample(gatewayWorkerPids(gw.pid ?? 0).flatMap(processTree))
  let lastCpu = { at: performance.now(), system: systemCpuMs(), sim: 0, acked: 0 }
  const peak: Memory = { workersRss: 0, workersPss: 0, primaryRss: 0, workers: 0 }
  const sampler = setInterval(() => {
    const m = sampleMemory(gw.pid ?? 0)
    peak.workersRss = Math.max(peak.workersRss, m.workersRss)
    peak.workersPss = Math.max(peak.workersPss, m.workersPss)
    peak.primaryRss = Math.max(peak.primaryRss, m.primaryRss)
    peak.workers = Math.max(peak.workers, m.workers)
  }, 2_000)

  const fleet: FleetOptions = {
    host: '127.0.0.1', port, sources: defaultSources(), portOffset: randomPortOffset(), secret: o.secret, qos: 1, rateScale,
    connectConcurrency: 500, keepaliveS: 120, reconnect: true, reconnectSpreadMs: o.reconnectSpreadS * 1000,
  }
  // The run's phases, driven from the simulator's progress: connect, drain
  // (the backlog devices queued while connecting), steady, storm, settle.
  type Phase = 'connect' | 'drain' | 'steady' | 'storm' | 'settle'
  let phase: Phase = 'connect'
  let phaseAt = performance.now()
  const marks: Record<string, { at: number; s: SimSummary; systemCpuMs?: number; workersCpuMs?: number; memory?: Memory }> = {}
  let connectS = null as number | null // set inside the control callback, which the compiler cannot follow
  let stormBackS = null as number | null
  let drainS = null as number | null
  let stormBefore = 0
  let stormErrorsBefore = 0
  // The kernel's side of the storm: connections its listen queue dropped, and SYN cookies it could no longer take.
  let kernelBefore = { overflows: 0, cookiesFailed: 0 }
  let kernelDuring = { overflows: 0, cookiesFailed: 0 }
  // The children report once a second: the drop shows only once their counts fall.
  let dropSeen = false
  let printed = 0
  const startedAt = performance.now()
  const sinceS = (t: number): number => (performance.now() - t) / 1000
  const summary = await runSimulation({
    devices, processes: o.processes, fleet, cli: o.cli, ackedByDevice: true,
    durationMs: (o.connectTimeoutS * 2 + DRAIN_MAX_S + o.steadyS + 60) * 1000,
    control: (s) => {
      if (performance.now() - printed > 10_000) {
        printed = performance.now()
        const m = sampleMemory(gw.pid ?? 0)
        const now = { at: performance.now(), system: systemCpuMs(), sim: s.cpuS * 1000, acked: s.acked }
        const wall = now.at - lastCpu.at
        const acked = now.acked - lastCpu.acked
        const us = (ms: number): string => (acked > 0 ? `${Math.round((ms * 1000) / acked)} µs/msg` : '-')
        const fds = workerFds(gw.pid ?? 0)
        o.log(`  [${phase} ${Math.round(sinceS(phaseAt))} s] connected ${s.connected}/${s.devices}, acked ${s.acked} (${Math.round(acked / (wall / 1000))}/s now), refused ${s.refused}, errors ${s.connectErrors}` +
          `; open files a worker ${fds.length > 0 ? `${Math.min(...fds)} to ${Math.max(...fds)}` : '-'}; workers RSS ${gib(m.workersRss)} GiB` +
          ` (${s.connected > 0 ? Math.round(m.workersRss / s.connected / 1024) : 0} KiB/connection); CPU system ${((now.system - lastCpu.system) / wall).toFixed(2)} cores (${us(now.system - lastCpu.system)}), simulator ${((now.sim - lastCpu.sim) / wall).toFixed(2)} cores (${us(now.sim - lastCpu.sim)})`)
        lastCpu = now
      }
      if (phase === 'connect' && (s.connected >= devices.length || sinceS(phaseAt) > o.connectTimeoutS)) {
        if (s.connected >= devices.length) connectS = sinceS(startedAt)
        phase = 'drain'
        phaseAt = performance.now()
      } else if (phase === 'drain' && (s.inflight <= offered || sinceS(phaseAt) > DRAIN_MAX_S)) {
        // What devices queued while the city connected is not the steady state: the window starts
        // once less than a second of the offered rate waits for its PUBACK (or after DRAIN_MAX_S, saturated).
        // In flight now (not sent minus acked: what a dropped connection had in flight is never acknowledged).
        if (s.inflight <= offered) drainS = sinceS(phaseAt)
        marks.steadyStart = { at: performance.now(), s, systemCpuMs: systemCpuMs(), workersCpuMs: workersCpuMs(), memory: sampleMemory(gw.pid ?? 0) }
        phase = 'steady'
        phaseAt = performance.now()
      } else if (phase === 'steady' && sinceS(phaseAt) >= o.steadyS) {
        marks.steadyEnd = { at: performance.now(), s, systemCpuMs: systemCpuMs(), workersCpuMs: workersCpuMs(), memory: sampleMemory(gw.pid ?? 0) }
        stormBefore = s.connected
        stormErrorsBefore = s.refused + s.connectErrors
        kernelBefore = { overflows: listenOverflows(), cookiesFailed: tcpExtCounter('SyncookiesFailed') }
        phase = 'storm'
        phaseAt = performance.now()
        return 'drop'
      } else if (phase === 'storm' && !dropSeen) {
        dropSeen = s.connected < stormBefore / 2
      } else if (phase === 'storm' && (s.connected >= stormBefore || sinceS(phaseAt) > o.connectTimeoutS)) {
        if (s.connected >= stormBefore) stormBackS = sinceS(phaseAt)
        marks.stormEnd = { at: performance.now(), s }
        kernelDuring = { overflows: listenOverflows() - kernelBefore.overflows, cookiesFailed: tcpExtCounter('SyncookiesFailed') - kernelBefore.cookiesFailed }
        phase = 'settle'
        phaseAt = performance.now()
      } else if (phase === 'settle' && sinceS(phaseAt) >= 10) {
        return 'stop'
      }
      return undefined
    },
  })
  clearInterval(sampler)
  await new Promise<void>((resolve) => {
    gw.once('exit', () => resolve())
    gw.kill('SIGTERM')
    setTimeout(() => gw.kill('SIGKILL'), 60_000).unref()
  })

  // The steady window's figures.
  const a = marks.steadyStart
  const b = marks.steadyEnd
  let steady: {
    seconds: number; ackedPerS: number; sentPerS: number; skippedPerS: number; p50Ms: number; p99Ms: number; connectedAtEnd: number
    cpu: { systemCores: number; systemUsPerMsg: number; primaryUsPerMsg: number; workersUsPerMsg: number; simulatorCores: number; simulatorUsPerMsg: number }
    workersRssBytesPerConnection: number
  } | undefined
  if (a && b) {
    const h = new LatencyHistogram()
    h.counts = b.s.latency.map((n, i) => n - (a.s.latency[i] ?? 0))
    const seconds = (b.at - a.at) / 1000
    const acked = Math.max(1, b.s.acked - a.s.acked)
    const systemMs = (b.systemCpuMs ?? 0) - (a.systemCpuMs ?? 0)
    const workersMs = (b.workersCpuMs ?? 0) - (a.workersCpuMs ?? 0)
    const simMs = (b.s.cpuS - a.s.cpuS) * 1000
    steady = {
      seconds, ackedPerS: Math.round((b.s.acked - a.s.acked) / seconds), sentPerS: Math.round((b.s.sent - a.s.sent) / seconds),
      skippedPerS: Math.round((b.s.skipped - a.s.skipped) / seconds),
      p50Ms: Math.round(h.quantile(0.5) * 10) / 10, p99Ms: Math.round(h.quantile(0.99) * 10) / 10, connectedAtEnd: b.s.connected,
      cpu: {
        systemCores: Math.round(systemMs / seconds) / 1000, systemUsPerMsg: Math.round((systemMs * 1000) / acked),
        primaryUsPerMsg: Math.round(((systemMs - workersMs) * 1000) / acked), workersUsPerMsg: Math.round((workersMs * 1000) / acked),
        simulatorCores: Math.round(simMs / seconds) / 1000, simulatorUsPerMsg: Math.round((simMs * 1000) / acked),
      },
      workersRssBytesPerConnection: Math.round((b.memory?.workersRss ?? 0) / Math.max(1, b.s.connected)),
    }
  }
  const stormEnd = marks.stormEnd
  const storm = { dropped: stormBefore, allBackS: stormBackS, errorsDuring: stormEnd ? stormEnd.s.refused + stormEnd.s.connectErrors - stormErrorsBefore : null, reconnectAttempts: summary.reconnectAttempts, listenOverflows: kernelDuring.overflows, syncookiesFailed: kernelDuring.cookiesFailed, somaxconn: somaxconn() ?? null }

  const loss = await checkAcknowledged(o.dataDir, summary.ackedByDevice ?? {})
  const { ackedByDevice: _perDevice, latency: _histogram, ...overall } = summary
  return {
    devices: devices.length, offeredPerS: Math.round(offered), workers: o.workers, processes: o.processes, pinSystem: o.pinSystem ?? null, pinSimulator: o.pinSimulator ?? null,
    allConnectedAfterS: connectS, connectBacklogDrainedAfterS: drainS, steady, storm,
    acknowledged: summary.acked, ...loss,
    memoryPeak: { workersRssGiB: Number(gib(peak.workersRss)), workersPssGiB: Number(gib(peak.workersPss)), primaryWithStoreRssGiB: Number(gib(peak.primaryRss)), workers: peak.workers },
    overall,
  }
}
