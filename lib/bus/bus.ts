// The bus between the gateways and the twin and rules. One interface, two
// implementations: in-process (this file; the embedded default) and Kafka
// (scale-out). Elements go on the bus only after the store holds them, so
// the twin, which is rebuilt from the store at start-up, never shows what
// the store does not have.
//
// Publishing only queues: every subscriber takes its elements on its own
// turn of the event loop, in batches, so the gateway that published (and
// the PUBACK it owes a device) never waits for the twin or the rules, and a
// slow subscriber slows nothing but itself. A subscriber may follow another
// one (the rules follow the twin): it then gets each batch only once that
// one has taken it, so it reads the batch's effects on the live state.
import type { Element } from './elements.ts'
import { cover, NO_POSITIONS, type Positions } from './position.ts'
import { Fifo } from '../fifo.ts'
import { logger } from '../log.ts'
import { counter, gauge } from '../metrics.ts'

const log = logger('bus')
const lagElements = gauge('citytwin_bus_lag_elements', 'Elements published but not yet taken, by subscriber', ['subscriber'])
const lostTotal = counter('citytwin_bus_lost_total', 'Elements a subscriber lost because it fell more than the bus capacity behind, by subscriber', ['subscriber'])
const failuresTotal = counter('citytwin_bus_subscriber_failures_total', 'Batches a subscriber failed on (logged; the subscriber carries on with the next), by subscriber', ['subscriber'])

/**
 * What the twin asks of ingest beside its elements (a gateway process, a
 * cluster of them, its own place on the bus): how long data has waited in it, and
 * whether it sheds devices to keep its memory. Together they say whether
 * ingest is degraded (twin/state/ingest-health.ts).
 */
export interface IngestSource {
  backlogMs(now: number): number
  shedding(): boolean
}

/** Everything `sources` hold up, as one source: the longest wait, and shedding if any sheds. */
export function ingestSources(...sources: readonly IngestSource[]): IngestSource {
  return {
    backlogMs: (now) => sources.reduce((m, s) => Math.max(m, s.backlogMs(now)), 0),
    shedding: () => sources.some((s) => s.shedding()),
  }
}

/** Takes a batch; a returned promise holds the subscriber's next batch until it settles. */
export type ElementHandler = (batch: readonly Element[]) => void | Promise<void>

export interface SubscribeOptions {
  /** Take each batch only after this subscription has taken it. */
  after?: Subscription
  /**
   * Called (and awaited) before the next batch when this subscriber lost
   * `lost` elements: it, or one it follows, fell more than the bus capacity
   * behind. It is then up to it to catch up from the store (the twin
   * rebuilds; the rules replay from their position).
   */
  onGap?: (lost: number) => void | Promise<void>
}

export interface Subscription {
  readonly name: string
  /** Elements published and not yet taken by this subscriber. */
  readonly pending: number
  /** How long the oldest element this subscriber has not finished with has waited, in ms at `now`; 0 when none. */
  backlogMs(now: number): number
  /** Resolves once this subscriber has taken everything published so far (or at `deadline`, epoch ms). */
  idle(deadline?: number): Promise<void>
  /** Stops delivery to this subscriber (and to those that follow it). */
  close(): void
}

export interface Bus {
  /** Queues a batch of stored elements for every subscriber; never waits for one. */
  publish(batch: readonly Element[]): void
  subscribe(name: string, handler: ElementHandler, o?: SubscribeOptions): Subscription
  /** Resolves once every subscriber has taken everything published so far. */
  idle(deadline?: number): Promise<void>
  /** The highest position published on each stream: everything at or below it is in the store. */
  positions(): Positions
  /** The longest any stored element has waited for a subscriber, in ms at `now`: counts as ingest's delay (twin/state/ingest-health.ts). */
  backlogMs(now: number): number
  /** About how long a subscriber may hold the event loop at a time, ms: one that takes a large batch in parts yields this often (turns.ts). */
  readonly turnMs: number
}

export interface MemoryBusOptions {
  /** The most elements one subscriber may be behind; beyond it the oldest are dropped for it (it is told: onGap). */
  capacity?: number
  /** The most elements handed to a subscriber in one call (batches are joined up to it, never split). */
  maxBatch?: number
  /**
   * About how long one delivery to a subscriber may take, ms: from what its
   * handler has cost per element, a delivery joins only as many published
   * batches as fit (at least one). Between deliveries the event loop takes
   * I/O and timers, so an API request waits for one delivery, not a backlog.
   */
  turnMs?: number
  /**
   * What the bus reads a handler's cost from, ms (performance.now by
   * default). A test gives its own, so what it asserts of the cuts does not
   * hang on how busy the machine is.
   */
  clock?: () => number
}

/** What every subscription of one bus shares. */
interface Limits {
  capacity: number
  maxBatch: number
  turnMs: number
  clock: () => number
}

interface Queued {
  batch: readonly Element[]
  /** When it was published (ms). */
  at: number
}

class MemorySubscription implements Subscription {
  readonly name: string
  readonly #handler: ElementHandler
  readonly #onGap: SubscribeOptions['onGap']
  readonly #capacity: number
  readonly #maxBatch: number
  readonly #turnMs: number
  readonly #clock: () => number
  /** What the handler has cost per element (µs, a moving average of its synchronous deliveries); undefined before the first. */
  #usPerElement: number | undefined
  readonly followers: MemorySubscription[] = []
  readonly leader: MemorySubscription | undefined
  readonly #queue = new Fifo<Queued>()
  #pending = 0
  #lost = 0
  #busy = false
  /** When the oldest element of the batch it is handling was published; undefined when it handles none. */
  #inHandAt: number | undefined
  #scheduled = false
  #closed = false
  #idleWaiters: (() => void)[] = []

  readonly #detach: () => void

  constructor(name: string, handler: ElementHandler, o: SubscribeOptions & { leader?: MemorySubscription; detach: () => void }, limits: Limits) {
    this.name = name
    this.leader = o.leader
    this.#detach = o.detach
    this.#handler = handler
    this.#onGap = o.onGap
    this.#capacity = limits.capacity
    this.#maxBatch = limits.maxBatch
    this.#turnMs = limits.turnMs
    this.#clock = limits.clock
  }

  get pending(): number {
    return this.#pending
  }

  get closed(): boolean {
    return this.#closed
  }

  backlogMs(now: number): number {
    const oldest = this.#inHandAt ?? this.#queue.peek()?.at
    return oldest === undefined ? 0 : Math.max(0, now - oldest)
  }

  offer(q: Queued): void {
    if (this.#closed) return
    this.#queue.push(q)
    this.#pending += q.batch.length
    // Bounded: a subscriber that falls too far behind loses its oldest
    // elements, and is told, rather than holding the whole city in memory.
    while (this.#pending > this.#capacity && this.#queue.size > 1) {
      const dropped = this.#queue.shift() as Queued
      this.#pending -= dropped.batch.length
      this.#noteLost(dropped.batch.length)
    }
    this.#schedule()
  }

  /** Elements it will never get; those that follow it will not get them either. */
  #noteLost(n: number): void {
    if (this.#closed) return
    this.#lost += n
    for (const f of this.followers) f.#noteLost(n)
    this.#schedule()
  }

  async idle(deadline = Infinity): Promise<void> {
    // What its leader still holds comes to it next.
    if (this.leader) await this.leader.idle(deadline)
    if (this.#isIdle() || Date.now() >= deadline) return
    await new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined
      const wake = (): void => {
        clearTimeout(timer)
        const i = this.#idleWaiters.indexOf(wake)
        if (i >= 0) this.#idleWaiters.splice(i, 1)
        resolve()
      }
      this.#idleWaiters.push(wake)
      if (deadline !== Infinity) timer = setTimeout(wake, Math.max(0, deadline - Date.now()))
    })
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#detach()
    this.#queue.clear()
    this.#pending = 0
    this.#lost = 0
    lagElements.set({ subscriber: this.name }, 0)
    for (const f of [...this.followers]) f.close()
    this.#wakeIdle()
  }

  #isIdle(): boolean {
    // A loss not yet told is work to do: the subscriber catches up on it.
    return this.#closed || (this.#pending === 0 && this.#lost === 0 && !this.#busy)
  }

  #schedule(): void {
    if (this.#scheduled || this.#busy || this.#closed) return
    this.#scheduled = true
    // Its own turn: the publisher's call returns at once, and elements that
    // arrive meanwhile join the same delivery.
    setImmediate(() => {
      this.#scheduled = false
      void this.#deliver()
    })
  }

  async #deliver(): Promise<void> {
    if (this.#busy || this.#closed) return
    this.#busy = true
    try {
      if (this.#lost > 0) {
        const lost = this.#lost
        this.#lost = 0
        lostTotal.inc({ subscriber: this.name }, lost)
        log.error({ subscriber: this.name, lost }, 'a bus subscriber fell more than the bus capacity behind and lost elements')
        await this.#guard(() => this.#onGap?.(lost))
      }
      const taken = this.#take()
      if (taken.length === 0) return
      this.#inHandAt = (taken[0] as Queued).at
      await this.#guard(() => this.#timed(taken.length === 1 ? (taken[0] as Queued).batch : taken.flatMap((q) => q.batch)))
      if (this.#closed) return
      for (const f of this.followers) for (const q of taken) f.offer(q)
    } finally {
      this.#busy = false
      this.#inHandAt = undefined
      lagElements.set({ subscriber: this.name }, this.#pending)
      if (this.#pending > 0 || this.#lost > 0) this.#schedule()
      else this.#wakeIdle()
    }
  }

  /**
   * Calls the handler and learns what it costs per element, from the
   * deliveries it handles at once: one that returns a promise waits on
   * something else (a load, the store) and says nothing of its cost.
   */
  #timed(elements: readonly Element[]): void | Promise<void> {
    const t0 = this.#clock()
    const r = this.#handler(elements)
    if (r === undefined && elements.length > 0) {
      const us = ((this.#clock() - t0) * 1000) / elements.length
      this.#usPerElement = this.#usPerElement === undefined ? us : 0.8 * this.#usPerElement + 0.2 * us
    }
    return r
  }

  /** Whole batches, oldest first, up to maxBatch elements and what fits in turnMs at the handler's cost (always at least one). */
  #take(): Queued[] {
    const out: Queued[] = []
    let n = 0
    const fits = this.#usPerElement ? Math.floor((this.#turnMs * 1000) / this.#usPerElement) : this.#maxBatch
    const limit = Math.max(1, Math.min(this.#maxBatch, fits))
    for (let q = this.#queue.peek(); q && (out.length === 0 || n + q.batch.length <= limit); q = this.#queue.peek()) {
      out.push(this.#queue.shift() as Queued)
      n += q.batch.length
    }
    this.#pending -= n
    return out
  }

  async #guard(fn: () => void | Promise<void>): Promise<void> {
    try {
      await fn()
    } catch (e) {
      // A subscriber's bug must not stop the bus, the publisher or the other subscribers.
      failuresTotal.inc({ subscriber: this.name })
      log.error({ err: e, subscriber: this.name }, 'a bus subscriber failed on a batch; it carries on with the next')
    }
  }

  #wakeIdle(): void {
    if (!this.#isIdle()) return
    for (const w of this.#idleWaiters.splice(0)) w()
  }
}

/** The in-process bus. */
export class MemoryBus implements Bus {
  readonly #roots: MemorySubscription[] = []
  readonly #all: MemorySubscription[] = []
  readonly #limits: Limits
  #published = 0
  readonly #positions: Positions = { ...NO_POSITIONS }

  constructor(o: MemoryBusOptions = {}) {
    this.#limits = { capacity: o.capacity ?? 200_000, maxBatch: o.maxBatch ?? 5_000, turnMs: o.turnMs ?? 20, clock: o.clock ?? (() => performance.now()) }
    const { capacity, maxBatch, turnMs } = this.#limits
    if (!(capacity >= 1 && maxBatch >= 1)) throw new RangeError('bus capacity and maxBatch must be at least 1')
    if (!(turnMs > 0)) throw new RangeError('bus turnMs must be above 0')
  }

  get turnMs(): number {
    return this.#limits.turnMs
  }

  publish(batch: readonly Element[]): void {
    if (batch.length === 0) return
    this.#published += batch.length
    cover(this.#positions, batch)
    const q = { batch, at: Date.now() }
    for (const s of this.#roots) s.offer(q)
  }

  subscribe(name: string, handler: ElementHandler, o: SubscribeOptions = {}): Subscription {
    if (this.#all.some((s) => s.name === name)) throw new Error(`the bus already has a subscriber named "${name}"`)
    const leader = o.after ? this.#all.find((s) => s === o.after) : undefined
    if (o.after && !leader) throw new Error(`"${name}" cannot follow a subscription of another bus`)
    const detach = (): void => {
      // A closed subscription leaves the bus (a restarted component subscribes anew under its name).
      for (const list of [this.#roots, this.#all, leader?.followers ?? []]) {
        const i = list.indexOf(sub)
        if (i >= 0) list.splice(i, 1)
      }
    }
    const sub: MemorySubscription = new MemorySubscription(name, handler, { ...o, ...(leader ? { leader } : {}), detach }, this.#limits)
    if (leader) leader.followers.push(sub)
    else this.#roots.push(sub)
    this.#all.push(sub)
    return sub
  }

  async idle(deadline = Infinity): Promise<void> {
    // Each waits for its leaders first: a follower gets its batches only once its leader is done with them.
    for (const s of this.#all) await s.idle(deadline)
  }

  positions(): Positions {
    return { ...this.#positions }
  }

  /** The longest any element has waited for a subscriber, in ms at `now`. */
  backlogMs(now: number): number {
    let ms = 0
    for (const s of this.#all) ms = Math.max(ms, s.backlogMs(now))
    return ms
  }

  get published(): number {
    return this.#published
  }
}
