// Stored rows as bus elements. The gateway publishes what it has just
// stored; in cluster mode the primary does, for the rows its workers relay;
// the rules, replaying from the store, read the same rows back. One
// conversion for all, from the rows as the store holds them.
import type { Element, Severity } from './elements.ts'

/** A row of the readings or events table, its columns in the order of READINGS_COLUMNS or EVENTS_COLUMNS. */
type Row = readonly unknown[]

/** readings rows (READINGS_COLUMNS) as one element per device and timestamp, with every metric reported then; `pos`: where the store holds them. */
export function readingElements(rows: readonly Row[], pos?: number): Element[] {
  const byKey = new Map<string, { deviceId: string; ts: number; values: Record<string, number>; receivedAt?: number }>()
  for (const r of rows) {
    const ts = r[0] as number
    const deviceId = r[1] as string
    const key = `${deviceId}\u0000${ts}`
    let e = byKey.get(key)
    if (!e) {
      e = { deviceId, ts, values: {} }
      byKey.set(key, e)
    }
    e.values[r[3] as string] = r[4] as number
    // received_at, the gateway's clock (READINGS_COLUMNS' last).
    const at = r[10]
    if (typeof at === 'number' && !(at <= (e.receivedAt ?? 0))) e.receivedAt = at
  }
  return [...byKey.values()].map((e) => ({ kind: 'reading', ...e, ...(pos === undefined ? {} : { pos }) }))
}

/** Device rows of the events table (EVENTS_COLUMNS): connectivity, or an event the device reported. */
export function eventElements(rows: readonly Row[], pos?: number): Element[] {
  const out: Element[] = []
  for (const r of rows) {
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
