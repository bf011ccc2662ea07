// Rows from gateway workers to the one process that writes them. With the
// gateway in N worker processes, N writers would each send the store small
// inserts several times a second; ClickHouse (and chDB above all, where one
// insert costs ~10 ms whatever its size) wants few large ones. So a worker
// relays its rows over the cluster IPC channel to the primary, whose writers
// batch everyone's rows together, and a write settles in the worker only
// when the primary's writer has stored (or dead-lettered) the rows: the
// PUBACK still waits for the store.
import type { Worker } from 'node:cluster'
import type { Bus } from '../../lib/bus/bus.ts'
import type { Component, ComponentStats } from '../../lib/component.ts'
import { CitytwinError } from '../../lib/errors.ts'
import { logger } from '../../lib/log.ts'
import { deadLetterRow } from '../../store/dead-letters.ts'
import type { DeadLetter, DeadLetterSink, Row, RowSink, WriteOutcome } from '../../store/writer.ts'
import { eventElements, readingElements, rowsStored } from '../../lib/bus/stored.ts'

const log = logger('mqtt-relay')

export type RelayTable = 'readings' | 'events' | 'dead_letters'

interface RowsMessage {
  type: 'citytwin-rows'
  id: number
  table: RelayTable
  rows: Row[]
}

interface DoneMessage {
  type: 'citytwin-rows-done'
  id: number
  outcome?: WriteOutcome
  error?: { code: string; message: string }
}

const isRows = (m: unknown): m is RowsMessage => typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'citytwin-rows'
const isDone = (m: unknown): m is DoneMessage => typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'citytwin-rows-done'

interface Pending {
  rows: Row[]
  waiters: { from: number; count: number; resolve: (o: WriteOutcome) => void; reject: (e: unknown) => void }[]
}

/**
 * The worker's side: gathers rows for `lingerMs` and sends them to the
 * primary as one message per table. One instance serves every table.
 */
export class RelayClient implements Component {
  readonly name = 'mqtt-relay'
  readonly #lingerMs: number
  readonly #send: (m: RowsMessage) => void
  readonly #pending = new Map<RelayTable, Pending>()
  /** Sent and not yet answered: only the waiters. The rows are the primary's now; kept here they would outlive a few young-generation collections each and be promoted, and at full city old-generation marking took a fifth of a worker's CPU. */
  readonly #inFlight = new Map<number, Pending['waiters']>()
  #timer: NodeJS.Timeout | undefined
  #nextId = 1
  #stopping = false
  #counts = { sentRows: 0, sentMessages: 0, failedMessages: 0 }
  readonly #onMessage = (m: unknown): void => {
    if (!isDone(m)) return
    const waiters = this.#inFlight.get(m.id)
    if (!waiters) return
    this.#inFlight.delete(m.id)
    if (m.error) {
      this.#counts.failedMessages++
      const e = new CitytwinError('STORE_UNAVAILABLE', `the gateway primary could not store rows: ${m.error.message}`)
      for (const w of waiters) w.reject(e)
      return
    }
    // The outcome is for the whole message; each writer learns its rows' share.
    const outcome = m.outcome ?? { inserted: 0, deadLettered: 0 }
    for (const w of waiters) w.resolve(outcome.deadLettered === 0 ? { inserted: w.count, deadLettered: 0 } : outcome)
  }

  constructor(opts: { lingerMs?: number; send?: (m: RowsMessage) => void } = {}) {
    this.#lingerMs = opts.lingerMs ?? 10
    this.#send = opts.send ?? ((m) => void process.send?.(m))
  }

  async start(): Promise<void> {
    process.on('message', this.#onMessage)
  }

  /** A RowSink for one table. */
  sink(table: RelayTable): RowSink {
    return { write: (rows) => this.#write(table, rows) }
  }

  /** A DeadLetterSink that relays to the primary's dead-letter table. */
  deadLetters(): DeadLetterSink {
    return { deadLetter: async (letters: readonly DeadLetter[]) => void (await this.#write('dead_letters', letters.map(deadLetterRow))) }
  }

  #write(table: RelayTable, rows: readonly Row[]): Promise<WriteOutcome> {
    if (this.#stopping) return Promise.reject(new CitytwinError('QUEUE_CLOSED', 'the gateway worker is stopping'))
    if (rows.length === 0) return Promise.resolve({ inserted: 0, deadLettered: 0 })
    return new Promise((resolve, reject) => {
      const p = this.#pending.get(table) ?? { rows: [], waiters: [] }
      this.#pending.set(table, p)
      p.waiters.push({ from: p.rows.length, count: rows.length, resolve, reject })
      for (const r of rows) p.rows.push(r)
      this.#timer ??= setTimeout(() => this.#flush(), this.#lingerMs)
    })
  }

  #flush(): void {
    this.#timer = undefined
    for (const [table, p] of this.#pending) {
      const id = this.#nextId++
      this.#inFlight.set(id, p.waiters)
      this.#counts.sentRows += p.rows.length
      this.#counts.sentMessages++
      try {
        this.#send({ type: 'citytwin-rows', id, table, rows: p.rows })
      } catch (e) {
        this.#inFlight.delete(id)
        for (const w of p.waiters) w.reject(e)
      }
    }
    this.#pending.clear()
  }

  async stop(deadline: number): Promise<void> {
    clearTimeout(this.#timer)
    this.#flush()
    this.#stopping = true
    while (this.#inFlight.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    process.off('message', this.#onMessage)
    const e = new CitytwinError('QUEUE_CLOSED', 'the gateway worker stopped before the primary confirmed these rows')
    for (const waiters of this.#inFlight.values()) for (const w of waiters) w.reject(e)
    this.#inFlight.clear()
  }

  stats(): ComponentStats {
    return { ...this.#counts, inFlight: this.#inFlight.size }
  }
}

/**
 * The primary's side: stores what a worker relays, tells it when that is
 * done, and then publishes the stored readings and device events on `bus`.
 */
export function serveRelay(worker: Worker, sinks: Record<RelayTable, RowSink>, bus?: Bus): void {
  worker.on('message', (m: unknown) => {
    if (!isRows(m)) return
    const reply = (d: Omit<DoneMessage, 'type' | 'id'>): void => {
      if (worker.isConnected()) worker.send({ type: 'citytwin-rows-done', id: m.id, ...d } satisfies DoneMessage)
    }
    sinks[m.table].write(m.rows).then(
      (outcome) => {
        reply({ outcome })
        if (!bus) return
        // Rows the store refused went to the dead letters; the others go on the bus.
        const rows = rowsStored(m.rows, outcome.deadLetteredRows)
        if (m.table === 'readings') bus.publish(readingElements(rows, outcome.position))
        else if (m.table === 'events') bus.publish(eventElements(rows, outcome.position))
      },
      (e: unknown) => {
        log.warn({ err: e, table: m.table, rows: m.rows.length, worker: worker.process.pid }, 'relayed rows not stored')
        reply({ error: { code: e instanceof CitytwinError ? e.code : 'STORE_UNAVAILABLE', message: e instanceof Error ? e.message : String(e) } })
      },
    )
  })
}
