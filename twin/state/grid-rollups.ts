// The grid roll-ups: per grid (and the city), how many devices are in each
// status, cameras in each state and open tickets of each severity, and the
// health those give. Incremental, never a rescan: when one device's status
// changes, each grid it counts in moves by one (the rows come from the city
// index). Which grids moved is remembered until the live feed collects it.
import { CAMERA_STATUS_VALUES, SEVERITIES, type Severity } from '../../lib/bus/elements.ts'
import { DEVICE_STATUSES, type DeviceStatus } from './device.ts'
import { healthScore } from './health.ts'

export const CAMERA_STATUSES = ['unknown', ...CAMERA_STATUS_VALUES] as const
export type CameraState = (typeof CAMERA_STATUSES)[number]

/** The counts kept per row, in this order. */
const F_DEV = 0 // DEVICE_STATUSES
const F_CAM = F_DEV + DEVICE_STATUSES.length // CAMERA_STATUSES
const F_TKT = F_CAM + CAMERA_STATUSES.length // SEVERITIES
const FIELDS = F_TKT + SEVERITIES.length

export interface GridCounts {
  devices: Record<DeviceStatus, number> & { total: number }
  cameras: Record<CameraState, number> & { total: number }
  tickets: Record<Severity, number> & { total: number }
  health: number
}

export class GridRollups {
  readonly #counts: Int32Array
  #dirty = new Set<number>()

  /**
   * `rows`: every grid's and the city's (CityIndex.rows). The counts lie on
   * shared memory, for the API's own thread to read (LiveColumns says why);
   * with `counts` (another's `counts`), these are read over them.
   */
  constructor(rows: number, counts?: Int32Array) {
    if (counts && counts.length !== rows * FIELDS) throw new RangeError(`shared grid counts of ${counts.length} do not fit ${rows} rows`)
    this.#counts = counts ?? new Int32Array(new SharedArrayBuffer(4 * rows * FIELDS))
  }

  /** The counts of every row, for a reader in another thread. */
  get shared(): Int32Array {
    return this.#counts
  }

  /** A device counted in `rows` moves from status index `from` to `to` (-1: not counted before, or no more). */
  moveDevice(rows: Int32Array, from: number, to: number): void {
    this.#move(rows, F_DEV, from, to)
  }

  /** A camera counted in `rows` moves from state index `from` to `to` (-1: not counted before, or no more). */
  moveCamera(rows: Int32Array, from: number, to: number): void {
    this.#move(rows, F_CAM, from, to)
  }

  /** An open ticket of severity index `severity` counts in `rows` (by 1), or no more (by -1). */
  countTicket(rows: Int32Array, severity: number, by: 1 | -1): void {
    for (const r of rows) this.#bump(r, F_TKT + severity, by)
  }

  #move(rows: Int32Array, base: number, from: number, to: number): void {
    if (from === to) return
    for (const r of rows) {
      if (from >= 0) this.#bump(r, base + from, -1)
      if (to >= 0) this.#bump(r, base + to, 1)
    }
  }

  #bump(row: number, field: number, by: number): void {
    const k = row * FIELDS + field
    this.#counts[k] = (this.#counts[k] ?? 0) + by
    this.#dirty.add(row)
  }

  /** The counts and health of a row. */
  counts(row: number): GridCounts {
    const at = (f: number): number => this.#counts[row * FIELDS + f] ?? 0
    const devices = { unknown: at(F_DEV), online: at(F_DEV + 1), silent: at(F_DEV + 2), offline: at(F_DEV + 3), total: 0 }
    devices.total = devices.unknown + devices.online + devices.silent + devices.offline
    const cameras = { unknown: at(F_CAM), ok: at(F_CAM + 1), offline: at(F_CAM + 2), degraded: at(F_CAM + 3), tampered: at(F_CAM + 4), total: 0 }
    cameras.total = cameras.unknown + cameras.ok + cameras.offline + cameras.degraded + cameras.tampered
    const tickets = { info: at(F_TKT), warning: at(F_TKT + 1), critical: at(F_TKT + 2), total: 0 }
    tickets.total = tickets.info + tickets.warning + tickets.critical
    return { devices, cameras, tickets, health: healthScore({ devices, cameras, tickets }) }
  }

  /** The rows whose counts moved since the last call. */
  drainChanged(): number[] {
    const out = [...this.#dirty]
    this.#dirty = new Set()
    return out
  }

  stats(): { rows: number; changed: number } {
    return { rows: this.#counts.length / FIELDS, changed: this.#dirty.size }
  }
}
