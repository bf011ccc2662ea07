// A fixed-size latency histogram: log-spaced buckets from 0.1 ms to 100 s,
// so 219k devices' acknowledgements cost no memory per message, and
// histograms from several processes add up exactly.

const MIN_MS = 0.1
const BUCKETS = 120
const FACTOR = Math.pow(1e6, 1 / BUCKETS) // 0.1 ms .. 100 s

export class LatencyHistogram {
  counts: number[] = new Array<number>(BUCKETS + 1).fill(0)

  record(ms: number): void {
    const i = ms <= MIN_MS ? 0 : Math.min(BUCKETS, Math.ceil(Math.log(ms / MIN_MS) / Math.log(FACTOR)))
    this.counts[i] = (this.counts[i] ?? 0) + 1
  }

  add(other: readonly number[]): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i] = (this.counts[i] ?? 0) + (other[i] ?? 0)
  }

  get count(): number {
    return this.counts.reduce((s, n) => s + n, 0)
  }

  /** Upper bound of the bucket holding quantile q, in ms; 0 when empty. */
  quantile(q: number): number {
    const total = this.count
    if (total === 0) return 0
    let seen = 0
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i] ?? 0
      if (seen >= q * total) return MIN_MS * Math.pow(FACTOR, i)
    }
    return MIN_MS * Math.pow(FACTOR, BUCKETS)
  }
}
