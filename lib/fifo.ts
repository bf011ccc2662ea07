// A first-in first-out list that takes from the front in O(1): an array
// read from a moving head, cut down once most of it is behind the head.
// Array.shift() per item is quadratic on the long queues here (the
// writer's writes, a bus subscriber's batches, the bounded queue).
export class Fifo<T> {
  #items: (T | undefined)[] = []
  #head = 0

  get size(): number {
    return this.#items.length - this.#head
  }

  push(item: T): void {
    this.#items.push(item)
  }

  /** The oldest item, left in place; undefined when empty. */
  peek(): T | undefined {
    return this.#items[this.#head]
  }

  /** Takes the oldest item; undefined when empty. */
  shift(): T | undefined {
    if (this.#head === this.#items.length) return undefined
    const item = this.#items[this.#head]
    this.#items[this.#head++] = undefined
    this.#compact()
    return item
  }

  /** Takes up to `n` of the oldest items. */
  take(n: number): T[] {
    const out = this.#items.slice(this.#head, this.#head + Math.min(n, this.size)) as T[]
    this.#head += out.length
    this.#compact()
    return out
  }

  clear(): void {
    this.#items = []
    this.#head = 0
  }

  #compact(): void {
    if (this.#head === this.#items.length) this.clear()
    else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
  }
}
