// Connections a full gateway worker passes to one with room. Workers share
// one listening socket and the kernel gives each new connection to
// whichever worker calls accept first, so the idler ones take more: with
// the whole city on 13 workers they held 14,000 to 19,000 connections each.
// A worker at its cap (mqtt.maxConnections, 19,000: a process may hold
// 20,000 open files) used to close what it had just accepted, before
// reading its CONNECT; the device saw a reset or a bare close, backed off
// for up to a minute and tried again, maybe at a full worker again. In a
// full-city run 24,437 connects ended so, and the last few thousand devices
// took minutes to connect and to come back after a reconnect storm.
//
// Now a full worker passes the accepted socket, unread, to the primary,
// which passes it on to the worker holding the fewest connections; that
// worker serves it as if it had accepted it. The primary knows each
// worker's count from its report every second and counts what it passes
// on meanwhile. A connection is passed on at most MAX_HOPS times; then,
// or when every worker is full, it is closed as before.
//
// Passing costs the primary a message and a descriptor per connection, and
// in a storm it could not keep up (at most PRIMARY_MAX_IN_TRANSIT on their
// way; 900 closed in one full-city storm on 2026-12-01). So a worker well
// ahead of the others stops accepting before it is full: with each report
// the primary tells a worker whether to accept, and one holding more than
// the mean of all by SHARE_MARGIN of its cap (once past SHARE_FLOOR) closes
// its listener until it is told again; the kernel then gives new
// connections to the others. The emptiest worker is always told to accept,
// and none is told to stop unless MIN_ACCEPTING others listen (told to
// accept, and open at their last report), so the port is never left
// without a listener: node's cluster closes the shared socket when no
// worker holds it. A worker just forked counts for nothing until it reports.
import type { Worker } from 'node:cluster'
import type { Socket } from 'node:net'
import { logger } from '../../lib/log.ts'
import { counter } from '../../lib/metrics.ts'
import { RefusalDigest } from './refusal-digest.ts'

const log = logger('mqtt-hand-over')
const handedTotal = counter('citytwin_mqtt_connections_handed_total', 'Connections a full gateway worker passed on (out), and those it was passed (in)', ['direction'])
const handedOut = handedTotal.labels({ direction: 'out' })
const handedIn = handedTotal.labels({ direction: 'in' })

/** Most times one connection is passed on before it is closed: estimates a second old may send it to a worker that has just filled up. */
export const MAX_HOPS = 2
/**
 * Most sockets one worker has passed and not yet seen sent. Each holds a
 * descriptor here until then, on top of mqtt.maxConnections, and a full
 * worker keeps accepting: with a primary slow to read its channel, passes
 * without a bound would run the worker out of descriptors (20,000 here).
 * Beyond it a new connection is closed, as with no hand-over. A full
 * worker that is not busy takes a large share of a connect wave; at full
 * city with 64, 452 connections were closed so (18:34 UTC, 2026-12-01),
 * with 256 none. 19,000 connections, 256 on their way and the process's
 * own few dozen files stay under 20,000.
 */
export const MAX_IN_TRANSIT = 256
/**
 * Most sockets the primary holds on their way to workers. It holds each
 * until the worker has it; beyond this, a passed socket is closed, so a
 * storm of passes cannot run the primary, which holds the store, out of
 * descriptors.
 */
export const PRIMARY_MAX_IN_TRANSIT = 1_024
/** How often a worker tells the primary how many connections it holds. */
export const REPORT_MS = 1_000
/**
 * Connections a worker may hold above the mean of all before it stops
 * accepting, as a share of its cap (475 of 19,000). The verdict is up to a
 * second old, and a worker can take a thousand connections in a second of
 * a storm: the full city's mean (16,900 on 13 workers) plus this plus that
 * stays under the cap.
 */
export const SHARE_MARGIN = 0.025
/** Below this share of its cap a worker always accepts: the kernel gives connections to the idlest worker, which balances the CPU, and only near the cap does the count matter. */
export const SHARE_FLOOR = 0.75
/** Fewest other workers that must be listening (told to accept, and open at their last report) for one to be told to stop: with fewer workers than this plus one, none stops. */
export const MIN_ACCEPTING = 2
/** A worker told to stop accepting starts again by itself after this long without a verdict (the primary may be busy or gone). */
export const PAUSE_MAX_MS = 3 * REPORT_MS

/** Worker to primary: this socket, which I have no room for (sent with the message). */
interface PassMessage { type: 'citytwin-mqtt-pass'; hops: number }
/** Primary to worker: a socket for you (sent with the message). */
interface PassedMessage { type: 'citytwin-mqtt-passed'; hops: number }
/** Worker to primary, every REPORT_MS: connections held, the most it holds, and whether its listener is open. */
interface HeldMessage { type: 'citytwin-mqtt-held'; held: number; cap: number; listening: boolean }
/** Primary to worker, in answer to each report: whether to accept new connections. */
interface AcceptMessage { type: 'citytwin-mqtt-accept'; accept: boolean }

/**
 * Whether a worker holding `held` of `cap` should accept new connections,
 * given the loads of all live workers (its own among them): yes below
 * SHARE_FLOOR of its cap or below the mean plus SHARE_MARGIN of it, and always
 * for the least loaded.
 */
export function shouldAccept(held: number, cap: number, loads: readonly number[]): boolean {
  if (loads.length === 0 || held < cap * SHARE_FLOOR) return true
  const mean = loads.reduce((a, b) => a + b, 0) / loads.length
  return held < mean + Math.max(1, Math.ceil(cap * SHARE_MARGIN)) || held <= Math.min(...loads)
}

const typeOf = (m: unknown): unknown => (typeof m === 'object' && m !== null ? (m as { type?: unknown }).type : undefined)
const hopsOf = (m: unknown): number => {
  const h = (m as { hops?: unknown }).hops
  return typeof h === 'number' && Number.isInteger(h) && h >= 0 ? h : MAX_HOPS
}

/**
 * Stops a socket's reading at its handle. A socket that arrives over IPC
 * starts reading at once (net.Socket's constructor calls read(0)), and
 * keeps reading until the receiver acknowledges it: passed on again (by
 * the primary, or by a worker that is full too), it could read its
 * CONNECT into this process, where it would be lost. Called in the turn
 * the socket arrived, before any read. Net.Socket keeps its handle as `_handle`, which its types do not
 * declare.
 */
export function holdReading(socket: Socket): void {
  const handle = (socket as unknown as { _handle?: { reading?: boolean; readStop?: () => number } | null })._handle
  if (handle && typeof handle.readStop === 'function') {
    handle.readStop()
    handle.reading = false
  }
}

/** What a gateway worker gives the hand-over: its count, its cap, where sockets passed to it go, and how to stop and start accepting. */
export interface HandOverHooks {
  held: () => number
  cap: number
  take: (socket: Socket, hops: number) => void
  /** Closes (false) or opens again (true) the worker's listener, as the primary tells it to. */
  accepting?: (on: boolean) => void
  /** Whether the listener is open now (default: always). */
  listening?: () => boolean
}

/**
 * A gateway worker's side. `pass` sends an accepted socket, not yet read,
 * to the primary; sockets the primary passes here go to the gateway's
 * `take`. Outside a cluster worker (no IPC channel) nothing is passed.
 */
export class HandOverClient {
  /** Sends to the primary, calling `sent` once the message (and socket) went or failed; false when there is no primary. */
  readonly #send: Send
  #hooks: HandOverHooks | undefined
  #timer: NodeJS.Timeout | undefined
  #inTransit = 0
  /** Whether this process listens for the primary's messages (once, for good). */
  #subscribed = false
  readonly #counts = { passedOut: 0, passedIn: 0, failed: 0 }
  /** Set while told not to accept: accepts again by itself after PAUSE_MAX_MS without a verdict. */
  #pause: NodeJS.Timeout | undefined
  readonly #onMessage = (m: unknown, socket: unknown): void => {
    if (typeOf(m) === 'citytwin-mqtt-accept') return this.verdict((m as Partial<AcceptMessage>).accept !== false)
    if (typeOf(m) !== 'citytwin-mqtt-passed' || !socket) return
    const s = socket as Socket
    if (!this.#hooks) return void s.destroy()
    this.#counts.passedIn++
    handedIn.inc()
    this.#hooks.take(s, hopsOf(m))
  }

  /** `send`: default, the cluster's IPC channel. */
  constructor(send: Send = sendToPrimary) {
    this.#send = send
  }

  /** Starts serving a gateway: takes what is passed to it, and reports its count every REPORT_MS. */
  attach(hooks: HandOverHooks): void {
    clearInterval(this.#timer)
    this.#hooks = hooks
    if (!this.#subscribed) process.on('message', this.#onMessage)
    this.#subscribed = true
    const report = (): void => this.#report(hooks.held(), hooks.cap, hooks.listening?.() ?? true)
    report()
    this.#timer = setInterval(report, REPORT_MS)
    this.#timer.unref()
  }

  /**
   * Stops serving: tells the primary this process has no room, and closes
   * what is passed here from now on (the listener stays until the process
   * ends, so such a socket is not left open and unowned).
   */
  detach(): void {
    clearInterval(this.#timer)
    clearTimeout(this.#pause)
    this.#pause = undefined
    const hooks = this.#hooks
    this.#hooks = undefined
    if (hooks) this.#report(hooks.cap, hooks.cap, false)
  }

  /**
   * Passes `socket` on; false when it cannot be (no primary, passed on
   * MAX_HOPS times already, or MAX_IN_TRANSIT on their way): the caller
   * then closes it.
   */
  pass(socket: Socket, hops: number): boolean {
    if (hops >= MAX_HOPS || !this.#hooks || this.#inTransit >= MAX_IN_TRANSIT) return false
    // One passed here already reads (see holdReading); one that read something is served here or closed, never passed without it.
    holdReading(socket)
    if (socket.readableLength > 0) return false
    let done = false
    const sent = (e: Error | null): void => {
      // Node calls back again when it resends a handle the receiver could not take (NODE_HANDLE_NACK).
      if (done) return
      done = true
      this.#inTransit--
      if (!e) return
      this.#counts.failed++
      log.debug({ err: e }, 'a connection could not be passed on; closed')
      socket.destroy()
    }
    this.#inTransit++
    if (!this.#trySend({ type: 'citytwin-mqtt-pass', hops }, socket, sent)) {
      this.#inTransit--
      return false
    }
    this.#counts.passedOut++
    handedOut.inc()
    return true
  }

  /** The primary's answer to a report (its message calls this): accept new connections or not, until told again or for PAUSE_MAX_MS at most. */
  verdict(accept: boolean): void {
    const hooks = this.#hooks
    if (!hooks?.accepting) return
    clearTimeout(this.#pause)
    this.#pause = undefined
    if (!accept) {
      this.#pause = setTimeout(() => {
        this.#pause = undefined
        this.#hooks?.accepting?.(true)
      }, PAUSE_MAX_MS)
      this.#pause.unref()
    }
    hooks.accepting(accept)
  }

  #report(held: number, cap: number, listening: boolean): void {
    this.#trySend({ type: 'citytwin-mqtt-held', held, cap, listening }, undefined, () => undefined)
  }

  #trySend(m: PassMessage | HeldMessage, socket: Socket | undefined, sent: (e: Error | null) => void): boolean {
    try {
      return this.#send(m, socket, sent)
    } catch (e) {
      // The channel closed between the check and the send (the primary is stopping).
      log.debug({ err: e }, 'could not reach the gateway primary')
      return false
    }
  }

  stats(): Record<string, number> {
    return { ...this.#counts, inTransit: this.#inTransit }
  }
}

type Send = (m: PassMessage | HeldMessage, socket: Socket | undefined, sent: (e: Error | null) => void) => boolean

function sendToPrimary(m: PassMessage | HeldMessage, socket: Socket | undefined, sent: (e: Error | null) => void): boolean {
  if (!process.connected || !process.send) return false
  // keepOpen false: once the primary has it, this process closes its descriptor. process.send's false
  // means queued behind others, not refused: the callback says how it ended.
  process.send(m, socket, { keepOpen: false }, sent)
  return true
}

/**
 * The primary's side: takes a socket a full worker passes and passes it to
 * the worker holding the fewest connections, by their last reports and
 * what was passed to each since.
 */
export class HandOverRouter {
  readonly #workers = new Map<number, Target>()
  readonly #counts = { routed: 0, closed: 0 }
  #inTransit = 0
  /** Why the primary closed what it was passed, logged once a window (refusal-digest.ts). */
  readonly #refusals = new RefusalDigest()

  constructor() {
    this.#refusals.start((closed, windowS) => log.warn({ closed, windowS }, 'connections passed on by full gateway workers and closed, by reason'))
  }

  /** Follows a worker's reports and what it passes, until it exits. */
  watch(worker: Worker): void {
    const entry: Target = { worker, held: 0, cap: Number.POSITIVE_INFINITY, sending: new Set(), reported: false, listening: false, told: true }
    this.#workers.set(worker.id, entry)
    worker.on('message', (m: unknown, socket: unknown) => {
      const type = typeOf(m)
      if (type === 'citytwin-mqtt-held') {
        const r = m as Partial<HeldMessage>
        if (typeof r.held === 'number') entry.held = r.held
        if (typeof r.cap === 'number') entry.cap = r.cap
        entry.listening = r.listening !== false
        entry.reported = true
        this.#tell(entry)
      } else if (type === 'citytwin-mqtt-pass' && socket) this.#route(worker, hopsOf(m), socket as Socket)
    })
    // A worker gone: what was on its way there never arrives, and a send queued on its channel never calls back.
    const gone = (): void => {
      if (!this.#workers.delete(worker.id)) return
      for (const s of entry.sending) this.#settle(entry, s)
      // It may have been one of the few listening: the others hear at once whether to accept, not at their next report.
      for (const e of this.#workers.values()) if (e.reported) this.#tell(e)
    }
    worker.once('exit', gone)
    worker.once('disconnect', gone)
  }

  /** Tells a worker whether to accept new connections (shouldAccept), by what each worker holds and has on its way. */
  #tell(entry: Target): void {
    if (!entry.worker.isConnected()) return
    // A worker that has not reported yet (just forked: it may load for seconds before it listens) neither pulls the mean down nor counts as listening.
    const live = [...this.#workers.values()].filter((e) => e.reported && e.worker.isConnected())
    let accept = shouldAccept(loadOf(entry), entry.cap, live.map(loadOf))
    // Workers that closed their listener no longer hold the shared socket, and when the last one lets go node's
    // cluster closes it (the port refuses connections, and one picked at random may come back as another):
    // one is told to stop only while MIN_ACCEPTING others listen (told to accept, and open at their last report),
    // so one of them dying leaves one, and a listen on its way is not counted before it is done.
    if (!accept) accept = live.filter((e) => e !== entry && e.told && e.listening).length < MIN_ACCEPTING
    entry.told = accept
    try {
      // A worker stopping may be gone before its exit is seen: with a callback the failed send (EPIPE) is not an error event.
      entry.worker.send({ type: 'citytwin-mqtt-accept', accept } satisfies AcceptMessage, undefined, undefined, () => undefined)
    } catch (e) {
      log.debug({ err: e }, 'could not reach a gateway worker')
    }
  }

  #route(from: Worker, hops: number, socket: Socket): void {
    holdReading(socket)
    // Nothing can come of it but a close; without a listener an error would end this process.
    socket.on('error', () => undefined)
    let to: Target | undefined
    for (const e of this.#workers.values()) {
      // Not one that has not reported: it may not be taking passed sockets yet.
      if (e.worker === from || !e.reported || loadOf(e) >= e.cap || !e.worker.isConnected()) continue
      if (!to || loadOf(e) < loadOf(to)) to = e
    }
    if (!to || hops >= MAX_HOPS || this.#inTransit >= PRIMARY_MAX_IN_TRANSIT) {
      this.#counts.closed++
      this.#refusals.count(!to ? 'NO_WORKER_WITH_ROOM' : hops >= MAX_HOPS ? 'PASSED_TOO_OFTEN' : 'PRIMARY_IN_TRANSIT_FULL')
      log.debug({ hops, inTransit: this.#inTransit }, 'no gateway worker has room for a connection; closed')
      socket.destroy()
      return
    }
    const target = to
    target.sending.add(socket)
    this.#inTransit++
    this.#counts.routed++
    try {
      target.worker.send({ type: 'citytwin-mqtt-passed', hops: hops + 1 } satisfies PassedMessage, socket, () => {
        // Sent or failed, this process is done with it. Sent, it has no handle left, and its close tells node's
        // cluster the worker that passed it no longer waits for it (else that worker's server.close() never ends).
        this.#settle(target, socket)
      })
    } catch {
      this.#settle(target, socket)
    }
  }

  #settle(target: Target, socket: Socket): void {
    if (!target.sending.delete(socket)) return
    this.#inTransit--
    // Counted as the worker's until its next report says how many it holds.
    target.held++
    socket.destroy()
  }

  stats(): Record<string, number> {
    return { ...this.#counts, inTransit: this.#inTransit }
  }
}

/** A worker's count: its last report and what is on its way to it (reports are up to a second old). */
const loadOf = (e: Target): number => e.held + e.sending.size

interface Target {
  worker: Worker
  /** Its last report, and what was sent to it since. */
  held: number
  cap: number
  /** Sockets on their way to it: sent, not yet called back. */
  sending: Set<Socket>
  /** Whether it has reported: a worker just forked holds nothing and may not listen for seconds. */
  reported: boolean
  /** Whether its listener was open at its last report. */
  listening: boolean
  /** What it was last told: to accept new connections, or not. */
  told: boolean
}
