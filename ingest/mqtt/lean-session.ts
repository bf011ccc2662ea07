// Lean sessions: a device's plain CONNECT answered by the gateway itself,
// and its connection carried from then on without an aedes client.
//
// Why: every connection aedes holds costs its client object, its parser,
// its timers and their closures, about 6 KB of a gateway process's heap,
// and a CONNECT through aedes' handler chain 0.65 to 0.70 ms of CPU
// (docs/benchmarks.md). A bare Node socket holds 0.9 KB of heap. At the
// city's 219,300 connections that difference is most of the gateway's
// memory (workers at 4.2 GiB on 2026-12-02, against an aim of 3 GB), the
// garbage collector marks it again and again, and a reconnect storm pays
// the CONNECT for every device at once. Nearly every device of the city
// connects the same way (MQTT 3.1.1, clean session, user name and token,
// no will), publishes telemetry, and sends PINGREQ and DISCONNECT: the
// gateway's fast lane already reads its PUBLISHes, and the rest is a few
// bytes of protocol.
//
// What stays with aedes, from the first byte: any other CONNECT (a will,
// a persistent session, MQTT 3.1 or 5, no user name, an empty or long
// client id, a client id whose earlier persistent session aedes may still
// hold), TLS and WebSocket, and a connection while lean sessions are off
// (`mqtt.leanSessions`). What a lean session hands to aedes on the way: the
// first packet it does not carry itself (SUBSCRIBE for device commands, a
// QoS 2 PUBLISH, anything unusual). aedes then gets a CONNECT made from the
// session (same client id, user name and keep-alive, the device already
// authenticated) followed by that packet and the rest of the stream, and
// its CONNACK, which the device has had, is not sent again
// (`swallowConnack`). From there the connection is aedes' as any other.
import type { Socket } from 'node:net'
import type { FastLane } from './fast-lane.ts'
import type { DeviceInfo } from './telemetry.ts'

/** MQTT 3.1.1 CONNECT fields of a connection the gateway carries itself. */
export interface PlainConnect {
  clientId: string
  username: string
  password: Buffer
  /** Seconds; 0 is none (MQTT-3.1.2-10). */
  keepaliveS: number
}

export type ConnectReading =
  /** A plain CONNECT ends at `end`: the gateway may answer it. */
  | { kind: 'plain'; connect: PlainConnect; end: number }
  /** Not one the gateway carries (or not a CONNECT at all): aedes reads the connection from its first byte. */
  | { kind: 'aedes'; reason: string }
  /** Not all here yet. */
  | { kind: 'partial' }

/**
 * Largest first packet read here: a device's CONNECT (client id, user name,
 * token) is about 100 bytes; anything longer goes to aedes with its limits.
 */
export const PLAIN_CONNECT_MAX = 512

/** Longest client id carried here, in bytes (aedes' `maxClientsIdLength`, which it checks for MQTT 3.1 only). */
export const CLIENT_ID_MAX = 64

/** A length-prefixed field (MQTT-1.5.3) at `at`: its start and end, or undefined when it runs past `end`. */
function field(buf: Buffer, at: number, end: number): { start: number; end: number } | undefined {
  if (at + 2 > end) return undefined
  const start = at + 2
  const stop = start + buf.readUInt16BE(at)
  return stop > end ? undefined : { start, end: stop }
}

/**
 * Reads the first packet of a connection. Pure: `plain` only for a CONNECT
 * the gateway carries itself exactly as aedes would (MQTT 3.1.1 "MQTT"
 * level 4, clean session, user name and password, no will, reserved bit 0,
 * a client id of 1 to 64 bytes, nothing after the password); anything else,
 * well formed or not, is aedes' to answer.
 */
export function readConnect(buf: Buffer): ConnectReading {
  if (buf.length === 0) return { kind: 'partial' }
  if (buf[0] !== 0x10) return { kind: 'aedes', reason: 'not a CONNECT of MQTT 3.1.1 flags' }
  let remaining = 0
  let i = 1
  for (let n = 0; ; n++) {
    if (n === 2) return { kind: 'aedes', reason: `a CONNECT above ${PLAIN_CONNECT_MAX} bytes` }
    if (i >= buf.length) return { kind: 'partial' }
    const b = buf[i++] as number
    remaining += (b & 0x7f) << (7 * n)
    if ((b & 0x80) === 0) break
  }
  const end = i + remaining
  if (end > PLAIN_CONNECT_MAX) return { kind: 'aedes', reason: `a CONNECT above ${PLAIN_CONNECT_MAX} bytes` }
  if (end > buf.length) return { kind: 'partial' }
  const name = field(buf, i, end)
  if (!name || buf.toString('latin1', name.start, name.end) !== 'MQTT') return { kind: 'aedes', reason: 'not protocol "MQTT"' }
  at: {
    const level = name.end
    if (level + 4 > end) break at
    if (buf[level] !== 4) return { kind: 'aedes', reason: `protocol level ${buf[level] as number}` }
    const flags = buf[level + 1] as number
    // user name, password, clean session; no will (flag, QoS, retain) and the reserved bit 0.
    if (flags !== 0xc2) return { kind: 'aedes', reason: `connect flags 0x${flags.toString(16)}` }
    const keepaliveS = buf.readUInt16BE(level + 2)
    const id = field(buf, level + 4, end)
    if (!id) break at
    if (id.end === id.start || id.end - id.start > CLIENT_ID_MAX) return { kind: 'aedes', reason: `a client id of ${id.end - id.start} bytes` }
    const user = field(buf, id.end, end)
    if (!user) break at
    const pass = field(buf, user.end, end)
    if (!pass || pass.end !== end) break at
    return {
      kind: 'plain',
      end,
      connect: { clientId: buf.toString('utf8', id.start, id.end), username: buf.toString('utf8', user.start, user.end), password: Buffer.from(buf.subarray(pass.start, pass.end)), keepaliveS },
    }
  }
  return { kind: 'aedes', reason: 'a malformed CONNECT' }
}

/** A CONNACK of MQTT 3.1.1 with no session present (a clean session) and this return code. */
export function connack(returnCode: number): Buffer {
  return Buffer.from([0x20, 0x02, 0x00, returnCode])
}

/** The PINGRESP to a PINGREQ (MQTT-3.13). */
export const PINGRESP = Buffer.from([0xd0, 0x00])

function utf8Field(s: string): Buffer {
  const b = Buffer.from(s, 'utf8')
  const out = Buffer.allocUnsafe(2 + b.length)
  out.writeUInt16BE(b.length, 0)
  b.copy(out, 2)
  return out
}

/**
 * The CONNECT aedes reads for a session it takes over: the session's
 * client id, user name and keep-alive, clean, with no password (the
 * gateway says who the device is; the connection is authenticated already).
 */
export function takeOverConnect(clientId: string, username: string, keepaliveS: number): Buffer {
  const body = Buffer.concat([utf8Field('MQTT'), Buffer.from([4, 0x82, keepaliveS >> 8, keepaliveS & 0xff]), utf8Field(clientId), utf8Field(username)])
  const len: number[] = []
  let n = body.length
  do {
    let b = n & 0x7f
    n >>= 7
    if (n > 0) b |= 0x80
    len.push(b)
  } while (n > 0)
  return Buffer.concat([Buffer.from([0x10, ...len]), body])
}

/**
 * Keeps the next CONNACK aedes writes on `stream` from reaching the device,
 * which had its CONNACK from the gateway. mqtt-packet writes a 3.1.1
 * CONNACK as four writes in one call, its one-byte header first; writes
 * before it (the fast lane's PUBACKs) go through. Undone after the four
 * bytes.
 */
export function swallowConnack(stream: Socket): void {
  type Write = (this: Socket, ...a: unknown[]) => boolean
  const write = Reflect.get(stream, 'write') as Write
  let left = 4
  // Put back as an own property, not deleted: an object a property was deleted from turns into a slower dictionary.
  const undo = (): void => void Reflect.set(stream, 'write', write)
  stream.write = function swallowing(this: Socket, chunk: unknown, ...rest: unknown[]): boolean {
    const b = chunk instanceof Uint8Array ? chunk : undefined
    if (b && (left < 4 || (b.length === 1 && b[0] === 0x20))) {
      left -= b.length
      if (left <= 0) undo()
      const cb = rest.find((x): x is (e?: Error | null) => void => typeof x === 'function')
      if (cb) process.nextTick(cb)
      return true
    }
    return write.call(this, chunk, ...rest)
  }
}

/** Most bytes a session handed to aedes keeps while aedes connects its client (`takeRead`) before the socket stops reading. */
export const PENDING_MAX = 65_536

/** A shared empty buffer list, as the lane reads `_parser._list.length` of a client. */
const NO_LIST = { length: 0 }

/** What a lean client needs of the gateway: one object for every connection of a process. */
export interface LeanHost {
  /** The connection ends for this reason (keep-alive, a write that never drained, a refused publish). */
  onError(client: LeanClient, e: Error): void
  /** The first packet the session does not carry: aedes takes the connection from here, `rest` first. */
  takeOver(client: LeanClient, rest: Buffer): void
  /** aedes' drainTimeout: ms a PUBACK the device does not read may wait. */
  drainTimeoutMs: number
}

/**
 * A connection the gateway carries itself, in the shape the fast lane
 * reads of an aedes client (fast-lane.ts `AedesClient`): its parser is the
 * client itself, for the two packets a session answers (PINGREQ,
 * DISCONNECT), and its keep-alive timer too (refreshed by every read; the
 * sessions' sweep ends one that has been silent too long).
 */
export class LeanClient {
  readonly conn: Socket
  readonly id: string
  readonly username: string
  readonly keepaliveS: number
  readonly version = 4
  closed = false
  /** Handed to aedes (`takeOver`): its close is aedes' to report. */
  takenOver = false
  /** The gateway has told the device gone (once a session). */
  gone = false
  /** aedes has registered the client it took over (its close is aedes' to tell from then on). */
  registered = false
  /** The gateway's session (the device, its lane); set by the gateway. */
  citytwin: { device: DeviceInfo; lane?: FastLane | undefined; seqCheck?: Promise<void> | undefined } | undefined
  /** Last time (Date.now()) bytes came from the device. */
  seen: number
  readonly _keepaliveInterval: number
  readonly _stateCounter = 0
  readonly _list = NO_LIST
  readonly #host: LeanHost
  /** While aedes connects the client it takes over: what the device sent after the packet that made the hand-over. */
  #pending: Buffer[] | undefined
  #pendingBytes = 0
  /** A PUBACK waiting for the socket to drain: its timer and listener, cleared if the connection ends first. */
  #drain: { timer: NodeJS.Timeout; drained: () => void } | undefined

  constructor(conn: Socket, c: PlainConnect, host: LeanHost, now: number) {
    this.conn = conn
    this.id = c.clientId
    this.username = c.username
    this.keepaliveS = c.keepaliveS
    this.#host = host
    this.seen = now
    // As aedes: one and a half keep-alives (MQTT-3.1.2-24), 0 for none.
    this._keepaliveInterval = c.keepaliveS > 0 ? c.keepaliveS * 1500 + 1 : 0
  }

  /** Connected from its CONNACK until its connection ends (the lane reads it so of an aedes client). */
  get connected(): boolean {
    return !this.closed
  }

  /** The lane's parser: this client. */
  get _parser(): this {
    return this
  }

  /** The lane's keep-alive timer: this client. */
  get _keepaliveTimer(): this {
    return this
  }

  refresh(): void {
    this.seen = Date.now()
  }

  /** Whether the session answers this packet itself (by its first byte): PINGREQ and DISCONNECT. */
  carries(first: number): boolean {
    return first === 0xc0 || first === 0xe0
  }

  /** A PINGREQ or DISCONNECT (`carries`), whole. */
  parse(packet: Buffer): number {
    if (this.closed) return 0
    if (packet[0] === 0xc0) this.conn.write(PINGRESP)
    else if (packet[0] === 0xe0) {
      // No will to drop (a lean session has none): the connection ends (MQTT-3.14.4).
      this.closed = true
      this.conn.destroy()
    }
    return 0
  }

  /** Ends the connection (the gateway's close of a revoked device). */
  close(): void {
    this.conn.destroy()
  }

  /** The lane's way out: aedes reads the connection from here, `rest` first. */
  leaveLane(rest: Buffer): void {
    this.#host.takeOver(this, rest)
  }

  /** Keeps `rest` and the reads after it until `flushPending`: aedes queues few packets before its CONNACK. */
  holdPending(rest: Buffer): void {
    this.#pending = rest.length > 0 ? [rest] : []
    this.#pendingBytes = rest.length
  }

  /**
   * A socket read after the connection left the lane (a copy of its own):
   * kept while aedes connects the client, for the stream after. False past
   * `PENDING_MAX` bytes kept, and the socket stops reading until aedes reads.
   */
  takeRead(b: Buffer): boolean {
    if (!this.#pending) return this.conn.push(b)
    this.#pending.push(b)
    this.#pendingBytes += b.length
    return this.#pendingBytes < PENDING_MAX
  }

  /** aedes has connected the client: what was kept goes to the stream, ahead of anything read since. */
  flushPending(): void {
    const kept = this.#pending
    this.#pending = undefined
    if (kept && kept.length > 0) this.conn.unshift(kept.length === 1 ? (kept[0] as Buffer) : Buffer.concat(kept, this.#pendingBytes))
    this.#pendingBytes = 0
  }

  waitForDrain(done: (e: Error | null) => void): void {
    const conn = this.conn
    const drained = (): void => {
      clearTimeout(timer)
      this.#drain = undefined
      done(null)
    }
    const timer = setTimeout(() => {
      conn.removeListener('drain', drained)
      this.#drain = undefined
      done(new Error('client drain timeout'))
    }, this.#host.drainTimeoutMs)
    timer.unref()
    this.#drain = { timer, drained }
    conn.once('drain', drained)
  }

  /** The connection has closed: a wait for it to drain ends (as aedes' close clears its own). */
  ended(): void {
    this.closed = true
    this.#pending = undefined
    const d = this.#drain
    if (!d) return
    this.#drain = undefined
    clearTimeout(d.timer)
    this.conn.removeListener('drain', d.drained)
  }

  emit(event: 'error', e: Error): boolean {
    if (event !== 'error' || this.closed) return false
    this.#host.onError(this, e)
    return true
  }
}
