// Wake pacing: a gateway worker that wakes for nearly every message waits
// a moment before it looks for more, so that a wake handles several.
//
// Why: at the city's shape each device sends one reading every ten seconds
// or so, each on a connection of its own, and a worker with 17,000
// connections at 900 messages a second is woken by the kernel for nearly
// every one of them: an epoll wait, a turn of Node's event loop (its
// timers, its immediates, its ticks), the gateway's turn-end (a write of
// the turn's rows) and a switch of the CPU between processes, for one
// message. What a message costs a worker at that shape is about twice
// what it costs where a wake brings several (docs/benchmarks.md). After a
// turn that handled few socket reads, the worker sleeps `pauseMs` (a
// futex wait, no CPU) before it polls again; the kernel keeps what
// arrives meanwhile, and the next poll takes it all at once. A turn with
// many reads (a busy worker) does not sleep, so the pause never caps what
// a worker carries; what it adds is at most `pauseMs` to a message's way,
// against a store flush of hundreds of milliseconds.
//
// Only in a cluster worker: the primary serves the store and the API, and
// a one-process gateway does too.

/** Reads in a turn from which the worker does not pause: a busy turn. */
export const FEW_READS = 8

export class WakePacer {
  readonly pauseMs: number
  readonly fewReads: number
  readonly #sleep: (ms: number) => void
  #reads = 0
  #armed = false
  #pauses = 0

  constructor(pauseMs: number, o: { fewReads?: number; sleep?: (ms: number) => void } = {}) {
    if (!(pauseMs > 0)) throw new RangeError('a wake pacer needs a pause above 0 ms')
    this.pauseMs = pauseMs
    this.fewReads = o.fewReads ?? FEW_READS
    const cell = new Int32Array(new SharedArrayBuffer(4))
    // Nothing ever wakes the cell: the wait always runs to its timeout.
    this.#sleep = o.sleep ?? ((ms) => void Atomics.wait(cell, 0, 0, ms))
  }

  /** Pauses taken so far (each after a turn of few reads). */
  get pauses(): number {
    return this.#pauses
  }

  /** A socket read was handled in this turn of the event loop. */
  readonly noteRead = (): void => {
    this.#reads++
    if (this.#armed) return
    this.#armed = true
    // The check phase, right after the poll that brought the reads.
    setImmediate(this.#turnEnd)
  }

  readonly #turnEnd = (): void => {
    const reads = this.#reads
    this.#reads = 0
    this.#armed = false
    if (reads >= this.fewReads) return
    this.#pauses++
    this.#sleep(this.pauseMs)
  }
}
