// RTSP/1.0 on the wire (RFC 2326): what a camera sends back, read from a
// byte stream that interleaves RTSP responses with RTP packets once PLAY has
// started ($, channel, 16-bit length, packet: RFC 2326 §10.12). TCP gives
// no framing, so a response or a packet may arrive split over any number
// of reads, or several in one read; the reader keeps what is incomplete and
// carries on with the next chunk. Pure: bytes in, messages out.

/** Headers by lower-case name; a repeated header keeps every value (WWW-Authenticate may offer Digest and Basic). */
export type Headers = ReadonlyMap<string, readonly string[]>

export interface RtspResponse {
  kind: 'response'
  status: number
  reason: string
  headers: Headers
  body: Buffer
}

/** A request the server sends the client (some send GET_PARAMETER or ANNOUNCE); the client answers or ignores it. */
export interface RtspServerRequest {
  kind: 'request'
  method: string
  url: string
  headers: Headers
  body: Buffer
}

export interface InterleavedPacket {
  kind: 'interleaved'
  channel: number
  payload: Buffer
}

export type RtspIncoming = RtspResponse | RtspServerRequest | InterleavedPacket

/** Bounds on what one message may hold, so a broken or hostile peer cannot grow the reader without end. */
export interface ReaderLimits {
  maxHeaderBytes: number
  maxBodyBytes: number
}

export const DEFAULT_READER_LIMITS: ReaderLimits = { maxHeaderBytes: 16_384, maxBodyBytes: 1_048_576 }

/** A stream that is not RTSP, or breaks the limits: the connection cannot go on. */
export class RtspProtocolError extends Error {
  override name = 'RtspProtocolError'
}

const DOLLAR = 0x24
const HEADER_END = Buffer.from('\r\n\r\n')

/** The value of `name` (first of several), or undefined. */
export function header(headers: Headers, name: string): string | undefined {
  return headers.get(name.toLowerCase())?.[0]
}

/**
 * Splits a byte stream from an RTSP server into responses, server requests
 * and interleaved packets. Keeps a partial message between chunks; throws
 * RtspProtocolError when the stream cannot be RTSP.
 */
export class RtspReader {
  readonly #limits: ReaderLimits
  #buf: Buffer = Buffer.alloc(0)

  constructor(limits: Partial<ReaderLimits> = {}) {
    this.#limits = { ...DEFAULT_READER_LIMITS, ...limits }
  }

  /** Bytes held for a message not yet complete. */
  get pending(): number {
    return this.#buf.length
  }

  push(chunk: Buffer): RtspIncoming[] {
    const buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk])
    const out: RtspIncoming[] = []
    let off = 0
    for (;;) {
      if (off >= buf.length) break
      if (buf[off] === DOLLAR) {
        if (buf.length - off < 4) break
        const length = buf.readUInt16BE(off + 2)
        if (buf.length - off < 4 + length) break
        // A copy: a view would keep the whole read alive for as long as the caller keeps the packet.
        out.push({ kind: 'interleaved', channel: buf[off + 1] as number, payload: Buffer.from(buf.subarray(off + 4, off + 4 + length)) })
        off += 4 + length
        continue
      }
      const end = buf.indexOf(HEADER_END, off)
      if (end < 0) {
        if (buf.length - off > this.#limits.maxHeaderBytes) throw new RtspProtocolError(`no end of headers within ${this.#limits.maxHeaderBytes} bytes`)
        break
      }
      if (end - off > this.#limits.maxHeaderBytes) throw new RtspProtocolError(`headers longer than ${this.#limits.maxHeaderBytes} bytes`)
      const head = parseHead(buf.toString('latin1', off, end))
      const lengthText = header(head.headers, 'content-length')
      const length = lengthText === undefined ? 0 : Number(lengthText)
      if (!Number.isInteger(length) || length < 0) throw new RtspProtocolError(`bad Content-Length ${JSON.stringify(lengthText)}`)
      if (length > this.#limits.maxBodyBytes) throw new RtspProtocolError(`a body of ${length} bytes is more than the ${this.#limits.maxBodyBytes} allowed`)
      const bodyStart = end + HEADER_END.length
      if (buf.length < bodyStart + length) break
      const body = Buffer.from(buf.subarray(bodyStart, bodyStart + length))
      out.push(head.kind === 'response'
        ? { kind: 'response', status: head.status, reason: head.reason, headers: head.headers, body }
        : { kind: 'request', method: head.method, url: head.url, headers: head.headers, body })
      off = bodyStart + length
    }
    this.#buf = off >= buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(off))
    return out
  }
}

type Head =
  | { kind: 'response'; status: number; reason: string; headers: Headers }
  | { kind: 'request'; method: string; url: string; headers: Headers }

const STATUS_LINE = /^RTSP\/(\d)\.(\d) (\d{3})(?: (.*))?$/
const REQUEST_LINE = /^([A-Z_]+) (\S+) RTSP\/\d\.\d$/

function parseHead(text: string): Head {
  const lines = text.split('\r\n')
  const first = lines[0] ?? ''
  const headers = new Map<string, string[]>()
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string
    const colon = line.indexOf(':')
    if (colon <= 0) throw new RtspProtocolError(`a header line without a name: ${JSON.stringify(line.slice(0, 80))}`)
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim()
    const values = headers.get(name)
    if (values) values.push(value)
    else headers.set(name, [value])
  }
  const status = STATUS_LINE.exec(first)
  if (status) return { kind: 'response', status: Number(status[3]), reason: status[4] ?? '', headers }
  const request = REQUEST_LINE.exec(first)
  if (request) return { kind: 'request', method: request[1] as string, url: request[2] as string, headers }
  throw new RtspProtocolError(`not an RTSP status or request line: ${JSON.stringify(first.slice(0, 80))}`)
}

/** A request as bytes: the request line, `headers` in the order given, Content-Length when there is a body. */
export function encodeRequest(method: string, url: string, headers: Readonly<Record<string, string>>, body?: Buffer): Buffer {
  let head = `${method} ${url} RTSP/1.0\r\n`
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`
  if (body && body.length > 0) head += `Content-Length: ${body.length}\r\n`
  head += '\r\n'
  return body && body.length > 0 ? Buffer.concat([Buffer.from(head, 'latin1'), body]) : Buffer.from(head, 'latin1')
}
