// One change taken to every gateway worker before anything acts on it: the
// primary hands the change to every worker, waits until each says it has
// applied it, and only then may connections end because of it. The device
// log (registry-sync.ts) and the deny list (denial-sync.ts) both go so:
// a connection ended by one worker comes back through the shared port to
// whichever worker the kernel chooses, and that worker must already have
// the change, or it takes the device as it was.
import type { ClickHouseClient } from '@clickhouse/client'
import { logger } from '../../lib/log.ts'

const log = logger('mqtt-worker-rounds')

/** What the primary asks of a worker; node:cluster's Worker is one. */
export interface SyncWorker {
  readonly process: { readonly pid?: number | undefined }
  isConnected(): boolean
  send(m: object): unknown
  on(event: 'message', listener: (m: unknown) => void): unknown
  once(event: 'exit', listener: () => void): unknown
}

/** What a worker asks of its channel to the primary; a forked process is one. */
export interface PrimaryChannel {
  readonly connected?: boolean
  send?(m: object): unknown
  on(event: 'message', listener: (m: unknown) => void): unknown
}

/** A message whose `type` is `type`. */
export const isA = <T extends { type: string }>(type: T['type']) => (m: unknown): m is T =>
  typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type

/** A worker listening on the port (cluster.ts WorkerReady): it has loaded its state and follows the primary. */
const isReady = isA<{ type: 'mqtt-ready' }>('mqtt-ready')

/** What the primary's syncs (registry-sync.ts, denial-sync.ts) take alike. */
export interface WorkerSyncOptions {
  client: ClickHouseClient
  /** How often the primary reads what it hands over. */
  refreshMs: number
  /** How long step 1 waits for a worker that does not answer. */
  applyTimeoutMs: number
}

export interface WorkerRoundsOptions {
  /** How long a round waits for a worker that does not answer. */
  applyTimeoutMs: number
  /** The type of a worker's answer that it has applied a round's message (which carries `id`). */
  appliedType: string
  /** What the rounds carry, for the log. */
  what: string
}

/** The primary's side of the rounds; one instance per kind of change. */
export class WorkerRounds {
  readonly #o: WorkerRoundsOptions
  readonly #isApplied: (m: unknown) => m is { type: string; id: number }
  #nextId = 1
  /**
   * The workers given to `watch`, from their fork to their exit: the
   * rounds' own, not the pool's, which is known only once every worker is
   * ready, and a change read while they start must reach them.
   */
  readonly #workers = new Set<SyncWorker>()
  /** Workers that said they listen: a worker still loading has no listener for the changes yet, and would not answer. */
  readonly #ready = new WeakSet<SyncWorker>()
  #stopping = false
  /** The round under way: the workers (by pid) that have not said they applied it. */
  #waiting: { id: number; pids: Set<number>; done: () => void } | undefined
  readonly counts = { rounds: 0, timedOut: 0 }

  constructor(o: WorkerRoundsOptions) {
    this.#o = o
    this.#isApplied = isA<{ type: string; id: number }>(o.appliedType)
  }

  /** Give it each worker's messages (from its fork on): it listens for their answers. */
  watch(worker: SyncWorker): void {
    this.#workers.add(worker)
    worker.on('message', (m: unknown) => {
      if (isReady(m)) this.#ready.add(worker)
      else if (this.#isApplied(m) && m.id === this.#waiting?.id) this.#answered(worker)
    })
    // A worker that dies while a round waits for it will not answer.
    worker.once('exit', () => {
      this.#workers.delete(worker)
      this.#answered(worker)
    })
  }

  /** `worker` is waited for no more in the round under way. */
  #answered(worker: SyncWorker): void {
    const w = this.#waiting
    if (!w) return
    w.pids.delete(worker.process.pid ?? -1)
    if (w.pids.size === 0) w.done()
  }

  /**
   * Sends `m` with a round's `id` to every worker; resolves once every ready
   * one has said it applied it, or after applyTimeoutMs. One round at a time
   * (the caller's reads are).
   */
  async round<M extends { type: string }>(m: M): Promise<void> {
    if (this.#stopping) return
    const id = this.#nextId++
    this.counts.rounds++
    const sent = this.sendAll({ ...m, id })
    if (sent.size === 0) return
    let timer: NodeJS.Timeout | undefined
    await new Promise<void>((resolve) => {
      this.#waiting = { id, pids: sent, done: resolve }
      timer = setTimeout(() => {
        this.counts.timedOut++
        log.warn({ workers: [...sent], timeoutMs: this.#o.applyTimeoutMs, what: this.#o.what }, 'gateway workers did not say they applied a change in time; their connections end anyway')
        resolve()
      }, this.#o.applyTimeoutMs)
    })
    clearTimeout(timer)
    this.#waiting = undefined
  }

  /**
   * Sends `m` to every live worker; the pids of the ready ones, which a round
   * waits for. A worker still starting gets it too (it may have its
   * listener already) but is not waited for: it loads its state at its
   * start, after this change (each kind says how).
   */
  sendAll(m: object): Set<number> {
    const pids = new Set<number>()
    if (this.#stopping) return pids
    for (const w of this.#workers) {
      if (!w.isConnected()) continue
      // A worker that has just died fails the send (EPIPE, reported on the worker's 'error'): it answers nothing.
      w.send(m)
      if (this.#ready.has(w)) pids.add(w.process.pid ?? -1)
    }
    return pids
  }

  /** No new round, and one waiting on its workers stops waiting (they are stopping too). */
  stop(): void {
    this.#stopping = true
    this.#waiting?.done()
  }

  get stopping(): boolean {
    return this.#stopping
  }
}
