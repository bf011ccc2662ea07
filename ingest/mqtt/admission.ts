// Admission: how many PUBLISH packets a gateway process works on at once.
// Each one admitted holds memory until its PUBACK (its rows in the writer
// queue, the relay, the store), so with many devices and a store that has
// fallen behind, what is in flight grows by arrival rate x ack delay
// (Little's law) until the heap runs out. Admission bounds it exactly:
//
// - at most `maxInFlight` packets per process, and at most `window` per
//   connection, are between authorizePublish and their acknowledgement;
// - a packet that finds no room waits in its connection's queue, and the
//   connections with waiting packets take turns, first in first out, as
//   room frees: one packet each, so a chatty device cannot starve the rest;
// - a connection with a packet waiting, or a full window, is not read:
//   aedes asks the stream for data (`read()`), and the stream answers
//   nothing until the connection may go on, so its bytes stay in the
//   kernel and TCP slows the device down; at most one socket read per
//   connection is parsed and waiting. The fast lane (fast-lane.ts), which
//   reads a connected device's stream itself, asks `mayRead` before each
//   PUBLISH and keeps what has no room as bytes, up to a few kilobytes,
//   before it pauses the stream (`readThrough`).
//
// Only reading is held, and only per connection: a new connection is read
// at once, so its CONNECT is answered (and a PINGREQ read with data is
// handled) however full the process is.
//
// Connections first: while any connection of the process is between its
// accept and its CONNACK, at most `connectingCap` packets are in flight.
// A process short of CPU otherwise spends it on the data of the devices it
// has and answers CONNECTs with what is left: in the full-city benchmark,
// once the simulator offered the city's rate, 110,000 devices connected and
// the other 109,000 timed out for minutes. A device that cannot connect is
// a device the twin cannot tell from a dead one; a connected device whose
// data is slowed is a device the twin knows is late (ingest degraded). aedes' own read loop does not hold
// back: a 'readable' event reads again while the previous read's packets
// are still being handled, which is why the hold is on the stream.
//
// This leans on how aedes 1.2 reads a client (its `read()` calls and
// `publish(packet, client, done)` for a client's message), so the
// dependency is held to 1.2.x (`~1.2.0`): a newer aedes is taken on
// purpose, with these tests, not by an install.
//
// Only PUBLISH waits: other packets of the same read (SUBSCRIBE, PINGREQ,
// DISCONNECT) are handled by aedes at once. A DISCONNECT therefore ends
// the connection before its waiting PUBLISHes: none of them was
// acknowledged, so nothing acknowledged is lost, and a QoS 1 device that
// did not wait for its PUBACKs sends them again.
//
// Budget: O(1) per packet (a counter, at most one queue push and shift);
// about 400 bytes per connection (this record, the hold and its bound read,
// the close listener unless the caller listens for the close itself).
import type { Readable } from 'node:stream'
import { sampledGauge, tallyCounter } from '../../lib/metrics.ts'

// Read at each scrape, and counted in a plain number: both move with every message under load (lib/metrics.ts).
const waitingGauge = sampledGauge('citytwin_mqtt_waiting_connections', 'Connections whose data waits for room in the gateway process (they are not read meanwhile)')
const waitsTotal = tallyCounter('citytwin_mqtt_admission_waits_total', 'PUBLISH packets that waited for room in the gateway process').labels({})

/** Starts the work of one packet; `release` must be called once it is acknowledged or refused. */
export type Start = (release: () => void) => void

interface Waiting {
  start: Start
  at: number
}

/**
 * The waiting packets of a connection with none: one frozen empty array for
 * all. Most connections never wait; an array of their own each was 32 bytes
 * (and a few hundred once it had grown), times 17,000 connections a process.
 */
const NO_WAITING = Object.freeze([]) as unknown as Waiting[]

interface Connection {
  waiting: Waiting[]
  inFlight: number
  /** In the queue of connections that may take the next free room. */
  queued: boolean
  closed: boolean
  /** Between its accept (attach) and its CONNACK (connected) or close. */
  connecting: boolean
  /** Read by the fast lane, which holds what has no room itself: the stream's read() is not held. */
  through: boolean
  /** The stream's read() is held (attach, holdReads). */
  holding: boolean
}

export interface AdmissionOptions {
  /** Most packets in flight in this process. */
  maxInFlight: number
  /** Most packets in flight for one connection. */
  window: number
  /** Most packets in flight in this process while a connection is connecting (default: maxInFlight, no priority). */
  connectingCap?: number
  now?: () => number
}

type ReadFn = (size?: number) => unknown

export class Admission {
  readonly maxInFlight: number
  readonly window: number
  readonly connectingCap: number
  readonly #now: () => number
  readonly #conns = new WeakMap<object, Connection>()
  /** Connections with a packet waiting and room in their window, oldest first (a ring kept as an array with a head). */
  #ready: Connection[] = []
  #head = 0
  /** Inside #pump: a release meanwhile leaves the giving of room to the loop running. */
  #pumping = false
  #inFlight = 0
  #peak = 0
  #waiting = 0
  #waitingConnections = 0
  #connecting = 0

  constructor(o: AdmissionOptions) {
    if (!(o.maxInFlight >= 1 && o.window >= 1)) throw new RangeError('admission needs maxInFlight and window of at least 1')
    this.maxInFlight = o.maxInFlight
    this.window = o.window
    this.connectingCap = Math.max(1, Math.min(o.maxInFlight, o.connectingCap ?? o.maxInFlight))
    this.#now = o.now ?? Date.now
    // The latest admission of the process is the one scraped (one per gateway process; tests make many).
    waitingGauge.watch({}, () => this.#waitingConnections)
  }

  get inFlight(): number {
    return this.#inFlight
  }

  /** Most packets in flight at once. */
  get peak(): number {
    return this.#peak
  }

  /** Packets waiting for room. */
  get waiting(): number {
    return this.#waiting
  }

  /** Connections with packets waiting (they are not read meanwhile). */
  get waitingConnections(): number {
    return this.#waitingConnections
  }

  /** Connections between their accept and their CONNACK. */
  get connecting(): number {
    return this.#connecting
  }

  /** The connection of `stream` has its CONNACK: it no longer holds the others to the connecting cap. */
  connected(stream: object): void {
    const c = this.#conns.get(stream)
    if (c) this.#doneConnecting(c)
  }

  #doneConnecting(c: Connection): void {
    if (!c.connecting) return
    c.connecting = false
    this.#connecting--
    if (this.#connecting === 0) this.#pump()
  }

  /** The cap on packets in flight now. */
  #cap(): number {
    return this.#connecting > 0 ? this.connectingCap : this.maxInFlight
  }

  /** How long the packet at the head of the queue has waited, in ms at `now`; 0 when nothing waits. */
  oldestWaitingMs(now: number): number {
    // A connection that closed keeps its place until room frees; when nothing
    // is released (the store stalled) that may be long, so look past it.
    while (this.#head < this.#ready.length && (this.#ready[this.#head] as Connection).closed) {
      ;(this.#ready[this.#head] as Connection).queued = false
      this.#ready[this.#head++] = undefined as unknown as Connection
    }
    const first = this.#ready[this.#head]?.waiting[0]
    return first ? Math.max(0, now - first.at) : 0
  }

  /** Whether `admit` would run a packet of `stream` at once rather than keep it waiting. */
  runsNow(stream: object): boolean {
    return this.mayRead(stream) && this.#inFlight < this.#cap()
  }

  /** Whether the connection of `stream` may be read now: nothing of it waits and its window has room. */
  mayRead(stream: object): boolean {
    const c = this.#conns.get(stream)
    return c === undefined || (!c.closed && this.#mayGoOn(c))
  }

  /** Nothing of the connection waits and its window has room. */
  #mayGoOn(c: Connection): boolean {
    return c.waiting.length === 0 && c.inFlight < this.window
  }

  /**
   * The fast lane reads this stream from now on (true), or aedes again
   * (false). The lane asks `mayRead` itself and holds what has no room; a
   * held read() under it would stop a flowing stream's buffered chunks with
   * the stream still flowing, so nothing (a PINGREQ included) would be
   * delivered until the device sent more.
   */
  readThrough(stream: object, through: boolean): void {
    this.#conn(stream).through = through
  }

  /** Whether the connection of `stream` has closed (its packets are not taken any more). */
  closed(stream: object): boolean {
    return this.#conns.get(stream)?.closed ?? false
  }

  /**
   * Takes over reading of a just-accepted connection's stream, which counts
   * as connecting until `connected` or its close: aedes' `read()` gets
   * nothing while the connection must wait. `read(0)` (the stream's own
   * "fetch more into the buffer", which returns no data) passes, so the
   * stream still fills its buffer up to its limit and then stops reading
   * the socket. Sets `noDelay` where the stream has it: a PUBACK is four
   * bytes that the device waits for. With `holdReads` false, reads are
   * held only from `holdReads(stream)` on: a connection the gateway reads
   * itself (a lean session on the fast lane) keeps no hold until aedes
   * reads it, some 200 bytes a connection.
   */
  attach(stream: Readable & { setNoDelay?: (noDelay?: boolean) => unknown }, watchClose = true, holdReads = true): void {
    stream.setNoDelay?.(true)
    const conn = this.#conn(stream)
    conn.connecting = true
    this.#connecting++
    if (holdReads) this.holdReads(stream)
    // 'on', not 'once': a close comes once, and once's wrapper costs a few hundred bytes a connection.
    if (watchClose) stream.on('close', () => this.#close(conn))
  }

  /** Holds aedes' reads of an attached stream from now on (see `attach`); once a stream. */
  holdReads(stream: Readable): void {
    const conn = this.#conn(stream)
    if (conn.holding) return
    conn.holding = true
    const window = this.window
    // The stream's own read, bound: the hold calls it when the connection may go on.
    const read = stream.read.bind(stream) as ReadFn
    const held: ReadFn = (size?: number) => {
      if (size !== 0 && !conn.through && (conn.waiting.length > 0 || conn.inFlight >= window)) return null
      return read(size)
    }
    ;(stream as { read: ReadFn }).read = held
  }

  /**
   * The stream attached with `watchClose` false has closed: its caller
   * listens for the close itself, with what else a close must do, so the
   * stream keeps one listener fewer (a third 'close' listener grows the
   * emitter's array to 19 slots, about 170 bytes a connection).
   */
  detach(stream: object): void {
    const conn = this.#conns.get(stream)
    if (conn) this.#close(conn)
  }

  /**
   * Runs `start` now if there is room for this connection's packet, or once
   * there is, in turn. False, and `start` is not taken, when the connection
   * has closed.
   */
  admit(stream: object, start: Start): boolean {
    const conn = this.#conn(stream)
    if (conn.closed) return false
    if (this.#mayGoOn(conn) && this.#inFlight < this.#cap()) {
      this.#run(conn, start)
      return true
    }
    if (conn.waiting.length === 0) {
      this.#waitingConnections++
      conn.waiting = []
    }
    conn.waiting.push({ start, at: this.#now() })
    this.#waiting++
    waitsTotal.inc()
    if (!conn.queued && conn.inFlight < this.window) this.#enqueue(conn)
    return true
  }

  #conn(stream: object): Connection {
    let c = this.#conns.get(stream)
    if (!c) {
      c = { waiting: NO_WAITING, inFlight: 0, queued: false, closed: false, connecting: false, through: false, holding: false }
      this.#conns.set(stream, c)
    }
    return c
  }

  #run(conn: Connection, start: Start): void {
    conn.inFlight++
    if (++this.#inFlight > this.#peak) this.#peak = this.#inFlight
    let released = false
    start(() => {
      if (released) return
      released = true
      this.#release(conn)
    })
  }

  #release(conn: Connection): void {
    conn.inFlight--
    this.#inFlight--
    if (conn.waiting.length > 0 && !conn.queued && !conn.closed) this.#enqueue(conn)
    this.#pump()
  }

  /**
   * Gives free room to waiting connections in turn, one packet each. Not
   * re-entered: a packet that finishes at once (a refusal, a duplicate)
   * releases inside `#run`, and its room is given by the loop already
   * running instead of a call one level deeper per waiting packet.
   */
  #pump(): void {
    if (this.#pumping) return
    this.#pumping = true
    try {
      this.#pumpLoop()
    } finally {
      this.#pumping = false
    }
  }

  #pumpLoop(): void {
    const cap = this.#cap()
    while (this.#inFlight < cap && this.#head < this.#ready.length) {
      const conn = this.#ready[this.#head] as Connection
      this.#ready[this.#head++] = undefined as unknown as Connection // let it be collected once done
      conn.queued = false
      // A connection that closed while queued holds the shared empty array, which is frozen: shift() would throw.
      if (conn.closed || conn.waiting.length === 0) continue
      const next = conn.waiting.shift() as Waiting
      this.#waiting--
      if (conn.waiting.length === 0) {
        this.#waitingConnections--
        // An array keeps the room it grew to (17 slots after its first push, about 170 bytes): the shared empty one holds none.
        conn.waiting = NO_WAITING
      } else if (conn.inFlight + 1 < this.window) {
        this.#enqueue(conn)
      }
      this.#run(conn, next.start)
    }
    if (this.#head > 1024 && this.#head * 2 > this.#ready.length) {
      this.#ready = this.#ready.slice(this.#head)
      this.#head = 0
    }
  }

  #enqueue(conn: Connection): void {
    conn.queued = true
    this.#ready.push(conn)
  }

  /** A closed connection's waiting packets are dropped: none was acknowledged, so the device sends them again. */
  #close(conn: Connection): void {
    if (conn.closed) return
    conn.closed = true
    this.#doneConnecting(conn)
    if (conn.waiting.length > 0) {
      this.#waiting -= conn.waiting.length
      this.#waitingConnections--
      conn.waiting = NO_WAITING
    }
  }
}
