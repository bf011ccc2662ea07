// The fast lane: a connected device's PUBLISH packets (QoS 0 and 1) taken
// from its socket by the gateway itself, without aedes' per-packet work.
//
// Why: at the city's rate almost every packet is a device's telemetry
// PUBLISH, and aedes spent most of a message's CPU on machinery the
// gateway does not use for it: mqtt-packet's generic parser (a packet
// object, a buffer list, debug calls), aedes' handler chain (runSeries,
// closures, a PubAck object, setImmediate), and a PUBACK written through
// cork/uncork as three pieces. Profiled (perf, 2026-11-30), one gateway
// process spent about 95 µs of its main thread per message on the read
// path and 45 µs on the PUBACK; this lane frames the packet in place and
// writes the PUBACK as one 4-byte buffer, or a connection's PUBACKs of one
// store batch as one buffer.
//
// A lane reads either an aedes client's connection or a lean session's
// (lean-session.ts: a plain CONNECT the gateway answered itself, with no
// aedes client; the session answers PINGREQ and DISCONNECT, and the first
// other packet hands the connection to aedes).
//
// What stays with aedes: CONNECT (the lane starts only once a client is
// connected, at a packet boundary), every other packet type (PINGREQ,
// SUBSCRIBE, PUBACK of device commands, DISCONNECT, ...), handed to aedes'
// parser in the order it arrived, and whatever is unusual: a QoS 2
// PUBLISH, a malformed header, a packet above `maxPacketBytes`. From an
// unusual packet on, aedes reads that connection for good, so its checks
// and errors apply exactly as without the lane.
//
// What the lane keeps as aedes did: admission's hold (the lane asks
// `mayRead` before it takes each PUBLISH; with no room it keeps the rest
// of the read as bytes, and once it holds `HELD_BYTES_MAX` it pauses the
// stream and TCP pushes back on the device; any finished packet of the
// connection resumes it), the keep-alive (refreshed by any bytes from the
// device; a PINGREQ is never held behind data), errors (a publish refused closes the connection
// through aedes' own error path, `clientError`), the order of PUBACKs (the
// gateway acknowledges in the order its store confirms, as before). A
// PUBACK the socket cannot take (a device that does not read) stops the
// reading until the socket drains, and aedes' drainTimeout ends the wait.
//
// This leans on aedes 1.2's client internals (`_parser`, `_nextBatch`,
// `_parsingBatch`, `_paused`, `_keepaliveTimer`, `waitForDrain`), held to
// 1.2.0 like the rest of the gateway (see admission.ts) and covered by
// tests/ingest/fast-lane.test.ts and tests/ingest/ack-through.test.ts.
import type { Duplex } from 'node:stream'

/** What the framer found at an offset of a buffer (MQTT 3.1.1, section 2). */
export type Frame =
  | { kind: 'publish'; end: number; qos: 0 | 1; dup: boolean; topicStart: number; topicEnd: number; messageId: number; payloadStart: number }
  | { kind: 'other'; end: number }
  /** The packet is not all here yet; `size` is its whole length once the header is complete (else 0). */
  | { kind: 'partial'; size: number }
  | { kind: 'unusual'; reason: string }

const PUBLISH = 3

/**
 * Bytes a held connection (no room in admission) is still read up to
 * before its stream is paused. A device whose QoS 1 window is full sends
 * nothing but a PINGREQ once it has been quiet for a while; a paused
 * stream would leave that PINGREQ unread, and aedes would close the
 * connection at one and a half keep-alives although the device is alive
 * and only the gateway is behind (the full-city run of 2026-11-30 morning
 * lost 129,000 connections so). Below this, such bytes are read, a
 * PINGREQ answered and the keep-alive kept. A device within the
 * simulator's window (10 readings of about 150 bytes) stays under it; one
 * that floods is paused, at a cost of this plus one socket read.
 */
export const HELD_BYTES_MAX = 4_096

/**
 * Frames the packet at `at`. Pure: reads `buf`, returns offsets into it.
 * A PUBLISH is `publish` only when the lane may take it (QoS 0 or 1, a
 * well-formed variable header, a message id for QoS 1); anything else that
 * is well framed is `other`, for aedes.
 */
export function nextFrame(buf: Buffer, at: number, maxPacketBytes: number): Frame {
  if (at >= buf.length) return { kind: 'partial', size: 0 }
  const first = buf[at] as number
  // Remaining length: 1 to 4 bytes, 7 bits each, low first (MQTT-2.2.3).
  let remaining = 0
  let multiplier = 1
  let i = at + 1
  for (let n = 0; ; n++) {
    if (n === 4) return { kind: 'unusual', reason: 'malformed remaining length' }
    if (i >= buf.length) return { kind: 'partial', size: 0 }
    const b = buf[i++] as number
    remaining += (b & 0x7f) * multiplier
    multiplier *= 128
    if ((b & 0x80) === 0) break
  }
  const size = i - at + remaining
  if (size > maxPacketBytes) return { kind: 'unusual', reason: `a packet of ${size} bytes, above the fast lane's ${maxPacketBytes}` }
  if (at + size > buf.length) return { kind: 'partial', size }
  const end = at + size
  if (first >> 4 !== PUBLISH) return { kind: 'other', end }
  const qos = (first >> 1) & 3
  const dup = (first & 8) !== 0
  if (qos > 1 || (qos === 0 && dup)) return { kind: 'unusual', reason: qos > 1 ? `a QoS ${qos} PUBLISH` : 'a QoS 0 PUBLISH marked DUP' }
  if (i + 2 > end) return { kind: 'unusual', reason: 'PUBLISH too short for its topic' }
  const topicStart = i + 2
  const topicEnd = topicStart + buf.readUInt16BE(i)
  const payloadStart = topicEnd + (qos === 1 ? 2 : 0)
  if (payloadStart > end) return { kind: 'unusual', reason: 'PUBLISH too short for its topic and message id' }
  const messageId = qos === 1 ? buf.readUInt16BE(topicEnd) : 0
  if (qos === 1 && messageId === 0) return { kind: 'unusual', reason: 'a QoS 1 PUBLISH with message id 0' }
  return { kind: 'publish', end, qos: qos === 1 ? 1 : 0, dup, topicStart, topicEnd, messageId, payloadStart }
}

const EMPTY = Buffer.alloc(0)
/** A PINGREQ's two bytes, handed to aedes' parser for one met among held bytes (it keeps nothing of them). */
const PINGREQ = Buffer.from([0xc0, 0])

/**
 * `parts` (of `bytes` in all) copied into memory of their own. Node's
 * `Buffer.concat` and `Buffer.from` take anything under 4 KB from a shared
 * 8 KB pool, and one slice kept alive keeps its whole slab: under overload
 * every held connection's few hundred bytes pinned 8 KB (heap snapshot of a
 * worker at 16,000 devices, 2026-12-02: 12 MB of held bytes in 1,500 slabs).
 */
export function ownCopy(parts: readonly Buffer[], bytes: number): Buffer {
  const b = Buffer.allocUnsafeSlow(bytes)
  let at = 0
  for (const p of parts) at += p.copy(b, at)
  return b
}

/** A PUBLISH the lane took, for the gateway. */
export interface LanePublish {
  topic: string
  /** A view of the read it came in, which the next read overwrites: valid during the `publish` call only; copy what is kept (`ownCopy`). */
  payload: Buffer
  qos: 0 | 1
  dup: boolean
  messageId: number
}

/** The PUBACK of a QoS 1 message id: one buffer, one write. */
export function puback(messageId: number): Buffer {
  return pubacks([messageId])
}

/** The PUBACKs of several message ids, in their order, as one buffer (MQTT-3.4: four bytes each). */
export function pubacks(messageIds: readonly number[]): Buffer {
  const b = Buffer.allocUnsafe(4 * messageIds.length)
  for (let i = 0; i < messageIds.length; i++) {
    b[4 * i] = 0x40
    b[4 * i + 1] = 2
    b.writeUInt16BE(messageIds[i] as number, 4 * i + 2)
  }
  return b
}

/**
 * Where every lane of a process has the kernel put its sockets' reads: one
 * buffer, used again for each read. A socket read otherwise allocates its
 * own memory (64 KB asked of malloc, then shrunk to what came), wrapped in an
 * ArrayBuffer and a Buffer, and goes through the stream's push and 'data'
 * event; at the city's shape that is one allocation and one pass through
 * the stream machinery per message. A bare Node server answering 17,000
 * connections at their rate spent 22 to 40 µs a message so, against 32 to
 * 48 with 'data' events (alternated, 2026-12-02, docs/benchmarks.md). It is
 * Node's own `onread` option of `net.Socket`, which a server's accepted
 * sockets are not offered: set here on the socket as that option sets it.
 * The lane reads each read at once and copies whatever it keeps; nothing it
 * hands on may keep a view of this buffer past the call (`LanePublish`).
 */
const READ_BUFFER = Buffer.allocUnsafeSlow(65_536)

/** A socket's `onread` slots (Node 20's net.Socket: `kBuffer`, `kBufferCb`) and its TCP handle. */
export interface UserReadSlots {
  buffer: symbol
  callback: symbol
  handle: { useUserBuffer(buf: Uint8Array): void }
}

/**
 * The `onread` slots of a plain TCP socket, where they are in the shape
 * Node 20 gives them (null, not yet used, or set by a lane before); undefined elsewhere (TLS, a
 * WebSocket stream, another Node), and the lane reads 'data' events there.
 */
export function userReadSlots(stream: object): UserReadSlots | undefined {
  const handle = (stream as { _handle?: { useUserBuffer?: unknown } | null })._handle
  const proto = handle ? (Object.getPrototypeOf(handle) as { constructor?: { name?: string } } | null) : null
  if (!handle || typeof handle.useUserBuffer !== 'function' || proto?.constructor?.name !== 'TCP') return undefined
  const symbols = Object.getOwnPropertySymbols(stream)
  const buffer = symbols.find((k) => k.description === 'kBuffer')
  const callback = symbols.find((k) => k.description === 'kBufferCb')
  const slots = stream as Record<symbol, unknown>
  // Null until used; READ_BUFFER where a lane of this process used them before (a lean session's, handed to aedes).
  if (!buffer || !callback || (slots[buffer] !== null && slots[buffer] !== READ_BUFFER) || (slots[buffer] === null && slots[callback] !== null)) return undefined
  return { buffer, callback, handle: handle as UserReadSlots['handle'] }
}

/** The parts of an aedes 1.2 client the lane uses. */
interface AedesClient {
  conn: Duplex
  connected: boolean
  closed: boolean
  version: number | null
  _parser?: { parse(buf: Buffer): number; _list: { length: number }; _stateCounter: number }
  _parsingBatch: number
  _paused: boolean
  _nextBatch?: () => void
  _keepaliveInterval: number
  _keepaliveTimer: { refresh(): unknown } | null
  /** aedes' wait for the socket to drain, given up after its drainTimeout (the callback then gets an error). */
  waitForDrain(done: (e: Error | null) => void): void
  emit(event: 'error', e: Error): boolean
  /**
   * A session the gateway carries without aedes (lean-session.ts): which
   * packets other than PUBLISH it answers itself (by first byte), and where
   * the connection goes for the first one it does not.
   */
  carries?(first: number): boolean
  leaveLane?(rest: Buffer): void
  /** Where such a session's socket reads go once it has left the lane (a copy each); the stream otherwise. */
  takeRead?(b: Buffer): boolean
}

/** MQTT control packet names by type (MQTT-2.2.1), for the reason a connection leaves the lane. */
const PACKET_NAMES = ['reserved 0', 'CONNECT', 'CONNACK', 'PUBLISH', 'PUBACK', 'PUBREC', 'PUBREL', 'PUBCOMP', 'SUBSCRIBE', 'SUBACK', 'UNSUBSCRIBE', 'UNSUBACK', 'PINGREQ', 'PINGRESP', 'DISCONNECT', 'reserved 15']

/**
 * What the lane asks of the gateway. One object serves every connection of
 * a gateway (each call names its client): closures per connection cost
 * about 300 bytes each, times 19,000 connections a process.
 */
export interface LaneOptions {
  /** Largest packet the lane frames itself; a larger one goes to aedes, with the rest of the connection. */
  maxPacketBytes: number
  /**
   * Takes a PUBLISH of `client`; `done(null)` once it may be acknowledged,
   * `done(error)` to close the connection. Called in arrival order.
   */
  publish(client: object, p: LanePublish, done: (e: Error | null) => void): void
  /** Whether admission lets this client's connection be read now (admission.ts). */
  mayRead(client: object): boolean
  /** Told of each write of PUBACKs (one or more); for the gateway's counts. */
  onAckWrite?(): void
  /** Told when a connection leaves the lane for aedes, and why. */
  onLeave?(client: object, reason: string): void
  /**
   * A packet this lane took before it left is done: another lane may read
   * the connection now (a lean session's, handed to aedes, gets a lane of
   * its aedes client), and may be waiting for that room.
   */
  resumeConnection?(client: object): void
}

/** Whether this aedes client can be read by the lane now: MQTT 3.1/3.1.1, connected, and aedes' parser at a packet boundary. */
function ready(c: AedesClient): boolean {
  const p = c._parser
  return (c.version === 3 || c.version === 4) && c.connected && !c.closed && (typeof c._nextBatch === 'function' || typeof c.leaveLane === 'function') &&
    p !== undefined && p._stateCounter === 0 && p._list.length === 0 && typeof c.conn.read === 'function'
}

/** Where a socket read by a lane into `READ_BUFFER` keeps its lane, for the one read callback every lane shares. */
const LANE = Symbol('citytwin.fastLane')

/** Smallest buffer a lane keeps bytes in; it doubles as more must be kept. */
const KEEP_MIN = 512

export class FastLane {
  readonly #c: AedesClient
  readonly #o: LaneOptions
  /** The 'data' listener, where the lane reads 'data' events (not plain TCP); undefined where it reads into `READ_BUFFER`. */
  #onData: ((chunk: Buffer) => void) | undefined
  /** The socket's `onread` callback slot (`UserReadSlots.callback`), where the lane reads into `READ_BUFFER`. */
  #readCallback: symbol | undefined
  #fast = true
  /**
   * What the lane keeps of the connection's bytes from one read to the
   * next: whole packets held for want of room, then a packet not all here.
   * One buffer of its own per connection, grown (doubled) as more must be
   * kept, packets framed and taken out of it in place, and let go once it
   * is empty. Under the city's full load every connection holds its
   * device's window, and a device's reading comes in a read of its own: a
   * copy of each read in memory of its own (an ArrayBuffer, its backing
   * store and a Buffer, about 300 bytes besides the reading's 150) was an
   * allocation per message that lived for seconds, through young
   * collections into the old generation.
   */
  #keep: Buffer | undefined
  /** Bytes of `#keep` in use. */
  #keepLen = 0
  /** While held: where the whole packets framed in `#keep` end (a PINGREQ among them answered and taken out); the bytes after are not yet framed. */
  #framed = 0
  /** The whole size of a packet not all here, kept in `#keep`; 0 while its header is incomplete. */
  #restNeed = 0
  /**
   * `#keep` holds whole packets not yet parsed because admission had no
   * room: they wait as bytes (about 150 a reading), not as parsed packets
   * with their closures (about a kilobyte). Under the city's full load every
   * connection may hold its device's whole QoS 1 window.
   */
  #held = false
  /** When the lane began to hold (performance.now()), while held. */
  #heldSince = 0
  /** Milliseconds this connection's data has waited, held, over the connection's life, the current hold included once it ends. */
  #heldMs = 0
  /** A PUBACK waits for the socket to drain: nothing more is read meanwhile. */
  #draining = false
  /** Message ids acknowledged this tick, their PUBACKs not yet written (`#flushAcks`). */
  #acks: number[] | undefined
  /** QoS 1 message ids taken and not yet acknowledged, in arrival order, a settled one negated (`#await`, `#done`); at most the connection's window; none while nothing waits. */
  #unacked: number[] | undefined
  /** The place (`#await`) of the first of `#unacked`. */
  #firstUnacked = 0

  /**
   * Lanes with PUBACKs to write at the end of this tick. The store confirms
   * a whole batch at once, and a device with several messages in it gets
   * their PUBACKs in one write: each write to a loopback or LAN socket costs
   * a system call and the kernel's TCP work for the receiver (a V8
   * profile, 2026-11-30, put 28% of a single gateway process's main thread
   * at 18,000 msg/s in PUBACK writes; that profile counts wall time, and
   * perf later put the kernel's sending at about 5% at the city's shape,
   * docs/benchmarks.md). A device with one message in the batch
   * (the city's normal rate) gets one write, as before.
   */
  static #ackQueue: FastLane[] = []
  static #flushAcks = (): void => {
    const lanes = FastLane.#ackQueue
    FastLane.#ackQueue = []
    for (const lane of lanes) lane.#writeAcks()
  }

  /**
   * The read callback of every lane's socket: Node calls it as a method of
   * the socket (`stream[kBufferCb](nread, buffer)`), whose lane is kept on
   * it. One function for all, not a closure and its context per connection.
   */
  static #onRead = function onLaneRead(this: Record<symbol, unknown>, n: number, buf: Buffer): boolean {
    ;(this[LANE] as FastLane).#feed(buf.subarray(0, n))
    return true
  }

  /**
   * Puts a just-connected aedes client on the lane; undefined (aedes goes on
   * reading it) when the client is not one the lane can take.
   */
  static attach(client: object, o: LaneOptions): FastLane | undefined {
    const c = client as AedesClient
    return ready(c) ? new FastLane(c, o) : undefined
  }

  private constructor(c: AedesClient, o: LaneOptions) {
    this.#c = c
    this.#o = o
    const stream = c.conn
    // The lane takes each socket read as it arrives (into READ_BUFFER on
    // plain TCP, as 'data' events elsewhere), without the 'readable'
    // event's extra tick and read() call. aedes' reader steps aside until the connection leaves the lane:
    // not only its 'readable' listener; every packet aedes handles calls
    // its reader when done, and a read() then would hand the same bytes to
    // aedes and (as a 'data' event) to the lane. Paused, it reads nothing.
    if (c._nextBatch) {
      c._paused = true
      stream.removeListener('readable', c._nextBatch)
    }
    const userRead = userReadSlots(stream)
    if (userRead) {
      const { buffer, callback, handle } = userRead
      const slots = stream as unknown as Record<symbol, unknown>
      this.#readCallback = callback
      slots[LANE] = this
      slots[buffer] = READ_BUFFER
      slots[callback] = FastLane.#onRead
      handle.useUserBuffer(READ_BUFFER)
      // What the stream read before (bytes after the CONNECT, not yet parsed) comes first; the rest is aedes' once
      // one of them sends the connection there (#leave).
      while (this.#fast && stream.readableLength > 0) {
        const chunk = stream.read() as Buffer | null
        if (chunk === null) break
        this.#feed(chunk)
      }
    } else {
      this.#onData = (chunk: Buffer): void => this.#feed(chunk)
      stream.on('data', this.#onData)
    }
    this.#resume()
  }

  /** Whether the lane still reads the connection (false once it has left it to aedes, which may be as it starts). */
  get reading(): boolean {
    return this.#fast
  }

  /**
   * How long (ms) the gateway has held this connection's data unread for
   * want of room, over all its holds so far. The device sent meanwhile at
   * its own pace; what comes out after a hold comes at once, and the rate
   * limit must not take that for a burst of the device's (telemetry.ts
   * RateLimiter).
   */
  get heldMs(): number {
    return this.#heldMs
  }

  /**
   * Reads on if admission and the socket allow. The lane calls it when one
   * of its packets is done; the gateway, when a packet of this connection
   * that aedes took is done (the lane may have paused for it).
   */
  resume(): void {
    this.#resume()
  }

  #resume(): void {
    const conn = this.#c.conn
    if (!this.#fast || this.#draining || this.#c.closed) return
    if (this.#held && this.#o.mayRead(this.#c)) this.#feed(EMPTY)
    // Read on while under the hold's cap, room or not: a held device's PINGREQ must be read.
    if (this.#fast && !this.#draining && !this.#c.closed && !this.#full() && conn.isPaused()) conn.resume()
  }

  /** Appends `bytes` to what the lane keeps, in its own buffer, grown (doubled) when they do not fit. */
  #append(bytes: Buffer): void {
    const need = this.#keepLen + bytes.length
    let keep = this.#keep
    if (!keep || keep.length < need) {
      // Not Node's pool, whose 8 KB slab a kept buffer would keep whole (ownCopy).
      const grown = Buffer.allocUnsafeSlow(Math.max(need, KEEP_MIN, keep ? 2 * keep.length : 0))
      if (keep) keep.copy(grown, 0, 0, this.#keepLen)
      keep = this.#keep = grown
    }
    bytes.copy(keep, this.#keepLen)
    this.#keepLen = need
  }

  /**
   * Keeps `buf` from `at`, with nothing kept before it (`#feed` parses what
   * was kept, and nothing reads the socket while it does): moved to the
   * front of `own` in place where `buf` is a view of the lane's own buffer
   * (`own`, taken out of `#keep` for the parse), else copied (a socket read
   * may be a view of `READ_BUFFER`, which the next read overwrites).
   */
  #keepFrom(buf: Buffer, at: number, own: Buffer | undefined): void {
    if (own) {
      own.copyWithin(0, at, buf.length)
      this.#keep = own
      this.#keepLen = buf.length - at
    } else {
      this.#append(buf.subarray(at))
    }
  }

  /** Keeps `buf` from `at` as bytes to parse once admission has room (`#keepFrom`); a PINGREQ among them is answered now. */
  #hold(buf: Buffer, at: number, own: Buffer | undefined): void {
    this.#keepFrom(buf, at, own)
    this.#restNeed = 0
    this.#framed = 0
    if (!this.#held) this.#heldSince = performance.now()
    this.#held = true
    this.#frameHeld()
  }

  /**
   * Frames the held bytes after `#framed`: whole packets stay where they
   * are; a PINGREQ among them is answered now and taken out, as it is never
   * held behind data (the device would take the silence for a dead link). A
   * packet not all here, or one for aedes' checks, stops the framing until
   * the bytes are parsed.
   */
  #frameHeld(): void {
    const keep = this.#keep
    if (!keep) return
    let view = keep.subarray(0, this.#keepLen)
    let i = this.#framed
    while (i < view.length) {
      const f = nextFrame(view, i, this.#o.maxPacketBytes)
      if (f.kind === 'partial' || f.kind === 'unusual') break
      if (f.kind === 'other' && view[i] === 0xc0 && f.end - i === 2) {
        this.#c._parser?.parse(PINGREQ)
        keep.copyWithin(i, f.end, this.#keepLen)
        this.#keepLen -= 2
        view = keep.subarray(0, this.#keepLen)
        continue
      }
      i = f.end
    }
    this.#framed = i
  }

  /** More bytes while held and still no room: kept after the others, and only they (and an unfinished packet before them) are framed. */
  #holdMore(chunk: Buffer): void {
    this.#append(chunk)
    this.#frameHeld()
  }

  #feed(chunk: Buffer): void {
    // Bytes from the device: it is alive, whether or not they can be parsed yet (MQTT-3.1.2-24).
    if (chunk.length > 0 && this.#c._keepaliveInterval > 0) this.#c._keepaliveTimer?.refresh()
    let buf = chunk
    /** The lane's own buffer that `buf` is a view of (bytes it kept), not a socket read. */
    let own: Buffer | undefined
    const kept = this.#keep
    if (kept) {
      if (this.#held && !this.#o.mayRead(this.#c)) {
        // Still no room: what came is held too, after a PINGREQ among it is answered.
        if (chunk.length > 0) this.#holdMore(chunk)
        this.#pauseIfFull()
        return
      }
      // Copied after what is kept: the read may be a view of READ_BUFFER, and this piece may wait for the next.
      if (chunk.length > 0) this.#append(chunk)
      if (!this.#held && this.#restNeed > 0 && this.#keepLen < this.#restNeed) return
      // Parsed from the lane's buffer, taken out of `#keep` meanwhile; what is left goes back to its front (`#keepFrom`).
      // `#keep` itself: the append may have grown it into a new buffer.
      own = this.#keep ?? kept
      buf = own.subarray(0, this.#keepLen)
      this.#keep = undefined
      this.#keepLen = 0
      if (this.#held) this.#heldMs += performance.now() - this.#heldSince
      this.#held = false
    }
    let at = 0
    while (at < buf.length) {
      const f = nextFrame(buf, at, this.#o.maxPacketBytes)
      if (f.kind === 'partial') {
        // Kept, so a few bytes do not hold a whole socket read.
        this.#keepFrom(buf, at, own)
        this.#restNeed = f.size
        break
      }
      if (f.kind === 'unusual') {
        this.#leave(ownCopy([buf.subarray(at)], buf.length - at), f.reason)
        return
      }
      if (f.kind === 'other' && this.#c.carries && !this.#c.carries(buf[at] as number)) {
        this.#leave(ownCopy([buf.subarray(at)], buf.length - at), `a ${PACKET_NAMES[(buf[at] as number) >> 4] as string} packet`)
        return
      }
      if (f.kind === 'other') {
        // Copied: aedes' parser may keep slices of what it parses (a CONNECT's password), and the read is used again.
        this.#c._parser?.parse(ownCopy([buf.subarray(at, f.end)], f.end - at))
      } else if (!this.#o.mayRead(this.#c)) {
        this.#hold(buf, at, own)
        break
      } else {
        this.#take(buf, f)
      }
      at = f.end
      // A DISCONNECT (or an error) in this read ends the connection: what follows it is not taken.
      if (this.#c.closed || this.#c.conn.destroyed) return
    }
    this.#pauseIfFull()
  }

  /**
   * A held connection that has sent `HELD_BYTES_MAX` stops being read: the
   * socket's buffer fills, then the kernel's, and TCP slows the device down.
   */
  #pauseIfFull(): void {
    if (this.#full()) this.#c.conn.pause()
  }

  #full(): boolean {
    return this.#held && this.#keepLen >= HELD_BYTES_MAX
  }

  #take(buf: Buffer, f: Extract<Frame, { kind: 'publish' }>): void {
    const p: LanePublish = { topic: buf.toString('utf8', f.topicStart, f.topicEnd), payload: buf.subarray(f.payloadStart, f.end), qos: f.qos, dup: f.dup, messageId: f.messageId }
    // The callback keeps its place in the order, not the packet: a closure over `p` would hold its payload, and so the socket read it is a slice of, until the store answers.
    const place = f.qos === 1 ? this.#await(f.messageId) : -1
    this.#o.publish(this.#c, p, (e) => {
      const c = this.#c
      if (e) {
        // As aedes does when authorizePublish fails: the connection closes, `clientError` says why.
        if (!c.closed) c.emit('error', e)
        return
      }
      if (place >= 0) this.#done(place)
      // Its room is free: this lane reads on, or, once it has left, the lane that reads the connection now may.
      if (this.#fast) this.#resume()
      else this.#o.resumeConnection?.(c)
    })
  }

  /**
   * Takes a QoS 1 message's place in the order of its PUBACK: its number
   * among those the lane has taken. The gateway settles a message when its
   * store write answers, and two messages of one connection may be settled
   * out of their order (a DUP that asked the store first, writes of
   * different sizes under backpressure); the PUBACKs still go in the order
   * the PUBLISHes came (MQTT-4.6.0-2).
   */
  #await(messageId: number): number {
    const ids = (this.#unacked ??= [])
    ids.push(messageId)
    return this.#firstUnacked + ids.length - 1
  }

  /** The message at `place` may be acknowledged: so are all settled before and after it up to the first still waiting. */
  #done(place: number): void {
    const ids = this.#unacked as number[]
    const at = place - this.#firstUnacked
    // Settled and waiting for those before it: kept negated (a message id is never 0).
    ids[at] = -(ids[at] as number)
    while (ids.length > 0 && (ids[0] as number) < 0) {
      this.#firstUnacked++
      this.#ack(-(ids.shift() as number))
    }
    // Nothing waits: the array goes, so an idle connection keeps none (at the city's rate one message is in flight at a time).
    if (ids.length === 0) this.#unacked = undefined
  }

  /** Queues the PUBACK of `messageId`, written with the connection's others of this tick; their order is the order acknowledged. */
  #ack(messageId: number): void {
    if (!this.#fast && !this.#acks) {
      // The connection has left the lane: aedes writes the PUBACKs of what it took at once, so this one must
      // not wait for the end of the turn behind them (MQTT-4.6.0-2: PUBACKs in the order of the PUBLISHes).
      this.#acks = [messageId]
      this.#writeAcks()
      return
    }
    if (this.#acks) {
      this.#acks.push(messageId)
      return
    }
    this.#acks = [messageId]
    FastLane.#ackQueue.push(this)
    if (FastLane.#ackQueue.length === 1) process.nextTick(FastLane.#flushAcks)
  }

  #writeAcks(): void {
    const ids = this.#acks
    this.#acks = undefined
    const c = this.#c
    if (!ids || !c.connected || c.closed || c.conn.destroyed) return
    this.#o.onAckWrite?.()
    if (!c.conn.write(pubacks(ids)) && !this.#draining) {
      // A device that does not read its PUBACKs is not read either; aedes gives up on it after its drainTimeout.
      this.#draining = true
      c.conn.pause()
      c.waitForDrain((err) => {
        this.#draining = false
        if (err) {
          if (!c.closed) c.emit('error', err)
          return
        }
        this.#resume()
      })
    }
  }

  /** From here on aedes reads the connection: it gets `rest` now, and the stream after. */
  #leave(rest: Buffer, reason: string): void {
    this.#fast = false
    // PUBACKs of lane messages waiting for the end of the turn go first: aedes answers what it takes from here.
    if (this.#acks) this.#writeAcks()
    this.#o.onLeave?.(this.#c, reason)
    const c = this.#c
    if (this.#readCallback) {
      // The socket keeps reading into READ_BUFFER (Node has no way back): each read is copied into the stream for aedes, as a read of its own would be.
      const stream = c.conn
      const take = c.takeRead ? c.takeRead.bind(c) : stream.push.bind(stream)
      ;(stream as unknown as Record<symbol, unknown>)[this.#readCallback] = (n: number, buf: Buffer): boolean => take(ownCopy([buf.subarray(0, n)], n))
    } else if (this.#onData) {
      c.conn.removeListener('data', this.#onData)
    }
    c.conn.pause()
    if (c.closed) return
    // A session the gateway carried itself goes to aedes now, with what it has not read.
    if (c.leaveLane) return c.leaveLane(rest)
    // aedes' reader back as it was: its count of packets in hand starts
    // afresh (those it finished while paused never counted down).
    c._paused = false
    c._parsingBatch = 0
    c.conn.on('readable', c._nextBatch as () => void)
    c._parser?.parse(rest)
    // aedes reads again when the packets it has finish; with none, start it now.
    if (!c.closed && c._parsingBatch <= 0) c._nextBatch?.()
  }
}
