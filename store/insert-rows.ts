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
//
// A body is bytes, made a slice at a time, and the embedded store takes them
// as they are (chDB's raw insert: the statement is put together on a libuv
// thread and the engine parses the rows in its own pipeline). Sent as a string through the client's exec,
// the process that serves the API had to join the statement and the body,
// trim it, and hand it to the engine as UTF-8 in two passes, in one turn: a
// checkpoint of 550,000 rows (22 MB) held the event loop 40 to 100 ms on an
// idle machine, against 10 to 35 ms as bytes (2026-12-01), and CPU profiles
// of the whole city under load found such turns of one to two seconds.
import { setImmediate as nextTurn } from 'node:timers/promises'
import { Readable } from 'node:stream'
import type { ClickHouseClient } from '@clickhouse/client'
import { CitytwinError, messageOf } from '../lib/errors.ts'
import type { Row } from './writer.ts'

/** Rows encoded between two turns of the event loop: a few milliseconds of JSON. */
export const SLICE_ROWS = 5_000

/** An INSERT whose rows are encoded already. */
export interface EncodedInsert {
  table: string
  columns: readonly string[]
  /** Settings of this statement alone (the writer's deduplication token): string values. */
  settings?: Readonly<Record<string, string>>
  /** JSONCompactEachRow lines, each ending in a newline. */
  body: Buffer
}

/** Takes an encoded INSERT straight to an embedded engine (store/pool.ts). */
export interface RawInserter {
  insertRaw(insert: EncodedInsert): Promise<void>
}

/**
 * The clients of embedded stores, with what takes their inserts as bytes.
 * Kept beside the client rather than passed to every writer: the writers,
 * the roll-ups and the twin's checkpoint are given a client, and work the
 * same on a ClickHouse server, whose inserts go through exec.
 */
const rawInserters = new WeakMap<ClickHouseClient, RawInserter>()

/** `client`'s inserts of encoded rows go to `inserter` (store/client.ts, for the embedded store). */
export function sendRawInserts(client: ClickHouseClient, inserter: RawInserter): void {
  rawInserters.set(client, inserter)
}

/** The JSONCompactEachRow body of `rows`, encoded `sliceRows` at a time with a turn of the event loop between. */
export async function encodeInSlices(rows: readonly Row[], sliceRows = SLICE_ROWS): Promise<Buffer> {
  const slices = new BodySlices()
  for (let at = 0; at < rows.length; at += sliceRows) {
    if (at > 0) await nextTurn()
    slices.add(encodeRows(rows.slice(at, at + sliceRows)))
  }
  return slices.body()
}

/**
 * A body built a slice of lines at a time: each slice becomes bytes as it
 * ends, in its own turn, so that the body is one copy of bytes at the end,
 * not a string to convert in one go.
 */
export class BodySlices {
  readonly #slices: Buffer[] = []
  #bytes = 0

  /** Lines (without their newlines) as the next slice; nothing for none. */
  add(lines: readonly string[]): void {
    if (lines.length === 0) return
    const b = Buffer.from(lines.join('\n') + '\n', 'utf8')
    this.#slices.push(b)
    this.#bytes += b.length
  }

  get bytes(): number {
    return this.#bytes
  }

  body(): Buffer {
    return this.#slices.length === 1 ? (this.#slices[0] as Buffer) : Buffer.concat(this.#slices, this.#bytes)
  }
}

/** Inserts `rows` (values of `columns`, in order) as one INSERT, encoded without holding the event loop. Nothing for no rows. */
export async function insertRows(client: ClickHouseClient, table: string, columns: readonly string[], rows: readonly Row[]): Promise<void> {
  if (rows.length === 0) return
  await sendEncoded(client, { table, columns, body: await encodeInSlices(rows) })
}

/**
 * Sends one INSERT of encoded rows. To an embedded store as bytes (see the
 * header); to a server as the body of the client's exec, not its insert,
 * which encodes rows itself and takes JSON formats only as objects.
 */
export async function sendEncoded(client: ClickHouseClient, insert: EncodedInsert): Promise<void> {
  if (insert.body.length === 0) return
  const raw = rawInserters.get(client)
  if (raw) return raw.insertRaw(insert)
  const result = await client.exec({ query: insertStatement(insert), values: Readable.from([insert.body], { objectMode: false }) })
  // An INSERT answers with nothing worth reading: drained so the socket is freed, its failure this insert's.
  await drained(result.stream)
}

/** `INSERT INTO table (columns) [SETTINGS ...] FORMAT JSONCompactEachRow`, for a server. */
export function insertStatement(insert: Omit<EncodedInsert, 'body'>): string {
  const settings = Object.entries(insert.settings ?? {}).map(([k, v]) => `${k} = '${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`)
  return `INSERT INTO ${insert.table} (${insert.columns.join(', ')})${settings.length > 0 ? ` SETTINGS ${settings.join(', ')}` : ''} FORMAT JSONCompactEachRow`
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
