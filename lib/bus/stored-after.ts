// What the bus carried, read back from the store. Every stored write has a
// position (position.ts) that travels with its elements; a consumer that
// knows how far it has taken a stream (the rules save it with their state,
// the twin tracks it for its checkpoint) can read every reading and device
// event stored after that position, in position order, and take them as if
// they had come on the bus: after a restart, or when it fell so far behind
// that the bus dropped elements for it.
import type { ClickHouseClient } from '@clickhouse/client'
import type { Element } from './elements.ts'
import { earliestTs, type Positions } from './position.ts'
import { eventElements, readingElements } from './stored.ts'
import { pushAll } from '../arrays.ts'

/** Elements handed over at a time. */
const CHUNK = 5_000

export interface ReplayRange {
  /** Per stream: replay what is above this position ... */
  from: Positions
  /** ... and at most at this one. */
  upto: Positions
  /**
   * How far behind its arrival a reading's or event's own timestamp may be
   * (mqtt.maxPastMs): it bounds the query by `ts`, so the store reads only
   * the days' partitions that can hold those rows.
   */
  maxPastMs: number
}

/**
 * The elements stored in the range, in position order (readings and events
 * interleaved), CHUNK at a time. Elements of one write share its position
 * and come in one chunk. Readings are streamed from the store, never held
 * all at once; device events are few beside them and are read whole.
 */
export async function* storedAfter(client: ClickHouseClient, r: ReplayRange): AsyncGenerator<Element[]> {
  const since = (pos: number): number => earliestTs(pos, r.maxPastMs)
  const events: { pos: number; elements: Element[] }[] = []
  if (r.from.events < r.upto.events) {
    const rs = await client.query({
      query: `SELECT toString(bus_pos), toUnixTimestamp64Milli(ts), source_id, kind, toString(severity) FROM events
              WHERE source = 'device' AND bus_pos > {lo:UInt64} AND bus_pos <= {hi:UInt64} AND ts >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')
              ORDER BY bus_pos, ts`,
      query_params: { lo: r.from.events, hi: r.upto.events, since: since(r.from.events) },
      format: 'JSONCompactEachRow',
    })
    for (const [pos, ts, device, kind, severity] of await rs.json<[string, number, string, string, string]>()) {
      const p = Number(pos)
      const els = eventElements([[Number(ts), 'device', device, kind, severity]], p)
      const last = events[events.length - 1]
      if (last?.pos === p) pushAll(last.elements, els)
      else events.push({ pos: p, elements: els })
    }
  }
  let nextEvent = 0
  let out: Element[] = []
  // Events stored before `pos` go first.
  const eventsBefore = (pos: number): void => {
    while (nextEvent < events.length && (events[nextEvent] as { pos: number }).pos < pos) pushAll(out, (events[nextEvent++] as { elements: Element[] }).elements)
  }
  if (r.from.readings < r.upto.readings) {
    const rs = await client.query({
      query: `SELECT toString(bus_pos), toUnixTimestamp64Milli(ts), device_id, metric, value, toUnixTimestamp64Milli(received_at) FROM readings
              WHERE bus_pos > {lo:UInt64} AND bus_pos <= {hi:UInt64} AND ts >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')
              ORDER BY bus_pos, device_id, ts`,
      query_params: { lo: r.from.readings, hi: r.upto.readings, since: since(r.from.readings) },
      format: 'JSONCompactEachRow',
    })
    // One row per metric: grouped back into one element per message by readingElements, a write at a time.
    let pos = ''
    let rows: unknown[][] = []
    const endWrite = (): void => {
      if (rows.length === 0) return
      eventsBefore(Number(pos))
      pushAll(out, readingElements(rows, Number(pos)))
      rows = []
    }
    for await (const batch of rs.stream<[string, number | string, string, string, number, number | string]>()) {
      for (const row of batch) {
        const [p, ts, device, metric, value, receivedAt] = row.json()
        if (p !== pos) {
          endWrite()
          pos = p
          if (out.length >= CHUNK) {
            yield out
            out = []
          }
        }
        // In READINGS_COLUMNS' places: received_at is the last.
        rows.push([Number(ts), device, '', metric, value, 0, 0, 0, 0, 0, Number(receivedAt)])
      }
    }
    endWrite()
  }
  eventsBefore(Number.POSITIVE_INFINITY)
  if (out.length > 0) yield out
}

/** Rows of a table stored after `after` and before `before` (positions): what a replay leaves out, for the log. */
export async function countStored(client: ClickHouseClient, table: 'readings' | 'events', after: number, before: number): Promise<number> {
  const rs = await client.query({
    query: `SELECT toUInt64(count()) AS n FROM ${table} WHERE bus_pos > {after:UInt64} AND bus_pos < {before:UInt64}`,
    query_params: { after, before: Math.floor(before) }, format: 'JSONEachRow',
  })
  return Number((await rs.json<{ n: string }>())[0]?.n ?? 0)
}
