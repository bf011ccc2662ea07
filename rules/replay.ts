// What the rules had not judged, read back from the store. The rules save
// the bus position they have judged up to with their state (tickets/store.ts);
// after a restart, or when they fell so far behind that the bus dropped
// elements for them, they read every reading and device event stored after
// that position, in position order, and judge them as if they had come on
// the bus. Positions are the writes' (lib/bus/position.ts), so nothing is
// judged twice and nothing stored is skipped.
import type { ClickHouseClient } from '@clickhouse/client'
import type { Element } from '../lib/bus/elements.ts'
import { STREAMS, type Positions } from '../lib/bus/position.ts'
import { eventElements, readingElements } from '../lib/bus/stored.ts'

/** Positions are microseconds: a window of ten seconds of writes per query, so a long replay never holds it all. */
const WINDOW = 10_000_000

async function rows<T>(client: ClickHouseClient, query: string, params: Record<string, unknown>): Promise<T[]> {
  const rs = await client.query({ query, query_params: params, format: 'JSONCompactEachRow' })
  return rs.json<T>()
}

/**
 * The elements stored after `from` and at most at `upto` (per stream), in
 * position order, a window at a time. Elements of one write share its
 * position and come together.
 */
export async function* storedAfter(client: ClickHouseClient, from: Positions, upto: Positions): AsyncGenerator<Element[]> {
  const start = Math.min(...STREAMS.map((s) => from[s]))
  const end = Math.max(...STREAMS.map((s) => upto[s]))
  for (let lo = start; lo < end; lo += WINDOW) {
    const hi = Math.min(lo + WINDOW, end)
    const bound = (s: keyof Positions) => ({ lo: Math.max(lo, from[s]), hi: Math.min(hi, upto[s]) })
    const r = bound('readings')
    const e = bound('events')
    const byPos = new Map<number, Element[]>()
    const add = (pos: number, els: Element[]): void => {
      const list = byPos.get(pos)
      if (list) list.push(...els)
      else byPos.set(pos, els)
    }
    if (r.lo < r.hi) {
      // One row per metric: grouped back into one element per message by readingElements, a write at a time.
      const got = await rows<[string, number, string, string, number]>(client,
        `SELECT toString(bus_pos), toUnixTimestamp64Milli(ts), device_id, metric, value FROM readings
         WHERE bus_pos > {lo:UInt64} AND bus_pos <= {hi:UInt64} ORDER BY bus_pos, device_id, ts`, { lo: r.lo, hi: r.hi })
      const posAt = (k: number): string | undefined => got[k]?.[0]
      let i = 0
      while (i < got.length) {
        const pos = posAt(i) as string
        let j = i
        while (j < got.length && posAt(j) === pos) j++
        add(Number(pos), readingElements(got.slice(i, j).map(([, ts, device, metric, value]) => [Number(ts), device, '', metric, value]), Number(pos)))
        i = j
      }
    }
    if (e.lo < e.hi) {
      const got = await rows<[string, number, string, string, string]>(client,
        `SELECT toString(bus_pos), toUnixTimestamp64Milli(ts), source_id, kind, toString(severity) FROM events
         WHERE source = 'device' AND bus_pos > {lo:UInt64} AND bus_pos <= {hi:UInt64} ORDER BY bus_pos, ts`, { lo: e.lo, hi: e.hi })
      for (const [pos, ts, device, kind, severity] of got) add(Number(pos), eventElements([[Number(ts), 'device', device, kind, severity]], Number(pos)))
    }
    const out: Element[] = []
    for (const pos of [...byPos.keys()].sort((a, b) => a - b)) out.push(...(byPos.get(pos) as Element[]))
    if (out.length > 0) yield out
  }
}
