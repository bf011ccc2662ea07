// Where a stored element stands on the bus. Each write of readings or
// events takes the next position, which is stored with its rows (the
// bus_pos column) and travels with its elements; one writer settles its
// writes in order, so a stream's elements reach the bus in position order.
// A consumer that saves the position it has judged up to (the rules, with
// their state) can therefore ask the store for exactly what came after.
//
// Positions are microseconds of the clock, made strictly increasing. A
// process that restarts goes on above where the last one stopped: above the
// clock, and above the highest position the rules found in the store when
// they replayed at start (`citytwin start` seeds the clock with it), so a
// clock that went back, or a run that made more than a thousand writes a
// millisecond, cannot hand out a position already judged.

/** The streams a position is kept for: each is one writer, in order. */
export const STREAMS = ['readings', 'events'] as const
export type Stream = (typeof STREAMS)[number]
export type Positions = Record<Stream, number>

export const NO_POSITIONS: Readonly<Positions> = { readings: 0, events: 0 }

/** How long a row may have waited in ingest before it was stored (bounds below are generous by this much). */
const MAX_QUEUE_MS = 3_600_000

/**
 * The earliest own timestamp (ms) a row stored after `pos` can have: the
 * gateways refuse what is more than `maxPastMs` (mqtt.maxPastMs) behind its
 * arrival. A query for what was stored after a position is bounded by it, so
 * the store reads only the days' partitions that can hold those rows: the
 * rows of one write are sorted by grid, not by position, so a position alone
 * prunes nothing.
 */
export function earliestTs(pos: number, maxPastMs: number): number {
  return Math.floor(pos / 1000) - maxPastMs - MAX_QUEUE_MS
}

/** The stream an element comes from; undefined for what no writer stores (tickets, cameras). */
export function streamOf(kind: string): Stream | undefined {
  return kind === 'reading' ? 'readings' : kind === 'connectivity' || kind === 'device-event' ? 'events' : undefined
}

/** Where the store holds an element: its stream and position; undefined for one without (made by a test, a camera's, a ticket). */
export function placeOf(e: { kind: string; pos?: number }): { stream: Stream; pos: number } | undefined {
  if (e.pos === undefined) return undefined
  const stream = streamOf(e.kind)
  return stream && { stream, pos: e.pos }
}

/** Whether `positions` cover `e` already: it has a place at or below its stream's position. */
export function isCovered(e: { kind: string; pos?: number }, positions: Positions): boolean {
  const at = placeOf(e)
  return at !== undefined && at.pos <= positions[at.stream]
}

/** Raises `positions` (per stream, the highest seen) to cover the elements. */
export function cover(positions: Positions, batch: readonly { kind: string; pos?: number }[]): void {
  for (const e of batch) {
    const at = placeOf(e)
    if (at && at.pos > positions[at.stream]) positions[at.stream] = at.pos
  }
}

export class PositionClock {
  #last = 0
  readonly #now: () => number

  constructor(now: () => number = Date.now) {
    this.#now = now
  }

  next(): number {
    this.#last = Math.max(this.#last + 1, this.#now() * 1000)
    return this.#last
  }

  /** Goes on above `pos` (the highest position the store was found to hold), whatever the clock says. */
  above(pos: number): void {
    this.#last = Math.max(this.#last, pos)
  }
}
