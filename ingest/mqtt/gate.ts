// A cap on what one gateway process holds unacknowledged. aedes parses and
// hands over every chunk a socket delivers, whatever is still in flight for
// that client; so with many devices each sending a little and a store that
// has fallen behind, in-flight messages pile up by arrival rate x ack delay
// (Little's law) until the heap runs out. The gate holds aedes' reading of a
// client while the process holds `maxInFlight` messages, so the kernel's
// buffers fill and TCP slows the device down. Once the count falls to half
// the cap, the held clients read again.
import { counter, gauge } from '../../lib/metrics.ts'

const pausedGauge = gauge('citytwin_mqtt_paused_connections', 'Connections paused because the gateway holds its most unacknowledged messages')
const pausesTotal = counter('citytwin_mqtt_pauses_total', 'Times a connection was paused by the in-flight cap')

interface Parked {
  resume: () => void
}

export class InFlightGate {
  readonly maxInFlight: number
  #inFlight = 0
  #peak = 0
  readonly #parked = new Set<Parked>()

  constructor(maxInFlight: number) {
    this.maxInFlight = maxInFlight
  }

  get inFlight(): number {
    return this.#inFlight
  }

  /** Most messages held at once. */
  get peak(): number {
    return this.#peak
  }

  get paused(): number {
    return this.#parked.size
  }

  get closed(): boolean {
    return this.#inFlight >= this.maxInFlight
  }

  acquire(): void {
    this.#inFlight++
    if (this.#inFlight > this.#peak) this.#peak = this.#inFlight
  }

  release(): void {
    this.#inFlight--
    if (this.#parked.size > 0 && this.#inFlight <= this.maxInFlight / 2) {
      const all = [...this.#parked]
      this.#parked.clear()
      pausedGauge.set(0)
      for (const p of all) p.resume()
    }
  }

  park(p: Parked): void {
    this.#parked.add(p)
    pausesTotal.inc()
    pausedGauge.set(this.#parked.size)
  }

  unpark(p: Parked): void {
    this.#parked.delete(p)
    pausedGauge.set(this.#parked.size)
  }

  /**
   * Puts a client's reading behind the gate. aedes reads a client's socket
   * through one function (`_nextBatch`): when a socket becomes readable, and
   * when a packet it handed over is done; each call counts one step towards
   * the next read. While the gate is closed those calls are held (counted)
   * and made once it opens again, so the socket stays unread, its buffer and
   * the kernel's fill, and TCP slows the device. Returns false (and leaves
   * the client as it was) if this aedes does not read that way.
   */
  guard(client: object): boolean {
    const c = client as { conn?: { removeListener: (e: string, f: () => void) => void; on: (e: string, f: (err?: Error) => void) => void; once: (e: string, f: () => void) => void }; _nextBatch?: (err?: Error) => void }
    const next = c._nextBatch
    const conn = c.conn
    if (typeof next !== 'function' || !conn) return false
    let held = 0
    const parked: Parked = {
      resume: () => {
        const k = held
        held = 0
        for (let i = 0; i < k; i++) next()
      },
    }
    const gated = (err?: Error): void => {
      if (err) return next(err)
      if (this.closed) {
        if (held++ === 0) this.park(parked)
        return
      }
      next()
    }
    c._nextBatch = gated
    conn.removeListener('readable', next)
    conn.on('readable', gated)
    conn.once('close', () => this.unpark(parked))
    return true
  }
}
