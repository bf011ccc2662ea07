// Connections a gateway process ended before their CONNACK, summed over a
// window and logged once per window. A refused token is logged on its own
// (an operator wants the device), but capacity refusals come in thousands
// at once: in a reconnect storm of the whole city, 30,000 connects ended
// before their CONNACK, and the only trace was on the devices' side (a
// reset, or a bare close). One line every few seconds, by reason, tells an
// operator whether the gateway was full, short of heap, or too slow to read
// a CONNECT within aedes' connect timeout, without a line per device.

/** Why a connection ended before its CONNACK, as refusedTotal counts it (`what: 'connect'`). */
export type RefusalCode = string

/**
 * Counts by reason since the last `take`. `start` hands the counts of each
 * REFUSAL_DIGEST_MS window, when there were any, to `report` (the caller's
 * log line); the counting itself is pure.
 */
export class RefusalDigest {
  #counts = new Map<RefusalCode, number>()
  #timer: NodeJS.Timeout | undefined

  start(report: (counts: Record<RefusalCode, number>, windowS: number) => void): void {
    clearInterval(this.#timer)
    this.#timer = setInterval(() => {
      const counts = this.take()
      if (counts) report(counts, REFUSAL_DIGEST_MS / 1000)
    }, REFUSAL_DIGEST_MS)
    this.#timer.unref()
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  count(code: RefusalCode): void {
    this.#counts.set(code, (this.#counts.get(code) ?? 0) + 1)
  }

  /** The counts since the last take, largest first, and a fresh window; undefined when there were none. */
  take(): Record<RefusalCode, number> | undefined {
    if (this.#counts.size === 0) return undefined
    const sorted = [...this.#counts].sort((a, b) => b[1] - a[1])
    this.#counts = new Map()
    return Object.fromEntries(sorted)
  }
}

/** How often a gateway process logs what it refused (ms). */
export const REFUSAL_DIGEST_MS = 10_000
