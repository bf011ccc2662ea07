// How far behind the clock the twin's data is. Readings carry the time the
// gateway took them (as well as the device's own, which may be minutes
// off: a device's clock says nothing of the system's delay); when the
// gateway or the store falls behind, they reach the twin late, and a device whose readings are merely queued would look
// silent. So silence is judged at the watermark, the newest time up to which
// the data is complete (now minus the lag), not at the clock: under overload
// the twin waits for late readings instead of raising silence tickets for
// thousands of devices that are reporting. The lag is the 90th percentile
// of (arrival - gateway's receipt) per batch, taken as the largest over the last
// window, and capped: beyond the cap silence is judged at the clock less
// the cap, so a real outage is still seen. Not the median: under overload
// the devices are not served alike, and in a full-city run the median lag
// was 10 s while a third of the connected devices waited long enough to be
// called silent. A few old readings one device had buffered (a tenth of a
// batch or less) still do not move it.
//
// Readings that have not reached the store at all (held in a gateway that
// is behind, or in the sockets it has paused) show no lag here: the ones
// that do arrive are fresh. So the gateway reports how long data may have
// been waiting in it (its backlog, ingest/mqtt/backlog.ts), and the lag is
// the larger of the two.
export class IngestLag {
  readonly #windowMs: number
  readonly #maxMs: number
  /** [arrival, the batch's 90th percentile lag], oldest first. */
  #recent: [number, number][] = []
  #backlog: ((now: number) => number) | undefined

  constructor(opts: { maxMs: number; windowMs?: number }) {
    this.#maxMs = opts.maxMs
    this.#windowMs = opts.windowMs ?? 10_000
  }

  /** Notes a batch arriving at `now`: the lag of its readings. */
  observe(batch: readonly { kind: string; ts: number; receivedAt?: number }[], now: number): void {
    if (this.#maxMs <= 0 || batch.length === 0) return
    // A sample is enough for a percentile; batches of thousands cost no more than 64.
    const step = Math.max(1, Math.floor(batch.length / 64))
    const lags: number[] = []
    for (let i = 0; i < batch.length; i += step) {
      const e = batch[i]
      // Since the gateway took it, not since the time it carries: a device whose clock is behind is not late data.
      if (e?.kind === 'reading') lags.push(now - (e.receivedAt ?? e.ts))
    }
    if (lags.length === 0) return
    lags.sort((a, b) => a - b)
    this.#recent.push([now, Math.max(0, lags[Math.floor(0.9 * (lags.length - 1))] ?? 0)])
    this.#expire(now)
  }

  /** Where the gateway's backlog is read from (ms data may have been waiting at `now`); undefined: none. */
  watchBacklog(fn: ((now: number) => number) | undefined): void {
    this.#backlog = fn
  }

  /** The lag at `now`, in ms: 0 when the data is current, or nothing arrived in the window and nothing is waiting. */
  at(now: number): number {
    if (this.#maxMs <= 0) return 0
    this.#expire(now)
    let lag = this.backlog(now)
    for (const [, l] of this.#recent) if (l > lag) lag = l
    return Math.min(lag, this.#maxMs)
  }

  /**
   * How long data has been waiting inside the system at `now` (the
   * gateways' and the writers' backlog), uncapped: ingest-health.ts judges
   * overload by it. Not the readings' own lag, which one device with a slow
   * clock, or replaying what it buffered, can push past any threshold.
   */
  backlog(now: number): number {
    return Math.max(0, this.#backlog?.(now) ?? 0)
  }

  #expire(now: number): void {
    let drop = 0
    while (drop < this.#recent.length && (this.#recent[drop]?.[0] ?? now) < now - this.#windowMs) drop++
    if (drop > 0) this.#recent = this.#recent.slice(drop)
    // Bounded: one entry per batch, batches coalesced by the writers; keep the newest 1,000 at most.
    if (this.#recent.length > 1_000) this.#recent = this.#recent.slice(-1_000)
  }
}
