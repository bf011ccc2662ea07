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
// The deny list goes the same way (denial-sync.ts; the rounds: worker-rounds.ts).
// A worker also still reads the log itself (registry-watch.ts, applying
// only): a worker forked after a change, or one that missed a message,
// catches up within its refresh. A change applied twice is applied once
// (RegistryWatch.apply skips what it has).
import type { ComponentStats } from '../../lib/component.ts'
import { logger } from '../../lib/log.ts'
import { DeviceLogFollower, endedBy, type ChangeRow, type RegistryWatch } from './registry-watch.ts'
import { isA, WorkerRounds, type PrimaryChannel, type SyncWorker, type WorkerSyncOptions } from './worker-rounds.ts'

export type { PrimaryChannel, SyncWorker } from './worker-rounds.ts'

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

const isChanges = isA<ChangesMessage>('citytwin-device-changes')
const isEnd = isA<EndMessage>('citytwin-device-changes-end')

export interface RegistrySyncOptions extends WorkerSyncOptions {
  /** The log's position when the workers were started (registry/provision.ts deviceLogPosition). */
  since: number
}

/** The primary's side: reads the device log and takes each change to every worker in the two steps above. */
export class RegistrySync extends DeviceLogFollower {
  readonly name = 'mqtt-registry-sync'
  readonly #rounds: WorkerRounds
  #changes = 0

  constructor(o: RegistrySyncOptions) {
    super(o.client, o.since, o.refreshMs)
    // A worker still starting is not waited for: it loaded its registry from the store at its start and
    // reads the log once more before it listens (RegistryWatch.start).
    this.#rounds = new WorkerRounds({ applyTimeoutMs: o.applyTimeoutMs, appliedType: 'citytwin-device-changes-applied', what: 'device changes' })
    // The workers load their registries after this position: what came before it is in force there, nothing to end.
    this.prime()
  }

  /** Give it each worker's messages (from its fork on): it listens for the answers of step 1. */
  watch(worker: SyncWorker): void {
    this.#rounds.watch(worker)
  }

  protected async take(rows: ChangeRow[]): Promise<void> {
    if (this.#rounds.stopping) return
    // Step 1: every worker applies the rows (or applyTimeoutMs passes; such a worker reads the log itself within its refresh).
    await this.#rounds.round({ type: 'citytwin-device-changes', rows } satisfies Omit<ChangesMessage, 'id'>)
    this.#changes += rows.length
    const ended = endedBy(rows)
    if (ended.length === 0 || this.#rounds.stopping) return
    log.info({ devices: ended.length, first: ended[0] }, 'devices changed or decommissioned, and every gateway worker has the change: ending their connections')
    this.#rounds.sendAll({ type: 'citytwin-device-changes-end', ids: ended } satisfies EndMessage)
  }

  override async stop(): Promise<void> {
    this.#rounds.stop()
    await super.stop()
  }

  stats(): ComponentStats {
    return { changes: this.#changes, ...this.#rounds.counts, since: this.since }
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
