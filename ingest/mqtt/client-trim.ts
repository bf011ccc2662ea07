// What aedes and mqtt-packet keep of every connection after its CONNECT
// that nothing reads again. A gateway process holds up to 19,000
// connections, so each kilobyte a connection keeps is 19 MB of heap that
// the garbage collector walks again and again. Heap snapshots of a gateway
// worker holding 4,809 devices (2026-11-30) showed, per connection:
// - the CONNECT packet, kept by aedes' parser as its `settings` (mqtt-packet
//   reads only `protocolVersion` and `bridgeMode` from it later). Its
//   password is a slice of the connection's first socket read, so it held
//   that whole read: 1.9 KB a connection, with the packet itself;
// - the parser's buffer list, a full Duplex stream (bl's BufferListStream:
//   two stream states, an emitter and its bound handlers, about 0.8 KB),
//   although the parser only appends to it and consumes from it, which the
//   plain BufferList does alike;
// - the watch aedes sets on the socket with stream.finished(): seven
//   closures and their context (about 0.5 KB, snapshot of 2026-12-01 at
//   15,000 connections) to learn that the socket is done, which one
//   listener on 'close', shared by every connection, learns as well.
import type { EventEmitter } from 'node:events'
import { BufferList } from 'bl'

/** The parts of an aedes 1.2 client (and its mqtt-packet 9 parser) trimmed here. */
interface TrimmableClient {
  closed?: boolean
  close?: () => void
  /** Removes stream.finished()'s listeners (aedes calls it on close). */
  _eos?: () => void
  conn?: { destroyed?: boolean; client?: unknown } & Partial<Pick<EventEmitter, 'on' | 'rawListeners' | 'removeAllListeners'>>
  _parser?: {
    settings?: { protocolVersion?: number; bridgeMode?: boolean | undefined } | null
    _list?: { length: number; append(buf: Buffer): unknown; pipe?: unknown }
  }
}

/**
 * Drops what a just-connected client keeps of its CONNECT and swaps its
 * parser's stream buffer for a plain one. Where a part is not in the shape
 * expected (another aedes or mqtt-packet version), it is left alone: this
 * saves memory and never changes what is parsed.
 */
export function trimAfterConnect(client: object): void {
  watchClose(client)
  const parser = (client as TrimmableClient)._parser
  if (!parser) return
  const s = parser.settings
  if (s && typeof s === 'object' && 'cmd' in s) {
    parser.settings = { protocolVersion: s.protocolVersion ?? 4, bridgeMode: s.bridgeMode }
  }
  // Only an empty list is swapped: bytes after the CONNECT (pipelined
  // packets not parsed yet) stay where the parser expects them.
  const list = parser._list
  if (list && list.length === 0 && typeof list.pipe === 'function') parser._list = new BufferList()
}

const noop = (): void => undefined

/**
 * The socket's end ends its client. aedes learns it from stream.finished()
 * (and from 'end' and 'error', which it also listens to); 'close' comes
 * after each of them, and after a destroy without error, which only
 * finished() saw. One function for every connection: `this` is the socket,
 * and aedes keeps its client on it (`conn.client`).
 */
function closeItsClient(this: { client?: unknown }): void {
  const c = this.client as TrimmableClient | undefined
  if (c && !c.closed) c.close?.()
}

function watchClose(c: TrimmableClient): void {
  const conn = c.conn
  if (c.closed || typeof c._eos !== 'function' || typeof c.close !== 'function' || !conn || conn.destroyed || conn.client !== c || typeof conn.on !== 'function') return
  c._eos()
  c._eos = noop
  compactListeners(conn, 'end')
  // 'on', not 'once': a close comes once, and once's wrapper is a bound function and its state for each connection.
  conn.on('close', closeItsClient)
}

/**
 * Gives an event's two listeners an array of two slots. An emitter's array
 * keeps the room it grew to: finished() was the third 'end' listener (the
 * stream's own and aedes' are the others), and without it the two left sat
 * in an array of 19 slots, about 170 bytes a connection (heap snapshot of
 * a worker at 17,155 connections, 2026-12-01). The array is replaced in
 * place, same listeners, same order: removing the listeners and adding
 * them again would delete the event from the emitter's `_events`, and an
 * object a property was deleted from turns into a dictionary (450 bytes a
 * socket, the next snapshot showed). Anything not in the shape expected
 * is left alone.
 */
export function compactListeners(emitter: object, event: string): void {
  const events = (emitter as { _events?: Record<string, unknown> })._events
  const listeners = events?.[event]
  if (!events || !Array.isArray(listeners) || listeners.length !== 2) return
  events[event] = [listeners[0], listeners[1]]
}
