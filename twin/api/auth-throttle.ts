// Failed bearer tokens, counted per client address: an address that sends
// `maxFailures` unknown tokens within a window is answered 429 until that
// window ends, so a token cannot be guessed at the speed of the network.
// Pure: the caller gives the time. Memory is bounded: past `maxAddresses`
// the address counted longest ago is forgotten first.

interface Count {
  failures: number
  /** When its window began (ms). */
  since: number
}

export class AuthThrottle {
  readonly #byAddress = new Map<string, Count>()

  constructor(readonly maxFailures: number, readonly windowMs: number, readonly maxAddresses = 10_000) {
    if (!(maxFailures >= 1 && windowMs >= 1 && maxAddresses >= 1)) throw new RangeError('AuthThrottle needs maxFailures, windowMs and maxAddresses of at least 1')
  }

  /** Milliseconds until `address` may try a token again; 0 when it may now. */
  blockedFor(address: string, now: number): number {
    const c = this.#byAddress.get(address)
    if (!c) return 0
    const left = c.since + this.windowMs - now
    if (left <= 0) {
      this.#byAddress.delete(address)
      return 0
    }
    return c.failures >= this.maxFailures ? left : 0
  }

  /** Counts one unknown token from `address`. */
  failed(address: string, now: number): void {
    let c = this.#byAddress.get(address)
    if (!c || now - c.since >= this.windowMs) {
      c = { failures: 0, since: now }
      // Re-inserted, so the map's order stays the order windows began (the oldest is evicted first).
      this.#byAddress.delete(address)
      this.#byAddress.set(address, c)
      if (this.#byAddress.size > this.maxAddresses) this.#byAddress.delete(this.#byAddress.keys().next().value as string)
    }
    c.failures++
  }

  get addresses(): number {
    return this.#byAddress.size
  }
}
