// The live twin: every device, camera and grid of the city as it is now.
//
// Devices and cameras are kept column-wise in typed arrays (the full city is
// 349,300 of them); each element is reduced on its device's record by the
// pure reducer in device.ts, and when a status changes, the counts of every
// grid above it (micro-grid, community, street, district, city, and the
// special grids it stands in) move by one: roll-ups are incremental, never
// a rescan. What changed is remembered until the live feed collects it.
import { SEVERITIES, type CameraStatus, type Element, type Severity, type TicketElement } from '../../lib/bus/elements.ts'
import { DEVICE_TYPE_BY_NAME, type DeviceType } from '../../registry/device-types.ts'
import type { GridLevel } from '../../registry/city.ts'
import { DEVICE_STATUSES, deviceStatus, reduceDevice, type DeviceElement, type DeviceLive, type DeviceStatus, type SilencePolicy } from './device.ts'
import { healthScore } from './health.ts'
import type { IngestSource } from '../../lib/bus/bus.ts'
import { IngestHealthMonitor, type IngestHealth } from './ingest-health.ts'
import { IngestLag } from './lag.ts'
import { insideRing } from '../../registry/geometry.ts'

export const CAMERA_STATUSES = ['unknown', 'ok', 'offline', 'degraded'] as const
export type CameraState = (typeof CAMERA_STATUSES)[number]

export interface TwinGrid {
  id: number
  level: GridLevel
  code: string
  name: string
  parentId: number
  districtId: number
  streetId: number
  communityId: number
  kind: string
  centroid: readonly [number, number]
  ring: readonly (readonly [number, number])[]
}

/** Where a device or camera stands: its grids at every level and its position. */
export interface Placed {
  microGridId: number
  communityId: number
  streetId: number
  districtId: number
  lon: number
  lat: number
}

export interface TwinDevice extends Placed {
  id: string
  type: DeviceType
  intervalS: number
}

export interface TwinCamera extends Placed {
  id: string
  kind: string
}

export type BBox = readonly [number, number, number, number]

/** Whether a point lies in a [minLon, minLat, maxLon, maxLat] box. */
export const inBox = (lon: number, lat: number, b: BBox): boolean => lon >= b[0] && lon <= b[2] && lat >= b[1] && lat <= b[3]

/** Whether two boxes share any point. */
export const boxesOverlap = (a: BBox, b: BBox): boolean => a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3]

/** The bounding box of a ring. */
export function ringBounds(ring: readonly (readonly [number, number])[]): BBox {
  let w = Infinity
  let s = Infinity
  let e = -Infinity
  let n = -Infinity
  for (const [lon, lat] of ring) {
    if (lon < w) w = lon
    if (lat < s) s = lat
    if (lon > e) e = lon
    if (lat > n) n = lat
  }
  return [w, s, e, n]
}

export interface TwinCity {
  grids: readonly TwinGrid[]
  devices: readonly TwinDevice[]
  cameras: readonly TwinCamera[]
}

/** The counts kept per grid, in this order. */
const F_DEV = 0 // 4 device statuses
const F_CAM = 4 // 4 camera states
const F_TKT = 8 // 3 ticket severities
const FIELDS = 11

export interface GridCounts {
  devices: Record<DeviceStatus, number> & { total: number }
  cameras: Record<CameraState, number> & { total: number }
  tickets: Record<Severity, number> & { total: number }
  health: number
}

export interface GridChange {
  id: number
  counts: GridCounts
}

export interface Changes {
  devices: number[]
  cameras: number[]
  grids: number[]
}

/** A device's status moved from `from` to `to`; it was last heard from at `lastActivity` (ms). */
export type StatusListener = (device: number, from: DeviceStatus, to: DeviceStatus, lastActivity: number) => void

/** The row of the whole city in the grid counters; grid ids start at 1. */
export const CITY_ID = 0

interface OpenTicket {
  severity: number
  rows: Int32Array
  device: number
}

/** Ray casting; rings are closed (first point repeated). The registry's test, in the twin's argument order. */
export function pointInRing(lon: number, lat: number, ring: readonly (readonly [number, number])[]): boolean {
  return insideRing([lon, lat], ring)
}

export class Twin {
  readonly policy: SilencePolicy
  readonly grids: readonly TwinGrid[]
  readonly devices: readonly TwinDevice[]
  readonly cameras: readonly TwinCamera[]
  /** Grid id -> row in `counts`; the city is the last row. */
  readonly #gridRow = new Map<number, number>()
  readonly #cityRow: number
  readonly #counts: Int32Array
  readonly #children = new Map<number, number[]>()
  readonly #deviceIndex = new Map<string, number>()
  readonly #cameraIndex = new Map<string, number>()
  /** Per device and camera: the grid rows its state counts in. */
  readonly #deviceRows: Int32Array[]
  readonly #cameraRows: Int32Array[]
  readonly #devicesByMicro = new Map<number, number[]>()
  readonly #camerasByMicro = new Map<number, number[]>()
  // Device columns.
  readonly #status: Uint8Array
  readonly #connected: Uint8Array
  readonly #lastActivity: Float64Array
  readonly #intervalMs: Float64Array
  readonly #valueOffset: Uint32Array
  readonly #values: Float64Array
  readonly #times: Float64Array
  readonly #metrics: (readonly string[])[]
  readonly #deviceTickets: Uint16Array
  // Camera columns.
  readonly #cameraStatus: Uint8Array
  readonly #cameraSeen: Float64Array
  readonly #tickets = new Map<string, OpenTicket>()
  #onStatus: StatusListener | undefined
  #dirtyDevices = new Set<number>()
  #dirtyCameras = new Set<number>()
  #dirtyGrids = new Set<number>()
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

  constructor(city: TwinCity, policy: SilencePolicy) {
    this.#lag = new IngestLag({ maxMs: policy.maxLagMs ?? 0 })
    const degradedAfterMs = policy.degradedAfterMs ?? 0
    this.#health = new IngestHealthMonitor({
      degradedAfterMs, silentPercent: policy.degradedSilentPercent ?? 0, silentMin: policy.degradedSilentMin ?? 1, recoverAfterMs: degradedAfterMs / 2,
    })
    this.policy = policy
    this.grids = city.grids
    this.devices = city.devices
    this.cameras = city.cameras
    city.grids.forEach((g, i) => {
      this.#gridRow.set(g.id, i)
      if (g.level !== 'special' && g.parentId !== 0) {
        const list = this.#children.get(g.parentId) ?? []
        list.push(g.id)
        this.#children.set(g.parentId, list)
      }
    })
    this.#cityRow = city.grids.length
    this.#children.set(CITY_ID, city.grids.filter((g) => g.level === 'district').map((g) => g.id))
    this.#counts = new Int32Array((city.grids.length + 1) * FIELDS)

    // Special grids: which ones each point stands in, through a coarse cell index of their bounding boxes.
    const CELL = 0.02
    const cellKey = (lon: number, lat: number): number => Math.floor(lon / CELL) * 100_000 + Math.floor(lat / CELL)
    const cells = new Map<number, TwinGrid[]>()
    for (const g of city.grids) {
      if (g.level !== 'special') continue
      const lons = g.ring.map((p) => p[0])
      const lats = g.ring.map((p) => p[1])
      for (let x = Math.floor(Math.min(...lons) / CELL); x <= Math.floor(Math.max(...lons) / CELL); x++) {
        for (let y = Math.floor(Math.min(...lats) / CELL); y <= Math.floor(Math.max(...lats) / CELL); y++) {
          const k = x * 100_000 + y
          const list = cells.get(k) ?? []
          list.push(g)
          cells.set(k, list)
        }
      }
    }
    const rowsOf = (p: Placed): Int32Array => {
      const specials = (cells.get(cellKey(p.lon, p.lat)) ?? []).filter((g) => pointInRing(p.lon, p.lat, g.ring))
      const rows = [p.microGridId, p.communityId, p.streetId, p.districtId, ...specials.map((g) => g.id)]
        .map((id) => this.#gridRow.get(id))
        .filter((r): r is number => r !== undefined)
      rows.push(this.#cityRow)
      return Int32Array.from(new Set(rows))
    }

    const n = city.devices.length
    this.#status = new Uint8Array(n)
    this.#connected = new Uint8Array(n)
    this.#lastActivity = new Float64Array(n)
    this.#intervalMs = new Float64Array(n)
    this.#valueOffset = new Uint32Array(n + 1)
    this.#metrics = []
    this.#deviceTickets = new Uint16Array(n)
    this.#deviceRows = []
    let offset = 0
    city.devices.forEach((d, i) => {
      this.#deviceIndex.set(d.id, i)
      this.#intervalMs[i] = d.intervalS * 1000
      const metrics = DEVICE_TYPE_BY_NAME.get(d.type)?.metrics.map((m) => m.name) ?? []
      this.#metrics.push(metrics)
      this.#valueOffset[i] = offset
      offset += metrics.length
      const rows = rowsOf(d)
      this.#deviceRows.push(rows)
      for (const r of rows) this.#bump(r, F_DEV + DEVICE_STATUSES.indexOf('unknown'), 1) // every device starts unknown
      const list = this.#devicesByMicro.get(d.microGridId) ?? []
      list.push(i)
      this.#devicesByMicro.set(d.microGridId, list)
    })
    this.#valueOffset[n] = offset
    this.#values = new Float64Array(offset).fill(Number.NaN)
    this.#times = new Float64Array(offset).fill(Number.NaN)

    const c = city.cameras.length
    this.#cameraStatus = new Uint8Array(c)
    this.#cameraSeen = new Float64Array(c)
    this.#cameraRows = []
    city.cameras.forEach((cam, i) => {
      this.#cameraIndex.set(cam.id, i)
      const rows = rowsOf(cam)
      this.#cameraRows.push(rows)
      for (const r of rows) this.#bump(r, F_CAM + CAMERA_STATUSES.indexOf('unknown'), 1)
      const list = this.#camerasByMicro.get(cam.microGridId) ?? []
      list.push(i)
      this.#camerasByMicro.set(cam.microGridId, list)
    })
    this.#dirtyGrids.clear()
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
    const now = this.watermark(clock)
    const online = DEVICE_STATUSES.indexOf('online')
    const silent = DEVICE_STATUSES.indexOf('silent')
    const offline = DEVICE_STATUSES.indexOf('offline')
    const k = this.policy.silentAfterIntervals
    // One pass finds the devices to move and counts, of the devices heard
    // from lately (online, or silent or disconnected for at most the policy's
    // window, counted from when this twin began to listen at the earliest),
    // those overdue now. The count is taken whether or not silence is judged, so a
    // degraded spell ends when the devices are heard again, not when the
    // twin stops looking.
    const window = this.policy.degradedSilentPercent ? (this.policy.degradedSilentWindowMs ?? 600_000) : -1
    const due: number[] = []
    let overdue = 0
    let lately = 0
    for (let i = 0; i < this.#status.length; i++) {
      const st = this.#status[i]
      // Disconnected devices count in the share too: the rules take them as absent, and a tenth of the
      // city disconnected at once (a reconnect storm, a gateway down) is the system, not the devices.
      if (st !== online && st !== silent && st !== offline) continue
      const quiet = now - (this.#lastActivity[i] ?? 0)
      const limit = k * (this.#intervalMs[i] ?? 0)
      if (quiet > limit && st === online) due.push(i)
      if (window < 0 || now - Math.max(this.#lastActivity[i] ?? 0, this.listeningSince) > limit + window) continue
      lately++
      if (quiet > limit) overdue++
    }
    const signals = { lagMs: this.#lag.backlog(clock), shedding: this.#ingest?.shedding() ?? false, ...(window < 0 ? {} : { silent: { overdue, of: lately } }) }
    if (this.#health.update(signals, clock)) onIngest?.(this.#health.state)
    if (this.#health.state.degraded) return 0
    for (const i of due) this.#setDeviceStatus(i, silent)
    return due.length
  }

  /** What changed since the last call: device and camera indexes, grid ids. */
  drainChanges(): Changes {
    const out: Changes = {
      devices: [...this.#dirtyDevices],
      cameras: [...this.#dirtyCameras],
      grids: [...this.#dirtyGrids].map((r) => (r === this.#cityRow ? CITY_ID : (this.grids[r]?.id ?? -1))),
    }
    this.#dirtyDevices = new Set()
    this.#dirtyCameras = new Set()
    this.#dirtyGrids = new Set()
    return out
  }

  // --- reading the state -------------------------------------------------

  deviceIndex(id: string): number | undefined {
    return this.#deviceIndex.get(id)
  }

  cameraIndex(id: string): number | undefined {
    return this.#cameraIndex.get(id)
  }

  hasGrid(id: number): boolean {
    return id === CITY_ID || this.#gridRow.has(id)
  }

  grid(id: number): TwinGrid | undefined {
    const r = this.#gridRow.get(id)
    return r === undefined ? undefined : this.grids[r]
  }

  deviceStatus(i: number): DeviceStatus {
    return DEVICE_STATUSES[this.#status[i] ?? 0] ?? 'unknown'
  }

  cameraStatus(i: number): CameraState {
    return CAMERA_STATUSES[this.#cameraStatus[i] ?? 0] ?? 'unknown'
  }

  /** A device's live record (a copy). */
  deviceLive(i: number): DeviceLive {
    const v = this.#view(i)
    return { ...v, values: v.values.slice(), times: v.times.slice() }
  }

  /** Latest reading, connect or event of a device, in ms; 0 when never. */
  deviceLastActivity(i: number): number {
    return this.#lastActivity[i] ?? 0
  }

  /** A device's record over the columns, without copying them (the reducer copies before it changes anything). */
  #view(i: number): DeviceLive {
    const from = this.#valueOffset[i] ?? 0
    const to = this.#valueOffset[i + 1] ?? from
    return {
      status: this.deviceStatus(i),
      connected: this.#connected[i] === 1,
      lastActivity: this.#lastActivity[i] ?? 0,
      values: this.#values.subarray(from, to),
      times: this.#times.subarray(from, to),
    }
  }

  deviceMetrics(i: number): readonly string[] {
    return this.#metrics[i] ?? []
  }

  deviceOpenTickets(i: number): number {
    return this.#deviceTickets[i] ?? 0
  }

  cameraLastSeen(i: number): number {
    return this.#cameraSeen[i] ?? 0
  }

  /** The special grids a device stands in. */
  deviceSpecials(i: number): number[] {
    return this.#specials(this.#deviceRows[i])
  }

  /** The special grids a camera stands in. */
  cameraSpecials(i: number): number[] {
    return this.#specials(this.#cameraRows[i])
  }

  #specials(rows: Int32Array | undefined): number[] {
    const out: number[] = []
    for (const r of rows ?? []) {
      const g = this.grids[r]
      if (g?.level === 'special') out.push(g.id)
    }
    return out
  }

  /** The counts and health of a grid (CITY_ID for the whole city). */
  counts(id: number): GridCounts | undefined {
    const row = id === CITY_ID ? this.#cityRow : this.#gridRow.get(id)
    if (row === undefined) return undefined
    const at = (f: number): number => this.#counts[row * FIELDS + f] ?? 0
    const devices = { unknown: at(F_DEV), online: at(F_DEV + 1), silent: at(F_DEV + 2), offline: at(F_DEV + 3), total: 0 }
    devices.total = devices.unknown + devices.online + devices.silent + devices.offline
    const cameras = { unknown: at(F_CAM), ok: at(F_CAM + 1), offline: at(F_CAM + 2), degraded: at(F_CAM + 3), total: 0 }
    cameras.total = cameras.unknown + cameras.ok + cameras.offline + cameras.degraded
    const tickets = { info: at(F_TKT), warning: at(F_TKT + 1), critical: at(F_TKT + 2), total: 0 }
    tickets.total = tickets.info + tickets.warning + tickets.critical
    return { devices, cameras, tickets, health: healthScore({ devices, cameras, tickets }) }
  }

  /** Child grid ids (districts for the city; specials have none). */
  children(id: number): readonly number[] {
    return this.#children.get(id) ?? []
  }

  /** Device indexes in a grid at any level (specials by location), in a stable order. */
  devicesIn(id: number): number[] {
    return this.#membersIn(id, this.#devicesByMicro, (i) => this.#deviceRows[i])
  }

  camerasIn(id: number): number[] {
    return this.#membersIn(id, this.#camerasByMicro, (i) => this.#cameraRows[i])
  }

  #membersIn(id: number, byMicro: Map<number, number[]>, rowsOf: (i: number) => Int32Array | undefined): number[] {
    const g = this.grid(id)
    if (id === CITY_ID) return [...byMicro.values()].flat()
    if (!g) return []
    if (g.level === 'micro') return byMicro.get(id) ?? []
    if (g.level === 'special') {
      const row = this.#gridRow.get(id) ?? -1
      const inside: number[] = []
      for (const [, members] of byMicro) for (const i of members) if (rowsOf(i)?.includes(row)) inside.push(i)
      return inside
    }
    return this.children(id).flatMap((c) => this.#membersIn(c, byMicro, rowsOf))
  }

  // --- changing the state ------------------------------------------------

  #applyOne(e: Element, now: number): void {
    switch (e.kind) {
      case 'reading':
      case 'connectivity':
      case 'device-event':
        return this.#applyDevice(e, now)
      case 'camera-status':
        return this.#applyCamera(e.cameraId, e.status, e.ts)
      case 'ticket':
        return this.#applyTicket(e)
      case 'camera-event':
        // Frames say what the camera sees, not whether it is reachable: the
        // camera gateway reports that as camera-status. The rules read these.
        return
    }
  }

  #applyDevice(e: DeviceElement, now: number): void {
    const i = this.#deviceIndex.get(e.deviceId)
    if (i === undefined) return
    const prev = this.#view(i)
    const next = reduceDevice(prev, e, this.#metrics[i] ?? [], this.#intervalMs[i] ?? 0, this.policy, now)
    if (next.values !== prev.values) {
      const from = this.#valueOffset[i] ?? 0
      this.#values.set(next.values, from)
      this.#times.set(next.times, from)
    }
    this.#connected[i] = next.connected ? 1 : 0
    this.#lastActivity[i] = next.lastActivity
    this.#dirtyDevices.add(i)
    const status = DEVICE_STATUSES.indexOf(next.status)
    if (status !== this.#status[i]) this.#setDeviceStatus(i, status)
  }

  /**
   * Calls `fn` on every device status change, as it happens (the rules
   * watch silences through it). One listener; a second call replaces it.
   */
  onStatusChange(fn: StatusListener | undefined): void {
    this.#onStatus = fn
  }

  #setDeviceStatus(i: number, status: number): void {
    const prev = this.#status[i] ?? 0
    this.#status[i] = status
    this.#onStatus?.(i, DEVICE_STATUSES[prev] ?? 'unknown', DEVICE_STATUSES[status] ?? 'unknown', this.#lastActivity[i] ?? 0)
    this.#dirtyDevices.add(i)
    for (const r of this.#deviceRows[i] ?? []) {
      this.#bump(r, F_DEV + prev, -1)
      this.#bump(r, F_DEV + status, 1)
    }
  }

  #applyCamera(id: string, status: CameraStatus, ts: number): void {
    const i = this.#cameraIndex.get(id)
    if (i === undefined || ts < (this.#cameraSeen[i] ?? 0)) return
    this.#cameraSeen[i] = ts
    const next = CAMERA_STATUSES.indexOf(status)
    const prev = this.#cameraStatus[i] ?? 0
    this.#dirtyCameras.add(i)
    if (next === prev) return
    this.#cameraStatus[i] = next
    for (const r of this.#cameraRows[i] ?? []) {
      this.#bump(r, F_CAM + prev, -1)
      this.#bump(r, F_CAM + next, 1)
    }
  }

  /**
   * Sets the open tickets to `open` (from the store), closing those the twin
   * holds that are not in it: after the bus lost elements for the twin, the
   * ticket changes among them are known only to the store.
   */
  syncTickets(open: readonly TicketElement[]): void {
    const still = new Set(open.map((t) => t.ticketId))
    for (const ticketId of [...this.#tickets.keys()]) {
      if (!still.has(ticketId)) this.#applyTicket({ kind: 'ticket', ticketId, ts: 0, open: false, severity: 'info' })
    }
    for (const t of open) this.#applyTicket(t)
  }

  #applyTicket(e: TicketElement): void {
    const known = this.#tickets.get(e.ticketId)
    if (known) {
      for (const r of known.rows) this.#bump(r, F_TKT + known.severity, -1)
      if (known.device >= 0) {
        this.#deviceTickets[known.device] = Math.max(0, (this.#deviceTickets[known.device] ?? 0) - 1)
        this.#dirtyDevices.add(known.device)
      }
      this.#tickets.delete(e.ticketId)
    }
    if (!e.open) return
    const device = e.deviceId === undefined ? -1 : (this.#deviceIndex.get(e.deviceId) ?? -1)
    const camera = e.cameraId === undefined ? -1 : (this.#cameraIndex.get(e.cameraId) ?? -1)
    let rows: Int32Array | undefined
    if (device >= 0) rows = this.#deviceRows[device]
    else if (camera >= 0) rows = this.#cameraRows[camera]
    else if (e.gridId !== undefined) rows = this.#gridChain(e.gridId)
    if (!rows) return
    const severity = SEVERITIES.indexOf(e.severity)
    this.#tickets.set(e.ticketId, { severity, rows, device })
    for (const r of rows) this.#bump(r, F_TKT + severity, 1)
    if (device >= 0) {
      this.#deviceTickets[device] = (this.#deviceTickets[device] ?? 0) + 1
      this.#dirtyDevices.add(device)
    }
  }

  /** A grid's row and those of the grids above it, up to the city. */
  #gridChain(id: number): Int32Array {
    const rows: number[] = []
    let g = this.grid(id)
    while (g) {
      const r = this.#gridRow.get(g.id)
      if (r !== undefined) rows.push(r)
      g = g.level === 'special' || g.parentId === 0 ? undefined : this.grid(g.parentId)
    }
    rows.push(this.#cityRow)
    return Int32Array.from(rows)
  }

  #bump(row: number, field: number, by: number): void {
    if (by === 0) return
    const k = row * FIELDS + field
    this.#counts[k] = (this.#counts[k] ?? 0) + by
    this.#dirtyGrids.add(row)
  }

  /** Recomputes a device's status at `now` without an element (used after a rebuild). */
  refreshStatus(i: number, now: number): void {
    const status = deviceStatus({ connected: this.#connected[i] === 1, lastActivity: this.#lastActivity[i] ?? 0, status: this.deviceStatus(i) }, now, this.#intervalMs[i] ?? 0, this.policy)
    const s = DEVICE_STATUSES.indexOf(status)
    if (s !== this.#status[i]) this.#setDeviceStatus(i, s)
  }
}
