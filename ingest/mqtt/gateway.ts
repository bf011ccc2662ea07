// The MQTT gateway: an aedes broker that authenticates every device, keeps
// each device to its own topics, validates telemetry, and acknowledges a
// QoS 1 PUBLISH only once its rows are in the store (or its rejection is in
// the dead letters). aedes writes the PUBACK before `published` runs, so the
// hand-off happens in `authorizePublish`, whose callback aedes awaits before
// acknowledging. Once a device is connected, its PUBLISH packets take the
// fast lane (fast-lane.ts) instead: framed from the socket by the gateway,
// through the same checks, acknowledged with one write once stored.
// Admission (admission.ts) bounds what is in flight, per process and per
// connection, and stops reading a connection that must wait, so a slow
// store slows the sockets, not the heap.
import { readFileSync } from 'node:fs'
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http'
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { createServer as createTlsServer, TLSSocket, type Server as TlsServer } from 'node:tls'
import { createWebSocketStream, WebSocketServer } from 'ws'
import { Aedes, type AuthenticateError, type Client, type PublishPacket, type Subscription } from 'aedes'
import { writeToStream } from 'mqtt-packet'
import { leanPersistence, type LeanPersistence } from './persistence.ts'
import { connack, LeanClient, readConnect, swallowConnack, takeOverConnect, type LeanHost, type PlainConnect } from './lean-session.ts'
import { atDeadline } from '../../lib/backoff.ts'
import type { Bus } from '../../lib/bus/bus.ts'
import type { Component, ComponentStats, Health } from '../../lib/component.ts'
import { CitytwinError, messageOf, type ErrorCode } from '../../lib/errors.ts'
import { listen } from '../../lib/http/listen.ts'
import { logger } from '../../lib/log.ts'
import { counter, gauge, histogram, tallyCounter } from '../../lib/metrics.ts'
import type { DeadLetterSink, Row, RowSink, WriteOutcome } from '../../store/writer.ts'
import type { MqttConfig } from './config.ts'
import { deviceTopics, ownPublishKind, type DeviceLookup } from './devices.ts'
import { eventElements, readingElements, rowsStored } from '../../lib/bus/stored.ts'
import { Admission } from './admission.ts'
import { trimAfterConnect } from './client-trim.ts'
import { AddressLimit, peerAddress } from './address-limit.ts'
import { limitPacketSize } from './packet-limit.ts'
import { FastLane, nextFrame, ownCopy, userReadSlots, type LaneOptions } from './fast-lane.ts'
import { ProcessBacklog } from './backlog.ts'
import { HeapGuard, type HeapSample } from './heap-guard.ts'
import type { LastSeqLookup } from './last-seq.ts'
import { decodeTelemetry, RateLimiter, timeOf, type DeviceInfo, type TelemetryLimits } from './telemetry.ts'
import { tokenMatches } from './tokens.ts'
import type { HandOverClient } from './hand-over.ts'
import { kernelListenCap, listenQueueAdvice } from './listen-queue.ts'
import { PausableListener } from './pausable-listener.ts'
import { RefusalDigest, type RefusalCode } from './refusal-digest.ts'

const log = logger('mqtt-gateway')
// mqtt-packet builds 65,536 two-byte buffers of message ids at its first
// write (6.5 MB of heap in every gateway process, measured 2026-11-30). The
// fast lane writes its PUBACKs itself; what aedes still writes (CONNACK,
// SUBACK, PINGRESP, a PUBACK off the lane) builds its number on the spot.
writeToStream.cacheNumbers = false
// Counted per message: in plain numbers, handed to prom-client at each scrape (lib/metrics.ts tallyCounter).
const messagesTotal = tallyCounter('citytwin_ingest_messages_total', 'MQTT PUBLISH packets by outcome', ['outcome'])
const refusedTotal = counter('citytwin_mqtt_refused_total', 'Connections, publishes and subscriptions refused, by reason', ['what', 'code'])
const connections = gauge('citytwin_mqtt_connections', 'Devices connected to this gateway process')
const storedTotal = messagesTotal.labels({ outcome: 'stored' })
const duplicateTotal = messagesTotal.labels({ outcome: 'duplicate' })
const storeFailedTotal = messagesTotal.labels({ outcome: 'store_failed' })
const deadLetteredTotal = messagesTotal.labels({ outcome: 'dead_lettered' })
const laneLeft = counter('citytwin_mqtt_fast_lane_left_total', 'Connections handed from the fast lane to aedes after an unusual packet (QoS 2, malformed, too large)')
const ackSeconds = histogram('citytwin_ingest_publish_to_ack_seconds', 'From a PUBLISH arriving to its acknowledgement (stored or dead-lettered)', [], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5])

/** What aedes 1.2 says when it closes a connection whose CONNECT did not come within its connect timeout (lib/client.js). */
const CONNECT_TIMEOUT_MESSAGE = 'connect did not arrive in time'

// MQTT 3.1.1 CONNACK return codes (MQTT-3.2.2.3).
const CONNACK_SERVER_UNAVAILABLE = 3
const CONNACK_BAD_USERNAME_OR_PASSWORD = 4
const CONNACK_NOT_AUTHORIZED = 5

export { EVENTS_COLUMNS } from '../../store/events.ts'

/** What the gateway needs of a PUBLISH, from aedes or from the fast lane. */
interface InboundPublish {
  topic: string
  payload: Buffer | string
  dup: boolean
}

/**
 * `done` for a packet in flight, after its room in admission is released
 * (before the PUBACK is written: writing it reads the connection again,
 * which admission must allow by then). A function of its own so that the
 * callback, which lives until the store answers, closes over these three
 * and not over the packet: a closure inside `#take` kept the packet's
 * context, and with it the payload and the whole socket read or 8 KB slab
 * it is a slice of (heap snapshot under overload, 2026-12-02: 23 MB of a
 * worker's 53 MB of buffers).
 */
function whenAcked(release: () => void, arrived: number, done: (e: Error | null) => void): (e: Error | null) => void {
  return (e) => {
    release()
    ackSeconds.observe((performance.now() - arrived) / 1000)
    done(e)
  }
}

/**
 * Most rows in one turn's write of telemetry (#stage); a turn with more is
 * cut into several writes. At the city's two or three rows a message that
 * is some 400 messages, more than a gateway process reads in one turn at
 * the city's rate.
 */
export const TURN_ROWS_MAX = 1_000

/** What was thrown, as an Error (made one if it was not). */
function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(messageOf(e))
}

/** Calls `done` when `p` settles: null, or the error. */
function settled(p: Promise<void>, done: (e: Error | null) => void): void {
  p.then(() => done(null), (e: unknown) => done(asError(e)))
}

/** Tells every message of a turn its outcome; one whose callback throws does not keep the others from theirs. */
function settleAll(messages: readonly StagedMessage[], e: Error | null): void {
  for (const m of messages) {
    try {
      m.done(e)
    } catch (err) {
      log.error({ err, device: m.deviceId }, 'acknowledging a stored message failed')
    }
  }
}

/** A telemetry message whose rows wait in this turn's write. */
interface StagedMessage {
  deviceId: string
  track: SeqTrack
  lastSeq: number
  done: (e: Error | null) => void
}

interface SeqTrack {
  /** Highest seq stored. */
  stored: number | undefined
  /** Highest seq accepted for storing (stored, or on its way). */
  pending: number | undefined
}

export interface GatewayOptions {
  config: MqttConfig
  devices: DeviceLookup
  secret: string
  readings: RowSink
  events: RowSink
  deadLetters: DeadLetterSink
  /** Where a DUP PUBLISH at the start of a session learns what other workers (or earlier runs) stored. */
  lastSeq?: LastSeqLookup
  /** Where stored elements go next (the twin, the rules): published only once the store holds them. */
  bus?: Bus
  now?: () => number
  /** The heap's use and limit (default: V8's), which the load shedding watches. */
  heap?: () => HeapSample
  /** Whether a device's access is revoked (deny-list.ts); default none is. */
  denied?: (deviceId: string) => boolean
  /** In a cluster worker: where a TCP connection goes that this process has no room for (hand-over.ts); without it, one over mqtt.maxConnections is closed. */
  handOver?: HandOverClient
  /** Whether this process tells the operator about a listen queue the kernel keeps short (listen-queue.ts); in a cluster only one worker does (default true). */
  adviseListenQueue?: boolean
}

/** What the gateway attaches to an aedes client once it is authenticated (and to a lean session's client). */
interface Session {
  device: DeviceInfo
  /** The fast lane reading this device's connection, while it does. */
  lane?: FastLane | undefined
  /** The session's one question to the store about its last seq (asked at its first DUP telemetry; every later DUP waits for the same answer). */
  seqCheck?: Promise<void> | undefined
}

type SessionClient = Client & { citytwin?: Session }

/** A device's CONNECT checked: the device, or why it is refused and with which CONNACK code. */
type DeviceCheck = { device: DeviceInfo } | { refusal: { code: number; reason: string; metric?: RefusalCode } }

/** How often connections waiting for their CONNECT are looked at, ms; lean sessions' keep-alives at most as often. */
const LEAN_SWEEP_MS = 500
/**
 * Longest wait between two looks at every lean session's keep-alive, ms. A
 * look walks every session of the process (17,000 at the city's size, about
 * a millisecond, profiled 2026-12-02): at every 500 ms that was 0.2% of a
 * core a worker. Sessions are looked at every third of the shortest
 * keep-alive limit among them, within 500 ms and this: a device of the city
 * (keep-alive 60 s, closed after 90 s of silence) at most 5 s late, as
 * aedes' own timer would not be, and a device with a keep-alive of 1 s
 * within half a second.
 */
const LEAN_KEEPALIVE_SWEEP_MAX_MS = 5_000

/** A lean socket's errors (a reset, a write after the peer left): the close that follows ends its session. One function for all. */
function onSocketError(this: Socket, err: Error): void {
  log.debug({ err, address: this.remoteAddress }, 'connection error')
}

/** Refuses a connection with this CONNACK code, then closes it once the CONNACK is written (MQTT-3.2.2-5). */
function refuse(socket: Socket, returnCode: number): void {
  socket.end(connack(returnCode), () => socket.destroy())
}

function authError(message: string, returnCode: number): AuthenticateError {
  const e: AuthenticateError = Object.assign(new Error(message), { returnCode })
  return e
}

/** The broker's notice of a client come or gone ($SYS/<broker id>/new/clients, .../disconnect/clients). */
export const isClientNotice = (topic: string): boolean => topic.startsWith('$SYS/') && (topic.endsWith('/new/clients') || topic.endsWith('/disconnect/clients'))

export class MqttGateway implements Component {
  readonly name = 'mqtt-gateway'
  readonly #o: GatewayOptions
  readonly #limits: TelemetryLimits
  readonly #rate: RateLimiter
  readonly #seq = new Map<string, SeqTrack>()
  /** Telemetry taken this turn of the event loop, written together at its end (#stage). */
  #turn: { rows: Row[]; messages: StagedMessage[] } | undefined
  #turnEndPending = false
  readonly #now: () => number
  readonly #admission: Admission
  readonly #guard: HeapGuard
  readonly #lane: LaneOptions
  #backlog: ProcessBacklog | undefined
  #broker: Aedes | undefined
  #persistence: LeanPersistence | undefined
  /** Lean sessions (lean-session.ts) by client id: connected, not handed to aedes. */
  readonly #lean = new Map<string, LeanClient>()
  /** Plain TCP connections whose first packet the gateway reads, with when they were accepted (Date.now()). */
  readonly #leanConnecting = new Map<Socket, number>()
  /** Connections a lean session handed to aedes (#takeOver), until aedes has them connected (clientReady) or they close. */
  readonly #takenOver = new Map<object, LeanClient>()
  #leanSweep: NodeJS.Timeout | undefined
  /** When lean sessions' keep-alives are looked at next (Date.now()). */
  #keepaliveSweepAt = 0
  readonly #leanHost: LeanHost
  /** Hands a stream to aedes, as accepted (set at start). */
  #toAedes: ((stream: Duplex) => void) | undefined
  #server: Server | undefined
  #listener: PausableListener | undefined
  #tls: TlsServer | undefined
  #ws: HttpServer | undefined
  readonly #refusals = new RefusalDigest()
  #counts = { connected: 0, received: 0, stored: 0, duplicates: 0, deadLettered: 0, refusedConnects: 0, shedConnects: 0, connectTimeouts: 0, refusedPublishes: 0, refusedSubscribes: 0, storeFailures: 0, recovered: 0, leftFastLane: 0, laneAckWrites: 0 }

  constructor(opts: GatewayOptions) {
    this.#o = opts
    this.#now = opts.now ?? Date.now
    const c = opts.config
    this.#limits = { maxPayloadBytes: c.maxPayloadBytes, maxReadingsPerMessage: c.maxReadingsPerMessage, maxFutureMs: c.maxFutureMs, maxPastMs: c.maxPastMs }
    this.#rate = new RateLimiter(c.ratePerDevicePerS, c.burstPerDevice)
    this.#admission = new Admission({ maxInFlight: c.maxInFlight, window: c.maxInFlightPerConnection, connectingCap: c.maxInFlightWhileConnecting, now: this.#now })
    this.#lane = this.#laneOptions()
    this.#leanHost = {
      drainTimeoutMs: 60_000,
      onError: (client, e) => {
        log.debug({ device: client.id, err: e }, 'client error; connection closed')
        client.conn.destroy()
      },
      takeOver: (client, rest) => this.#takeOver(client, rest),
    }
    this.#guard = new HeapGuard({
      high: c.shedHeapRatio,
      ...(opts.heap ? { sample: opts.heap } : {}),
      onChange: (shedding, h) => {
        const heap = { usedMb: Math.round(h.used / 2 ** 20), limitMb: Math.round(h.limit / 2 ** 20) }
        if (shedding) log.warn(heap, 'heap nearly full: refusing new connections (server unavailable) until it is lower')
        else log.info(heap, 'heap lower again: taking new connections')
      },
    })
  }

  /** The MQTT port, once listening (kept while a cluster worker's listener is closed for a while; 0 before start and after stop). */
  get port(): number {
    return this.#listener?.port ?? 0
  }

  /** Port of the TLS listener; 0 when there is none. */
  get tlsPort(): number {
    return (this.#tls?.address() as AddressInfo | null)?.port ?? 0
  }

  /** Port of the WebSocket listener; 0 when there is none. */
  get wsPort(): number {
    return (this.#ws?.address() as AddressInfo | null)?.port ?? 0
  }

  /** Whether this gateway refuses new connections to keep its memory (heap-guard.ts); samples the heap. */
  shedding(): boolean {
    return this.#guard.check()
  }

  /** Ms data may have been waiting in this gateway at `now` (see backlog.ts); 0 before start. */
  backlogMs(now: number): number {
    return this.#backlog?.backlogMs(now) ?? 0
  }

  async start(): Promise<void> {
    this.#backlog = new ProcessBacklog(this.#admission)
    const persistence = leanPersistence()
    this.#persistence = persistence
    const broker = new Aedes({
      // Only PUBLISH with QoS 2 waits in aedes' inbound window; devices use 0 and 1.
      maxClientsIdLength: 64,
      connectTimeout: this.#o.config.connectTimeoutS * 1000,
      persistence,
      authenticate: (client, username, password, done) => this.#authenticate(client, username, password, done),
      authorizePublish: (client, packet, done) => this.#authorizePublish(client, packet, done),
      authorizeSubscribe: (client, sub, done) => this.#authorizeSubscribe(client, sub, done),
    })
    await broker.listen()
    // What a device publishes ends in the store; no MQTT client may ever
    // subscribe to it (authorizeSubscribe allows a device its own commands
    // only). So after authorizePublish has stored it and aedes has written
    // the PUBACK, aedes' own publish pipeline (a packet copy, an offline
    // queue lookup and a topic match in its trie, its emitter, the
    // `published` hook) would do work no one can see, for every message.
    // Publishes from a client stop here. So do the broker's own "$SYS/<id>/new/clients"
    // and ".../disconnect/clients", one per CONNECT and one per disconnect through
    // the same pipeline, for topics no client may subscribe to (authorizeSubscribe):
    // in a reconnect storm of the whole city that is 219,300 of each for no one.
    // The broker's other publishes (device commands, its heartbeat) go on.
    // aedes calls publish(packet, client, done) for a client's message and
    // publish(packet, done) for its own; its types declare only the latter.
    type AedesPublish = (packet: PublishPacket, clientOrDone?: Client | null | ((e?: Error) => void), done?: (e?: Error) => void) => void
    const publish = broker.publish.bind(broker) as unknown as AedesPublish
    const fromClientsStopHere: AedesPublish = (packet, clientOrDone, done) => {
      if (clientOrDone && typeof clientOrDone === 'object') return void done?.()
      if (isClientNotice(packet.topic)) return void (typeof clientOrDone === 'function' ? clientOrDone : done)?.()
      publish(packet, clientOrDone, done)
    }
    ;(broker as unknown as { publish: AedesPublish }).publish = fromClientsStopHere
    const c = this.#o.config
    // A session handed over is aedes' to tell gone from when aedes has registered it (its clientDisconnect).
    broker.on('client', (client) => {
      const lean = this.#takenOver.get(client.conn)
      if (lean) lean.registered = true
    })
    broker.on('clientReady', (client) => {
      // Denied between its CONNECT's check and now (the list was read meanwhile): not let in after all.
      const id = (client as SessionClient).citytwin?.device.id
      if (id !== undefined && this.#o.denied?.(id)) {
        refusedTotal.inc({ what: 'connection', code: 'DEVICE_DENIED' })
        client.close()
        return
      }
      // A lean session handed over is connected already: counted, its device told connected. What its device sent
      // since the hand-over follows now that aedes takes packets without queueing them (see #takeOver).
      const handed = this.#takenOver.get(client.conn)
      if (handed) {
        this.#takenOver.delete(client.conn)
        handed.flushPending()
      } else {
        this.#admission.connected(client.conn)
        this.#counts.connected++
        connections.inc()
        this.#connectivity(client, 'connected')
      }
      trimAfterConnect(client)
      if (c.fastLane) this.#onLane(client)
    })
    broker.on('clientDisconnect', (client) => {
      connections.dec()
      this.#connectivity(client, 'disconnected')
    })
    broker.on('clientError', (client, err) => log.debug({ device: client.id, err }, 'client error; connection closed'))
    broker.on('connectionError', (client, err) => {
      // aedes closes a connection whose CONNECT it has not handled within its connect timeout (mqtt.connectTimeoutS): a slow
      // device, or a process too busy to read it in time (a reconnect storm), which the digest tells apart from a full one.
      if (err.message === CONNECT_TIMEOUT_MESSAGE) this.#endedBeforeConnack('CONNECT_TIMEOUT')
      log.debug({ err, client: client.id }, 'connection error before CONNECT completed')
    })
    this.#refusals.start((refused, windowS) => log.warn({ refused, windowS }, 'connections ended before their CONNACK, by reason'))
    const admission = this.#admission
    // Admission holds reading of a connection that must wait; aedes reads the stream itself.
    // The largest packet aedes reads: a CONNECT with a will, or a PUBLISH over the payload limit (dead-lettered
    // as too large) up to four times it; anything announcing more closes its connection as its length is read.
    const maxAedesPacket = 4 * (c.maxPayloadBytes + c.maxTopicBytes) + 1_024
    let unlimited = false
    const perAddress = new AddressLimit(c.maxConnectionsPerAddress)
    // TCP connections this process holds, those passed to it included (the cap with a hand-over; see below).
    let tcpHeld = 0
    const handle = <S extends Duplex>(stream: S, req?: IncomingMessage, tcp = false): void => {
      // A TCP or TLS socket is its own remote end; a WebSocket stream's is its upgrade request's.
      const address = req?.socket.remoteAddress ?? peerAddress(stream) ?? (stream as { remoteAddress?: string }).remoteAddress ?? ''
      if (!perAddress.take(address)) {
        this.#endedBeforeConnack('ADDRESS_LIMIT')
        log.debug({ address, limit: c.maxConnectionsPerAddress }, 'connection refused: too many from its address')
        stream.destroy()
        return
      }
      // Kept until the close: the limit's one string for the address, not this connection's own.
      const from = perAddress.shared(address)
      // One listener for what a close ends here (the address's slot, admission's state): each listener more on a
      // socket is a closure and its context, and a third grows the socket's listener array to 19 slots.
      // 'on', not 'once': a close comes once, and once's wrapper (a bound function and its state) costs about 100 bytes a connection.
      if (tcp) tcpHeld++
      // The connection's lean session, once it has one (lean-session.ts).
      let lean: LeanClient | undefined
      stream.on('close', () => {
        if (tcp) tcpHeld--
        perAddress.release(from)
        admission.detach(stream)
        if (lean) {
          // Handed to aedes but never registered there (refused, or an error in its first packets): aedes tells no one.
          if (lean.takenOver && !lean.registered) lean.takenOver = false
          this.#takenOver.delete(stream)
          this.#leanClosed(lean)
        } else this.#leanConnecting.delete(stream as unknown as Socket)
      })
      // Connecting from here until the CONNACK (clientReady) or the close. aedes' reads are held from when it reads.
      const leanFirst = tcp && c.fastLane && c.leanSessions
      admission.attach(stream, false, !leanFirst)
      if (leanFirst) this.#readFirstPacket(stream as unknown as Socket, (l) => void (lean = l))
      else toAedes(stream, req)
    }
    const toAedes = (stream: Duplex, req?: IncomingMessage): void => {
      admission.holdReads(stream)
      const client = broker.handle(stream, req)
      if (!limitPacketSize(client, maxAedesPacket) && !unlimited) {
        unlimited = true
        log.warn('aedes\' parser is not the one expected: packet sizes are not limited')
      }
    }
    this.#toAedes = toAedes
    this.#leanSweep = setInterval(() => this.#sweepLean(), LEAN_SWEEP_MS)
    this.#leanSweep.unref()
    // With a hand-over (a cluster worker), a full process passes what it accepts to one with room instead of
    // closing it (hand-over.ts). Accepted sockets then start paused, so that one passed on was never read here:
    // a kept one starts reading when aedes listens for 'readable'.
    const handOver = this.#o.handOver
    const accept = (socket: Socket, hops: number): void => {
      if (tcpHeld >= c.maxConnections) {
        if (handOver?.pass(socket, hops)) return
        this.#endedBeforeConnack('GATEWAY_FULL')
        socket.destroy()
        return
      }
      handle(socket, undefined, true)
    }
    const server = createServer({ pauseOnConnect: handOver !== undefined }, (socket) => accept(socket, 0))
    // A worker well ahead of the others closes its listener while the primary says so (hand-over.ts), and the
    // kernel gives new connections to the others; the connections it holds stay.
    const listener = new PausableListener(server, { port: c.port, host: c.host, backlog: c.listenBacklog })
    handOver?.attach({ held: () => tcpHeld, cap: c.maxConnections, take: accept, accepting: (on) => listener.set(on), listening: () => listener.accepting })
    await listener.start()
    this.#listener = listener
    this.#broker = broker
    this.#server = server
    if (c.tlsCertFile && c.tlsKeyFile) {
      // With a client authority, devices may log in by certificate (#certificateDevice); "required" refuses the handshake without one.
      const clientCa = c.tlsClientCaFile ? { ca: readFileSync(c.tlsClientCaFile), requestCert: true, rejectUnauthorized: c.tlsClientCerts === 'required' } : {}
      const tls = createTlsServer({ cert: readFileSync(c.tlsCertFile), key: readFileSync(c.tlsKeyFile), ...clientCa }, (socket) => handle(socket))
      tls.maxConnections = c.maxConnections
      await listen(tls, c.tlsPort, c.host, c.listenBacklog)
      this.#tls = tls
    }
    if (c.wsPort >= 0) {
      // MQTT over WebSocket (the "mqtt" subprotocol, path /mqtt), as browsers and some gateways speak it.
      const http = createHttpServer((_req, res) => res.writeHead(426, { 'content-type': 'text/plain' }).end('MQTT over WebSocket: connect to /mqtt\n'))
      http.maxConnections = c.maxConnections
      // No WebSocket message larger than the largest packet aedes reads (ws allows 100 MiB by default).
      const wss = new WebSocketServer({ server: http, path: '/mqtt', maxPayload: maxAedesPacket })
      wss.on('connection', (ws, req) => handle(createWebSocketStream(ws), req))
      await listen(http, c.wsPort, c.host, c.listenBacklog)
      this.#ws = http
    }
    log.info({ port: this.port, tlsPort: this.tlsPort, wsPort: this.wsPort, devices: this.#o.devices.size }, 'MQTT gateway listening')
    const advice = this.#o.adviseListenQueue === false ? undefined : listenQueueAdvice(this.#o.devices.size, c.listenBacklog, kernelListenCap())
    if (advice) log.warn(advice)
  }

  async stop(deadline: number): Promise<void> {
    const servers = [this.#server, this.#tls, this.#ws].filter((x): x is Server | TlsServer | HttpServer => x !== undefined)
    this.#backlog?.close()
    this.#backlog = undefined
    clearInterval(this.#leanSweep)
    this.#leanSweep = undefined
    this.#refusals.stop()
    this.#o.handOver?.detach()
    this.#listener?.stop()
    this.#listener = undefined
    const broker = this.#broker
    this.#server = this.#tls = this.#ws = undefined
    this.#broker = undefined
    // Stop accepting, then close every connection; what was acknowledged is
    // already stored, and what was not will be retransmitted by the device.
    const closed = Promise.all(servers.map((srv) => new Promise<void>((resolve) => srv.close(() => resolve()))))
    for (const l of [...this.#lean.values(), ...this.#takenOver.values()]) l.conn.destroy()
    for (const s of [...this.#leanConnecting.keys()]) s.destroy()
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()))
    await Promise.race([closed, atDeadline(deadline)])
  }

  stats(): ComponentStats {
    return { port: this.port, connections: (this.#broker?.connectedClients ?? 0) + this.#lean.size, leanSessions: this.#lean.size, ...this.#counts, acceptPauses: this.#listener?.pauses ?? 0, inFlight: this.#admission.inFlight, inFlightPeak: this.#admission.peak, connecting: this.#admission.connecting, waitingPackets: this.#admission.waiting, waitingConnections: this.#admission.waitingConnections, backlogMs: this.backlogMs(Date.now()), shedding: this.#guard.check() }
  }

  async health(): Promise<Health> {
    if (!this.#server) return { ok: false, detail: 'not listening' }
    if (this.#listener?.lost) return { ok: false, detail: 'the MQTT port was closed while this worker did not accept: it takes no new devices' }
    // A cluster worker well ahead of the others closes its listener for a while (hand-over.ts): it still serves its devices.
    return this.#server.listening ? { ok: true } : { ok: true, detail: 'not accepting new connections for now: it holds more than the other workers' }
  }

  /** A connection ended before its CONNACK: counted by reason (in stats: shed, timed out, or refused), and summed in the next digest line. */
  #endedBeforeConnack(code: RefusalCode): void {
    if (code === 'OVERLOADED') this.#counts.shedConnects++
    else if (code === 'CONNECT_TIMEOUT') this.#counts.connectTimeouts++
    else this.#counts.refusedConnects++
    refusedTotal.inc({ what: 'connect', code })
    this.#refusals.count(code)
  }

  #authenticate(client: Client, username: string | undefined, password: Buffer | undefined, done: (e: AuthenticateError | null, ok: boolean | null) => void): void {
    // A lean session handed over (#takeOver): its device authenticated at its CONNECT; aedes reads one made from it.
    const handed = this.#takenOver.get(client.conn)
    if (handed) {
      const session = handed.citytwin as Session
      if (this.#o.denied?.(session.device.id)) {
        refusedTotal.inc({ what: 'connection', code: 'DEVICE_DENIED' })
        return done(authError('device denied', CONNACK_NOT_AUTHORIZED), false)
      }
      ;(client as SessionClient).citytwin = session
      return done(null, true)
    }
    const checked = this.#admitDevice(username, password, certificateDevice(client.conn), client.id)
    if ('refusal' in checked) return done(authError(checked.refusal.reason, checked.refusal.code), false)
    ;(client as SessionClient).citytwin = { device: checked.device }
    // One connection a client id (MQTT-3.1.4-2): an authenticated CONNECT through aedes takes over from a lean
    // session as aedes does from a client of its own, its device told gone before it is told connected again.
    this.#endLeanOf(client.id)
    done(null, true)
  }

  /** Ends the lean session of this client id, or one on its way to aedes, if any. */
  #endLeanOf(clientId: string): void {
    const old = this.#lean.get(clientId)
    if (old) this.#endLean(old)
    // Rare and few: a session handed to aedes and not yet registered there.
    for (const handed of this.#takenOver.values()) if (handed.id === clientId) handed.conn.destroy()
  }

  /**
   * A CONNECT's device, or its refusal, counted and logged: shed before the
   * token is checked while the heap is nearly full (under overload that
   * work is what the process cannot afford), then `#checkDevice`.
   */
  #admitDevice(username: string | undefined, password: Buffer | undefined, byCert: string | undefined, clientId: string): DeviceCheck {
    if (this.#guard.check()) {
      this.#endedBeforeConnack('OVERLOADED')
      log.debug({ device: username }, 'connection refused: heap nearly full')
      return { refusal: { code: CONNACK_SERVER_UNAVAILABLE, reason: 'the gateway is overloaded; retry later' } }
    }
    const checked = this.#checkDevice(username, password, byCert)
    if ('refusal' in checked) {
      this.#endedBeforeConnack(checked.refusal.metric ?? 'AUTH_DENIED')
      log.warn({ device: username, clientId, reason: checked.refusal.reason }, 'connection refused')
    }
    return checked
  }

  /** Who a CONNECT says it is: by its user name and token, or by a certificate the client authority signed (mqtt.tlsClientCaFile). */
  #checkDevice(username: string | undefined, password: Buffer | undefined, byCert: string | undefined): DeviceCheck {
    const id = username ?? byCert
    const device = id === undefined ? undefined : this.#o.devices.get(id)
    if (byCert !== undefined && username !== undefined && username !== byCert) return { refusal: { code: CONNACK_NOT_AUTHORIZED, reason: `user name ${username} is not the device of its certificate (${byCert})` } }
    if (byCert !== undefined && !device) return { refusal: { code: CONNACK_NOT_AUTHORIZED, reason: `certificate for ${byCert}, which is no device of the city` } }
    if (byCert === undefined && (username === undefined || password === undefined)) return { refusal: { code: CONNACK_NOT_AUTHORIZED, reason: 'anonymous connection' } }
    if (!device) return { refusal: { code: CONNACK_BAD_USERNAME_OR_PASSWORD, reason: 'unknown device' } }
    // With a certificate a password is not needed; one that is given must still be right.
    if ((byCert === undefined || password !== undefined) && !tokenMatches(this.#o.secret, device.id, password, device.credentialVersion ?? 0)) return { refusal: { code: CONNACK_BAD_USERNAME_OR_PASSWORD, reason: 'wrong token' } }
    if (this.#o.denied?.(device.id)) return { refusal: { code: CONNACK_NOT_AUTHORIZED, reason: 'device denied', metric: 'DEVICE_DENIED' } }
    return { device }
  }

  /**
   * Reads a plain TCP connection's first packet: a plain CONNECT
   * (lean-session.ts `readConnect`) opens a lean session; anything else goes
   * to aedes with the bytes read so far, as if aedes had read them.
   */
  #readFirstPacket(socket: Socket, opened: (lean: LeanClient) => void): void {
    // A lean session needs the socket's own read buffer slots (fast-lane.ts): what it reads after handing the
    // connection to aedes must wait while aedes connects it (LeanClient.takeRead), which 'data' events would not.
    if (!userReadSlots(socket)) return this.#toAedes?.(socket)
    socket.on('error', onSocketError)
    this.#leanConnecting.set(socket, Date.now())
    let got: Buffer | undefined
    const onData = (chunk: Buffer): void => {
      got = got ? Buffer.concat([got, chunk]) : chunk
      const r = readConnect(got)
      if (r.kind === 'partial') return
      socket.removeListener('data', onData)
      socket.pause()
      this.#leanConnecting.delete(socket)
      if (r.kind === 'plain' && !this.#persistence?.mayHoldSession(r.connect.clientId)) {
        const lean = this.#openLean(socket, r.connect)
        if (!lean) return
        opened(lean)
        this.#onLeanLane(lean, got.length > r.end ? got.subarray(r.end) : undefined)
        return
      }
      socket.unshift(got)
      this.#toAedes?.(socket)
    }
    socket.on('data', onData)
    // A socket accepted paused (with a hand-over, hand-over.ts) is not set flowing by a 'data' listener.
    socket.resume()
  }

  /** Answers a plain CONNECT: a lean session, connected, or undefined when the connection is refused (and closing). */
  #openLean(socket: Socket, connect: PlainConnect): LeanClient | undefined {
    const checked = this.#admitDevice(connect.username, connect.password, undefined, connect.clientId)
    if ('refusal' in checked) {
      refuse(socket, checked.refusal.code)
      return undefined
    }
    // One connection a client id (MQTT-3.1.4-2): the newer takes over from a lean session or an aedes client, whose
    // device is told gone before this one is told connected (as aedes orders a takeover of its own).
    this.#endLeanOf(connect.clientId)
    const clients = this.#broker ? (Reflect.get(this.#broker, 'clients') as Record<string, Client> | undefined) : undefined
    clients?.[connect.clientId]?.close()
    const now = Date.now()
    const lean = new LeanClient(socket, connect, this.#leanHost, now)
    lean.citytwin = { device: checked.device }
    // A keep-alive shorter than the sessions' so far brings their next look forward.
    if (lean._keepaliveInterval > 0) this.#keepaliveSweepAt = Math.min(this.#keepaliveSweepAt, now + this.#keepaliveSweepEvery(lean._keepaliveInterval))
    this.#lean.set(lean.id, lean)
    socket.write(connack(0))
    this.#admission.connected(socket)
    this.#counts.connected++
    connections.inc()
    this.#connectivity(lean as unknown as Client, 'connected')
    return lean
  }

  /** A lean session's lane, reading `rest` (bytes after the CONNECT) first; aedes takes a session the lane cannot. */
  #onLeanLane(lean: LeanClient, rest: Buffer | undefined): void {
    if (rest) lean.conn.unshift(rest)
    if (!this.#onLane(lean)) this.#takeOver(lean, Buffer.alloc(0))
  }

  /**
   * aedes takes a lean session's connection: the device sent a packet the
   * session does not carry (`rest` starts with it). aedes reads a CONNECT
   * made from the session, then `rest`, then the stream; its CONNACK is
   * not sent again, and its `authenticate` takes the session as it is.
   */
  #takeOver(lean: LeanClient, rest: Buffer): void {
    const socket = lean.conn
    if (lean.takenOver || lean.closed || socket.destroyed) return
    lean.takenOver = true
    if (this.#lean.get(lean.id) === lean) this.#lean.delete(lean.id)
    this.#takenOver.set(socket, lean)
    // aedes reads without admission's hold until it has the connection: the hold lets aedes read on when a packet of
    // aedes' own finishes, and the packets in flight now are the lane's, so a hold would leave these bytes unread.
    // Its PUBLISHes still wait for room in admission, in order after the lane's (one read's worth at most).
    this.#admission.readThrough(socket, true)
    swallowConnack(socket)
    // aedes reads the CONNECT and the packet that made the hand-over now; what came after it waits until aedes has
    // connected the client (clientReady), as aedes queues at most 42 packets of a client before its CONNACK and
    // closes the connection past that, and this device had its CONNACK long ago and may have sent many.
    const first = nextFrame(rest, 0, rest.length)
    const cut = first.kind === 'other' || first.kind === 'publish' ? first.end : rest.length
    lean.holdPending(rest.subarray(cut))
    socket.unshift(Buffer.concat([takeOverConnect(lean.id, lean.username, lean.keepaliveS), rest.subarray(0, cut)]))
    this.#toAedes?.(socket)
  }

  /** Ends a lean session now: its device is told gone at once, its connection closed. */
  #endLean(lean: LeanClient): void {
    this.#leanClosed(lean)
    lean.conn.destroy()
  }

  /** A lean session's connection closed (or is being closed): its device is gone, unless aedes had taken it (aedes tells then). Once a session. */
  #leanClosed(lean: LeanClient): void {
    lean.ended()
    if (lean.takenOver || lean.gone) return
    lean.gone = true
    if (this.#lean.get(lean.id) === lean) this.#lean.delete(lean.id)
    connections.dec()
    this.#connectivity(lean as unknown as Client, 'disconnected')
  }

  /** Ends lean sessions silent past one and a half keep-alives, and connections without a CONNECT in time. */
  #sweepLean(): void {
    const now = Date.now()
    if (now >= this.#keepaliveSweepAt) {
      let shortest = Infinity
      for (const lean of this.#lean.values()) {
        const limit = lean._keepaliveInterval
        if (limit <= 0) continue
        if (now - lean.seen > limit) {
          log.debug({ device: lean.id }, 'keep alive timeout; connection closed')
          lean.conn.destroy()
        } else if (limit < shortest) shortest = limit
      }
      this.#keepaliveSweepAt = now + this.#keepaliveSweepEvery(shortest)
    }
    const timeoutMs = this.#o.config.connectTimeoutS * 1000
    for (const [socket, since] of this.#leanConnecting) {
      if (now - since <= timeoutMs) continue
      this.#leanConnecting.delete(socket)
      this.#endedBeforeConnack('CONNECT_TIMEOUT')
      log.debug({ address: socket.remoteAddress }, 'connection error before CONNECT completed: connect did not arrive in time')
      socket.destroy()
    }
  }

  /** How long until the next look at lean sessions' keep-alives, for the shortest keep-alive limit among them (ms). */
  #keepaliveSweepEvery(shortestLimitMs: number): number {
    return Math.max(LEAN_SWEEP_MS, Math.min(LEAN_KEEPALIVE_SWEEP_MAX_MS, shortestLimitMs / 3))
  }

  /** Ends the connections of these devices now (their access was revoked); returns how many it ended. */
  disconnectDevices(deviceIds: readonly string[], why: 'denied' | 'changed' = 'denied'): number {
    const ids = new Set(deviceIds)
    let ended = 0
    // aedes keeps its connected clients by client id (aedes.js, `clients`), which its types do not declare.
    const clients = (this.#broker ? (Reflect.get(this.#broker, 'clients') as Record<string, SessionClient> | undefined) : undefined) ?? {}
    const lean = [...this.#lean.values(), ...this.#takenOver.values()] as unknown as SessionClient[]
    for (const client of [...Object.values(clients), ...lean]) {
      const id = client.citytwin?.device.id
      if (id === undefined || !ids.has(id)) continue
      if (why === 'denied') {
        log.warn({ device: id, clientId: client.id }, 'device denied: connection ended')
        refusedTotal.inc({ what: 'connection', code: 'DEVICE_DENIED' })
      } else log.info({ device: id, clientId: client.id }, 'device changed in the registry: connection ended, to come back as it is now')
      client.close()
      ended++
    }
    return ended
  }

  #authorizeSubscribe(client: Client, sub: Subscription, done: (e: Error | null, s?: Subscription | null) => void): void {
    const id = this.#deviceOf(client)?.id
    const own = id ? deviceTopics(id).commands.slice(0, -2) : undefined
    if (own && (sub.topic === `${own}/#` || sub.topic.startsWith(`${own}/`))) return done(null, sub)
    this.#counts.refusedSubscribes++
    refusedTotal.inc({ what: 'subscribe', code: 'ACL_DENIED' })
    log.warn({ device: id, topic: sub.topic }, 'subscription refused (0x80)')
    done(null, null) // aedes answers SUBACK 0x80 for a null subscription
  }

  #authorizePublish(client: Client | null, packet: PublishPacket, done: (e?: Error | null) => void): void {
    if (!client) return done(null) // the broker's own messages
    // A will is published by aedes as its connection closes, and a closed
    // connection's packet is not taken by admission: there is no reading
    // left to hold, so these go straight to the store.
    // A connection on the fast lane may have paused for this packet (one aedes took before the lane started):
    // the lane resumes its own packets, this one it must be told of.
    const resumeLane = (e: Error | null): void => {
      done(e)
      ;(client as SessionClient).citytwin?.lane?.resume()
    }
    this.#take(client, packet, resumeLane, packet === (client as Client & { will?: unknown }).will)
  }

  /**
   * Reads the device's PUBLISH packets on the fast lane (fast-lane.ts) from
   * now on, where it can (an aedes client or a lean session's); false when
   * the lane cannot take the connection.
   */
  #onLane(client: { conn: Duplex; citytwin?: Session | undefined }): boolean {
    const session = client.citytwin
    if (!session) return false
    // Read through from here: the lane asks admission itself, and what the stream holds already (bytes after the
    // CONNECT) must reach it whatever the window, or they would wait for bytes that may never come.
    this.#admission.readThrough(client.conn, true)
    const lane = FastLane.attach(client, this.#lane)
    // Without a lane, admission holds aedes' reads.
    if (!lane) {
      this.#admission.readThrough(client.conn, false)
      return false
    }
    // A lane may leave at once, for a packet that came with the CONNECT (its onLeave has said where reads go then).
    if (lane.reading) session.lane = lane
    return true
  }

  /** What every connection's lane asks of the gateway: one object for all of them. */
  #laneOptions(): LaneOptions {
    return {
      // The largest PUBLISH the limits let through whole: header, topic, message id, payload.
      maxPacketBytes: this.#o.config.maxPayloadBytes + this.#o.config.maxTopicBytes + 16,
      publish: (client, p, done) => this.#take(client as Client, p, done),
      mayRead: (client) => this.#admission.mayRead((client as Client).conn),
      onAckWrite: () => void this.#counts.laneAckWrites++,
      resumeConnection: (client) => (client as SessionClient).citytwin?.lane?.resume(),
      onLeave: (client, reason) => {
        const session = (client as SessionClient).citytwin
        if (session) session.lane = undefined
        this.#admission.readThrough((client as Client).conn, false)
        this.#counts.leftFastLane++
        laneLeft.inc()
        log.debug({ device: (client as Client).id, reason }, 'connection left the fast lane; aedes reads it from here')
      },
    }
  }

  /** Takes a PUBLISH through admission to the store; `done` once it may be acknowledged (or with the error that closes the connection). */
  #take(client: Client, packet: InboundPublish, done: (e: Error | null) => void, unheld = false): void {
    this.#counts.received++
    const arrived = performance.now()
    // A packet that waits for room keeps its payload meanwhile: a copy of its own, not a slice of the socket read or
    // of a pooled 8 KB slab that it would keep whole (under overload, one slab a waiting message: heap snapshot, 2026-12-02).
    const kept = !unheld && Buffer.isBuffer(packet.payload) && !this.#admission.runsNow(client.conn)
      ? { topic: packet.topic, dup: packet.dup, payload: ownCopy([packet.payload], packet.payload.length) }
      : packet
    const run = (release: () => void): void => this.#handlePublish(client, kept, whenAcked(release, arrived, done))
    if (unheld || !this.#admission.admit(client.conn, run)) run(() => undefined)
  }

  /**
   * Calls `done` once the message may be acknowledged, or with the error
   * that closes the connection. A telemetry message without DUP (nearly
   * every message the city sends) goes through without a promise: at the
   * city's rate each async step, its promise and its frame, held until the
   * store answers, is work for every message and garbage the collector
   * copies while it waits (about a quarter of a gateway process's CPU went
   * to collection at saturation, perf 2026-12-01). The rarer cases (events,
   * dead letters, a DUP that asks the store) keep their async functions.
   */
  #handlePublish(client: Client, packet: InboundPublish, done: (e: Error | null) => void): void {
    const device = this.#deviceOf(client)
    if (!device) return done(new CitytwinError('AUTH_DENIED', 'publish from an unauthenticated client'))
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
    const topic = packet.topic
    const maxTopicBytes = this.#o.config.maxTopicBytes
    if (topic.length * 3 > maxTopicBytes && Buffer.byteLength(topic) > maxTopicBytes) {
      const bytes = Buffer.byteLength(topic)
      const refused = this.#deadLetter(device.id, topic.slice(0, maxTopicBytes), payload, 'INGEST_TOPIC_TOO_LONG', `topic is ${bytes} bytes; the limit is ${maxTopicBytes}`).then(() => {
        throw this.#refusePublish(device.id, topic, 'INGEST_TOPIC_TOO_LONG')
      })
      return settled(refused, done)
    }
    const kind = ownPublishKind(topic, device.id)
    // MQTT-3.3.5-2: 3.1.1 has no negative PUBACK; closing is the only honest signal.
    if (!kind) return done(this.#refusePublish(device.id, topic, 'ACL_DENIED'))
    const now = this.#now()
    if (!this.#rate.take(device.id, now, (client as SessionClient).citytwin?.lane?.heldMs)) {
      return settled(this.#deadLetter(device.id, topic, payload, 'INGEST_RATE_LIMITED', `more than ${this.#o.config.ratePerDevicePerS} msg/s (burst ${this.#o.config.burstPerDevice})`), done)
    }
    if (kind !== 'telemetry') return settled(this.#event(device, kind === 'status' ? 'status' : 'event', topic, payload, now), done)
    if (packet.dup) {
      // It may wait for the store; a lane's payload is a view of a read that the next one overwrites.
      this.#retransmitted(client, device, topic, ownCopy([payload], payload.length), now, done).then(
        (staged) => staged || done(null),
        (e: unknown) => done(asError(e)),
      )
      return
    }
    const track = this.#track(device.id)
    const result = decodeTelemetry(device, payload, track.pending ?? track.stored, now, this.#limits, false)
    if (!result.ok) return settled(this.#deadLetter(device.id, topic, payload, result.rejection.code, result.rejection.reason), done)
    if ('duplicate' in result) {
      // The whole message was accepted before and this is no retransmission: acknowledged again, stored once.
      this.#counts.duplicates++
      duplicateTotal.inc()
      return done(null)
    }
    // The mark follows the message (down too: seq 0 after a higher one is a device that restarted).
    track.pending = result.lastSeq
    this.#stage(device.id, track, result.lastSeq, result.rows, done)
  }

  /** The device's seq track, made on its first message. */
  #track(deviceId: string): SeqTrack {
    let track = this.#seq.get(deviceId)
    if (!track) {
      track = { stored: undefined, pending: undefined }
      this.#seq.set(deviceId, track)
    }
    return track
  }

  /**
   * A telemetry message with the DUP flag: a retransmission, which may need
   * the store asked whether it holds it. Its rows join the turn's write with
   * `done` itself, so its PUBACK keeps its place among the turn's others.
   * Resolves true once staged (`done` then comes with the write); false when
   * nothing is to be stored (a duplicate, a dead letter), and the caller
   * acknowledges.
   */
  async #retransmitted(client: SessionClient, device: DeviceInfo, topic: string, payload: Buffer, now: number, done: (e: Error | null) => void): Promise<boolean> {
    const track = this.#track(device.id)
    const session = client.citytwin
    const lastSeq = this.#o.lastSeq
    if (session && lastSeq) {
      // A retransmission at the start of a session may be of a message that
      // another worker (or this one before a restart) stored but could not
      // acknowledge: ask the store once per session, and let every DUP of the
      // session wait for that answer (a second one judged before it could be
      // stored twice).
      session.seqCheck ??= lastSeq.lastStoredSeq(device).then((stored) => {
        if (stored !== undefined && stored > (track.pending ?? track.stored ?? -1)) track.pending = track.stored = stored
      })
      await session.seqCheck
    }
    let result = decodeTelemetry(device, payload, track.pending ?? track.stored, now, this.#limits, true)
    let recovered = false
    if (!result.ok) return this.#deadLetter(device.id, topic, payload, result.rejection.code, result.rejection.reason).then(() => false)
    if ('duplicate' in result) {
      // Below the high-water mark is not always stored: a message that failed while a later one was stored is
      // retransmitted with DUP and must be stored now (last-seq.ts). Asked of the store for DUP messages only.
      if (!lastSeq || (await lastSeq.isStored(device, result.seq))) {
        this.#counts.duplicates++
        duplicateTotal.inc()
        return false
      }
      recovered = true
      result = decodeTelemetry(device, payload, result.seq - 1, now, this.#limits, true)
      if (!result.ok) return this.#deadLetter(device.id, topic, payload, result.rejection.code, result.rejection.reason).then(() => false)
      if ('duplicate' in result) return false // not with the cursor below its own seq
      this.#counts.recovered++
      log.warn({ device: device.id, seq: result.lastSeq }, 'a retransmission below the highest stored seq was not stored: storing it now')
    }
    // A message taken below the high-water mark leaves the mark where it is; otherwise the mark follows the message.
    track.pending = recovered ? Math.max(track.pending ?? track.stored ?? -1, result.lastSeq) : result.lastSeq
    this.#stage(device.id, track, result.lastSeq, result.rows, done)
    return true
  }

  /**
   * Puts a message's rows in this turn's write: the telemetry of every
   * connection read in one turn of the event loop goes to the store as one
   * write (one promise, one wait in the relay or the writer, one element
   * batch on the bus) instead of one per message. `done` once they are
   * stored or dead-lettered, or with the error that closes the connection
   * so the device sends them again.
   */
  #stage(deviceId: string, track: SeqTrack, lastSeq: number, rows: readonly Row[], done: (e: Error | null) => void): void {
    // A full turn goes now: what the writer holds stays within its queue and one write (store.queueRows).
    if (this.#turn && this.#turn.rows.length + rows.length > TURN_ROWS_MAX) this.#writeTurn()
    let turn = this.#turn
    if (!turn) {
      turn = this.#turn = { rows: [], messages: [] }
      if (!this.#turnEndPending) {
        this.#turnEndPending = true
        setImmediate(this.#onTurnEnd)
      }
    }
    for (const r of rows) turn.rows.push(r)
    turn.messages.push({ deviceId, track, lastSeq, done })
  }

  readonly #onTurnEnd = (): void => {
    this.#turnEndPending = false
    this.#writeTurn()
  }

  #writeTurn(): void {
    const turn = this.#turn
    this.#turn = undefined
    if (!turn) return
    const { rows, messages } = turn
    let written: Promise<WriteOutcome>
    try {
      written = this.#o.readings.write(rows)
    } catch (e) {
      // A sink that throws instead of rejecting fails its rows the same way.
      written = Promise.reject(asError(e))
    }
    // The rows wait here for the store's answer only where this process puts them on the bus then (a gateway
    // in one process). A cluster worker has no bus (its primary publishes what it stores): held for the answer,
    // half a second and more, its rows would outlive young-generation collections for nothing and be promoted.
    // The closures below see `forBus`, not `rows`, so without a bus nothing keeps the rows once the relay has
    // sent them (tests/ingest/rows-held.test.ts). At the whole city the workers' collector work did not change
    // measurably with it (perf, 2026-12-02, docs/benchmarks.md): what they keep longest is elsewhere.
    const forBus = this.#o.bus ? { bus: this.#o.bus, rows } : undefined
    written.then(
      (stored) => {
        for (const m of messages) m.track.stored = Math.max(m.track.stored ?? -1, m.lastSeq)
        this.#counts.stored += messages.length
        storedTotal.inc(messages.length)
        if (forBus) {
          try {
            forBus.bus.publish(readingElements(rowsStored(forBus.rows, stored.deadLetteredRows), stored.position))
          } catch (e) {
            // The rows are stored whatever the bus does: they are acknowledged, and the consumers replay from the store.
            log.error({ err: e }, 'stored readings could not be put on the bus')
          }
        }
        settleAll(messages, null)
      },
      (e: unknown) => {
        // Not stored: forget the seqs so the devices' retransmissions are taken as new.
        for (const m of messages) m.track.pending = m.track.stored
        this.#counts.storeFailures += messages.length
        storeFailedTotal.inc(messages.length)
        log.warn({ devices: messages.length, device: messages[0]?.deviceId, err: e }, 'telemetry not stored; closing the connections so the devices retransmit')
        settleAll(messages, asError(e))
      },
    )
  }

  async #event(device: DeviceInfo, kind: 'status' | 'event', topic: string, payload: Buffer, now: number): Promise<void> {
    if (payload.length > this.#o.config.maxPayloadBytes) {
      return this.#deadLetter(device.id, topic, payload, 'INGEST_PAYLOAD_TOO_LARGE', `payload is ${payload.length} bytes; the limit is ${this.#o.config.maxPayloadBytes}`)
    }
    let doc: unknown
    try {
      doc = JSON.parse(payload.toString('utf8'))
    } catch (e) {
      return this.#deadLetter(device.id, topic, payload, 'INGEST_BAD_JSON', `payload is not JSON: ${messageOf(e)}`)
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return this.#deadLetter(device.id, topic, payload, 'INGEST_BAD_TYPE', 'payload must be a JSON object')
    const fields = doc as Record<string, unknown>
    const name = kind === 'status' ? 'status' : fields.kind
    if (typeof name !== 'string' || name.length === 0 || name.length > 64) return this.#deadLetter(device.id, topic, payload, 'INGEST_BAD_TYPE', 'an event needs "kind", a string of 1 to 64 characters')
    const severity = fields.severity ?? 'info'
    if (severity !== 'info' && severity !== 'warning' && severity !== 'critical') return this.#deadLetter(device.id, topic, payload, 'INGEST_BAD_TYPE', '"severity" must be info, warning or critical')
    // Without "ts" the event happened when it arrived; a "ts" it gives must be one the store can take, as for telemetry.
    let ts = now
    if (fields.ts !== undefined) {
      if (typeof fields.ts !== 'number' || !Number.isInteger(fields.ts) || fields.ts < 0) return this.#deadLetter(device.id, topic, payload, 'INGEST_BAD_TYPE', '"ts" must be an integer of epoch milliseconds')
      if (fields.ts > now + this.#limits.maxFutureMs) return this.#deadLetter(device.id, topic, payload, 'INGEST_TS_FUTURE', `ts ${timeOf(fields.ts)} is more than ${this.#limits.maxFutureMs} ms ahead of the gateway clock`)
      if (fields.ts < now - this.#limits.maxPastMs) return this.#deadLetter(device.id, topic, payload, 'INGEST_TS_PAST', `ts ${timeOf(fields.ts)} is more than ${this.#limits.maxPastMs} ms behind the gateway clock`)
      ts = fields.ts
    }
    const row = [ts, 'device', device.id, name, severity, device.microGridId, device.communityId, device.streetId, device.districtId, device.lon, device.lat, payload.toString('utf8'), '']
    const stored = await this.#o.events.write([row])
    this.#counts.stored++
    storedTotal.inc()
    this.#o.bus?.publish(eventElements(rowsStored([row], stored.deadLetteredRows), stored.position))
  }

  #connectivity(client: Client, kind: 'connected' | 'disconnected'): void {
    const device = this.#deviceOf(client)
    if (!device) return
    if (kind === 'disconnected') {
      this.#rate.forget(device.id)
      // The device may come back on another worker, or reboot and restart its
      // seq there; a track kept here would then be stale. Keep it only while
      // a write is in flight, so a quick reconnect still sees that write.
      const track = this.#seq.get(device.id)
      if (track && track.pending === track.stored) this.#seq.delete(device.id)
    }
    const ts = this.#now()
    const row = [ts, 'device', device.id, kind, 'info', device.microGridId, device.communityId, device.streetId, device.districtId, device.lon, device.lat, JSON.stringify({ clientId: client.id, gatewayPid: process.pid }), '']
    // Connectivity is observed, not acknowledged to anyone: a failure is logged, not retried by a device.
    this.#o.events.write([row]).then(
      (stored) => this.#o.bus?.publish(eventElements(rowsStored([row], stored.deadLetteredRows), stored.position)),
      (e: unknown) => log.warn({ err: e, device: device.id }, 'connectivity event not stored'),
    )
  }

  async #deadLetter(deviceId: string, topic: string, raw: Buffer, code: ErrorCode, reason: string): Promise<void> {
    // The sink makes the record's row (its text) in this call: a lane's payload, a view of a read, is not kept.
    await this.#o.deadLetters.deadLetter([{ ts: this.#now(), source: 'mqtt', code, reason, deviceId, topic, raw }])
    this.#counts.deadLettered++
    deadLetteredTotal.inc()
    log.info({ device: deviceId, topic, code, reason }, 'message dead-lettered')
  }

  /** Counts and logs a publish refused; the error returned closes the connection. */
  #refusePublish(deviceId: string, topic: string, code: ErrorCode): CitytwinError {
    this.#counts.refusedPublishes++
    refusedTotal.inc({ what: 'publish', code })
    log.warn({ device: deviceId, topic, code }, 'publish refused; closing the connection')
    return new CitytwinError(code, `device ${deviceId} may not publish to ${topic.slice(0, 200)}`)
  }

  /** The authenticated device of a client (the username it connected with). */
  #deviceOf(client: Client): DeviceInfo | undefined {
    return (client as SessionClient).citytwin?.device
  }
}

/**
 * The device a TLS connection's client certificate names: its subject's
 * common name, when the client authority signed it (the handshake checked
 * the chain: `authorized`). Undefined for plain TCP, WebSocket, no
 * certificate or one the authority did not sign.
 */
function certificateDevice(conn: unknown): string | undefined {
  if (!(conn instanceof TLSSocket) || !conn.authorized) return undefined
  const cn = conn.getPeerCertificate().subject?.CN
  return typeof cn === 'string' && cn.length > 0 ? cn : undefined
}
