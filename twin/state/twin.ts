// The live twin: every device, camera and grid of the city as it is now.
//
// Three parts, each with one job: the city index (city-index.ts: where
// everything stands, fixed for a loaded city), the live state
// (live-state.ts: what each device and camera is doing, through the pure
// reducer of device.ts) and the grid roll-ups (grid-rollups.ts: counts and
// health per grid, moved by one when a status changes, never a rescan).
// This class puts them together with what judges time: the lag of the
// readings (lag.ts), the watermark silence is judged at, and whether ingest
// is degraded (ingest-health.ts). What changed is remembered until the live
// feed collects it.
import type { Element, TicketElement } from '../../lib/bus/elements.ts'
import type { IngestSource } from '../../lib/bus/bus.ts'
import { CityIndex, type Placement, type TwinCity, type TwinGrid } from './city-index.ts'
import type { DeviceLive, DeviceStatus, SilencePolicy } from './device.ts'
import { GridRollups, type CameraState, type GridCounts } from './grid-rollups.ts'
import { IngestHealthMonitor, type IngestHealth } from './ingest-health.ts'
import { IngestLag } from './lag.ts'
import { LiveState, type LiveColumns, type StatusListener } from './live-state.ts'

export { boxesOverlap, CITY_ID, inBox, pointInRing, ringBounds, type BBox, type Placed, type TwinCamera, type TwinCity, type TwinDevice, type TwinGrid } from './city-index.ts'
export { CAMERA_STATUSES, type CameraState, type GridCounts } from './grid-rollups.ts'
export type { StatusListener } from './live-state.ts'

export interface GridChange {
  id: number
  counts: GridCounts
}

/**
 * What another thread needs to read a twin as it changes (twin/api/front):
 * the city (copied once, when the message carries it), and where each
 * device and camera counts, the live columns and grid counts (shared
 * memory, never copied).
 */
export interface TwinShare {
  city: TwinCity
  policy: SilencePolicy
  placement: Placement
  columns: LiveColumns
  counts: Int32Array
}

export interface Changes {
  devices: number[]
  cameras: number[]
  grids: number[]
}

export class Twin {
  readonly policy: SilencePolicy
  /** Where everything stands. */
  readonly index: CityIndex
  /** What each device and camera is doing. */
  readonly live: LiveState
  /** Counts and health per grid. */
  readonly rollups: GridRollups
  readonly grids: readonly TwinGrid[]
  #applied = 0
  readonly #lag: IngestLag
  readonly #health: IngestHealthMonitor
  #ingest: IngestSource | undefined

  /**
   * Since when this twin has been listening (ms): a device absent since
   * before it counts as absent "lately" (for the degraded share) only from
   * here. After a stop the whole city was last heard long ago, and the
   * reconnect storm that follows a restart is the system's, not the devices'.
   */
  listeningSince = Date.now()

  /**
   * A twin of `city`, every device and camera unknown; or, with `shared`
   * (another twin's `share()`), a reader of that twin's state as it changes,
   * which must then only be read: its writes would not reach the writer's
   * change lists, lag or ingest state.
   */
  constructor(city: TwinCity, policy: SilencePolicy, shared?: Pick<TwinShare, 'placement' | 'columns' | 'counts'>) {
    this.#lag = new IngestLag({ maxMs: policy.maxLagMs ?? 0 })
    const degradedAfterMs = policy.degradedAfterMs ?? 0
    this.#health = new IngestHealthMonitor({
      degradedAfterMs, silentPercent: policy.degradedSilentPercent ?? 0, silentMin: policy.degradedSilentMin ?? 1, recoverAfterMs: degradedAfterMs / 2,
    })
    this.policy = policy
    this.index = new CityIndex(city, shared?.placement)
    this.grids = this.index.grids
    this.rollups = new GridRollups(this.index.rows, shared?.counts)
    this.live = new LiveState(this.index, this.rollups, policy, shared?.columns)
    // A new twin's counts are its start, not a change.
    this.rollups.drainChanged()
  }

  /** What a reader in another thread is made from (TwinShare). */
  share(): TwinShare {
    return { city: { grids: this.index.grids, devices: this.index.devices, cameras: this.index.cameras }, policy: this.policy, placement: this.index.placement, columns: this.live.columns, counts: this.rollups.shared }
  }

  get devices(): CityIndex['devices'] {
    return this.index.devices
  }

  get cameras(): CityIndex['cameras'] {
    return this.index.cameras
  }

  /** Elements applied so far. */
  get applied(): number {
    return this.#applied
  }

  /**
   * Applies a batch of elements (from the bus) arriving at `now`. Statuses
   * are judged at the watermark: a reading that arrives late does not make
   * its own device silent on arrival. `restore` is for the state read back
   * at start-up, whose readings are old by nature and are not lag.
   */
  apply(batch: readonly Element[], now = Date.now(), restore = false): void {
    if (!restore) this.#lag.observe(batch, now)
    const at = this.watermark(now)
    for (const e of batch) this.#applyOne(e, at)
    this.#applied += batch.length
  }

  #applyOne(e: Element, now: number): void {
    switch (e.kind) {
      case 'reading':
      case 'connectivity':
      case 'device-event': {
        const i = this.index.deviceIndex(e.deviceId)
        if (i !== undefined) this.live.applyDevice(i, e, now)
        return
      }
      case 'camera-status': {
        const i = this.index.cameraIndex(e.cameraId)
        if (i !== undefined) this.live.applyCamera(i, e.status, e.ts)
        return
      }
      case 'ticket':
        return this.live.applyTicket(e)
      case 'camera-event':
        // Frames say what the camera sees, not whether it is reachable: the
        // camera gateway reports that as camera-status. The rules read these.
        return
    }
  }

  /**
   * Where ingest says how it is doing (undefined: nowhere): its backlog
   * counts in the lag (lag.ts), and with whether it sheds, decides whether
   * ingest is degraded (ingest-health.ts).
   */
  watchIngest(source: IngestSource | undefined): void {
    this.#ingest = source
    this.#lag.watchBacklog(source && ((now) => source.backlogMs(now)))
  }

  /** Whether ingest is degraded, as last judged by sweep() (see ingest-health.ts). */
  get ingestHealth(): IngestHealth {
    return this.#health.state
  }

  /** Goes on with another twin's ingest state (this one rebuilt in its place). */
  adoptIngestHealth(h: IngestHealth): void {
    this.#health.restore(h)
  }

  /** How far behind the clock the readings reaching the twin are, in ms (see lag.ts). */
  lagMs(now = Date.now()): number {
    return this.#lag.at(now)
  }

  /** The time up to which the twin's data is complete: the clock less the lag. Silence is judged here, by the twin and the rules. */
  watermark(now = Date.now()): number {
    return now - this.#lag.at(now)
  }

  /**
   * Moves devices that have gone quiet for too long from online to silent,
   * judged at the watermark (now less the lag of late readings), not the
   * clock; and none at all while ingest is degraded (ingest-health.ts).
   * Call about once a second; `onIngest` hears when ingest turns degraded
   * or recovers.
   */
  sweep(clock = Date.now(), onIngest?: (h: IngestHealth) => void): number {
    // The share of overdue devices is taken whether or not silence is
    // judged, so a degraded spell ends when the devices are heard again,
    // not when the twin stops looking.
    const window = this.policy.degradedSilentPercent ? (this.policy.degradedSilentWindowMs ?? 600_000) : -1
    const scan = this.live.scanSilence(this.watermark(clock), window, this.listeningSince)
    const signals = { lagMs: this.#lag.backlog(clock), shedding: this.#ingest?.shedding() ?? false, ...(window < 0 ? {} : { silent: { overdue: scan.overdue, of: scan.lately } }) }
    if (this.#health.update(signals, clock)) onIngest?.(this.#health.state)
    if (this.#health.state.degraded) return 0
    this.live.silence(scan.due)
    return scan.due.length
  }

  /** What changed since the last call: device and camera indexes, grid ids. */
  drainChanges(): Changes {
    const { devices, cameras } = this.live.drainChanged()
    return { devices, cameras, grids: this.rollups.drainChanged().map((r) => this.index.gridIdOfRow(r)) }
  }

  // --- reading the state: the parts' own answers, for the API and the rules ---

  deviceIndex(id: string): number | undefined {
    return this.index.deviceIndex(id)
  }

  cameraIndex(id: string): number | undefined {
    return this.index.cameraIndex(id)
  }

  hasGrid(id: number): boolean {
    return this.index.hasGrid(id)
  }

  grid(id: number): TwinGrid | undefined {
    return this.index.grid(id)
  }

  children(id: number): readonly number[] {
    return this.index.children(id)
  }

  devicesIn(id: number): number[] {
    return this.index.devicesIn(id)
  }

  camerasIn(id: number): number[] {
    return this.index.camerasIn(id)
  }

  /** A page of devicesIn and its total, without listing them all. */
  devicesPage(id: number, from: number, limit: number): { items: number[]; total: number } {
    return this.index.devicesPage(id, from, limit)
  }

  camerasPage(id: number, from: number, limit: number): { items: number[]; total: number } {
    return this.index.camerasPage(id, from, limit)
  }

  deviceMetrics(i: number): readonly string[] {
    return this.index.deviceMetrics(i)
  }

  deviceSpecials(i: number): number[] {
    return this.index.deviceSpecials(i)
  }

  cameraSpecials(i: number): number[] {
    return this.index.cameraSpecials(i)
  }

  deviceStatus(i: number): DeviceStatus {
    return this.live.deviceStatus(i)
  }

  cameraStatus(i: number): CameraState {
    return this.live.cameraStatus(i)
  }

  deviceLive(i: number): DeviceLive {
    return this.live.deviceLive(i)
  }

  deviceLastActivity(i: number): number {
    return this.live.deviceLastActivity(i)
  }

  deviceOpenTickets(i: number): number {
    return this.live.deviceOpenTickets(i)
  }

  cameraLastSeen(i: number): number {
    return this.live.cameraLastSeen(i)
  }

  /** The counts and health of a grid (CITY_ID for the whole city). */
  counts(id: number): GridCounts | undefined {
    const row = this.index.gridRow(id)
    return row === undefined ? undefined : this.rollups.counts(row)
  }

  /** Calls `fn` on every device status change (LiveState.onStatusChange). */
  onStatusChange(fn: StatusListener | undefined): void {
    this.live.onStatusChange(fn)
  }

  /** Sets the open tickets to those in the store (LiveState.syncTickets). */
  syncTickets(open: readonly TicketElement[]): void {
    this.live.syncTickets(open)
  }

  /** What each part holds, and what the twin has applied: `LiveTwin.stats()` carries it to `/api/health`. */
  stats(): { applied: number; lagMs: number; degraded: boolean; index: ReturnType<CityIndex['stats']>; live: ReturnType<LiveState['stats']>; rollups: ReturnType<GridRollups['stats']> } {
    return { applied: this.#applied, lagMs: this.lagMs(), degraded: this.#health.state.degraded, index: this.index.stats(), live: this.live.stats(), rollups: this.rollups.stats() }
  }
}
