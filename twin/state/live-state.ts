// The live state: what each device and camera is doing now, and the open
// tickets on the map.
//
// Devices and cameras are kept column-wise in typed arrays (the full city is
// 349,300 of them). Each device element is reduced on its device's record
// by the pure reducer (device.ts: record, element, now -> record); this
// class only reads the record out of the columns and writes the result
// back. When a status changes, the grid roll-ups move (grid-rollups.ts), in
// the grids the city index says the device counts in.
import { SEVERITIES, type CameraStatus, type TicketElement } from '../../lib/bus/elements.ts'
import type { CityIndex } from './city-index.ts'
import { DEVICE_STATUSES, reduceDevice, type DeviceElement, type DeviceLive, type DeviceStatus, type SilencePolicy } from './device.ts'
import { CAMERA_STATUSES, type CameraState, type GridRollups } from './grid-rollups.ts'

/** A device's status moved from `from` to `to`; it was last heard from at `lastActivity` (ms). */
export type StatusListener = (device: number, from: DeviceStatus, to: DeviceStatus, lastActivity: number) => void

interface OpenTicket {
  severity: number
  rows: Int32Array
  device: number
}

const ONLINE = DEVICE_STATUSES.indexOf('online')
const SILENT = DEVICE_STATUSES.indexOf('silent')
const OFFLINE = DEVICE_STATUSES.indexOf('offline')
const UNKNOWN = DEVICE_STATUSES.indexOf('unknown')

/**
 * The columns of the live state, on shared memory: the API's own thread
 * (twin/api/front) reads them where this thread writes them, with no copy
 * and no message per change. A reader may see a device's record between
 * two of its fields being written, which a live view tolerates.
 */
export interface LiveColumns {
  status: Uint8Array
  connected: Uint8Array
  lastActivity: Float64Array
  values: Float64Array
  times: Float64Array
  openTickets: Uint16Array
  cameraStatus: Uint8Array
  cameraSeen: Float64Array
}

/** Typed arrays of `n` elements each on a SharedArrayBuffer of their own. */
const shared = {
  u8: (n: number) => new Uint8Array(new SharedArrayBuffer(n)),
  u16: (n: number) => new Uint16Array(new SharedArrayBuffer(2 * n)),
  f64: (n: number) => new Float64Array(new SharedArrayBuffer(8 * n)),
}

/** What one pass over the devices found (LiveState.scanSilence). */
export interface SilenceScan {
  /** Online devices overdue now: to be marked silent, unless ingest is degraded. */
  due: number[]
  /** Of the devices heard from lately, how many are overdue now (the degraded share). */
  overdue: number
  lately: number
}

export class LiveState {
  readonly #index: CityIndex
  readonly #rollups: GridRollups
  readonly #policy: SilencePolicy
  // Device columns.
  readonly #status: Uint8Array
  readonly #connected: Uint8Array
  readonly #lastActivity: Float64Array
  readonly #values: Float64Array
  readonly #times: Float64Array
  readonly #openTickets: Uint16Array
  // Camera columns.
  readonly #cameraStatus: Uint8Array
  readonly #cameraSeen: Float64Array
  readonly #tickets = new Map<string, OpenTicket>()
  #onStatus: StatusListener | undefined
  #changedDevices = new Set<number>()
  #changedCameras = new Set<number>()

  /**
   * Every device and camera starts unknown, and is counted so in `rollups`.
   * With `columns` (another thread's, through `columns`), the state is read
   * over them as they stand: a reader, whose roll-ups are that thread's too.
   */
  constructor(index: CityIndex, rollups: GridRollups, policy: SilencePolicy, columns?: LiveColumns) {
    this.#index = index
    this.#rollups = rollups
    this.#policy = policy
    const n = index.devices.length
    const c = index.cameras.length
    const slots = index.valueOffsets[n] ?? 0
    if (columns) {
      if (columns.status.length !== n || columns.values.length !== slots || columns.cameraStatus.length !== c) {
        throw new RangeError(`shared live columns of ${columns.status.length} devices, ${columns.values.length} value slots and ${columns.cameraStatus.length} cameras do not fit a city of ${n}, ${slots} and ${c}`)
      }
      ;({ status: this.#status, connected: this.#connected, lastActivity: this.#lastActivity, values: this.#values, times: this.#times, openTickets: this.#openTickets, cameraStatus: this.#cameraStatus, cameraSeen: this.#cameraSeen } = columns)
      return
    }
    this.#status = shared.u8(n).fill(UNKNOWN)
    this.#connected = shared.u8(n)
    this.#lastActivity = shared.f64(n)
    this.#openTickets = shared.u16(n)
    this.#values = shared.f64(slots).fill(Number.NaN)
    this.#times = shared.f64(slots).fill(Number.NaN)
    for (let i = 0; i < n; i++) rollups.moveDevice(index.deviceRows(i) ?? EMPTY, -1, UNKNOWN)
    this.#cameraStatus = shared.u8(c)
    this.#cameraSeen = shared.f64(c)
    for (let i = 0; i < c; i++) rollups.moveCamera(index.cameraRows(i) ?? EMPTY, -1, CAMERA_STATUSES.indexOf('unknown'))
  }

  /** The columns, for a reader in another thread (see LiveColumns). */
  get columns(): LiveColumns {
    return {
      status: this.#status, connected: this.#connected, lastActivity: this.#lastActivity, values: this.#values, times: this.#times,
      openTickets: this.#openTickets, cameraStatus: this.#cameraStatus, cameraSeen: this.#cameraSeen,
    }
  }

  // --- reading ------------------------------------------------------------

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

  deviceOpenTickets(i: number): number {
    return this.#openTickets[i] ?? 0
  }

  cameraLastSeen(i: number): number {
    return this.#cameraSeen[i] ?? 0
  }

  /** A device's record over the columns, without copying them (the reducer copies before it changes anything). */
  #view(i: number): DeviceLive {
    const from = this.#index.valueOffsets[i] ?? 0
    const to = this.#index.valueOffsets[i + 1] ?? from
    return {
      status: this.deviceStatus(i),
      connected: this.#connected[i] === 1,
      lastActivity: this.#lastActivity[i] ?? 0,
      values: this.#values.subarray(from, to),
      times: this.#times.subarray(from, to),
    }
  }

  // --- changing -----------------------------------------------------------

  /**
   * Calls `fn` on every device status change, as it happens (the rules
   * watch silences through it). One listener; a second call replaces it.
   */
  onStatusChange(fn: StatusListener | undefined): void {
    this.#onStatus = fn
  }

  /** A reading, connect or event of device `i`, judged at `now` (the watermark). */
  applyDevice(i: number, e: DeviceElement, now: number): void {
    const prev = this.#view(i)
    const next = reduceDevice(prev, e, this.#index.deviceMetrics(i), this.#index.deviceIntervalMs(i), this.#policy, now)
    if (next.values !== prev.values) {
      const from = this.#index.valueOffsets[i] ?? 0
      this.#values.set(next.values, from)
      this.#times.set(next.times, from)
    }
    this.#connected[i] = next.connected ? 1 : 0
    this.#lastActivity[i] = next.lastActivity
    this.#changedDevices.add(i)
    const status = DEVICE_STATUSES.indexOf(next.status)
    if (status !== this.#status[i]) this.setDeviceStatus(i, status)
  }

  /** Sets device `i`'s status (an index in DEVICE_STATUSES), telling the listener and the roll-ups. */
  setDeviceStatus(i: number, status: number): void {
    const prev = this.#status[i] ?? 0
    this.#status[i] = status
    this.#onStatus?.(i, DEVICE_STATUSES[prev] ?? 'unknown', DEVICE_STATUSES[status] ?? 'unknown', this.#lastActivity[i] ?? 0)
    this.#changedDevices.add(i)
    this.#rollups.moveDevice(this.#index.deviceRows(i) ?? EMPTY, prev, status)
  }

  /** A camera's reachability at `ts`; an older report than the last is ignored. */
  applyCamera(i: number, status: CameraStatus, ts: number): void {
    if (ts < (this.#cameraSeen[i] ?? 0)) return
    this.#cameraSeen[i] = ts
    const next = CAMERA_STATUSES.indexOf(status)
    const prev = this.#cameraStatus[i] ?? 0
    this.#changedCameras.add(i)
    if (next === prev) return
    this.#cameraStatus[i] = next
    this.#rollups.moveCamera(this.#index.cameraRows(i) ?? EMPTY, prev, next)
  }

  /** A ticket opened, changed or closed: counted in the grids of its subject (device, camera or grid). */
  applyTicket(e: TicketElement): void {
    const known = this.#tickets.get(e.ticketId)
    if (known) {
      this.#rollups.countTicket(known.rows, known.severity, -1)
      if (known.device >= 0) {
        this.#openTickets[known.device] = Math.max(0, (this.#openTickets[known.device] ?? 0) - 1)
        this.#changedDevices.add(known.device)
      }
      this.#tickets.delete(e.ticketId)
    }
    if (!e.open) return
    const device = e.deviceId === undefined ? -1 : (this.#index.deviceIndex(e.deviceId) ?? -1)
    const camera = e.cameraId === undefined ? -1 : (this.#index.cameraIndex(e.cameraId) ?? -1)
    let rows: Int32Array | undefined
    if (device >= 0) rows = this.#index.deviceRows(device)
    else if (camera >= 0) rows = this.#index.cameraRows(camera)
    else if (e.gridId !== undefined) rows = this.#index.gridChain(e.gridId) // an unknown grid's ticket counts in the city
    if (!rows) return
    const severity = SEVERITIES.indexOf(e.severity)
    this.#tickets.set(e.ticketId, { severity, rows, device })
    this.#rollups.countTicket(rows, severity, 1)
    if (device >= 0) {
      this.#openTickets[device] = (this.#openTickets[device] ?? 0) + 1
      this.#changedDevices.add(device)
    }
  }

  /**
   * Sets the open tickets to `open` (from the store), closing those held
   * here that are not in it: after the bus lost elements for the twin, the
   * ticket changes among them are known only to the store.
   */
  syncTickets(open: readonly TicketElement[]): void {
    const still = new Set(open.map((t) => t.ticketId))
    for (const ticketId of [...this.#tickets.keys()]) {
      if (!still.has(ticketId)) this.applyTicket({ kind: 'ticket', ticketId, ts: 0, open: false, severity: 'info' })
    }
    for (const t of open) this.applyTicket(t)
  }

  /**
   * One pass over the devices at `now` (the watermark): the online ones
   * quiet for more than `silentAfterIntervals` intervals, and, of those
   * heard from lately (online, or silent or disconnected for at most
   * `windowMs` beyond their limit, counted from `listeningSince` at the
   * earliest; `windowMs` < 0: not counted), how many are overdue.
   */
  scanSilence(now: number, windowMs: number, listeningSince: number): SilenceScan {
    const k = this.#policy.silentAfterIntervals
    const due: number[] = []
    let overdue = 0
    let lately = 0
    for (let i = 0; i < this.#status.length; i++) {
      const st = this.#status[i]
      // Disconnected devices count in the share too: the rules take them as absent, and a tenth of the
      // city disconnected at once (a reconnect storm, a gateway down) is the system, not the devices.
      if (st !== ONLINE && st !== SILENT && st !== OFFLINE) continue
      const quiet = now - (this.#lastActivity[i] ?? 0)
      const limit = k * this.#index.deviceIntervalMs(i)
      if (quiet > limit && st === ONLINE) due.push(i)
      if (windowMs < 0 || now - Math.max(this.#lastActivity[i] ?? 0, listeningSince) > limit + windowMs) continue
      lately++
      if (quiet > limit) overdue++
    }
    return { due, overdue, lately }
  }

  /** Marks devices silent (after scanSilence). */
  silence(devices: readonly number[]): void {
    for (const i of devices) this.setDeviceStatus(i, SILENT)
  }

  /** The devices and cameras (indexes) that changed since the last call. */
  drainChanged(): { devices: number[]; cameras: number[] } {
    const out = { devices: [...this.#changedDevices], cameras: [...this.#changedCameras] }
    this.#changedDevices = new Set()
    this.#changedCameras = new Set()
    return out
  }

  stats(): { devices: number; cameras: number; openTickets: number } {
    return { devices: this.#status.length, cameras: this.#cameraStatus.length, openTickets: this.#tickets.size }
  }
}

const EMPTY = new Int32Array(0)
