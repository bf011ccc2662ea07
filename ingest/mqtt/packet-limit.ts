// The largest packet aedes' parser reads in. mqtt-packet 9 takes whatever
// remaining length a packet announces (up to 256 MB) and buffers the bytes
// until they are all there, so one connection that announced a 200 MB
// CONNECT, before it had to show any credentials, had the gateway hold
// whatever it sent (tests/ingest/hostile.test.ts). With a limit, the
// parser fails the packet as soon as its length is read, and aedes closes
// the connection through its usual error path.
//
// The check wraps mqtt-packet's `_parseLength` once, on the parser's
// prototype; each parser carries its limit as a number (a closure per
// connection would cost a few hundred bytes times 19,000 connections).
// Held to the mqtt-packet version aedes 1.2 brings: where the parser is not
// of the expected shape, nothing is limited and `limitPacketSize` says so.

interface LimitableParser {
  packet: { length: number }
  _parseLength(): boolean
  _emitError(e: Error): void
  citytwinMaxPacketBytes?: number
}

const WRAPPED = Symbol('citytwin packet limit')

/** Sets the largest packet `client`'s parser reads; false when the parser is not the expected mqtt-packet one. */
export function limitPacketSize(client: object, maxBytes: number): boolean {
  const parser = (client as { _parser?: LimitableParser })._parser
  if (!parser || typeof parser._parseLength !== 'function' || typeof parser._emitError !== 'function') return false
  const proto = Object.getPrototypeOf(parser) as LimitableParser & { [WRAPPED]?: true }
  if (!proto[WRAPPED] && typeof proto._parseLength === 'function') {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called with the parser as `this` below
    const parseLength = proto._parseLength
    proto._parseLength = function (this: LimitableParser): boolean {
      const ok = parseLength.call(this)
      const max = this.citytwinMaxPacketBytes
      if (ok && max !== undefined && this.packet.length > max) {
        this._emitError(new Error(`a packet of ${this.packet.length} bytes, above the gateway's limit of ${max}`))
        return false
      }
      return ok
    }
    proto[WRAPPED] = true
  }
  parser.citytwinMaxPacketBytes = maxBytes
  return true
}
