// The batching writer: where rows become ClickHouse inserts. Callers hand it
// rows and get a promise that settles once every row is durably inserted (or
// recorded as a dead letter): that promise is what an MQTT PUBACK or a Kafka
// offset commit waits for. Rows queue up to a bound, then callers wait
// (backpressure). A batch is flushed when it is full or its oldest row has
// waited flushIntervalMs. Transient failures are retried with backoff; a batch
// the engine rejects for its data is split in halves until the bad rows are
// isolated, and each bad row goes to the dead letters with the server's
// reason.
import { randomUUID } from 'node:crypto'
import type { ClickHouseClient } from '@clickhouse/client'
import type { Counter } from 'prom-client'
import { backoffDelayMs, sleep } from '../lib/backoff.ts'
import type { Component, ComponentStats, Health } from '../lib/component.ts'
import { CitytwinError, messageOf } from '../lib/errors.ts'
import { logger } from '../lib/log.ts'
import { counter, histogram, sampledGauge } from '../lib/metrics.ts'
import type { WriterConfig } from './config.ts'
import { classifyInsertError } from './errors.ts'
import type { PositionClock } from '../lib/bus/position.ts'
import { rowsStored } from '../lib/bus/stored.ts'
import { Fifo } from '../lib/fifo.ts'
import { BodySlices, encodeRows, sendEncoded } from './insert-rows.ts'

// Where they were first written: the tests and other stages read them from the writer.
export { drained, encodeRows } from './insert-rows.ts'

/**
 * One row: the values of `columns`, in order, each JSON-encodable as
 * ClickHouse expects it. DateTime64(3) columns take integer epoch milliseconds.
 */
export type Row = readonly unknown[]

export interface WriteOutcome {
  inserted: number
  deadLettered: number
  /** The bus position stored with these rows, for a writer that keeps positions (lib/bus/position.ts). */
  position?: number
  /** Which of the rows (their index in the write) the store refused and went to the dead letters; absent when none. */
  deadLetteredRows?: number[]
}

export interface DeadLetter {
  ts: number
  source: string
  code: string
  reason: string
  deviceId?: string
  topic?: string
  raw: string | Buffer
}

/** Where rows go: a StoreWriter, or a relay to the process that holds one. */
export interface RowSink {
  /** Settles once the rows are stored or dead-lettered; rejects when they could not be. */
  write(rows: readonly Row[]): Promise<WriteOutcome>
}

/** Where rows the store refuses are recorded. */
export interface DeadLetterSink {
  deadLetter(letters: readonly DeadLetter[]): Promise<void>
}

interface Ticket {
  left: number
  inserted: number
  deadLettered: number
  failed: boolean
  /** Set once every row is stored or dead-lettered, or the write failed; it is told in write order. */
  done: boolean
  error: unknown
  position: number | undefined
  /** Made when the first row is dead-lettered: most writes never need it. */
  deadLetteredRows: number[] | undefined
  resolve: (o: WriteOutcome) => void
  reject: (e: unknown) => void
}

// Rows are queued already encoded, one JSONCompactEachRow line each: a
// short string instead of a long-lived array per row keeps the garbage
// collector out of the way, and the queue costs about what the insert will.
interface Segment {
  ticket: Ticket
  lines: string[]
  /** The index of its first line among the rows of its write (a write's rows may be cut across batches). */
  first: number
  /** When its rows were queued (ms). */
  at: number
}

export interface WriterOptions {
  client: ClickHouseClient
  table: string
  columns: readonly string[]
  config: WriterConfig
  deadLetters?: DeadLetterSink
  /**
   * Stamps each write's rows with the next bus position, in a last column
   * `bus_pos` (lib/bus/position.ts). The writer settles writes in the order
   * they were made either way, so positions reach the bus in order.
   */
  positions?: PositionClock
  /**
   * Told of each write whose rows are stored (less those dead-lettered), in
   * the order the writes were made, before the writer itself is: the
   * roll-ups add them up (rollups.ts).
   */
  onStored?: (rows: readonly Row[], outcome: WriteOutcome) => void
}

const rowsTotal = counter('citytwin_store_rows_total', 'Rows handed to the store writer, by outcome', ['table', 'outcome'])
const insertSeconds = histogram('citytwin_store_insert_seconds', 'Time of one INSERT into the store', ['table'], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
const retriesTotal = counter('citytwin_store_insert_retries_total', 'INSERTs retried after a transient failure', ['table'])
const queuedRows = sampledGauge('citytwin_store_queue_rows', 'Rows waiting in the store writer queue', ['table'])

export class StoreWriter implements Component, RowSink {
  readonly name: string
  readonly #client: ClickHouseClient
  readonly #table: string
  /** The columns each line holds, in order (bus_pos last where the writer places rows on the bus). */
  readonly #columns: readonly string[]
  readonly #cfg: WriterConfig
  readonly #deadLetters: DeadLetterSink | undefined
  readonly #positions: PositionClock | undefined
  readonly #onStored: WriterOptions['onStored']
  readonly #log
  /** Writes not yet told their outcome, in the order they were made. */
  readonly #unsettled = new Fifo<Ticket>()
  #queue: Segment[] = []
  #queued = 0
  #oldestAt = 0
  /** Inserts in flight, each with when its oldest row was queued. */
  #inFlight = new Map<Promise<void>, number>()
  #spaceWaiters: (() => void)[] = []
  #running = false
  #accepting = false
  #timer: NodeJS.Timeout | undefined
  #flushDue = false
  #abort = new AbortController()
  #counts = { received: 0, inserted: 0, deadLettered: 0, failed: 0, batches: 0, retries: 0, splits: 0 }
  #lastError = ''
  /** Bound once: it moves with every batch, and prom-client hashes a labels object on each call. */
  readonly #insertedRows: Counter.Internal
  /** The queue's gauge is read at each scrape (lib/metrics.ts sampledGauge), not set on each write. */
  #unwatchQueued: (() => void) | undefined

  constructor(opts: WriterOptions) {
    this.#client = opts.client
    this.#table = opts.table
    this.#cfg = opts.config
    this.#deadLetters = opts.deadLetters
    this.#positions = opts.positions
    this.#onStored = opts.onStored
    this.name = `writer:${opts.table}`
    this.#columns = opts.positions ? [...opts.columns, 'bus_pos'] : opts.columns
    this.#log = logger('store-writer', { table: opts.table })
    this.#insertedRows = rowsTotal.labels({ table: opts.table, outcome: 'inserted' })
  }

  async start(): Promise<void> {
    this.#running = true
    this.#accepting = true
    this.#abort = new AbortController()
    this.#unwatchQueued ??= queuedRows.watch({ table: this.#table }, () => this.#queued)
  }

  /**
   * Queues rows; resolves once all of them are inserted or dead-lettered.
   * Waits first while the queue is full. Rejects with a retryable error if
   * the store stays unreachable through every retry.
   */
  async write(rows: readonly Row[]): Promise<WriteOutcome> {
    if (!this.#accepting) throw new CitytwinError('QUEUE_CLOSED', `${this.name} is not accepting rows (not started or stopping)`)
    if (rows.length === 0) return { inserted: 0, deadLettered: 0 }
    // An oversized write may enter an empty queue, or it would wait for ever.
    while (this.#queued > 0 && this.#queued + rows.length > this.#cfg.queueRows) {
      await new Promise<void>((resolve) => this.#spaceWaiters.push(resolve))
      if (!this.#accepting) throw new CitytwinError('QUEUE_CLOSED', `${this.name} stopped while the write waited for room`)
    }
    const lines = encodeRows(rows)
    const position = this.#positions?.next()
    if (position !== undefined) {
      // The position is the row's last column: appended to its encoded line, not to the caller's array.
      const tail = `,${position}]`
      for (let i = 0; i < lines.length; i++) lines[i] = (lines[i] as string).slice(0, -1) + tail
    }
    const onStored = this.#onStored
    return new Promise<WriteOutcome>((settled, reject) => {
      const resolve = onStored
        ? (o: WriteOutcome): void => {
            try {
              onStored(rowsStored(rows, o.deadLetteredRows), o)
            } catch (e) {
              // What listens is not the writer's caller: the rows are stored either way.
              this.#log.error({ err: e }, 'the listener of stored rows failed')
            }
            settled(o)
          }
        : settled
      const ticket: Ticket = { left: rows.length, inserted: 0, deadLettered: 0, failed: false, done: false, error: undefined, position, deadLetteredRows: undefined, resolve, reject }
      this.#unsettled.push(ticket)
      const at = Date.now()
      if (this.#queued === 0) this.#oldestAt = at
      this.#queue.push({ ticket, lines, at, first: 0 })
      this.#queued += rows.length
      this.#counts.received += rows.length
      this.#schedule()
    })
  }

  /** Flushes everything queued now and waits for it. */
  async flush(): Promise<void> {
    while (this.#queued > 0 || this.#inFlight.size > 0) {
      this.#flushDue = true
      this.#pump()
      if (this.#inFlight.size > 0) await Promise.race(this.#inFlight.keys())
    }
  }

  async stop(deadline: number): Promise<void> {
    this.#accepting = false
    for (const wake of this.#spaceWaiters.splice(0)) wake()
    const drained = this.flush()
    const timer = new AbortController()
    const timeout = sleep(Math.max(0, deadline - Date.now()), timer.signal).then(() => 'timeout' as const)
    const outcome = await Promise.race([drained.then(() => 'drained' as const), timeout])
    timer.abort()
    this.#running = false
    this.#unwatchQueued?.()
    this.#unwatchQueued = undefined
    clearTimeout(this.#timer)
    this.#timer = undefined
    if (outcome === 'timeout') {
      this.#abort.abort()
      const err = new CitytwinError('SHUTDOWN_TIMEOUT', `${this.name} stopped before its rows were stored`)
      for (const seg of this.#queue.splice(0)) this.#fail(seg, err)
      this.#queued = 0
      throw err
    }
  }

  stats(): ComponentStats {
    return { ...this.#counts, queued: this.#queued, inFlight: this.#inFlight.size, lastError: this.#lastError }
  }

  /** How long the oldest row not yet stored has waited, in ms at `now` (queued or in an insert); 0 when none waits. */
  oldestPendingMs(now: number): number {
    let oldest = this.#queue[0]?.at ?? now
    for (const at of this.#inFlight.values()) if (at < oldest) oldest = at
    return Math.max(0, now - oldest)
  }

  /** Unhealthy while the latest insert failed; the next success clears it. */
  async health(): Promise<Health> {
    return this.#lastError ? { ok: false, detail: this.#lastError } : { ok: true }
  }

  /** Called after rows arrive: flush full batches now, and arm the timer for the rest. */
  #schedule(): void {
    if (this.#queued >= this.#cfg.maxBatchRows) this.#pump()
    this.#arm()
  }

  #arm(): void {
    if (this.#timer !== undefined || this.#flushDue || this.#queued === 0 || !this.#running) return
    const wait = Math.max(0, this.#oldestAt + this.#cfg.flushIntervalMs - Date.now())
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      // The oldest row has waited long enough: partial batches may go now,
      // and stay allowed until the queue has been emptied.
      this.#flushDue = true
      this.#pump()
    }, wait)
  }

  /** Starts as many inserts as concurrency allows; partial batches only when a flush is due. */
  #pump(): void {
    while (this.#inFlight.size < this.#cfg.concurrency && this.#queued > 0 && (this.#flushDue || this.#queued >= this.#cfg.maxBatchRows)) {
      const batch = this.#takeBatch()
      const p: Promise<void> = this.#insertBatch(batch).finally(() => {
        this.#inFlight.delete(p)
        this.#pump()
      })
      this.#inFlight.set(p, batch[0]?.at ?? Date.now())
    }
    if (this.#queued === 0) this.#flushDue = false
    this.#arm()
  }

  #takeBatch(): Segment[] {
    const batch: Segment[] = []
    let n = 0
    // Walk with an index and cut once: the queue can hold tens of thousands
    // of one-message segments, and Array.shift() per segment is quadratic.
    let i = 0
    while (n < this.#cfg.maxBatchRows && i < this.#queue.length) {
      const seg = this.#queue[i] as Segment
      const room = this.#cfg.maxBatchRows - n
      if (seg.lines.length <= room) {
        batch.push(seg)
        n += seg.lines.length
        i++
      } else {
        batch.push({ ticket: seg.ticket, lines: seg.lines.splice(0, room), at: seg.at, first: seg.first })
        seg.first += room
        n += room
      }
    }
    this.#queue = i === this.#queue.length ? [] : this.#queue.slice(i)
    this.#queued -= n
    this.#oldestAt = Date.now()
    while (this.#spaceWaiters.length > 0 && this.#queued < this.#cfg.queueRows) this.#spaceWaiters.shift()?.()
    return batch
  }

  async #insertBatch(batch: Segment[]): Promise<void> {
    this.#counts.batches++
    // One token for every attempt of this batch: when an insert was stored but
    // its answer lost (a reset connection, a timeout), the retry is recognised
    // by the store and not stored again (tables with non_replicated_deduplication_window).
    const token = `${this.#table}:${randomUUID()}`
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#insert(batch, token)
        this.#lastError = ''
        for (const seg of batch) this.#settle(seg, seg.lines.length, 0)
        return
      } catch (e) {
        const kind = classifyInsertError(e)
        this.#lastError = messageOf(e)
        if (kind === 'row') return this.#isolate(batch, e)
        if (kind === 'fatal' || attempt >= this.#cfg.maxRetries || this.#abort.signal.aborted) {
          const err = new CitytwinError(kind === 'fatal' ? 'STORE_REJECTED' : 'STORE_UNAVAILABLE',
            `insert into ${this.#table} failed${kind === 'fatal' ? '' : ` after ${attempt + 1} attempts`}: ${messageOf(e)}`, { cause: e })
          this.#log.error({ err: e, rows: countRows(batch), attempts: attempt + 1 }, 'insert failed; writers are told')
          for (const seg of batch) this.#fail(seg, err)
          return
        }
        this.#counts.retries++
        retriesTotal.inc({ table: this.#table })
        const delay = backoffDelayMs(attempt, { initialMs: this.#cfg.retryInitialMs, maxMs: this.#cfg.retryMaxMs })
        this.#log.warn({ err: e, attempt: attempt + 1, delayMs: delay }, 'insert failed, retrying')
        await sleep(delay, this.#abort.signal)
      }
    }
  }

  async #insert(batch: Segment[], token: string): Promise<void> {
    const body = new BodySlices()
    for (const seg of batch) body.add(seg.lines)
    const end = insertSeconds.startTimer({ table: this.#table })
    // One INSERT below ClickHouse's min_insert_block_size is one block, so it
    // is stored whole or not at all; that is what makes retrying it safe.
    // The token in the statement's own SETTINGS clause, not as a client
    // setting: the embedded store applies client settings with SET on a pooled
    // session, where the token would stay and make later inserts without one
    // (the twin's own events) duplicates of this batch, silently dropped.
    await sendEncoded(this.#client, { table: this.#table, columns: this.#columns, settings: { insert_deduplication_token: token }, body: body.body() })
    end()
  }

  /** Splits a batch the engine rejected for its data until each bad row stands alone. */
  async #isolate(batch: Segment[], cause: unknown): Promise<void> {
    const rows: { seg: Segment; line: string; index: number }[] = []
    for (const seg of batch) seg.lines.forEach((line, k) => rows.push({ seg, line, index: seg.first + k }))
    if (rows.length === 1) {
      const only = rows[0] as { seg: Segment; line: string; index: number }
      await this.#deadLetter(only.seg, only.line, only.index, cause)
      return
    }
    this.#counts.splits++
    const half = Math.ceil(rows.length / 2)
    for (const part of [rows.slice(0, half), rows.slice(half)]) {
      // Regroup by ticket so outcomes still reach the right writer. A batch holds one segment per write, so a
      // write's lines in a half are consecutive rows of it, from the first one's index on.
      const segs = new Map<Ticket, Segment>()
      for (const { seg, line, index } of part) {
        const s = segs.get(seg.ticket) ?? { ticket: seg.ticket, lines: [], at: seg.at, first: index }
        s.lines.push(line)
        segs.set(seg.ticket, s)
      }
      await this.#insertBatch([...segs.values()])
    }
  }

  async #deadLetter(seg: Segment, line: string, index: number, cause: unknown): Promise<void> {
    // The server's own words, led by its error type so reasons group well.
    const type = (cause as { type?: unknown }).type
    const reason = typeof type === 'string' ? `${type}: ${messageOf(cause).trim()}` : messageOf(cause)
    if (!this.#deadLetters) {
      this.#log.error({ err: cause, row: line }, 'row rejected and this writer has no dead-letter sink')
      this.#fail(seg, new CitytwinError('STORE_REJECTED', `row rejected by ${this.#table}: ${reason}`, { cause }))
      return
    }
    try {
      await this.#deadLetters.deadLetter([{ ts: Date.now(), source: `store:${this.#table}`, code: 'STORE_REJECTED', reason, raw: line }])
      this.#log.warn({ reason }, 'row rejected by the store; dead-lettered')
      ;(seg.ticket.deadLetteredRows ??= []).push(index)
      this.#settle(seg, 0, 1)
    } catch (e) {
      this.#fail(seg, e)
    }
  }

  #settle(seg: Segment, inserted: number, deadLettered: number): void {
    const t = seg.ticket
    t.inserted += inserted
    t.deadLettered += deadLettered
    t.left -= inserted + deadLettered
    this.#counts.inserted += inserted
    this.#counts.deadLettered += deadLettered
    if (inserted) this.#insertedRows.inc(inserted)
    if (deadLettered) rowsTotal.inc({ table: this.#table, outcome: 'dead_lettered' }, deadLettered)
    if (t.left === 0 && !t.failed) this.#done(t)
  }

  #fail(seg: Segment, error: unknown): void {
    this.#counts.failed += seg.lines.length
    rowsTotal.inc({ table: this.#table, outcome: 'failed' }, seg.lines.length)
    if (!seg.ticket.failed) {
      seg.ticket.failed = true
      seg.ticket.error = error
      this.#done(seg.ticket)
    }
  }

  /**
   * A write is through; it is told once every earlier write has been. Two
   * inserts may be in flight and a retried batch finishes late, but those
   * who publish what they wrote (the bus) must see it in the order written.
   */
  #done(t: Ticket): void {
    t.done = true
    for (let head = this.#unsettled.peek(); head?.done; head = this.#unsettled.peek()) {
      this.#unsettled.shift()
      if (head.failed) head.reject(head.error)
      else {
        head.resolve({
          inserted: head.inserted, deadLettered: head.deadLettered, ...(head.position === undefined ? {} : { position: head.position }),
          ...(head.deadLetteredRows ? { deadLetteredRows: head.deadLetteredRows.sort((a, b) => a - b) } : {}),
        })
      }
    }
  }
}

function countRows(batch: Segment[]): number {
  return batch.reduce((n, s) => n + s.lines.length, 0)
}
