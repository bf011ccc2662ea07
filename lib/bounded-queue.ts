// A bounded FIFO that pushes back. `push` resolves only once there is room,
// so a slow consumer slows its producers instead of growing the heap.
// Consumers take whole batches, which is how every sink here writes.
import { CitytwinError } from './errors.ts'
import { Fifo } from './fifo.ts'

interface Waiter {
  resolve: () => void
  reject: (e: unknown) => void
}

export class BoundedQueue<T> {
  readonly capacity: number
  readonly #items = new Fifo<T>()
  #closed = false
  #spaceWaiters: Waiter[] = []
  #dataWaiters: Waiter[] = []
  #highWater = 0

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`queue capacity must be a positive integer, got ${capacity}`)
    this.capacity = capacity
  }

  get size(): number {
    return this.#items.size
  }

  get closed(): boolean {
    return this.#closed
  }

  /** Highest size seen, for stats. */
  get highWater(): number {
    return this.#highWater
  }

  /** Adds without waiting; false when full. Throws once closed. */
  tryPush(item: T): boolean {
    if (this.#closed) throw new CitytwinError('QUEUE_CLOSED', 'queue is closed')
    if (this.size >= this.capacity) return false
    this.#append(item)
    return true
  }

  /** Adds, waiting for room while the queue is full. Rejects if the queue closes first. */
  async push(item: T): Promise<void> {
    while (!this.tryPush(item)) {
      await new Promise<void>((resolve, reject) => this.#spaceWaiters.push({ resolve, reject }))
    }
  }

  /** Takes up to `max` items at once; an empty array when the queue is empty. */
  take(max: number): T[] {
    const n = Math.min(max, this.size)
    if (n === 0) return []
    const out = this.#items.take(n)
    this.#wakeProducers()
    return out
  }

  /** Resolves when there is at least one item, or the queue is closed (then possibly empty). */
  async waitForData(): Promise<void> {
    if (this.size > 0 || this.#closed) return
    await new Promise<void>((resolve, reject) => this.#dataWaiters.push({ resolve, reject }))
  }

  /** Stops accepting items; what is queued can still be taken. Waiting producers are rejected. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    const err = new CitytwinError('QUEUE_CLOSED', 'queue closed while waiting for room')
    for (const w of this.#spaceWaiters.splice(0)) w.reject(err)
    for (const w of this.#dataWaiters.splice(0)) w.resolve()
  }

  #append(item: T): void {
    this.#items.push(item)
    if (this.size > this.#highWater) this.#highWater = this.size
    for (const w of this.#dataWaiters.splice(0)) w.resolve()
  }

  #wakeProducers(): void {
    let room = this.capacity - this.size
    while (room-- > 0 && this.#spaceWaiters.length > 0) this.#spaceWaiters.shift()?.resolve()
  }
}
