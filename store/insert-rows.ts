// Rows as JSONCompactEachRow bodies, and a body sent as one INSERT: for the
// batching writer (writer.ts), and for large inserts that leave the event
// loop free. The client's insert turns an array of rows into JSON in one
// go; the roll-ups' flush (a row per grid, metric and type) and the twin's
// connectivity checkpoint are large enough that this held the process that
// also serves the API for 100 to 450 ms at 20,000 devices (a CPU profile of
// `citytwin start --full`, 2026-11-30). insertRows encodes them a slice at
// a time, with a turn of the event loop between, and sends one INSERT: one
// part, as before. (The checkpoint's latest values, 550,000 rows a minute
// at full city, are encoded as they are read from the twin, also a slice
// at a time: twin/state/checkpoint.ts, sent with sendEncoded.)
import { setImmediate as nextTurn } from 'node:timers/promises'
import { Readable } from 'node:stream'
import type { ClickHouseClient } from '@clickhouse/client'
import { CitytwinError, messageOf } from '../lib/errors.ts'
import type { Row } from './writer.ts'

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
  await sendEncoded(client, `INSERT INTO ${table} (${columns.join(', ')}) FORMAT JSONCompactEachRow`, await encodeInSlices(rows))
}

/**
 * Sends `statement` (an INSERT ... FORMAT JSONCompactEachRow) with its
 * encoded `body`, and reads the answer to its end. exec, not insert: the
 * client's insert encodes rows itself and takes JSON formats only as
 * objects. A string, not a Buffer: the embedded store takes the statement
 * as a string and would decode a Buffer back (two copies of every batch);
 * a server's HTTP request takes either.
 */
export async function sendEncoded(client: ClickHouseClient, statement: string, body: string): Promise<void> {
  const result = await client.exec({ query: statement, values: Readable.from([body], { objectMode: false, encoding: 'utf8' }) })
  // An INSERT answers with nothing worth reading: drained so the socket is freed, its failure this insert's.
  await drained(result.stream)
}

/**
 * Reads an INSERT's answer to its end. A stream that fails (a reset
 * connection to a server) rejects here instead of raising an 'error' event
 * that nothing listens to, which would end the process.
 */
export function drained(stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.once('end', resolve)
    stream.once('error', reject)
    stream.resume()
  })
}

/** UInt64 and Int64 values may come as bigint; ClickHouse reads them from JSON strings. */
function bigintAsString(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value
}

/** One JSONCompactEachRow line per row. Throws STORE_REJECTED for a row JSON cannot hold. */
export function encodeRows(rows: readonly Row[]): string[] {
  const lines = new Array<string>(rows.length)
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]
    try {
      lines[i] = JSON.stringify(row)
    } catch (first) {
      // The common case stays on the fast path; only a failing row pays for the replacer.
      try {
        lines[i] = JSON.stringify(row, bigintAsString)
      } catch {
        throw new CitytwinError('STORE_REJECTED', `row ${i} cannot be encoded as JSON: ${messageOf(first)}`, { cause: first })
      }
    }
  }
  return lines
}
