// Roll-ups: readings summed per community grid, metric and device type, per
// minute (readings_1m) and per hour (readings_1h), for the history and the
// time-lapse queries.
//
// Until migration 9 two materialized views computed them inside every
// insert into readings: two more parts per insert, each merged again and
// again into the table's largest part (readings_1h's had been rewritten 355
// times in a 7-minute run of 52,632 devices). Now the process that writes
// the readings adds up what its writer has stored (in the order the writes
// are stored) and, every writer.rollupIntervalMs, writes the minutes that
// have ended (with their hours), then what the tables hold
// (rollup_positions: the position reached, and the minutes held back). At
// start it takes back from the store what the tables do not hold, so a
// crash costs no reading its place in the roll-ups. (A crash between
// writing a flush's sums and its record would count that flush twice: the
// views were no safer, as a view's part is written after its table's.)
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

/** The two roll-ups: their table and time column. */
const ROLLUPS = [
  { table: 'readings_1m', column: 'minute' },
  { table: 'readings_1h', column: 'hour' },
] as const

const SUM_COLUMNS = ['community_id', 'metric', 'device_type', 'street_id', 'district_id', 'n', 'total', 'lo', 'hi'] as const

/**
 * How long after its end a minute is written: readings reach the writer a
 * little after their own time (the device's clock, the store's batch). What
 * comes later still is written with the next flush as a sum of its own,
 * which the table adds to the minute's (AggregatingMergeTree).
 */
export const CLOSE_AFTER_MS = 10_000

/** A sum as the store adds it up from readings: minute start (s), community, metric, device type, street, district, n, total, lo, hi. */
export type StoreSum = readonly [number, number, string, string, number, number, number, number, number, number]

/** What a flush writes: the rows of each roll-up table, minutes first. */
type Taken = { table: string; column: string; rows: unknown[][] }[]

/** One sum's fields in a bucket's array, in this order. */
const KEY = 0
const STREET = 1
const DISTRICT = 2
const N = 3
const TOTAL = 4
const LO = 5
const HI = 6
/** The key's ordinal (Ordinals): kept so that a minute folds into its hour, and a bucket re-indexes, without looking it up again. */
const ORDINAL = 7
const STRIDE = 8
/** A bucket indexes its keys by an array once it holds a sum for at least one in this many ordinals up to its highest (the array then costs at most 4 * this bytes a sum)... */
const DENSE_EVERY = 32
/** ...and at least this many sums: below it a map is as quick and smaller. */
const MIN_DENSE_SUMS = 64

/**
 * The sums of one bucket (a minute or an hour), one slot per key, in one
 * Float64Array instead of an object each: a minute is held until it has
 * ended (up to a minute and a flush), and at full city that is some 500,000
 * sums twice over; as objects they would be promoted and marked by every
 * major collection of the process that also serves the API, as numbers in
 * one array they are not traced at all.
 *
 * A key's slot is found by its ordinal (Ordinals), a small integer, in an
 * Int32Array: no hash table a bucket. Until 2026-12-02 a bucket kept a
 * Map from the key itself (community * 2^20 + kind, a heap number above
 * 2^31), and at full city that lookup was a fifth of the primary's main
 * thread (a CPU profile at 219,300 devices): a Map of half a million
 * entries a minute, one cache miss after another, and a number boxed a row.
 *
 * An array by ordinal costs 4 bytes for every ordinal up to the highest
 * the bucket holds, whatever it holds: a minute of late readings (a device
 * sending a day's backlog opens 1,440 of them in one flush) would cost
 * megabytes for a few sums each, 5.5 GB for one device's day in a review's
 * test. So a bucket keeps its ordinals in a small Map (small integers as
 * keys, nothing boxed) while it is sparse, and takes the array once it
 * holds at least one sum for every DENSE_EVERY ordinals up to its highest:
 * the index then costs at most 4 * DENSE_EVERY bytes a sum.
 */
class Bucket {
  readonly at: number
  /** Slot + 1 of each ordinal (0: none yet), while the bucket is dense. */
  #slotOf: Int32Array | undefined
  /** The slot of each ordinal, while the bucket is sparse. */
  #sparse: Map<number, number> | undefined
  /** The highest ordinal held. */
  #top = -1
  #size = 0
  #data = new Float64Array(STRIDE * 64)

  constructor(at: number) {
    this.at = at
  }

  get size(): number {
    return this.#size
  }

  /** Adds a sum to its key's (of ordinal `ordinal`): one reading's (n 1, its value thrice), a minute's folded into its hour, a flush's given back, the store's. */
  addSum(ordinal: number, key: number, street: number, district: number, n: number, total: number, lo: number, hi: number): void {
    const slot = this.#slotOf ? (ordinal < this.#slotOf.length ? (this.#slotOf[ordinal] as number) - 1 : -1) : (this.#sparse?.get(ordinal) ?? -1)
    if (slot < 0) {
      this.#put(ordinal, key, street, district, n, total, lo, hi)
      return
    }
    const d = this.#data
    const o = slot * STRIDE
    d[o + N] = (d[o + N] as number) + n
    d[o + TOTAL] = (d[o + TOTAL] as number) + total
    if (lo < (d[o + LO] as number)) d[o + LO] = lo
    if (hi > (d[o + HI] as number)) d[o + HI] = hi
  }

  #put(ordinal: number, key: number, street: number, district: number, n: number, total: number, lo: number, hi: number): void {
    const slot = this.#size++
    if ((slot + 1) * STRIDE > this.#data.length) {
      const grown = new Float64Array(this.#data.length * 2)
      grown.set(this.#data)
      this.#data = grown
    }
    const o = slot * STRIDE
    const d = this.#data
    d[o + KEY] = key
    d[o + STREET] = street
    d[o + DISTRICT] = district
    d[o + N] = n
    d[o + TOTAL] = total
    d[o + LO] = lo
    d[o + HI] = hi
    d[o + ORDINAL] = ordinal
    this.#index(ordinal, slot)
  }

  /** Records `slot` (already in the data and counted) as `ordinal`'s, in the array or the map, whichever the bucket's density asks for. */
  #index(ordinal: number, slot: number): void {
    if (ordinal > this.#top) this.#top = ordinal
    if (this.#slotOf && ordinal < this.#slotOf.length) {
      this.#slotOf[ordinal] = slot + 1
      return
    }
    const dense = this.#size >= MIN_DENSE_SUMS && this.#size * DENSE_EVERY > this.#top
    if (!this.#slotOf && !dense) {
      ;(this.#sparse ??= new Map()).set(ordinal, slot)
      return
    }
    // Sparse turning dense, or an array too short: dense again with room to grow into, or sparse again.
    this.#reindex(dense)
  }

  /** Builds the index afresh from the data: an array by ordinal (dense) or a map. */
  #reindex(dense: boolean): void {
    const d = this.#data
    if (dense) {
      const slotOf = new Int32Array(Math.min(2 * (this.#top + 1), this.#size * DENSE_EVERY))
      for (let slot = 0; slot < this.#size; slot++) slotOf[d[slot * STRIDE + ORDINAL] as number] = slot + 1
      this.#slotOf = slotOf
      this.#sparse = undefined
    } else {
      const sparse = new Map<number, number>()
      for (let slot = 0; slot < this.#size; slot++) sparse.set(d[slot * STRIDE + ORDINAL] as number, slot)
      this.#sparse = sparse
      this.#slotOf = undefined
    }
  }

  /** The sums in the order their keys came, STRIDE numbers each (the fields above), up to `size * STRIDE`: read in place, no view a sum. */
  get data(): Float64Array {
    return this.#data
  }
}

/**
 * A small integer for each key (community grid, device type and metric)
 * seen, given in the order they come, so that a bucket finds a key's slot
 * by index. The communities are a Map of tens of thousands of entries (the
 * city's 19,136 community grids), each with an Int32Array by kind: small
 * enough to stay in the cache, where a Map of every key was not.
 */
class Ordinals {
  readonly #byCommunity = new Map<number, Int32Array>()
  #count = 0

  /** The ordinal of `kind` in `community` (ordinal + 1 kept, 0: none yet). */
  of(community: number, kind: number): number {
    let kinds = this.#byCommunity.get(community)
    if (kinds === undefined || kind >= kinds.length) {
      const grown = new Int32Array(Math.max(16, kind + 1, (kinds?.length ?? 0) * 2))
      if (kinds) grown.set(kinds)
      kinds = grown
      this.#byCommunity.set(community, kinds)
    }
    const o = kinds[kind] as number
    if (o > 0) return o - 1
    kinds[kind] = ++this.#count
    return this.#count - 1
  }
}

/** Buckets by their start, in seconds (a DateTime). */
type Buckets = Map<number, Bucket>

function bucketOf(buckets: Buckets, at: number): Bucket {
  let b = buckets.get(at)
  if (!b) {
    b = new Bucket(at)
    buckets.set(at, b)
  }
  return b
}

/**
 * Sums of readings rows per minute and key (community grid, device type and
 * metric), held until the minute has ended: a minute is written once, not at
 * every flush while it lasts (at the city's shape, where every device
 * reports within a few flushes, that wrote each key's minute about four
 * times and its hour at every flush: the roll-ups were half the rows the
 * store took). The hours are folded from the minutes when they are taken.
 * Pure: rows in, rows out. `columns` are the readings writer's, to find the
 * fields in its rows.
 */
export class RollupSums {
  readonly #at: { ts: number; community: number; metric: number; type: number; value: number; street: number; district: number }
  #minutes: Buckets = new Map()
  /** Hour sums of a flush that wrote its minutes but not its hours: they go into the next. */
  #hoursBack: Buckets = new Map()
  /** A number per device type and metric, for keys that are numbers (cheaper to hash than strings built per row). */
  readonly #kinds = new Map<string, Map<string, number>>()
  /** The device type and metric of each of those numbers. */
  readonly #kindNames: [type: string, metric: string][] = []
  readonly #ordinals = new Ordinals()
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

  #kind(type: string, metric: string): number {
    let metrics = this.#kinds.get(type)
    if (!metrics) {
      metrics = new Map()
      this.#kinds.set(type, metrics)
    }
    let kind = metrics.get(metric)
    if (kind === undefined) {
      kind = this.#kindNames.length
      this.#kindNames.push([type, metric])
      metrics.set(metric, kind)
    }
    return kind
  }

  /** Adds a sum to `bucket` under its key (community, type, metric). */
  #addTo(bucket: Bucket, community: number, type: string, metric: string, street: number, district: number, n: number, total: number, lo: number, hi: number): void {
    const kind = this.#kind(type, metric)
    // The key as a row's fields: exact below 2^53, grid ids are UInt32 and there are far fewer than 2^20 kinds.
    bucket.addSum(this.#ordinals.of(community, kind), community * 1_048_576 + kind, street, district, n, total, lo, hi)
  }

  /** Adds a bucket's sum at `o` of its data (a minute's, to its hour), under the ordinal it was held by. */
  #fold(into: Bucket, d: Float64Array, o: number): void {
    into.addSum(d[o + ORDINAL] as number, d[o + KEY] as number, d[o + STREET] as number, d[o + DISTRICT] as number, d[o + N] as number, d[o + TOTAL] as number, d[o + LO] as number, d[o + HI] as number)
  }

  add(rows: readonly Row[], position: number | undefined): void {
    const c = this.#at
    let bucket: Bucket | undefined
    for (const r of rows) {
      const at = Math.floor((r[c.ts] as number) / 60_000) * 60
      // A write's rows are mostly of one minute.
      if (bucket?.at !== at) bucket = bucketOf(this.#minutes, at)
      const value = r[c.value] as number
      this.#addTo(bucket, r[c.community] as number, r[c.type] as string, r[c.metric] as string, r[c.street] as number, r[c.district] as number, 1, value, value, value)
    }
    if (position !== undefined && position > this.position) this.position = position
  }

  /**
   * Adds what the store summed per minute (catch-up after a crash): rows of
   * [minute (s), community, metric, type, street, district, n, total, lo, hi].
   */
  addSums(rows: readonly StoreSum[], position: number): void {
    for (const [at, community, metric, type, street, district, n, total, lo, hi] of rows) {
      this.#addTo(bucketOf(this.#minutes, at), community, type, metric, street, district, n, total, lo, hi)
    }
    if (position > this.position) this.position = position
  }

  /**
   * The rows to insert per roll-up table (minutes, then hours) for the
   * minutes that start before `before` (seconds; every minute held by
   * default); the others stay.
   */
  take(o: { before?: number } = {}): Taken {
    const steps = this.#taking(o.before ?? Number.POSITIVE_INFINITY)
    for (let r = steps.next(); ; r = steps.next()) if (r.done) return r.value
  }

  /**
   * take(), with a turn of the event loop every `sliceKeys` sums: at full
   * city a minute holds some 500,000 sums, and folding them into hours and
   * rows held the process (which also serves the API) for hundreds of ms.
   * The minutes taken are swapped out at once, before the first turn: what
   * is added meanwhile goes into a later flush.
   */
  async takeInSlices(o: { before?: number; sliceKeys?: number } = {}): Promise<Taken> {
    const steps = this.#taking(o.before ?? Number.POSITIVE_INFINITY, o.sliceKeys ?? 20_000)
    for (let r = steps.next(); ; r = steps.next()) {
      if (r.done) return r.value
      await nextTurn()
    }
  }

  /** Swaps the minutes taken out, then folds them into hours and makes the rows, pausing (yield) every `sliceKeys` sums. */
  *#taking(before: number, sliceKeys = Number.POSITIVE_INFINITY): Generator<void, Taken> {
    const minutes: Bucket[] = []
    for (const [at, m] of this.#minutes) {
      if (at >= before) continue
      minutes.push(m)
      this.#minutes.delete(at)
    }
    const hours: Buckets = this.#hoursBack
    this.#hoursBack = new Map()
    let n = 0
    const minuteRows: unknown[][] = []
    for (const m of minutes) {
      const hour = bucketOf(hours, Math.floor(m.at / 3_600) * 3_600)
      const d = m.data
      for (let o = 0; o < m.size * STRIDE; o += STRIDE) {
        this.#fold(hour, d, o)
        minuteRows.push(this.#rowOf(m.at, d, o))
        if (++n % sliceKeys === 0) yield
      }
    }
    const hourRows: unknown[][] = []
    for (const h of hours.values()) {
      for (let o = 0; o < h.size * STRIDE; o += STRIDE) {
        hourRows.push(this.#rowOf(h.at, h.data, o))
        if (++n % sliceKeys === 0) yield
      }
    }
    const [minute, hour] = ROLLUPS
    return [
      { table: minute.table, column: minute.column, rows: minuteRows },
      { table: hour.table, column: hour.column, rows: hourRows },
    ]
  }

  /** The sum at `o` of a bucket's data as a row of its roll-up table: the bucket column, then SUM_COLUMNS. */
  #rowOf(at: number, d: Float64Array, o: number): unknown[] {
    const key = d[o + KEY] as number
    const [type, metric] = this.#kindNames[key % 1_048_576] as [string, string]
    return [at, Math.floor(key / 1_048_576), metric, type, d[o + STREET], d[o + DISTRICT], d[o + N], d[o + TOTAL], d[o + LO], d[o + HI]]
  }

  /** A flush that failed after writing the first `written` of the tables take() gave: the rest are added back. */
  giveBack(taken: { rows: unknown[][] }[], written: number): void {
    // Minutes not written: they go back, and the next take() folds them into hours again.
    // Minutes written but hours not: only the hours go back.
    const [minutes, hours] = taken
    const back = written === 0 ? { rows: minutes?.rows ?? [], into: this.#minutes } : { rows: written === 1 ? hours?.rows ?? [] : [], into: this.#hoursBack }
    for (const [at, community, metric, type, street, district, n, total, lo, hi] of back.rows as [number, number, string, string, number, number, number, number, number, number][]) {
      this.#addTo(bucketOf(back.into, at), community, type, metric, street, district, n, total, lo, hi)
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
  /** How long after its end a minute is written (CLOSE_AFTER_MS); the clock (ms) it is judged by. For tests. */
  closeAfterMs?: number
  now?: () => number
}

/**
 * What the roll-up tables hold, as the last flush recorded it
 * (rollup_positions): every reading stored up to `position` is summed in
 * them, except those of the minutes from `openFrom` on stored after `base`,
 * which were held in memory, not yet ended. A flush that writes everything
 * (at stop) makes `base` its position.
 */
export interface Written {
  position: number
  /** Seconds: a minute start. */
  openFrom: number
  base: number
}

/**
 * What the roll-up tables hold, as the last flush recorded it (Written),
 * and when it did (ms); nothing yet: position 0. Of two records with one
 * position, the one that wrote everything (its base is higher), else the
 * later (open_from only grows between two such).
 */
export async function lastRollupRecord(client: ClickHouseClient): Promise<Written & { at: number }> {
  // One record every flush (5,760 a day at 15 s): only the last day's are read (the table is sorted by `at`), not the table's years.
  const rs = await client.query({
    query: `SELECT toString(readings_pos), open_from, toString(base_pos), toUnixTimestamp64Milli(at) FROM rollup_positions
            WHERE at >= (SELECT max(at) FROM rollup_positions) - INTERVAL 1 DAY
            ORDER BY readings_pos DESC, base_pos DESC, open_from DESC, at DESC LIMIT 1`,
    format: 'JSONCompactEachRow',
  })
  const [[pos = '0', openFrom = 0, base = '0', at = 0] = []] = await rs.json<[string, number, string, number | string]>()
  return { position: Number(pos), openFrom: Number(openFrom), base: Number(base), at: Number(at) }
}

/**
 * Up to when (ms) the roll-up tables hold what was stored, as far as the
 * last flush's record tells: up to the first minute it held back, or up to
 * the flush itself when it held none. Readings after it are in the
 * readings table only (a reading stored late for an earlier minute
 * excepted).
 */
export async function rollupsHoldUpTo(client: ClickHouseClient): Promise<number> {
  const r = await lastRollupRecord(client)
  return r.openFrom > 0 ? r.openFrom * 1000 : r.at
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
  readonly #closeAfterMs: number
  readonly #now: () => number
  /** What the tables hold (Written). */
  #written: Written = { position: 0, openFrom: 0, base: 0 }
  /** `#written` was not recorded (its record failed): the next flush records it. */
  #unrecorded = false
  /**
   * Minutes before this are in readings_1m: a flush takes none from here
   * back (the record's openFrom, or further when a flush wrote its minutes
   * and then failed on its hours).
   */
  #minutesWritten = 0
  #timer: NodeJS.Timeout | undefined
  #flushing: Promise<void> | undefined
  #counts = { flushes: 0, failures: 0, rows: 0, caughtUp: 0 }

  constructor(o: RollupOptions) {
    this.#o = o
    this.#sums = new RollupSums(o.columns)
    this.#closeAfterMs = o.closeAfterMs ?? CLOSE_AFTER_MS
    this.#now = o.now ?? Date.now
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
    // Everything held, the minutes not yet ended too: the next start need not sum them from the store.
    // The second flush writes what came in while a flush already under way was writing.
    await Promise.race([this.flush({ all: true }).then(() => this.flush({ all: true })), atDeadline(deadline)])
  }

  stats(): ComponentStats {
    return { ...this.#counts, held: this.#sums.size, position: this.#sums.position }
  }

  /**
   * Writes the sums of the minutes that have ended (`all`: of every minute
   * held), then what the tables now hold (Written). A failure keeps them for
   * the next flush; a record that failed after its sums were written is
   * written by the next flush, also one with nothing to write.
   */
  async flush(o: { all?: boolean } = {}): Promise<void> {
    if (this.#flushing) return this.#flushing
    const position = this.#sums.position
    // Never before a minute already written: a clock that went back would otherwise record as held minutes the tables have.
    const before = o.all ? Number.POSITIVE_INFINITY : Math.max(this.#minutesWritten, Math.floor((this.#now() - this.#closeAfterMs) / 60_000) * 60)
    this.#flushing = (async () => {
      let taken: Taken = []
      let written = 0
      /** The sums are written (or there were none): what failed is the record. */
      let recording = false
      try {
        // The sums are swapped out in this turn, with the position just read; the rows are made a slice at a time.
        taken = await this.#sums.takeInSlices({ before })
        if (taken.every((t) => t.rows.length === 0)) {
          recording = true
          if (this.#unrecorded) await this.#record(this.#written)
          return
        }
        for (const t of taken) {
          // Encoded a slice at a time: the sums of a flush are many rows, and this process also serves the API.
          await insertRows(this.#o.client, t.table, [t.column, ...SUM_COLUMNS], t.rows)
          written++
          if (written === 1 && !o.all) this.#minutesWritten = before
        }
        // The tables hold this now, recorded or not.
        this.#written = o.all ? { position, openFrom: 0, base: position } : { position, openFrom: before, base: this.#written.base }
        this.#minutesWritten = this.#written.openFrom
        this.#counts.rows += taken.reduce((n, t) => n + t.rows.length, 0)
        recording = true
        await this.#record(this.#written)
        this.#counts.flushes++
      } catch (e) {
        this.#counts.failures++
        // What was written stays written; only what was not is kept for the next flush.
        this.#sums.giveBack(taken, written)
        log.warn({ err: messageOf(e) }, recording
          ? 'could not record what the roll-ups hold; the next flush records it'
          : 'could not write the roll-ups; they are kept for the next flush')
      } finally {
        this.#flushing = undefined
      }
    })()
    return this.#flushing
  }

  /**
   * Takes back into memory, summed by the store, what the tables do not
   * hold (Written): the minutes held when the last process ended, and what
   * was stored after its last flush. Then writes what of it has ended.
   */
  async #catchUp(): Promise<void> {
    const client = this.#o.client
    const { position, openFrom, base } = await lastRollupRecord(client)
    const w: Written = { position, openFrom, base }
    this.#written = w
    this.#minutesWritten = openFrom
    this.#sums.position = Math.max(this.#sums.position, w.position)
    // Bounded by time, so the store reads only the partitions that can hold them: stored after the position, or in the minutes held.
    const maxPastMs = this.#o.maxPastMs ?? 86_400_000
    const since = Math.min(earliestTs(w.position, maxPastMs), Math.max(w.openFrom * 1000, earliestTs(w.base, maxPastMs)))
    const held = await client.query({
      query: `SELECT toUnixTimestamp(toStartOfMinute(ts)) AS b, community_id, metric, device_type, any(street_id), any(district_id),
                toUInt64(count()), sum(value), min(value), max(value), toString(max(bus_pos))
              FROM readings
              WHERE ts >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')
                AND (bus_pos > {position:UInt64} OR (ts >= toDateTime({openFrom:UInt32}, 'UTC') AND bus_pos > {base:UInt64}))
              GROUP BY b, community_id, metric, device_type`,
      query_params: { since, position: w.position, openFrom: w.openFrom, base: w.base },
      format: 'JSONCompactEachRow',
    })
    const sums: StoreSum[] = []
    let top = w.position
    let n = 0
    for (const [b, c, m, t, s, d, count, total, lo, hi, pos] of await held.json<[number, number, string, string, number, number, number | string, number, number, number, string]>()) {
      sums.push([b, c, m, t, s, d, Number(count), total, lo, hi])
      n += Number(count)
      if (Number(pos) > top) top = Number(pos)
    }
    if (sums.length === 0) return
    this.#sums.addSums(sums, top)
    this.#counts.caughtUp = n
    log.info({ rows: n, sums: sums.length }, 'roll-ups took back what was stored and not yet written to them')
    await this.flush()
  }

  async #record(w: Written): Promise<void> {
    this.#unrecorded = true
    await this.#o.client.insert({
      table: 'rollup_positions',
      columns: ['at', 'readings_pos', 'open_from', 'base_pos'],
      values: [[Date.now(), String(w.position), w.openFrom, String(w.base)]],
      format: 'JSONCompactEachRow',
    })
    this.#unrecorded = false
  }
}
