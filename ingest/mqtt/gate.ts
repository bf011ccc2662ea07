// A cap on what one gateway process holds unacknowledged. aedes parses and
// hands over every chunk a socket delivers, whatever is still in flight for
// that client; so with many devices each sending a little and a store that
// has fallen behind, in-flight messages pile up by arrival rate x ack delay
// (Little's law) until the heap runs out. The gate sits between each socket
// and aedes: while the process holds `maxInFlight` messages, a socket that
// delivers data keeps that chunk back and is paused, so the kernel's buffers
// fill and TCP slows the device down. Once the count falls to half the cap,
// the held chunks go on and the sockets read again.
import { Duplex } from 'node:stream'
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
  /** Parked connections and when each was parked (oldest first: a Map keeps insertion order). */
  readonly #parked = new Map<Parked, number>()

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

  /** How long the longest-paused connection has held its data back, in ms at `now`; 0 when none is paused. */
  oldestPausedMs(now: number): number {
    for (const since of this.#parked.values()) return Math.max(0, now - since)
    return 0
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
      const all = [...this.#parked.keys()]
      this.#parked.clear()
      pausedGauge.set(0)
      for (const p of all) p.resume()
    }
  }

  park(p: Parked): void {
    if (!this.#parked.has(p)) this.#parked.set(p, Date.now())
    pausesTotal.inc()
    pausedGauge.set(this.#parked.size)
  }

  unpark(p: Parked): void {
    this.#parked.delete(p)
    pausedGauge.set(this.#parked.size)
  }

  /**
   * The stream aedes reads instead of `socket`: the same bytes both ways,
   * but while the gate is closed a delivered chunk is held back and the
   * socket paused.
   */
  wrap(socket: Duplex): Duplex {
    let held: Buffer | undefined
    let endAfterHeld = false
    const parked: Parked = {
      resume: () => {
        const chunk = held
        held = undefined
        const more = chunk ? stream.push(chunk) : true
        if (endAfterHeld) {
          stream.push(null)
          return
        }
        if (more) socket.resume() // otherwise aedes is not reading yet; its read() resumes the socket
      },
    }
    const stream = new Duplex({
      allowHalfOpen: false,
      read: () => {
        if (!held) socket.resume()
      },
      write: (chunk: Buffer, _enc, cb) => {
        socket.write(chunk, cb)
      },
      final: (cb) => {
        socket.end()
        cb()
      },
      destroy: (err, cb) => {
        this.unpark(parked)
        socket.destroy(err ?? undefined)
        cb(err)
      },
    })
    socket.on('data', (chunk: Buffer) => {
      if (this.closed) {
        socket.pause()
        held = chunk
        this.park(parked)
        return
      }
      if (!stream.push(chunk)) socket.pause()
    })
    socket.on('end', () => {
      if (held) endAfterHeld = true
      else stream.push(null)
    })
    socket.on('error', (e) => stream.destroy(e))
    socket.on('close', () => stream.destroy())
    return stream
  }
}
