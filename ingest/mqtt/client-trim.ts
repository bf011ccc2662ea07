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
//   plain BufferList does alike.
import { BufferList } from 'bl'

/** The parts of an aedes 1.2 client (and its mqtt-packet 9 parser) trimmed here. */
interface TrimmableClient {
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
