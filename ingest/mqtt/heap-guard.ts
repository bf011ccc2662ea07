// Load shedding by memory. A gateway process that takes every device that
// connects, while the store behind it has fallen behind, grows until V8's
// heap limit; near the limit each collection frees little, the process
// spends its CPU collecting, and the other processes on the machine (the
// store among them) starve with it. The guard watches the heap and, above a
// share of the limit, has the gateway refuse new connections with "server
// unavailable" (CONNACK 3): the device retries later, or on another worker,
// and the devices already connected keep being served. It turns overload
// into fewer devices at once instead of a stall.
import { getHeapStatistics } from 'node:v8'
import { gauge } from '../../lib/metrics.ts'

const sheddingGauge = gauge('citytwin_mqtt_shedding', '1 while this gateway process refuses new connections because its heap is nearly full')

export interface HeapSample {
  used: number
  limit: number
}

const v8Heap = (): HeapSample => {
  const h = getHeapStatistics()
  return { used: h.used_heap_size, limit: h.heap_size_limit }
}

/**
 * Whether to shed, given whether the guard sheds now and the heap's share
 * of its limit: start above `high`, stop below `low`, so a heap that hovers
 * at the line does not flip the gateway at every sample.
 */
export function nextShedding(shedding: boolean, ratio: number, high: number, low: number): boolean {
  return shedding ? ratio >= low : ratio >= high
}

export interface HeapGuardOptions {
  /** Share of the heap limit above which new connections are refused; 1 never sheds. */
  high: number
  /** Share below which they are taken again (default: 0.1 under `high`). */
  low?: number
  sample?: () => HeapSample
  /** Told when shedding starts or stops. */
  onChange?: (shedding: boolean, s: HeapSample) => void
}

export class HeapGuard {
  readonly #o: Required<Omit<HeapGuardOptions, 'onChange'>> & Pick<HeapGuardOptions, 'onChange'>
  #shedding = false

  constructor(opts: HeapGuardOptions) {
    this.#o = { low: Math.max(0, opts.high - 0.1), sample: v8Heap, ...opts }
  }

  get shedding(): boolean {
    return this.#shedding
  }

  /** Samples the heap (a few microseconds): called at each CONNECT, the only moment it matters. */
  check(): boolean {
    if (this.#o.high >= 1) return false
    const s = this.#o.sample()
    const next = nextShedding(this.#shedding, s.used / s.limit, this.#o.high, this.#o.low)
    if (next !== this.#shedding) {
      this.#shedding = next
      sheddingGauge.set(next ? 1 : 0)
      this.#o.onChange?.(next, s)
    }
    return next
  }
}
