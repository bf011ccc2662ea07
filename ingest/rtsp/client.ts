// One RTSP/1.0 connection to a camera (RFC 2326). No maintained RTSP
// client for Node is served here, so this is a small one: requests in
// order with CSeq, the session id carried, Basic and Digest answered on a
// 401, RTP over TCP interleaved (or UDP where a camera will not interleave),
// keep-alive while playing, and every failure sorted into a class an
// operator can act on: refused, timeout, unreachable, unauthorized, not
// found, no media, bad SDP, protocol. Each request has its own deadline;
// nothing here retries on its own (the prober's schedule does, with
// backoff).
import { randomBytes } from 'node:crypto'
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { connect, isIP, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { authorization, pickChallenge, UnsupportedAuthError, type Challenge, type Credentials } from './auth.ts'
import { encodeRequest, header, RtspProtocolError, RtspReader, type RtspResponse, type RtspServerRequest } from './messages.ts'

export const FAILURE_CLASSES = ['refused', 'timeout', 'unreachable', 'reset', 'tls', 'unauthorized', 'not_found', 'no_media', 'bad_sdp', 'protocol'] as const
export type FailureClass = (typeof FAILURE_CLASSES)[number]

/** A camera that could not be probed, and why, as a class an operator can act on. */
export class RtspFailure extends Error {
  override name = 'RtspFailure'
  constructor(readonly failure: FailureClass, message: string, readonly status?: number) {
    super(message)
  }
}

export interface CameraUrl {
  /** The URL as sent on the wire: no user name or password in it. */
  url: string
  host: string
  port: number
  /** rtsps://: RTSP over TLS (RFC 7826's port 322 by default), RTP interleaved inside it. */
  tls: boolean
  credentials?: Credentials
}

/** Splits rtsp://user:pass@host:port/path into what is sent and the credentials; throws RtspFailure('protocol') for what is not an rtsp:// URL. */
export function cameraUrl(raw: string, credentials?: Credentials): CameraUrl {
  let u: URL
  try {
    u = new URL(raw)
  } catch {
    throw new RtspFailure('protocol', `${JSON.stringify(raw)} is not a URL`)
  }
  if (u.protocol !== 'rtsp:' && u.protocol !== 'rtsps:') throw new RtspFailure('protocol', `${u.protocol}// is not supported: give an rtsp:// or rtsps:// URL`)
  if (!u.hostname) throw new RtspFailure('protocol', `${JSON.stringify(raw)} has no host`)
  let fromUrl: Credentials | undefined
  try {
    fromUrl = u.username ? { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) } : undefined
  } catch {
    throw new RtspFailure('protocol', 'the user name or password in the URL is not valid percent-encoding (write % as %25)')
  }
  u.username = ''
  u.password = ''
  // Credentials in the URL are the camera's own; those given stand for cameras with none.
  const creds = fromUrl ?? credentials
  const tls = u.protocol === 'rtsps:'
  return { url: u.toString(), host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port ? Number(u.port) : tls ? 322 : 554, tls, ...(creds ? { credentials: creds } : {}) }
}

export interface RtspClientOptions {
  /** Connecting, and each request's answer. */
  timeoutMs: number
  userAgent?: string
  /** Where the client's sockets bind (a source address of the test's own). */
  localAddress?: string
  /** For rtsps://: the authority to trust (PEM) instead of the system's, or `insecure` to take any certificate (cameras with self-signed ones). */
  tls?: { ca?: string | Buffer; insecure?: boolean }
}

/** TLS handshake failures: the camera's certificate not trusted, expired, for another name. */
const TLS_ERRORS = /^(ERR_TLS_|ERR_SSL_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_(GET|VERIFY)_|ERR_OSSL)/

export type PacketHandler = (channel: number, packet: Buffer) => void

/**
 * Answers to a SETUP over TCP that mean "not that transport": 461 as RFC
 * 2326 has it, and what servers answer instead (Debian's rtsp-server-perl,
 * UDP only, says 400; some cameras 406, 500 or 501). The UDP try that
 * follows gives the real failure if it was something else.
 */
const REFUSED_TRANSPORT = new Set([400, 406, 461, 500, 501])

const CONNECT_ERRORS: Record<string, FailureClass> = {
  ECONNREFUSED: 'refused', ETIMEDOUT: 'timeout', ENOTFOUND: 'unreachable', EAI_AGAIN: 'unreachable', EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable', EHOSTDOWN: 'unreachable', EADDRNOTAVAIL: 'unreachable', ECONNRESET: 'reset', EPIPE: 'reset',
}

interface Waiting {
  cseq: number
  resolve: (r: RtspResponse) => void
  reject: (e: RtspFailure) => void
  timer: NodeJS.Timeout
}

/**
 * A connection to one camera. `open()` connects; `request()` sends one
 * request and resolves with its response (after answering a 401 once);
 * interleaved RTP goes to the packet handler. Any failure of the
 * connection rejects what waits and closes it.
 */
export class RtspClient {
  readonly #target: CameraUrl
  readonly #o: RtspClientOptions
  #socket: Socket | undefined
  readonly #reader = new RtspReader()
  #cseq = 0
  #waiting: Waiting[] = []
  #challenge: Challenge | undefined
  #nonceCount = 0
  #session: string | undefined
  #sessionTimeoutS = 60
  #closed: RtspFailure | undefined
  #onPacket: PacketHandler | undefined
  #keepAlive: NodeJS.Timeout | undefined
  #udp: UdpSocket[] = []
  #bytesIn = 0

  constructor(target: CameraUrl, options: RtspClientOptions) {
    this.#target = target
    this.#o = options
  }

  get url(): string {
    return this.#target.url
  }

  /** The session id of the last SETUP, without its timeout. */
  get session(): string | undefined {
    return this.#session
  }

  /** The session timeout the camera stated (60 s when it did not). */
  get sessionTimeoutS(): number {
    return this.#sessionTimeoutS
  }

  get bytesIn(): number {
    return this.#bytesIn
  }

  onPacket(handler: PacketHandler): void {
    this.#onPacket = handler
  }

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const local = this.#o.localAddress ? { localAddress: this.#o.localAddress } : {}
      const t = this.#target
      const socket: Socket = t.tls
        ? tlsConnect({ host: t.host, port: t.port, ...local, ...(isIP(t.host) ? {} : { servername: t.host }), ...(this.#o.tls?.ca ? { ca: this.#o.tls.ca } : {}), rejectUnauthorized: this.#o.tls?.insecure !== true })
        : connect({ host: t.host, port: t.port, noDelay: true, ...local })
      if (t.tls) socket.setNoDelay(true)
      this.#socket = socket
      const timer = setTimeout(() => fail(new RtspFailure('timeout', `no TCP connection to ${this.#target.host}:${this.#target.port} within ${this.#o.timeoutMs} ms`)), this.#o.timeoutMs)
      const fail = (e: RtspFailure): void => {
        clearTimeout(timer)
        this.#fail(e)
        reject(e)
      }
      socket.once(t.tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer)
        socket.off('error', onConnectError)
        socket.on('error', (e: NodeJS.ErrnoException) => this.#fail(new RtspFailure(CONNECT_ERRORS[e.code ?? ''] ?? 'reset', `the connection to the camera failed: ${e.message}`)))
        resolve()
      })
      const onConnectError = (e: NodeJS.ErrnoException): void => {
        if (TLS_ERRORS.test(e.code ?? '')) {
          fail(new RtspFailure('tls', `the TLS handshake with ${t.host}:${t.port} failed: ${e.code ?? ''} ${e.message} (trust its authority with a CA file, or take any certificate where that is acceptable)`))
          return
        }
        const cls = CONNECT_ERRORS[e.code ?? ''] ?? 'unreachable'
        fail(new RtspFailure(cls, `cannot connect to ${t.host}:${t.port}: ${e.code ?? e.message}`))
      }
      socket.once('error', onConnectError)
      socket.on('data', (chunk: Buffer) => this.#onData(chunk))
      socket.on('close', () => this.#fail(new RtspFailure('reset', 'the camera closed the connection')))
    })
  }

  /**
   * Sends a request and resolves with its response. A 401 is answered once
   * with the credentials (again if the camera says the nonce went stale);
   * a second 401 is a failure of class 'unauthorized'. Other statuses are
   * returned for the caller to judge.
   */
  async request(method: string, url: string, headers: Record<string, string> = {}): Promise<RtspResponse> {
    let r = await this.#send(method, url, headers)
    for (let tries = 0; r.status === 401 && tries < 2; tries++) {
      const creds = this.#target.credentials
      if (!creds) throw new RtspFailure('unauthorized', `${method} needs credentials (401 ${r.reason}); give them in the URL or the camera's record`, 401)
      let next: Challenge
      try {
        next = pickChallenge(r.headers.get('www-authenticate') ?? [])
      } catch (e) {
        if (e instanceof UnsupportedAuthError) throw new RtspFailure('unauthorized', e.message, 401)
        throw e
      }
      const stale = next.scheme === 'digest' && next.stale
      if (tries > 0 && !stale) break
      this.#challenge = next
      this.#nonceCount = 0
      r = await this.#send(method, url, headers)
    }
    if (r.status === 401) throw new RtspFailure('unauthorized', `the camera refused the credentials for ${method} (401 ${r.reason})`, 401)
    return r
  }

  /**
   * SETUP over TCP interleaved (channels 0 and 1); where the camera refuses
   * it (REFUSED_TRANSPORT), over UDP to two local ports ('auto'). Or one of
   * them alone. Keeps the session id. Returns the transport in use.
   */
  async setup(controlUrl: string, transport: 'auto' | 'tcp' | 'udp' = 'auto'): Promise<'tcp' | 'udp'> {
    if (transport === 'udp' && this.#target.tls) throw new RtspFailure('protocol', 'rtsps:// keeps RTP inside its TLS connection: UDP would send it in clear (SRTP is not spoken here)')
    if (transport !== 'udp') {
      const tcp = await this.request('SETUP', controlUrl, { Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' })
      if (tcp.status >= 200 && tcp.status < 300) {
        this.#keepSession(tcp)
        return 'tcp'
      }
      // Over TLS the stream stays inside it: RTP over UDP would leave it in clear (SRTP is not spoken here).
      if (!REFUSED_TRANSPORT.has(tcp.status) || transport === 'tcp' || this.#target.tls) throw statusFailure('SETUP', tcp)
    }
    const [rtp, rtcp] = await bindPair(this.#o.localAddress)
    if (this.#closed) {
      closeUdp(rtp)
      closeUdp(rtcp)
      throw this.#closed
    }
    this.#udp = [rtp, rtcp]
    for (const u of this.#udp) u.on('error', (e: Error) => this.#fail(new RtspFailure('reset', `the RTP socket failed: ${e.message}`)))
    rtp.on('message', (m: Buffer) => {
      this.#bytesIn += m.length
      this.#onPacket?.(0, m)
    })
    rtcp.on('message', (m: Buffer) => this.#onPacket?.(1, m))
    const udp = await this.request('SETUP', controlUrl, { Transport: `RTP/AVP;unicast;client_port=${rtp.address().port}-${rtcp.address().port}` })
    if (udp.status < 200 || udp.status >= 300) throw statusFailure('SETUP', udp)
    this.#keepSession(udp)
    return 'udp'
  }

  /** Sends GET_PARAMETER (OPTIONS where the camera lacks it) every half session timeout, so a long PLAY is not timed out by the camera. */
  keepAlive(): void {
    clearInterval(this.#keepAlive)
    let method = 'GET_PARAMETER'
    this.#keepAlive = setInterval(() => {
      this.request(method, this.#target.url).then((r) => {
        if (r.status === 405 || r.status === 501) method = 'OPTIONS'
      }, () => undefined) // a failed keep-alive fails the connection, which the caller sees
    }, (this.#sessionTimeoutS * 1000) / 2)
    this.#keepAlive.unref()
  }

  /** TEARDOWN (waiting at most `waitMs` for its answer), then closes. Never throws. */
  async close(waitMs = 500): Promise<void> {
    clearInterval(this.#keepAlive)
    if (this.#session && !this.#closed && this.#socket) {
      await Promise.race([this.#send('TEARDOWN', this.#target.url, {}).catch(() => undefined), new Promise((r) => setTimeout(r, waitMs).unref())])
    }
    this.#fail(new RtspFailure('reset', 'closed by the client'))
  }

  #keepSession(r: RtspResponse): void {
    const s = header(r.headers, 'session')
    if (!s) throw new RtspFailure('protocol', 'SETUP was answered without a Session header', r.status)
    const [id, ...params] = s.split(';')
    this.#session = (id as string).trim()
    for (const p of params) {
      const m = /^\s*timeout\s*=\s*(\d+)/i.exec(p)
      if (m && Number(m[1]) > 0) this.#sessionTimeoutS = Number(m[1])
    }
  }

  #send(method: string, url: string, extra: Record<string, string>): Promise<RtspResponse> {
    if (this.#closed) return Promise.reject(this.#closed)
    const socket = this.#socket
    if (!socket) return Promise.reject(new RtspFailure('protocol', 'the client is not open'))
    const cseq = ++this.#cseq
    const headers: Record<string, string> = { CSeq: String(cseq), 'User-Agent': this.#o.userAgent ?? 'citytwin-rtsp/0.1', ...extra }
    if (this.#session && method !== 'OPTIONS') headers.Session = this.#session
    if (this.#challenge && this.#target.credentials) {
      headers.Authorization = authorization(this.#challenge, this.#target.credentials, method, url, ++this.#nonceCount, randomBytes(8).toString('hex'))
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#fail(new RtspFailure('timeout', `no answer to ${method} within ${this.#o.timeoutMs} ms`)), this.#o.timeoutMs)
      this.#waiting.push({ cseq, resolve, reject, timer })
      socket.write(encodeRequest(method, url, headers))
    })
  }

  #onData(chunk: Buffer): void {
    this.#bytesIn += chunk.length
    let messages
    try {
      messages = this.#reader.push(chunk)
    } catch (e) {
      if (!(e instanceof RtspProtocolError)) throw e
      this.#fail(new RtspFailure('protocol', `the camera's stream is not RTSP: ${e.message}`))
      return
    }
    for (const m of messages) {
      if (m.kind === 'interleaved') this.#onPacket?.(m.channel, m.payload)
      else if (m.kind === 'request') this.#answerServer(m)
      else this.#onResponse(m)
    }
  }

  #onResponse(r: RtspResponse): void {
    const cseq = Number(header(r.headers, 'cseq'))
    const i = this.#waiting.findIndex((w) => w.cseq === cseq)
    // Some cameras leave CSeq out; answers come in order, so the oldest request takes it.
    const w = i >= 0 ? this.#waiting.splice(i, 1)[0] : Number.isNaN(cseq) ? this.#waiting.shift() : undefined
    if (!w) return
    clearTimeout(w.timer)
    w.resolve(r)
  }

  /** A request from the camera (GET_PARAMETER as its own keep-alive, ANNOUNCE): answered so it does not wait. */
  #answerServer(m: RtspServerRequest): void {
    const ok = m.method === 'GET_PARAMETER' || m.method === 'OPTIONS' || m.method === 'SET_PARAMETER'
    this.#socket?.write(`RTSP/1.0 ${ok ? '200 OK' : '501 Not Implemented'}\r\nCSeq: ${header(m.headers, 'cseq') ?? '0'}\r\n\r\n`)
  }

  #fail(e: RtspFailure): void {
    if (this.#closed) return
    this.#closed = e
    clearInterval(this.#keepAlive)
    for (const w of this.#waiting) {
      clearTimeout(w.timer)
      w.reject(e)
    }
    this.#waiting = []
    this.#socket?.destroy()
    for (const u of this.#udp) closeUdp(u)
    this.#udp = []
  }
}

/** The failure a non-2xx answer to `method` stands for. */
export function statusFailure(method: string, r: RtspResponse): RtspFailure {
  const what = `${method} was answered ${r.status} ${r.reason}`
  if (r.status === 404) return new RtspFailure('not_found', `${what}: no stream at that path`, r.status)
  if (r.status === 401 || r.status === 403) return new RtspFailure('unauthorized', what, r.status)
  if (r.status === 453 || r.status === 503) return new RtspFailure('refused', `${what}: the camera is busy or out of bandwidth`, r.status)
  return new RtspFailure('protocol', what, r.status)
}

/** Two UDP sockets on an even port and the next one (RFC 3550 §11), tried a few times. */
async function bindPair(address: string | undefined): Promise<[UdpSocket, UdpSocket]> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const rtp = createSocket('udp4')
    const ok = await new Promise<boolean>((resolve) => {
      rtp.once('error', () => resolve(false))
      rtp.bind({ port: 0, ...(address ? { address } : {}) }, () => resolve(true))
    })
    if (!ok) {
      closeUdp(rtp)
      continue
    }
    const port = rtp.address().port
    if (port % 2 !== 0 || port === 65535) {
      closeUdp(rtp)
      continue
    }
    const rtcp = createSocket('udp4')
    const paired = await new Promise<boolean>((resolve) => {
      rtcp.once('error', () => resolve(false))
      rtcp.bind({ port: port + 1, ...(address ? { address } : {}) }, () => resolve(true))
    })
    if (paired) return [rtp, rtcp]
    closeUdp(rtp)
    closeUdp(rtcp)
  }
  throw new RtspFailure('protocol', 'could not bind two UDP ports side by side for RTP and RTCP')
}

function closeUdp(u: UdpSocket): void {
  try {
    u.close()
  } catch (e) {
    // Closed already, or never bound (ERR_SOCKET_DGRAM_NOT_RUNNING): nothing is left to free.
    if ((e as NodeJS.ErrnoException).code !== 'ERR_SOCKET_DGRAM_NOT_RUNNING') throw e
  }
}
