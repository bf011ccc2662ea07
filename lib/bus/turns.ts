// A large batch taken in turns. The bus keeps a delivery to about
// bus.turnMs by joining only the published batches that fit, but it never
// splits one: a batch is one stored write, and at full city a write is
// thousands of elements. The twin and the rules each took such a write in
// one turn, 100 ms and more a time, in the process that also answers the
// API (a CPU profile of the whole city, 2026-12-01: 318 such turns in
// 12 minutes, 35 s in all). A subscriber that can take a write in parts
// goes through it here, a slice at a time, giving the event loop a turn
// whenever it has held it for turnMs; its own bookkeeping (positions) it
// does once the whole batch is through.
import { setImmediate as nextTurn } from 'node:timers/promises'

/** Elements handed over at a time: small enough that even the costliest subscriber's slice is a few ms. */
export const TURN_SLICE = 128

/**
 * Runs `take` over `items` in slices of `slice`, in order, giving the event
 * loop a turn each time it has run for `turnMs` or more. Returns undefined
 * when all of it ran in the first turn (the caller need not wait), otherwise
 * a promise of the rest.
 */
export function inTurns<T>(items: readonly T[], turnMs: number, take: (slice: readonly T[]) => void, slice = TURN_SLICE, clock: () => number = () => performance.now()): Promise<void> | undefined {
  if (items.length <= slice) {
    take(items)
    return undefined
  }
  const from = runFor(items, 0, turnMs, take, slice, clock)
  return from >= items.length ? undefined : rest(items, from, turnMs, take, slice, clock)
}

async function rest<T>(items: readonly T[], from: number, turnMs: number, take: (slice: readonly T[]) => void, slice: number, clock: () => number): Promise<void> {
  while (from < items.length) {
    await nextTurn()
    from = runFor(items, from, turnMs, take, slice, clock)
  }
}

/** Slices from `from` on until turnMs has passed (at least one slice); returns where it stopped. */
function runFor<T>(items: readonly T[], from: number, turnMs: number, take: (slice: readonly T[]) => void, slice: number, clock: () => number): number {
  const until = clock() + turnMs
  do {
    take(items.slice(from, from + slice))
    from += slice
  } while (from < items.length && clock() < until)
  return from
}

/**
 * Batches taken in turns (inTurns), one at a time, with the one in
 * progress known: what must not see half a batch (the twin's load that
 * replaces it, the rules' state stored with their positions) waits for it.
 */
export class BatchInTurns {
  #inProgress: Promise<void> | undefined

  /** `take` over `items` in turns, then `done`; undefined when all of it ran in this turn. */
  run<T>(items: readonly T[], turnMs: number, take: (slice: readonly T[]) => void, done?: () => void): Promise<void> | undefined {
    const rest = inTurns(items, turnMs, take)
    if (!rest) {
      done?.()
      return undefined
    }
    const p = done ? rest.then(done) : rest
    this.#inProgress = p
    const clear = (): void => {
      if (this.#inProgress === p) this.#inProgress = undefined
    }
    p.then(clear, clear)
    return p
  }

  /** While a batch is being taken, its end (never a rejection: a failure is the caller's of run); undefined when none is. */
  inProgress(): Promise<void> | undefined {
    return this.#inProgress?.then(() => undefined, () => undefined)
  }
}
