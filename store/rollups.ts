// Roll-ups: readings summed per community grid, metric and device type, per
// minute (readings_1m) and per hour (readings_1h), for the history and the
// time-lapse queries.
//
// Until migration 9 two materialized views computed them inside every
// insert into readings: two more parts per insert, each merged again and
// again into the table's largest part (readings_1h's had been rewritten 355
// times in a 7-minute run of 52,632 devices). Now the process that writes
// the readings adds up what its writer has stored (in the order the writes
// are stored) and writes the sums every writer.rollupIntervalMs, then the
// position they reach (rollup_positions). At start it sums from the store
// what was stored above that position, so a crash costs no reading its
// place in the roll-ups. (A crash between writing a flush's sums and its
// position would count that flush twice: the views were no safer, as a
// view's part is written after its table's.)
import type { ClickHouseClient } from '@clickhouse/client'
import { atDeadline } from '../lib/backoff.ts'
import { earliestTs } from '../lib/bus/position.ts'
import type { Component, ComponentStats } from '../lib/component.ts'
import { messageOf } from '../lib/errors.ts'
import { logger } from '../lib/log.ts'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { insertRows } from './insert-rows.ts'
import type { Row, WriteOutcome } from './writer.ts'

const log = logger('rollups')

/** The two roll-ups: their table, time column and the store's function for its bucket. */
const ROLLUPS = [
  { table: 'readings_1m', column: 'minute', bucket: 'toStartOfMinute' },
  { table: 'readings_1h', column: 'hour', bucket: 'toStartOfHour' },
] as const

const SUM_COLUMNS = ['community_id', 'metric', 'device_type', 'street_id', 'district_id', 'n', 'total', 'lo', 'hi'] as const

interface Sum {
  /** Bucket start, in seconds (a DateTime). */
  at: number
  community: number
  metric: string
  type: string
  street: number
  district: number
  n: number
  total: number
  lo: number
  hi: number
}

/** Sums per bucket start (s), then per key (grid, metric and type). */
type Buckets = Map<number, Map<number, Sum>>

/** What a flush writes: the rows of each roll-up table, minutes first. */
type Taken = { table: string; column: string; rows: unknown[][] }[]

function sumInto(buckets: Buckets, at: number, key: number, from: Omit<Sum, 'at'>): void {
  let m = buckets.get(at)
  if (!m) {
    m = new Map()
    buckets.set(at, m)
  }
  const s = m.get(key)
  if (!s) m.set(key, { ...from, at })
  else {
    s.n += from.n
    s.total += from.total
    if (from.lo < s.lo) s.lo = from.lo
    if (from.hi > s.hi) s.hi = from.hi
  }
}

/** A sum as a row of its roll-up table: the bucket column, then SUM_COLUMNS. */
const rowOf = (s: Sum): unknown[] => [s.at, s.community, s.metric, s.type, s.street, s.district, s.n, s.total, s.lo, s.hi]

/**
 * Sums of readings rows per minute and key; the hours are folded from the
 * minutes when they are taken, so a row costs one sum, not two. Pure: rows
 * in, rows out. `columns` are the readings writer's, to find the fields in
 * its rows.
 */
export class RollupSums {
  readonly #at: { ts: number; community: number; metric: number; type: number; value: number; street: number; district: number }
  #minutes: Buckets = new Map()
  /** Hour sums of a flush that wrote its minutes but not its hours: they go into the next. */
  #hoursBack: Buckets = new Map()
  /** A number per device type and metric, for keys that are numbers (cheaper to hash than strings built per row). */
  readonly #kinds = new Map<string, Map<string, number>>()
  #nextKind = 0
  /** Highest position of what has been added (0: none). */
  position = 0

  constructor(columns: readonly string[]) {
    const at = (name: string): number => {
      const i = columns.indexOf(name)
      if (i < 0) throw new Error(`roll-ups need the readings column ${name}`)
      return i
    }
    this.#at = { ts: at('ts'), community: at('community_id'), metric: at('metric'), type: at('device_type'), value: at('value'), street: at('street_id'), district: at('district_id') }
  }

  /** Keys held, per minute. */
  get size(): number {
    let n = 0
    for (const m of this.#minutes.values()) n += m.size
    return n
  }

  #key(community: number, type: string, metric: string): number {
    let metrics = this.#kinds.get(type)
    if (!metrics) {
      metrics = new Map()
      this.#kinds.set(type, metrics)
    }
    let kind = metrics.get(metric)
    if (kind === undefined) {
      kind = this.#nextKind++
      metrics.set(metric, kind)
    }
    // Exact below 2^53: grid ids are UInt32, and there are far fewer than 2^20 kinds.
    return community * 1_048_576 + kind
  }

  add(rows: readonly Row[], position: number | undefined): void {
    const c = this.#at
    for (const r of rows) {
      const value = r[c.value] as number
      const community = r[c.community] as number
      const metric = r[c.metric] as string
      const type = r[c.type] as string
      const at = Math.floor((r[c.ts] as number) / 60_000) * 60
      let m = this.#minutes.get(at)
      if (!m) {
        m = new Map()
        this.#minutes.set(at, m)
      }
      const key = this.#key(community, type, metric)
      const s = m.get(key)
      if (s) {
        s.n++
        s.total += value
        if (value < s.lo) s.lo = value
        if (value > s.hi) s.hi = value
      } else {
        m.set(key, { at, community, metric, type, street: r[c.street] as number, district: r[c.district] as number, n: 1, total: value, lo: value, hi: value })
      }
    }
    if (position !== undefined && position > this.position) this.position = position
  }

  /** The rows to insert per roll-up table (minutes, then hours); the sums start afresh (from the same position). */
  take(): Taken {
    const steps = this.#taking()
    for (let r = steps.next(); ; r = steps.next()) if (r.done) return r.value
  }

  /**
   * take(), with a turn of the event loop every `sliceKeys` sums: at full
   * city a flush holds some 200,000 sums a minute, and folding them into
   * hours and rows held the process (which also serves the API) for
   * hundreds of ms. The sums are swapped out at once, before the first
   * turn: what is added meanwhile goes into the next flush.
   */
  async takeInSlices(sliceKeys = 20_000): Promise<Taken> {
    const steps = this.#taking(sliceKeys)
    for (let r = steps.next(); ; r = steps.next()) {
      if (r.done) return r.value
      await nextTurn()
    }
  }

  /** Swaps the sums out, then folds the minutes into hours and makes the rows, pausing (yield) every `sliceKeys` sums. */
  *#taking(sliceKeys = Number.POSITIVE_INFINITY): Generator<void, Taken> {
    const minutes = this.#minutes
    const hours: Buckets = this.#hoursBack
    this.#minutes = new Map()
    this.#hoursBack = new Map()
    let n = 0
    const minuteRows: unknown[][] = []
    for (const m of minutes.values()) {
      for (const [key, s] of m) {
        sumInto(hours, Math.floor(s.at / 3_600) * 3_600, key, s)
        minuteRows.push(rowOf(s))
        if (++n % sliceKeys === 0) yield
      }
    }
    const hourRows: unknown[][] = []
    for (const m of hours.values()) {
      for (const s of m.values()) {
        hourRows.push(rowOf(s))
        if (++n % sliceKeys === 0) yield
      }
    }
    const [minute, hour] = ROLLUPS
    return [
      { table: minute.table, column: minute.column, rows: minuteRows },
      { table: hour.table, column: hour.column, rows: hourRows },
    ]
  }

  /** A flush that failed after writing the first `written` of the tables take() gave: the rest are added back. */
  giveBack(taken: { rows: unknown[][] }[], written: number): void {
    // Minutes not written: they go back, and the next take() folds them into hours again.
    // Minutes written but hours not: only the hours go back.
    const [minutes, hours] = taken
    const back = written === 0 ? { rows: minutes?.rows ?? [], into: this.#minutes } : { rows: written === 1 ? hours?.rows ?? [] : [], into: this.#hoursBack }
    for (const [at, community, metric, type, street, district, n, total, lo, hi] of back.rows as [number, number, string, string, number, number, number, number, number, number][]) {
      sumInto(back.into, at, this.#key(community, type, metric), { community, metric, type, street, district, n, total, lo, hi })
    }
  }
}

export interface RollupOptions {
  client: ClickHouseClient
  /** The readings writer's columns (without bus_pos). */
  columns: readonly string[]
  intervalMs: number
  /** mqtt.maxPastMs: how far behind its arrival a stored reading's time may be (bounds the catch-up query by time). */
  maxPastMs?: number
}

/**
 * The roll-ups of one readings writer: give the writer `onStored`, start
 * this before the writer (it catches up from the store first) and stop it
 * after (it writes what it holds).
 */
export class Rollups implements Component {
  readonly name = 'rollups'
  readonly #o: RollupOptions
  readonly #sums: RollupSums
  #timer: NodeJS.Timeout | undefined
  #flushing: Promise<void> | undefined
  #counts = { flushes: 0, failures: 0, rows: 0, caughtUp: 0 }

  constructor(o: RollupOptions) {
    this.#o = o
    this.#sums = new RollupSums(o.columns)
  }

  /** For the writer: rows it has stored, in the order of their writes. */
  readonly onStored = (rows: readonly Row[], outcome: WriteOutcome): void => {
    this.#sums.add(rows, outcome.position)
  }

  async start(): Promise<void> {
    await this.#catchUp()
    this.#timer = setInterval(() => void this.flush(), this.#o.intervalMs)
    this.#timer.unref()
  }

  async stop(deadline: number): Promise<void> {
    clearInterval(this.#timer)
    // The second flush writes what came in while a flush already under way was writing.
    await Promise.race([this.flush().then(() => this.flush()), atDeadline(deadline)])
  }

  stats(): ComponentStats {
    return { ...this.#counts, held: this.#sums.size, position: this.#sums.position }
  }

  /** Writes the sums held, then their position. A failure keeps them for the next flush. */
  async flush(): Promise<void> {
    if (this.#flushing) return this.#flushing
    const position = this.#sums.position
    this.#flushing = (async () => {
      // The sums are swapped out in this turn, with the position just read; the rows are made a slice at a time.
      const taken = await this.#sums.takeInSlices()
      let written = 0
      try {
        if (taken.every((t) => t.rows.length === 0)) return
        for (const t of taken) {
          // Encoded a slice at a time: the sums of a flush are many rows, and this process also serves the API.
          await insertRows(this.#o.client, t.table, [t.column, ...SUM_COLUMNS], t.rows)
          written++
        }
        await this.#record(position)
        this.#counts.flushes++
        this.#counts.rows += taken.reduce((n, t) => n + t.rows.length, 0)
      } catch (e) {
        this.#counts.failures++
        // What was written stays written; only what was not is kept for the next flush.
        this.#sums.giveBack(taken, written)
        log.warn({ err: messageOf(e) }, 'could not write the roll-ups; they are kept for the next flush')
      } finally {
        this.#flushing = undefined
      }
    })()
    return this.#flushing
  }

  /** Sums in the store what was stored above the last flush's position: what a crash kept from being flushed. */
  async #catchUp(): Promise<void> {
    const client = this.#o.client
    const rs = await client.query({ query: 'SELECT toString(max(readings_pos)) FROM rollup_positions', format: 'JSONCompactEachRow' })
    const [[from = '0'] = []] = await rs.json<[string]>()
    const params = { from: Number(from), since: earliestTs(Number(from), this.#o.maxPastMs ?? 86_400_000) }
    const where = `bus_pos > {from:UInt64} AND ts >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')`
    const top = await client.query({ query: `SELECT toString(max(bus_pos)), count() FROM readings WHERE ${where}`, query_params: params, format: 'JSONCompactEachRow' })
    const [[upto = '0', n = 0] = []] = await top.json<[string, number | string]>()
    this.#sums.position = Math.max(this.#sums.position, Number(from))
    if (Number(n) === 0) return
    for (const r of ROLLUPS) {
      await client.command({
        query: `INSERT INTO ${r.table} (${r.column}, ${SUM_COLUMNS.join(', ')})
                SELECT ${r.bucket}(ts) AS b, community_id, metric, device_type, any(street_id), any(district_id), count(), sum(value), min(value), max(value)
                FROM readings WHERE ${where} AND bus_pos <= {upto:UInt64} GROUP BY b, community_id, metric, device_type`,
        query_params: { ...params, upto },
      })
    }
    await this.#record(Number(upto))
    this.#sums.position = Math.max(this.#sums.position, Number(upto))
    this.#counts.caughtUp = Number(n)
    log.info({ rows: Number(n) }, 'roll-ups caught up with readings stored after their last flush')
  }

  async #record(position: number): Promise<void> {
    await this.#o.client.insert({ table: 'rollup_positions', columns: ['at', 'readings_pos'], values: [[Date.now(), String(position)]], format: 'JSONCompactEachRow' })
  }
}
