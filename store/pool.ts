// A few chDB connections to one data directory, used as one.
//
// chDB runs one query at a time per connection: four `SELECT sleep(0.5)`
// at once took 2.1 s on one connection and 0.58 s on four (2026-11-29).
// The embedded store is shared by everything in its process: the ingest
// writers, the rules' ticket writes, the twin's load and checkpoints, the
// roll-ups, the API's queries and the owner's HTTP endpoint for other
// processes. On one connection each waited for all the others: in the
// full-city bench:rules, inserts of a few rows took 550 ms on average
// behind a storm of ticket writes, and storing fell from about 4,000 to a
// few hundred rows a second. Connections to the same directory see the
// same tables, so each call goes to the connection with the fewest calls
// in flight.
import { parseError } from '@clickhouse/client'
import type { ChdbConnection } from 'chdb/connection'
import type { EncodedInsert, RawInserter } from './insert-rows.ts'

type Call = 'query' | 'exec' | 'command' | 'insert' | 'ping'
type Params<K extends Call> = Parameters<ChdbConnection[K]>[0]
type Result<K extends Call> = Awaited<ReturnType<ChdbConnection[K]>>

export class ChdbPool implements RawInserter {
  readonly #connections: ChdbConnection[]
  readonly #inFlight: number[]
  /** What @clickhouse/client reads of a connection besides its calls. */
  readonly connectionName = 'chdb'
  readonly supportsZeroCopyStreaming = false

  constructor(connections: ChdbConnection[]) {
    if (connections.length === 0) throw new RangeError('a pool needs at least one connection')
    this.#connections = connections
    this.#inFlight = connections.map(() => 0)
  }

  get size(): number {
    return this.#connections.length
  }

  /** Calls in flight on each connection. */
  get busy(): readonly number[] {
    return [...this.#inFlight]
  }

  query(params: Params<'query'>): Promise<Result<'query'>> {
    return this.#run((c) => c.query(params))
  }

  exec(params: Params<'exec'>): Promise<Result<'exec'>> {
    return this.#run((c) => c.exec(params))
  }

  command(params: Params<'command'>): Promise<Result<'command'>> {
    return this.#run((c) => c.command(params))
  }

  insert(params: Params<'insert'>): Promise<Result<'insert'>> {
    return this.#run((c) => c.insert(params))
  }

  /**
   * One INSERT of encoded rows, handed to the engine as bytes (chDB's raw
   * insert: store/insert-rows.ts says why). Its failure reads as the
   * client's would (a ClickHouseError with the engine's type), so the
   * writer tells a bad row from a full disk the same way on both paths.
   */
  async insertRaw(insert: EncodedInsert): Promise<void> {
    await this.#run(async (c) => {
      try {
        await c.chdb.rawInsert({ table: insert.table, columns: insert.columns, format: 'JSONCompactEachRow', values: insert.body, ...(insert.settings ? { settings: { ...insert.settings } } : {}) })
      } catch (e) {
        const mapped = parseError(e instanceof Error ? e.message : String(e))
        if (mapped !== e) mapped.cause = e
        throw mapped
      }
    })
  }

  ping(params: Params<'ping'>): Promise<Result<'ping'>> {
    return this.#run((c) => c.ping(params))
  }

  mapError(err: unknown): Error {
    return err instanceof Error ? err : new Error(String(err))
  }

  async close(): Promise<void> {
    await Promise.all(this.#connections.map((c) => c.close()))
  }

  /** Runs `call` on the connection with the fewest calls in flight (the first of them). */
  async #run<T>(call: (c: ChdbConnection) => Promise<T>): Promise<T> {
    let best = 0
    for (let i = 1; i < this.#inFlight.length; i++) if ((this.#inFlight[i] as number) < (this.#inFlight[best] as number)) best = i
    this.#inFlight[best] = (this.#inFlight[best] as number) + 1
    try {
      return await call(this.#connections[best] as ChdbConnection)
    } finally {
      this.#inFlight[best] = (this.#inFlight[best] as number) - 1
    }
  }
}
