// Large inserts that leave the event loop free. The client's insert turns
// an array of rows into JSON in one go; the twin's checkpoint (a row per
// device and metric that changed in a minute: 550,000 at full city) and the
// roll-ups' flush (a row per grid, metric and type) are large enough that
// this held the process that also serves the API for 100 to 450 ms at
// 20,000 devices (a CPU profile of `citytwin start --full`, 2026-11-30).
// Here the rows are encoded a slice at a time, with a turn of the event
// loop between slices, and sent in one INSERT: one part, as before.
import { setImmediate as nextTurn } from 'node:timers/promises'
import { Readable } from 'node:stream'
import type { ClickHouseClient } from '@clickhouse/client'
import { drained, encodeRows, type Row } from './writer.ts'

/** Rows encoded between two turns of the event loop: a few milliseconds of JSON. */
export const SLICE_ROWS = 5_000

/** `rows` as JSONCompactEachRow lines, encoded `sliceRows` at a time with a turn of the event loop between. */
export async function encodeInSlices(rows: readonly Row[], sliceRows = SLICE_ROWS): Promise<string> {
  const parts: string[] = []
  for (let at = 0; at < rows.length; at += sliceRows) {
    if (at > 0) await nextTurn()
    parts.push(encodeRows(rows.slice(at, at + sliceRows)).join('\n'))
  }
  return parts.join('\n') + '\n'
}

/** Inserts `rows` (values of `columns`, in order) as one INSERT, encoded without holding the event loop. Nothing for no rows. */
export async function insertRows(client: ClickHouseClient, table: string, columns: readonly string[], rows: readonly Row[]): Promise<void> {
  if (rows.length === 0) return
  const body = await encodeInSlices(rows)
  const result = await client.exec({
    query: `INSERT INTO ${table} (${columns.join(', ')}) FORMAT JSONCompactEachRow`,
    // A string the embedded store takes as it is (writer.ts, #insert).
    values: Readable.from([body], { objectMode: false, encoding: 'utf8' }),
  })
  await drained(result.stream)
}
