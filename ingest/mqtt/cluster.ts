// The gateway over several processes. One process may hold 20,000 open
// files here, so 219,300 devices need several gateway processes: node:cluster
// workers share one listening socket and each accepts its own connections
// (SCHED_NONE). With node's default round robin the primary accepts every
// connection and queues it, unbounded, until a worker takes it: in a
// reconnect storm, with busy workers, the primary ran out of descriptors.
// Accepting in the workers leaves the queue to the kernel's listen backlog,
// which pushes back on devices, and keeps the primary's core for the store;
// each worker caps its connections (mqtt.maxConnections), and a full one
// passes what it accepts to the emptiest through this process (hand-over.ts). Each worker reaches the store through its owner: the primary when
// it opened the embedded store itself, or a running `citytwin start`, or a
// ClickHouse server. Workers send the primary their port and stats.
import cluster, { type Worker } from 'node:cluster'
import type { Bus, IngestSource } from '../../lib/bus/bus.ts'
import type { PositionClock } from '../../lib/bus/position.ts'
import { startAll, stopAll, type Component, type ComponentStats, type Health } from '../../lib/component.ts'
import { backoffDelayMs } from '../../lib/backoff.ts'
import { logger } from '../../lib/log.ts'
import { lowerOwnThreads, lowerProcess, lowerThanMe } from '../../lib/priority.ts'
import type { Store, WriterConfig } from '../../store/index.ts'
import type { Row } from '../../store/writer.ts'
import { createIngestWriters, type IngestWriters } from './index.ts'
import { WorkerBacklogs } from './backlog.ts'
import { deviceLogPosition } from '../../registry/provision.ts'
import { DenialSync } from './denial-sync.ts'
import { RegistrySync } from './registry-sync.ts'
import { serveRelay } from './relay.ts'
import { HandOverRouter } from './hand-over.ts'
import { bundleGatewayWorker, CLI_PATH, type WorkerBundle } from './worker-bundle.ts'
import { workerExecArgv } from '../../lib/bundle.ts'
import { WORKER_SLOT_ENV } from './worker-slot.ts'

const log = logger('mqtt-cluster')

export interface WorkerReady {
  type: 'mqtt-ready'
  port: number
  pid: number
}

export function isWorkerReady(m: unknown): m is WorkerReady {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'mqtt-ready'
}

export interface WorkerPool {
  port: number
  workers: readonly Worker[]
  /** Asks every worker to stop (SIGTERM: drain and flush) and waits until they have exited, or kills them at the deadline. */
  stop(deadline: number): Promise<void>
}

export interface WorkerSettings {
  /** V8 heap limit of each worker, in MB. */
  heapMb: number
  /** V8 semi-space of each worker, in MB (young generation: twice that). */
  semiSpaceMb?: number
  /** Environment for the workers, over this process's. */
  env: Record<string, string>
  /** How much lower than this process the workers run (nice); 0: the same. */
  nice?: number
  /** Called for each worker as it is forked (e.g. to serve its relayed rows). */
  onFork?: (w: Worker) => void
}

/**
 * Forks `n` gateway workers running `citytwin gateway mqtt` with `args`
 * (bundled, see worker-bundle.ts), and resolves once all are listening. A
 * worker that dies is replaced, unless the pool is stopping.
 */
export async function forkGatewayWorkers(n: number, args: string[], settings: WorkerSettings): Promise<WorkerPool> {
  // Where no bundle can be written (a read-only install, say), the workers
  // run the CLI through tsx as before: slower and larger, but running.
  const bundle = await bundleGatewayWorker().catch((e: unknown): WorkerBundle => {
    log.warn({ err: e }, 'gateway workers run the sources through tsx: no bundle could be written')
    return { file: CLI_PATH, remove: () => undefined }
  })
  // Read once, at the first setupPrimary: set it first.
  cluster.schedulingPolicy = cluster.SCHED_NONE
  const flags = bundle.file === CLI_PATH ? process.execArgv : workerExecArgv(process.execArgv)
  cluster.setupPrimary({ exec: bundle.file, args: ['gateway', 'mqtt', ...args], execArgv: [...flags, `--max-old-space-size=${settings.heapMb}`, ...(settings.semiSpaceMb ? [`--max-semi-space-size=${settings.semiSpaceMb}`] : [])], silent: false })
  let stopping = false
  const workers = new Set<Worker>()
  // Workers that died soon after they were forked, in a row: each waits longer before it is replaced.
  let quickDeaths = 0
  const pending = new Set<NodeJS.Timeout>()
  // Workers run below this process, which stores what every worker relays:
  // at equal priority, thirteen busy workers (and a load generator beside
  // them) left it a few percent of the CPU, rows queued, and every PUBACK
  // waited. A worker lowers the threads it had already started itself
  // (lowerWorkerThreads).
  const priority = lowerThanMe(settings.nice ?? 0)
  // A worker's slot (0 to n-1) stays with its replacements: its metrics are one series per slot (lib/metrics.ts).
  const spawnOne = (slot: number): Promise<WorkerReady> =>
    new Promise((resolve, reject) => {
      const w = cluster.fork({ ...settings.env, CITYTWIN_MQTT_WORKER: '1', CITYTWIN_MQTT_WORKER_PRIORITY: String(priority), [WORKER_SLOT_ENV]: String(slot) })
      workers.add(w)
      // A message sent to a worker that has just died fails (EPIPE) before its exit is seen: an error nothing
      // handled would end this process, which holds the store. Its exit is handled below.
      w.on('error', (e: Error) => log.warn({ pid: w.process.pid, err: e.message }, 'a message to a gateway worker could not be sent'))
      if (settings.nice) lowerProcess(w.process.pid, priority, 'a gateway worker')
      settings.onFork?.(w)
      const onMessage = (m: unknown): void => {
        if (!isWorkerReady(m)) return
        w.off('message', onMessage)
        resolve(m)
      }
      w.on('message', onMessage)
      const forkedAt = Date.now()
      w.once('exit', (code, signal) => {
        workers.delete(w)
        reject(new Error(`gateway worker ${w.process.pid} exited (${signal ?? code}) before it was ready`))
        if (stopping) return
        const next = respawn(Date.now() - forkedAt, quickDeaths)
        quickDeaths = next.quickDeaths
        log.error({ pid: w.process.pid, code, signal, restartInMs: next.delayMs, quickDeaths }, 'gateway worker died; starting another after a delay')
        const timer = setTimeout(() => {
          pending.delete(timer)
          if (!stopping) spawnOne(slot).catch((e: unknown) => log.error({ err: e }, 'could not replace a gateway worker'))
        }, next.delayMs)
        pending.add(timer)
      })
    })
  let ready: WorkerReady[]
  try {
    ready = await Promise.all(Array.from({ length: n }, (_, slot) => spawnOne(slot)))
  } catch (e) {
    // One did not come up: stop the others rather than leave them running unowned.
    stopping = true
    for (const w of workers) w.process.kill('SIGTERM')
    bundle.remove()
    throw e
  }
  const port = ready[0]?.port ?? 0
  log.info({ workers: n, port, pids: ready.map((r) => r.pid) }, 'gateway workers ready')
  return {
    port,
    get workers() {
      return [...workers]
    },
    async stop(deadline: number) {
      stopping = true
      for (const t of pending) clearTimeout(t)
      const exits = [...workers].map((w) => new Promise<void>((resolve) => {
        if (w.isDead()) return resolve()
        w.once('exit', () => resolve())
        w.process.kill('SIGTERM')
      }))
      const timer = setTimeout(() => {
        for (const w of workers) {
          if (w.isDead()) continue
          log.warn({ pid: w.process.pid }, 'gateway worker did not stop by the deadline; killing it')
          w.process.kill('SIGKILL')
        }
      }, Math.max(0, deadline - Date.now()))
      await Promise.all(exits)
      clearTimeout(timer)
      bundle.remove()
    },
  }
}

/** A worker that lived less than this counts as a quick death: the cause is likely to kill its replacement too. */
export const QUICK_DEATH_MS = 60_000

/**
 * When to replace a worker that died after `livedMs`: at once-ish after a
 * worker that ran a while, and backing off (0.5 s, 1 s, 2 s... up to 30 s,
 * with jitter) while replacements keep dying soon after they start. A
 * worker killed by its heap limit under overload, replaced at once, came
 * back into the same overload; thirteen of them forked together ran the
 * primary out of file descriptors (EMFILE).
 */
export function respawn(livedMs: number, quickDeaths: number, random: () => number = Math.random): { delayMs: number; quickDeaths: number } {
  const n = livedMs < QUICK_DEATH_MS ? quickDeaths + 1 : 0
  return { delayMs: backoffDelayMs(n, { initialMs: 250, maxMs: 30_000, random }), quickDeaths: n }
}

/** In a worker: every thread of this process to the priority the primary chose (CITYTWIN_MQTT_WORKER_PRIORITY). */
export function lowerWorkerThreads(env: NodeJS.ProcessEnv = process.env): void {
  if (env.CITYTWIN_MQTT_WORKER_PRIORITY !== undefined) lowerOwnThreads(Number(env.CITYTWIN_MQTT_WORKER_PRIORITY))
}

export interface MqttClusterOptions {
  store: Store
  writerCfg: WriterConfig
  workers: number
  /** Arguments after `gateway mqtt` (port, config file). */
  args: string[]
  heapMb: number
  semiSpaceMb: number
  /** How much lower than this process the workers run in the CPU scheduler. */
  nice: number
  /** The gateway's cap on unacknowledged messages; each worker gets its share. */
  maxInFlight: number
  /** How often the device log and the deny list are read (mqtt.denyListRefreshMs): the primary takes each change to every worker (registry-sync.ts, denial-sync.ts). */
  registryRefreshMs: number
  /** mqtt.maxPastMs: how old a reading the workers take; the roll-ups' catch-up reads that far back. */
  maxPastMs?: number
  /** Where stored elements are published (the twin, in `citytwin start`). */
  bus?: Bus
  /** The bus positions the writers stamp on what they store for the bus (lib/bus/position.ts). */
  positions?: PositionClock
}

/**
 * The gateway as N worker processes on one port, with the writers their
 * rows are relayed to in this process: one component, started in that
 * order (writers, then workers) and stopped the other way round.
 */
export class MqttCluster implements Component, IngestSource {
  readonly name = 'mqtt-cluster'
  readonly #o: MqttClusterOptions
  readonly #writers: Component[] = []
  #ingestWriters: IngestWriters | undefined
  readonly #backlogs = new WorkerBacklogs()
  readonly #handOver = new HandOverRouter()
  #pool: WorkerPool | undefined
  #sync: RegistrySync | undefined
  #denials: DenialSync | undefined

  constructor(opts: MqttClusterOptions) {
    this.#o = opts
  }

  get port(): number {
    return this.#pool?.port ?? 0
  }

  async start(): Promise<void> {
    try {
      await this.#start()
    } catch (e) {
      // What did start stops here: a component whose start failed is never stopped by its caller (lib/component.ts).
      await this.stop(Date.now() + 10_000).catch((err: unknown) => log.warn({ err }, 'the MQTT gateway did not start, and stopping what it had started failed too'))
      throw e
    }
  }

  async #start(): Promise<void> {
    // Read first (nothing else is started if it cannot be), before the workers are forked: each asks for the list at its start, and refuses a denied device from its first CONNECT.
    const denials = new DenialSync({
      client: this.#o.store.client, refreshMs: this.#o.registryRefreshMs, applyTimeoutMs: Math.max(1_000, 2 * this.#o.registryRefreshMs),
    })
    await denials.start()
    this.#denials = denials
    const w = createIngestWriters(this.#o.store, this.#o.writerCfg, this.#o.positions, this.#o.maxPastMs)
    this.#ingestWriters = w
    await startAll([w.deadLetters, w.rollups, w.readings, w.events], this.#writers)
    // The log's position before the workers load their registries: a change in between is handed to them, and skipped by those that have it.
    const sync = new RegistrySync({
      client: this.#o.store.client, since: await deviceLogPosition(this.#o.store.client), refreshMs: this.#o.registryRefreshMs,
      applyTimeoutMs: Math.max(1_000, 2 * this.#o.registryRefreshMs),
    })
    this.#sync = sync
    const sinks = { readings: w.readings, events: w.events, dead_letters: { write: (rows: readonly Row[]) => w.deadLetters.writeRows(rows) } }
    this.#pool = await forkGatewayWorkers(this.#o.workers, this.#o.args, {
      heapMb: this.#o.heapMb,
      semiSpaceMb: this.#o.semiSpaceMb,
      nice: this.#o.nice,
      // Each worker holds its share of the cap, so the gateway as a whole holds what the configuration says.
      env: { CITYTWIN_MQTT_MAX_IN_FLIGHT: String(Math.max(100, Math.ceil(this.#o.maxInFlight / this.#o.workers))) },
      onFork: (worker) => {
        serveRelay(worker, sinks, this.#o.bus)
        this.#backlogs.watch(worker)
        this.#handOver.watch(worker)
        sync.watch(worker)
        denials.watch(worker)
      },
    })
    await sync.start()
  }

  /** The largest backlog of any worker, or of the writers here, at `now`, in ms (see backlog.ts). */
  backlogMs(now: number): number {
    return Math.max(this.#backlogs.backlogMs(now), this.#ingestWriters?.oldestPendingMs(now) ?? 0)
  }

  /** Whether any worker refuses connections to keep its memory. */
  shedding(): boolean {
    return this.#backlogs.shedding()
  }

  async stop(deadline: number): Promise<void> {
    // Workers first (they drain into the writers), then the writers flush. The sync stops beside them: a read
    // of the device log under way (against a stalled store, up to its request timeout) must not eat their deadline.
    await Promise.all([this.#sync?.stop(), this.#denials?.stop(), this.#pool?.stop(Math.max(Date.now(), deadline - 5_000))])
    await stopAll(this.#writers, deadline)
  }

  async health(): Promise<Health> {
    const all = await Promise.all([this.#sync?.health(), this.#denials?.health()])
    const detail = all.map((h) => h?.detail).filter((d) => d !== undefined).join('; ')
    return { ok: all.every((h) => h?.ok ?? true), ...(detail ? { detail } : {}) }
  }

  stats(): ComponentStats {
    return { port: this.port, workers: this.#pool?.workers.length ?? 0, backlogMs: this.backlogMs(Date.now()), registrySync: this.#sync?.stats() ?? {}, handOver: this.#handOver.stats(), denialSync: this.#denials?.stats() ?? {} }
  }
}

/** What a cluster takes from the gateway's configuration: the per-process limits, and how old a reading may be. */
export function workerLimits(c: { workerHeapMb: number; workerSemiSpaceMb: number; maxInFlight: number; workerNice: number; denyListRefreshMs: number; maxPastMs: number }): { heapMb: number; semiSpaceMb: number; maxInFlight: number; nice: number; registryRefreshMs: number; maxPastMs: number } {
  return { heapMb: c.workerHeapMb, semiSpaceMb: c.workerSemiSpaceMb, maxInFlight: c.maxInFlight, nice: c.workerNice, registryRefreshMs: c.denyListRefreshMs, maxPastMs: c.maxPastMs }
}
