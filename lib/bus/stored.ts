// Stored rows as bus elements. The gateway publishes what it has just
// stored; in cluster mode the primary does, for the rows its workers relay;
// the rules, replaying from the store, read the same rows back. One
// conversion for all, from the rows as the store holds them.
import { CAMERA_STATUS_VALUES, type CameraStatus, type Element, type Severity } from './elements.ts'

/** A row of the readings or events table, its columns in the order of READINGS_COLUMNS or EVENTS_COLUMNS. */
type Row = readonly unknown[]

type Reading = Extract<Element, { kind: 'reading' }>

/**
 * readings rows (READINGS_COLUMNS) as one element per device and timestamp,
 * with every metric reported then; `pos`: where the store holds them.
 *
 * A message's rows come one after another (one per metric), so the element
 * is looked up only where device or timestamp changes, not per row: at the
 * city's rate this runs for every stored row in the primary, and a keyed
 * lookup per row (a key string and a Map entry) cost about as much as the
 * rest. Rows of one device and timestamp that are not adjacent still join
 * one element.
 */
export function readingElements(rows: readonly Row[], pos?: number): Element[] {
  const out: Reading[] = []
  const byKey = new Map<string, Reading>()
  let e: Reading | undefined
  for (const r of rows) {
    const ts = r[0] as number
    const deviceId = r[1] as string
    if (e === undefined || e.deviceId !== deviceId || e.ts !== ts) {
      const key = `${deviceId}\u0000${ts}`
      e = byKey.get(key)
      if (e === undefined) {
        e = pos === undefined ? { kind: 'reading', deviceId, ts, values: {} } : { kind: 'reading', deviceId, ts, values: {}, pos }
        byKey.set(key, e)
        out.push(e)
      }
    }
    e.values[r[3] as string] = r[4] as number
    // received_at, the gateway's clock (READINGS_COLUMNS' last).
    const at = r[10]
    if (typeof at === 'number' && !(at <= (e.receivedAt ?? 0))) e.receivedAt = at
  }
  return out
}

const CAMERA_STATUSES: ReadonlySet<string> = new Set<CameraStatus>(CAMERA_STATUS_VALUES)

/** A camera status row's kind in the events table: this and the state (`status:tampered`); the camera gateway writes it. */
export const CAMERA_STATUS_PREFIX = 'status:'

/**
 * Device and camera rows of the events table (EVENTS_COLUMNS): a device's
 * connectivity or an event it reported; a camera's status (kind
 * `status:<state>`) or an event its pictures showed.
 */
export function eventElements(rows: readonly Row[], pos?: number): Element[] {
  const out: Element[] = []
  for (const r of rows) {
    if (r[1] === 'camera') {
      const ts = r[0] as number
      const cameraId = r[2] as string
      const kind = r[3] as string
      // Camera elements carry no bus position (lib/bus/elements.ts): the rules judge them as they come.
      if (kind.startsWith(CAMERA_STATUS_PREFIX)) {
        const status = kind.slice(CAMERA_STATUS_PREFIX.length)
        if (CAMERA_STATUSES.has(status)) out.push({ kind: 'camera-status', cameraId, ts, status: status as CameraStatus })
      } else {
        // evidence_path, EVENTS_COLUMNS' last: the snapshot the event was seen in.
        const snapshot = r[12]
        out.push({ kind: 'camera-event', cameraId, ts, name: kind, severity: r[4] as Severity, ...(typeof snapshot === 'string' && snapshot !== '' ? { snapshot } : {}) })
      }
      continue
    }
    if (r[1] !== 'device') continue
    const ts = r[0] as number
    const deviceId = r[2] as string
    const kind = r[3] as string
    const at = pos === undefined ? {} : { pos }
    if (kind === 'connected' || kind === 'disconnected') out.push({ kind: 'connectivity', deviceId, ts, state: kind, ...at })
    else out.push({ kind: 'device-event', deviceId, ts, name: kind, severity: r[4] as Severity, ...at })
  }
  return out
}

/**
 * The rows of a write that the store holds: all of them, less those it
 * refused (dead-lettered; their indices, from the writer's outcome). Only
 * these become elements: an element must not outrun the store.
 */
export function rowsStored<T>(rows: readonly T[], deadLetteredRows: readonly number[] | undefined): readonly T[] {
  if (!deadLetteredRows || deadLetteredRows.length === 0) return rows
  const dead = new Set(deadLetteredRows)
  return rows.filter((_, i) => !dead.has(i))
}
