// Devices provisioned while a cluster runs: every worker has a change
// before any connection ends because of it.
//
// Why: each worker read the device log on its own clock. A moved device
// whose connection one worker ended came back through the shared port to
// whichever worker the kernel chose; one that had not read the move yet
// took it with its old grids (or a rotated device with its old token) and
// ended it again only when it read the log, up to mqtt.denyListRefreshMs
// later. Now the primary reads the log too and, for what it finds, runs
// two steps:
//   1. every worker is handed the change and applies it to its copy of the
//      registry, then says so;
//   2. once all have (or after `applyTimeoutMs`, for a worker that does not
//      answer: one being replaced, say), every worker ends the connections
//      of the devices changed.
// A device that comes back after step 2 finds the change in every worker.
// A worker also still reads the log itself (registry-watch.ts, applying
// only): a worker forked after a change, or one that missed a message,
// catches up within its refresh. A change applied twice is applied once
// (RegistryWatch.apply skips what it has).
import type { ClickHouseClient } from '@clickhouse/client'
import type { ComponentStats } from '../../lib/component.ts'
import { logger } from '../../lib/log.ts'
import { DeviceLogFollower, endedBy, type ChangeRow, type RegistryWatch } from './registry-watch.ts'

const log = logger('mqtt-registry-sync')

interface ChangesMessage {
  type: 'citytwin-device-changes'
  id: number
  rows: ChangeRow[]
}

interface AppliedMessage {
  type: 'citytwin-device-changes-applied'
  id: number
}

interface EndMessage {
  type: 'citytwin-device-changes-end'
  ids: string[]
}

const isA = <T extends { type: string }>(type: T['type']) => (m: unknown): m is T => typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type
const isChanges = isA<ChangesMessage>('citytwin-device-changes')
const isApplied = isA<AppliedMessage>('citytwin-device-changes-applied')
const isEnd = isA<EndMessage>('citytwin-device-changes-end')
/** A worker listening on the port (cluster.ts WorkerReady): it has loaded its registry and follows the primary. */
const isReady = isA<{ type: 'mqtt-ready' }>('mqtt-ready')

/** What the sync asks of a worker; node:cluster's Worker is one. */
export interface SyncWorker {
  readonly process: { readonly pid?: number | undefined }
  isConnected(): boolean
  send(m: object): unknown
  on(event: 'message', listener: (m: unknown) => void): unknown
  once(event: 'exit', listener: () => void): unknown
}

/** What a worker's side asks of its channel to the primary; a forked process is one. */
export interface PrimaryChannel {
  readonly connected?: boolean
  send?(m: object): unknown
  on(event: 'message', listener: (m: unknown) => void): unknown
}

export interface RegistrySyncOptions {
  client: ClickHouseClient
  /** The log's position when the workers were started (registry/provision.ts deviceLogPosition). */
  since: number
  refreshMs: number
  /** The workers now (replacements included). */
  workers: () => readonly SyncWorker[]
  /** How long step 1 waits for a worker that does not answer. */
  applyTimeoutMs: number
}

/** The primary's side: reads the device log and takes each change to every worker in the two steps above. */
export class RegistrySync extends DeviceLogFollower {
  readonly name = 'mqtt-registry-sync'
  readonly #o: RegistrySyncOptions
  #nextId = 1
  /** Workers that said they listen: a worker still loading has no listener for the changes yet, and would not answer. */
  readonly #ready = new WeakSet<SyncWorker>()
  #stopping = false
  /** Step 1 under way: the workers (by pid) that have not said they applied it. */
  #waiting: { id: number; pids: Set<number>; done: () => void } | undefined
  #counts = { changes: 0, rounds: 0, timedOut: 0 }

  constructor(o: RegistrySyncOptions) {
    super(o.client, o.since, o.refreshMs)
    this.#o = o
    // The workers load their registries after this position: what came before it is in force there, nothing to end.
    this.prime()
  }

  /** Give it each worker's messages (from its fork on): it listens for the answers of step 1. */
  watch(worker: SyncWorker): void {
    worker.on('message', (m: unknown) => {
      if (isReady(m)) this.#ready.add(worker)
      else if (isApplied(m) && m.id === this.#waiting?.id) this.#answered(worker)
    })
    // A worker that dies while step 1 waits for it will not answer.
    worker.once('exit', () => this.#answered(worker))
  }

  /** `worker` is waited for no more in the round under way. */
  #answered(worker: SyncWorker): void {
    const w = this.#waiting
    if (!w) return
    w.pids.delete(worker.process.pid ?? -1)
    if (w.pids.size === 0) w.done()
  }

  protected async take(rows: ChangeRow[]): Promise<void> {
    if (this.#stopping) return
    await this.#applyEverywhere(rows)
    this.#counts.changes += rows.length
    const ended = endedBy(rows)
    if (ended.length === 0 || this.#stopping) return
    log.info({ devices: ended.length, first: ended[0] }, 'devices changed or decommissioned, and every gateway worker has the change: ending their connections')
    this.#sendAll({ type: 'citytwin-device-changes-end', ids: ended } satisfies EndMessage)
  }

  /** Step 1: resolves once every worker has applied `rows`, or after applyTimeoutMs. */
  async #applyEverywhere(rows: ChangeRow[]): Promise<void> {
    const id = this.#nextId++
    this.#counts.rounds++
    const sent = this.#sendAll({ type: 'citytwin-device-changes', id, rows } satisfies ChangesMessage)
    if (sent.size === 0) return
    let timer: NodeJS.Timeout | undefined
    await new Promise<void>((resolve) => {
      this.#waiting = { id, pids: sent, done: resolve }
      timer = setTimeout(() => {
        this.#counts.timedOut++
        log.warn({ workers: [...sent], timeoutMs: this.#o.applyTimeoutMs }, 'gateway workers did not say they applied device changes in time; their connections end anyway (such a worker reads the log itself within its refresh)')
        resolve()
      }, this.#o.applyTimeoutMs)
    })
    clearTimeout(timer)
    this.#waiting = undefined
  }

  /**
   * Sends `m` to every live worker; the pids of the ready ones, which step 1
   * waits for. A worker still starting gets it too (it may have its
   * listener already) but is not waited for: it loaded its registry from
   * the store at its start and reads the log once more before it listens
   * (RegistryWatch.start).
   */
  #sendAll(m: ChangesMessage | EndMessage): Set<number> {
    const pids = new Set<number>()
    for (const w of this.#o.workers()) {
      if (!w.isConnected()) continue
      // A worker that has just died fails the send (EPIPE, reported on the worker's 'error'): it answers nothing.
      w.send(m)
      if (this.#ready.has(w)) pids.add(w.process.pid ?? -1)
    }
    return pids
  }

  override async stop(): Promise<void> {
    // No new round, and one waiting on its workers stops waiting (they are stopping too).
    this.#stopping = true
    this.#waiting?.done()
    await super.stop()
  }

  stats(): ComponentStats {
    return { ...this.#counts, since: this.since }
  }
}

/**
 * A worker's side: applies the changes the primary hands over to `watch`'s
 * registry and says so; ends the connections the primary names.
 */
export function followPrimaryRegistry(watch: RegistryWatch, end: (deviceIds: readonly string[]) => void, channel: PrimaryChannel = process): void {
  channel.on('message', (m: unknown): void => {
    if (isChanges(m)) {
      try {
        watch.apply(m.rows)
      } catch (e) {
        // A row this registry cannot hold (a device type this version does not know): logged, and answered,
        // so the others need not wait; the same row read from the log fails there alike and is logged again.
        log.error({ err: e }, 'device changes from the primary not applied')
      }
      if (channel.connected) channel.send?.({ type: 'citytwin-device-changes-applied', id: m.id } satisfies AppliedMessage)
    } else if (isEnd(m)) {
      end(m.ids)
    }
  })
}
