// The twin as a running component: loaded from the store at start, fed by
// the bus, swept once a second for devices that have turned silent, and
// checkpointed to the store once a minute (checkpoint.ts). When the bus
// drops elements for it (it fell more than bus.capacity behind), it reads
// back from the store just what it lost, not the whole city.
import type { ClickHouseClient } from '@clickhouse/client'
import { ingestSources, type Bus, type IngestSource, type Subscription } from '../../lib/bus/bus.ts'
import { atDeadline } from '../../lib/backoff.ts'
import { isCovered, placeOf, STREAMS, type Positions } from '../../lib/bus/position.ts'
import { storedAfter } from '../../lib/bus/stored-after.ts'
import { BatchInTurns } from '../../lib/bus/turns.ts'
import type { Element } from '../../lib/bus/elements.ts'
import type { Component, ComponentStats } from '../../lib/component.ts'
import { messageOf } from '../../lib/errors.ts'
import { logger } from '../../lib/log.ts'
import { counter, gauge } from '../../lib/metrics.ts'
import { CheckpointTracker, checkpointRows, writeCheckpoint } from './checkpoint.ts'
import type { TwinConfig } from './config.ts'
import { loadTwinState, openTickets } from './load.ts'
import type { IngestHealth } from './ingest-health.ts'
import type { StatusListener, Twin } from './twin.ts'
import { registryLogMark } from '../../registry/provision.ts'

const log = logger('twin')
const elementsTotal = counter('citytwin_twin_elements_total', 'Elements applied to the live twin', [])
const devicesGauge = gauge('citytwin_twin_devices', 'Devices in the twin, by status', ['status'])
const lagGauge = gauge('citytwin_twin_lag_seconds', 'How far behind the clock the readings reaching the twin are (silence is judged that much later)')
const degradedGauge = gauge('citytwin_ingest_degraded', '1 while ingest is degraded (data too late, or a gateway shedding devices): no silence is judged meanwhile')
const degradedTotal = counter('citytwin_ingest_degraded_total', 'Times ingest turned degraded')
const caughtUpTotal = counter('citytwin_twin_caught_up_total', 'Elements the twin read back from the store after the bus dropped them for it', [])

/**
 * How far back the twin reads what the bus dropped for it. Further behind
 * (or with nothing applied yet) a rebuild costs less than the readings of
 * that long: a full load reads one row per device and metric.
 */
const CATCH_UP_MAX_MS = 15 * 60_000

/** Hears of each twin loaded and of each sweep (LiveTwin.follow). Both are called on the twin's own turn and must not throw. */
export interface TwinFollower {
  loaded(twin: Twin, ingest: IngestHealth): void
  swept(ingest: IngestHealth): void
}

export class LiveTwin implements Component {
  readonly name = 'twin'
  readonly #client: ClickHouseClient
  readonly #bus: Bus
  readonly #cfg: TwinConfig
  readonly #maxPastMs: number | undefined
  readonly #checkpoints = new CheckpointTracker()
  /** A checkpoint being written. */
  #checkpointing: Promise<void> | undefined
  #checkpointTimer: NodeJS.Timeout | undefined
  /** Gaps on the bus so far, and how many of them the twin had when its last load started: until a load covers every gap, the twin misses what was dropped and must not checkpoint. */
  #gaps = 0
  #gapsCovered = 0
  #checkpointCounts = { written: 0, failed: 0, lastDevices: 0, lastMs: 0 }
  #twin: Twin | undefined
  #subscription: Subscription | undefined
  /** A load from the store, or a catch-up after a gap, in progress: the bus holds the twin's elements until it is done. */
  #loading: Promise<void> | undefined
  /** Batches from the bus, applied in turns: a load waits for the one in progress. */
  readonly #applying = new BatchInTurns()
  /** After a catch-up, until the bus is past it: the bus's elements at or below the positions applied (read back from the store) are skipped. */
  #skipApplied = false
  /** Wait before the next try at a rebuild after a gap on the bus, ms (doubling to a minute). */
  #rebuildRetryMs = 1_000
  #rebuildTimer: NodeJS.Timeout | undefined
  /** Where the registry logs stood when the loaded twin read them (registry/provision.ts registryLogMark), and the timer that looks for more. */
  #registryMark = ''
  #registryTimer: NodeJS.Timeout | undefined
  #registryRebuilds = 0
  #timer: NodeJS.Timeout | undefined
  #onStatus: StatusListener | undefined
  /** Who hears of each twin loaded and each sweep's judgment of ingest (the API's own thread, through front/). */
  readonly #followers = new Set<TwinFollower>()
  /** What waits on the bus, for any subscriber: counted with the gateway's backlog, or alone when there is no gateway. */
  readonly #onBus: IngestSource = { backlogMs: (now) => this.#bus.backlogMs(now), shedding: () => false }
  #ingest: IngestSource = this.#onBus
  #loadedAt = 0
  #loadMs = 0
  /** Loads from the store so far (the first at start), and elements read back after gaps on the bus. */
  #loads = 0
  #caughtUp = 0

  /** `maxPastMs`: mqtt.maxPastMs, how far behind its arrival a stored row's time may be (bounds the load's queries by time). */
  constructor(opts: { client: ClickHouseClient; bus: Bus; config: TwinConfig; maxPastMs?: number }) {
    this.#client = opts.client
    this.#bus = opts.bus
    this.#cfg = opts.config
    this.#maxPastMs = opts.maxPastMs
  }

  /** The twin; throws before start. */
  get twin(): Twin {
    if (!this.#twin) throw new Error('the twin is not loaded yet')
    return this.#twin
  }

  /** Calls `fn` on every device status change, of this twin and of any it is rebuilt as. */
  onStatusChange(fn: StatusListener | undefined): void {
    this.#onStatus = fn
    this.#twin?.onStatusChange(fn)
  }

  /**
   * Where ingest says how it is doing, for this twin and any it is rebuilt
   * as: its backlog counts in the lag (lag.ts), so silence is not judged for
   * data still waiting in the gateway, and with whether it sheds devices,
   * decides whether ingest is degraded (ingest-health.ts).
   */
  watchIngest(source: IngestSource | undefined): void {
    // What waits on the bus is as unseen as what waits in the gateway: for the twin, and for the
    // rules behind it (at full city load they fell minutes behind and raised tickets from old news).
    this.#ingest = source ? ingestSources(source, this.#onBus) : this.#onBus
    this.#twin?.watchIngest(this.#ingest)
  }

  /**
   * Tells `f` of the twin now (if loaded) and of each one loaded after it,
   * as it takes over, and of ingest's state after every sweep: what a
   * reader in another thread needs to stay as current as this one. Returns
   * the call that stops it.
   */
  follow(f: TwinFollower): () => void {
    this.#followers.add(f)
    if (this.#twin) f.loaded(this.#twin, this.ingest)
    return () => this.#followers.delete(f)
  }

  /** Ingest's state as the twin last judged it. */
  get ingest(): IngestHealth {
    return this.#twin?.ingestHealth ?? { degraded: false, since: null, reason: null, lagMs: 0, shedding: false, spells: 0 }
  }

  /** The twin's place on the bus: the rules follow it, so they see each element's effects on the live state. */
  get subscription(): Subscription {
    if (!this.#subscription) throw new Error('the twin has not started')
    return this.#subscription
  }

  async start(): Promise<void> {
    // Subscribed before the load, so nothing stored meanwhile is missed:
    // the bus holds those elements until the load is done.
    this.#subscription = this.#bus.subscribe('twin', (batch) => this.#take(batch), {
      // Too far behind: what the bus dropped is in the store.
      onGap: () => {
        this.#gaps++
        return this.#catchUpAfterGap()
      },
    })
    await this.rebuild()
    this.#timer = setInterval(() => this.#sweep(), this.#cfg.sweepIntervalMs)
    this.#timer.unref()
    this.#checkpointTimer = setInterval(() => void this.checkpoint(), this.#cfg.checkpointIntervalMs)
    this.#checkpointTimer.unref()
    this.#registryTimer = setInterval(() => void this.#followRegistry(), this.#cfg.registryRefreshMs)
    this.#registryTimer.unref()
  }

  /**
   * Devices and cameras provisioned since the twin loaded (added, moved, decommissioned):
   * it rebuilds from the store, which then holds them. A rare event, so a
   * rebuild, with its elements held on the bus meanwhile, rather than a
   * twin whose every column can grow and shrink.
   */
  async #followRegistry(): Promise<void> {
    if (this.#loading) return
    try {
      const mark = await registryLogMark(this.#client)
      if (mark === this.#registryMark) return
      log.info({ since: this.#registryMark, now: mark }, 'devices or cameras provisioned since the twin loaded: rebuilding it from the store')
      await this.rebuild()
      this.#registryRebuilds++
    } catch (e) {
      log.warn({ err: messageOf(e) }, 'could not follow the devices and cameras provisioned; tried again at the next look')
    }
  }

  /**
   * Writes the devices changed since the last checkpoint and the positions
   * the twin has applied (checkpoint.ts). Skipped while a load is under way,
   * and after a gap on the bus until a load has covered it: the twin then
   * lacks elements below the positions it has seen. A failed checkpoint
   * leaves its changes for the next.
   */
  async checkpoint(): Promise<void> {
    if (this.#checkpointing) return this.#checkpointing
    const twin = this.#twin
    if (!twin || this.#loading || this.#gapsCovered < this.#gaps) return
    const t0 = performance.now()
    const delta = this.#checkpoints.take()
    // The positions are taken now; the state is read over a few turns, and may be newer (checkpointRows says why that is safe).
    this.#checkpointing = checkpointRows(twin, delta).then((rows) => writeCheckpoint(this.#client, rows, delta.positions)).then(
      () => {
        this.#checkpointCounts.written++
        this.#checkpointCounts.lastDevices = delta.readings.size + delta.connectivity.size
        this.#checkpointCounts.lastMs = Math.round(performance.now() - t0)
      },
      (e: unknown) => {
        this.#checkpointCounts.failed++
        this.#checkpoints.giveBack(delta)
        log.warn({ err: messageOf(e) }, 'could not write the twin checkpoint; its changes go into the next one')
      },
    ).finally(() => {
      this.#checkpointing = undefined
    })
    return this.#checkpointing
  }

  /**
   * Reads the state from the store again (e.g. after the store was
   * restored). Elements that arrive meanwhile wait on the bus and go to the
   * new twin, not to the one being replaced.
   */
  async rebuild(): Promise<void> {
    return this.#holdingTheBus(() => this.#load())
  }

  /** Runs `fn` once no other load or catch-up is under way, holding the twin's elements on the bus until it is done. */
  async #holdingTheBus(fn: () => Promise<void>): Promise<void> {
    // Another load first, and a batch being applied in turns; their failures are their callers' to hear, not this one's.
    for (let busy = this.#loading ?? this.#applying.inProgress(); busy; busy = this.#loading ?? this.#applying.inProgress()) await busy.catch(() => undefined)
    this.#loading = fn().finally(() => {
      this.#loading = undefined
    })
    await this.#loading
  }

  /**
   * The bus dropped elements for the twin. It reads back from the store
   * what was stored after the positions it has applied, up to what the bus
   * has published (everything at or below that is stored), and applies it;
   * the bus's elements at or below those positions are then skipped. Open
   * tickets, which have no position, are read again. The cost is what was
   * lost, not the city: a full rebuild read every device's state and the
   * city model, and at full city took long enough for the bus to drop more
   * meanwhile. A twin too far behind (CATCH_UP_MAX_MS), or whose catch-up
   * fails, is rebuilt instead.
   */
  async #catchUpAfterGap(): Promise<void> {
    const upto = this.#bus.positions()
    const from = this.#checkpoints.positions
    const oldest = (Date.now() - CATCH_UP_MAX_MS) * 1000
    // An earlier gap not read back yet (its catch-up and rebuild failed, a retry waits) lies below `from`:
    // only a rebuild covers it. Marked covered by this catch-up, a checkpoint would lose it for good.
    const earlierUncovered = this.#gapsCovered < this.#gaps - 1 || this.#rebuildTimer !== undefined
    if (!this.#twin || earlierUncovered || STREAMS.some((s) => from[s] < upto[s] && from[s] < oldest)) return this.#rebuildAfterGap()
    try {
      await this.#holdingTheBus(() => this.#catchUp(from, upto))
    } catch (e) {
      log.warn({ err: messageOf(e), from, upto }, 'the twin could not read back from the store what the bus dropped; rebuilding it instead')
      return this.#rebuildAfterGap()
    }
  }

  async #catchUp(from: Positions, upto: Positions): Promise<void> {
    const t0 = performance.now()
    const gaps = this.#gaps
    let read = 0
    for await (const chunk of storedAfter(this.#client, { from, upto, maxPastMs: this.#maxPastMs ?? 86_400_000 })) {
      this.#apply(chunk)
      read += chunk.length
    }
    this.#twin?.syncTickets(await openTickets(this.#client))
    this.#checkpoints.advance(upto)
    this.#skipApplied = true
    this.#gapsCovered = gaps
    caughtUpTotal.inc(read)
    this.#caughtUp += read
    log.info({ read, from, upto, ms: Math.round(performance.now() - t0) }, 'the twin read back from the store what the bus dropped for it')
  }

  /**
   * The bus dropped elements for the twin: only the store has them now. A
   * load that fails (the store away) is tried again until one succeeds;
   * meanwhile the twin goes on with what it has and with what arrives.
   */
  async #rebuildAfterGap(): Promise<void> {
    // One retry at a time: a later gap's rebuild stands in for a retry that waits.
    clearTimeout(this.#rebuildTimer)
    this.#rebuildTimer = undefined
    try {
      await this.rebuild()
      this.#rebuildRetryMs = 1_000
    } catch (e) {
      log.error({ err: messageOf(e), retryMs: this.#rebuildRetryMs }, 'the twin lost elements on the bus and could not rebuild from the store; trying again')
      clearTimeout(this.#rebuildTimer)
      this.#rebuildTimer = setTimeout(() => void this.#rebuildAfterGap(), this.#rebuildRetryMs)
      this.#rebuildTimer.unref()
      this.#rebuildRetryMs = Math.min(this.#rebuildRetryMs * 2, 60_000)
    }
  }

  async #load(): Promise<void> {
    const t0 = performance.now()
    const previous = this.#twin?.ingestHealth
    const gaps = this.#gaps
    // The registry logs' position first: a device or camera provisioned while the city loads is looked at again, never missed.
    const registryMark = await registryLogMark(this.#client)
    // The twin's configuration is its silence policy (and a little more).
    const { twin, state } = await loadTwinState(this.#client, this.#cfg, this.#maxPastMs)
    this.#registryMark = registryMark
    // What was read from above the checkpoint goes into the next one.
    this.#checkpoints.note(state.sinceCheckpoint)
    this.#checkpoints.advance(state.positions)
    this.#skipApplied = false
    this.#gapsCovered = gaps
    twin.onStatusChange(this.#onStatus)
    twin.watchIngest(this.#ingest)
    if (previous) twin.adoptIngestHealth(previous)
    // A rebuild goes on listening since the first load: absent devices were not heard by this twin either.
    if (this.#twin) twin.listeningSince = this.#twin.listeningSince
    this.#twin = twin
    for (const f of this.#followers) f.loaded(twin, this.ingest)
    this.#loadMs = Math.round(performance.now() - t0)
    this.#loads++
    this.#loadedAt = Date.now()
    log.info({ ms: this.#loadMs, devices: twin.devices.length, cameras: twin.cameras.length, grids: twin.grids.length }, 'twin loaded from the store')
    this.#gauges()
  }

  async stop(deadline = Date.now() + 5_000): Promise<void> {
    // What is stored reaches the twin (and the rules after it) before they stop.
    await this.#subscription?.idle(deadline)
    this.#subscription?.close()
    clearInterval(this.#timer)
    clearInterval(this.#checkpointTimer)
    clearTimeout(this.#rebuildTimer)
    clearInterval(this.#registryTimer)
    // The last checkpoint, so the next start reads little after it.
    // The second writes what changed while a checkpoint already under way was writing.
    await Promise.race([this.checkpoint().then(() => this.checkpoint()), atDeadline(deadline)])
  }

  stats(): ComponentStats {
    const c = this.#checkpointCounts
    return {
      applied: this.#twin?.applied ?? 0, busPending: this.#subscription?.pending ?? 0, lagMs: this.#twin?.lagMs() ?? 0, loadMs: this.#loadMs, loadedAt: this.#loadedAt, ingestDegraded: this.ingest.degraded,
      checkpoints: c.written, checkpointFailures: c.failed, checkpointLastDevices: c.lastDevices, checkpointLastMs: c.lastMs, checkpointPending: this.#checkpoints.pending,
      rebuilds: Math.max(0, this.#loads - 1), registryRebuilds: this.#registryRebuilds, caughtUp: this.#caughtUp,
      ...(this.#twin ? { parts: this.#parts(this.#twin) } : {}),
    }
  }

  #parts(twin: Twin): ComponentStats {
    const s = twin.stats()
    return { index: s.index, live: s.live, rollups: s.rollups }
  }

  #take(batch: readonly Element[]): Promise<void> | void {
    // Whether the load succeeds or not, the batch is applied (to the new twin, or to the old one that stays).
    if (this.#loading) return this.#loading.then(() => this.#applyInTurns(batch), () => this.#applyInTurns(batch))
    return this.#applyInTurns(batch)
  }

  /**
   * A batch from the bus, a slice at a time (lib/bus/turns.ts): a stored
   * write at full city is thousands of elements. Its positions are noted
   * once all of it is applied, so a checkpoint taken between two slices
   * holds the positions from before it (and state that may be newer, which
   * is harmless: see checkpoint.ts).
   */
  #applyInTurns(batch: readonly Element[]): Promise<void> | void {
    if (this.#skipApplied) batch = this.#notApplied(batch)
    // A load or catch-up waits for it (#holdingTheBus): a batch goes whole to one twin.
    return this.#applying.run(batch, this.#bus.turnMs, (slice) => this.#twin?.apply(slice), () => this.#noteApplied(batch))
  }

  /** A batch read back from the store, in one go (a catch-up holds the bus meanwhile). */
  #apply(batch: readonly Element[]): void {
    if (this.#skipApplied) batch = this.#notApplied(batch)
    this.#twin?.apply(batch)
    this.#noteApplied(batch)
  }

  #noteApplied(batch: readonly Element[]): void {
    this.#checkpoints.note(batch)
    elementsTotal.inc(batch.length)
  }

  /**
   * The batch less what a catch-up applied already. The bus brings each
   * stream in position order, so once a batch has nothing at or below the
   * positions applied, nothing later has either: no more filtering.
   */
  #notApplied(batch: readonly Element[]): readonly Element[] {
    const applied = this.#checkpoints.positions
    const out = batch.filter((e) => !isCovered(e, applied))
    if (out.length === batch.length && batch.some((e) => placeOf(e) !== undefined)) this.#skipApplied = false
    return out
  }

  #sweep(): void {
    this.#twin?.sweep(Date.now(), (h) => {
      if (h.degraded) {
        degradedTotal.inc()
        log.warn({ reason: h.reason, lagMs: h.lagMs, shedding: h.shedding }, 'ingest degraded: no device is judged silent until it recovers')
      } else {
        log.info({ lagMs: h.lagMs }, 'ingest recovered: silence is judged again')
      }
      void this.#recordIngest(h)
    })
    if (this.#twin) for (const f of this.#followers) f.swept(this.ingest)
    this.#gauges()
  }

  /** Each turn of ingest's state, kept in the store's events (source 'system'), for the day's record and audits. */
  async #recordIngest(h: IngestHealth): Promise<void> {
    const row = {
      ts: Date.now(), source: 'system', source_id: 'ingest', kind: h.degraded ? 'ingest_degraded' : 'ingest_recovered', severity: h.degraded ? 'warning' : 'info',
      attributes: JSON.stringify({ reason: h.reason, lagMs: h.lagMs, shedding: h.shedding, spells: h.spells }),
    }
    try {
      await this.#client.insert({ table: 'events', values: [row], format: 'JSONEachRow' })
    } catch (e) {
      // The alarm itself (metric, API, banner, log) stands; only its record is missing.
      log.error({ err: messageOf(e), kind: row.kind }, 'could not store the ingest state change in events')
    }
  }

  #gauges(): void {
    const c = this.#twin?.counts(0)
    if (!c) return
    degradedGauge.set(this.ingest.degraded ? 1 : 0)
    for (const s of ['unknown', 'online', 'silent', 'offline'] as const) devicesGauge.set({ status: s }, c.devices[s])
    lagGauge.set((this.#twin?.lagMs() ?? 0) / 1000)
  }
}
