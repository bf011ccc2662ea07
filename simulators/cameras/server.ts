// The camera simulator: an RTSP/1.0 server (RFC 2326) in one process that
// stands for many cameras, a path each (/live/<camera id>, as the generated
// city's URLs have them). Each camera plays one of the clips (clips.ts) in
// a loop, over RTP interleaved on its TCP connection or over UDP, and can be
// switched while it runs to another clip or to a fault an operator meets:
// offline (the connection drops), silent (no answer), slow (late answers),
// not found, no media, and credentials asked for (Basic or Digest). Frame
// rate below the clip's stands for a degraded camera.
//
// One timer drives every playing stream, so a thousand streams cost a
// thousand writes a frame period and no timer each. Budget: per frame and
// stream, one copy of the frame's packets with their headers patched and
// one write (TCP) or one send a packet (UDP).
import { randomBytes, randomInt } from 'node:crypto'
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { createServer, type Server, type Socket } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import type { Component, ComponentStats } from '../../lib/component.ts'
import { digestResponse, parseDigestAuthorization } from '../../ingest/rtsp/auth.ts'
import { header, RtspProtocolError, RtspReader, type RtspServerRequest } from '../../ingest/rtsp/messages.ts'
import type { ClipName, LoadedClip } from './clips.ts'
import { framePackets, profileLevelId, type RtpState } from './h264.ts'

export const CAMERA_FAULTS = ['offline', 'silent', 'slow', 'not_found', 'no_media'] as const
export type CameraFault = (typeof CAMERA_FAULTS)[number]

export interface SimCamera {
  clip: ClipName
  fault?: CameraFault
  /** Credentials the camera asks for; none when absent. */
  auth?: { scheme: 'basic' | 'digest'; username: string; password: string }
  /** Frames a second actually sent (below the clip's: a degraded camera); the clip's rate when absent. */
  fps?: number
  /** How late a 'slow' camera answers (default 2 s). */
  slowMs?: number
}

export interface CameraSimulatorOptions {
  host: string
  /** 0 for any free port. */
  port: number
  clips: ReadonlyMap<ClipName, LoadedClip>
  /** The camera at /live/<id>, or undefined for a path that is no camera (404). */
  camera: (id: string) => SimCamera | undefined
  /** Transports SETUP accepts; one not listed is answered 461. */
  transports?: readonly ('tcp' | 'udp')[]
  /** A stream whose socket holds more unsent than this skips frames, as a congested camera drops them. */
  maxQueuedBytes?: number
  /** Serve RTSP over TLS (rtsps://) with this key and certificate (PEM); RTP then goes interleaved only. */
  tls?: { key: string | Buffer; cert: string | Buffer }
}

const PAYLOAD_TYPE = 96
const REALM = 'citytwin camera simulator'
const NONCE_TTL_MS = 300_000
const SESSION_TIMEOUT_S = 60

interface Stream {
  id: string
  cameraId: string
  conn: Connection
  clip: LoadedClip
  /** Send every `step`-th frame of the clip. */
  step: number
  frame: number
  rtp: RtpState
  transport: { kind: 'tcp'; channel: number } | { kind: 'udp'; host: string; port: number }
  playing: boolean
  media: boolean
  lastSeen: number
}

interface Connection {
  socket: Socket
  reader: RtspReader
  streams: Map<string, Stream>
}

export class CameraSimulator implements Component {
  readonly name = 'camera-simulator'
  readonly #o: Required<Omit<CameraSimulatorOptions, 'camera' | 'tls'>> & Pick<CameraSimulatorOptions, 'camera' | 'tls'>
  #server: Server | undefined
  #udp: UdpSocket | undefined
  #ticker: NodeJS.Timeout | undefined
  readonly #connections = new Set<Connection>()
  readonly #streams = new Map<string, Stream>()
  readonly #nonces = new Map<string, number>()
  readonly #overrides = new Map<string, SimCamera>()
  #frameMs = 40
  #counts = { connections: 0, requests: 0, badRequests: 0, authRefused: 0, framesSent: 0, framesSkipped: 0, packetsSent: 0, bytesSent: 0 }

  constructor(options: CameraSimulatorOptions) {
    this.#o = { transports: ['tcp', 'udp'], maxQueuedBytes: 1_048_576, ...options }
    const fps = new Set([...options.clips.values()].map((c) => c.fps))
    if (fps.size > 1) throw new Error(`every clip must have one frame rate, got ${[...fps].join(', ')}`)
    this.#frameMs = 1000 / ([...fps][0] ?? 25)
  }

  /** Where it listens, once started. */
  get port(): number {
    const a = this.#server?.address()
    return typeof a === 'object' && a ? a.port : 0
  }

  /** Switches a camera to another clip or fault while it runs; streams playing it take the new clip at their next frame. */
  set(id: string, camera: SimCamera): void {
    this.#overrides.set(id, camera)
    const clip = this.#o.clips.get(camera.clip)
    for (const s of this.#streams.values()) {
      if (s.cameraId !== id) continue
      if (clip) s.clip = clip
      s.step = stepOf(clip ?? s.clip, camera.fps)
      s.media = camera.fault !== 'no_media'
      if (camera.fault === 'offline') s.conn.socket.destroy()
    }
  }

  cameraOf(id: string): SimCamera | undefined {
    return this.#overrides.get(id) ?? this.#o.camera(id)
  }

  async start(): Promise<void> {
    const server = this.#o.tls ? createTlsServer({ key: this.#o.tls.key, cert: this.#o.tls.cert }, (socket) => this.#accept(socket)) : createServer((socket) => this.#accept(socket))
    // A client that fails the handshake is its own problem, not the simulator's.
    server.on('tlsClientError', () => undefined)
    // After listening, 'error' is an accept that failed (out of descriptors): the server goes on.
    const listenError = (e: Error): void => void e
    this.#server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.#o.port, this.#o.host, () => {
        server.off('error', reject)
        server.on('error', listenError)
        resolve()
      })
    })
    if (this.#o.transports.includes('udp') && !this.#o.tls) {
      const udp = createSocket('udp4')
      this.#udp = udp
      udp.on('error', () => undefined) // an ICMP unreachable from a client gone: its session times out
      await new Promise<void>((resolve) => udp.bind(0, this.#o.host, () => resolve()))
    }
    this.#ticker = setInterval(() => this.#tick(), this.#frameMs)
  }

  async stop(deadline: number): Promise<void> {
    clearInterval(this.#ticker)
    const server = this.#server
    for (const c of this.#connections) c.socket.destroy()
    this.#udp?.close()
    if (server) await Promise.race([new Promise<void>((r) => server.close(() => r())), new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref())])
  }

  stats(): ComponentStats {
    let playing = 0
    for (const s of this.#streams.values()) if (s.playing) playing++
    return { ...this.#counts, openConnections: this.#connections.size, streams: this.#streams.size, playing }
  }

  #accept(socket: Socket): void {
    socket.setNoDelay(true)
    this.#counts.connections++
    const conn: Connection = { socket, reader: new RtspReader(), streams: new Map() }
    this.#connections.add(conn)
    socket.on('error', () => undefined) // a client that went away: 'close' cleans up
    socket.on('close', () => {
      this.#connections.delete(conn)
      for (const id of conn.streams.keys()) this.#streams.delete(id)
    })
    socket.on('data', (chunk: Buffer) => {
      let messages
      try {
        messages = conn.reader.push(chunk)
      } catch (e) {
        if (!(e instanceof RtspProtocolError)) throw e
        this.#counts.badRequests++
        socket.end(`RTSP/1.0 400 Bad Request\r\nCSeq: 0\r\n\r\n`)
        return
      }
      for (const m of messages) if (m.kind === 'request') this.#request(conn, m)
      // Interleaved RTCP from the client and stray responses are read and let go.
    })
  }

  #request(conn: Connection, m: RtspServerRequest): void {
    this.#counts.requests++
    const cseq = header(m.headers, 'cseq') ?? '0'
    const path = pathOf(m.url)
    const id = path ? /^\/live\/([^/]+)/.exec(path)?.[1] : undefined
    const camera = id !== undefined ? this.cameraOf(id) : undefined
    const reply = (status: string, headers: Record<string, string> = {}, body?: string): void => {
      let text = `RTSP/1.0 ${status}\r\nCSeq: ${cseq}\r\nServer: citytwin-camera-sim\r\n`
      for (const [k, v] of Object.entries(headers)) text += `${k}: ${v}\r\n`
      if (body) text += `Content-Length: ${Buffer.byteLength(body)}\r\n`
      text += `\r\n${body ?? ''}`
      const send = (): void => void (conn.socket.writable && conn.socket.write(text))
      if (camera?.fault === 'slow') setTimeout(send, camera.slowMs ?? 2_000).unref()
      else send()
    }
    if (camera?.fault === 'offline') {
      conn.socket.destroy()
      return
    }
    if (camera?.fault === 'silent') return
    if (m.method === 'OPTIONS') return reply('200 OK', { Public: 'OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER' })
    if (!id || !camera || camera.fault === 'not_found') return reply('404 Not Found')
    if (camera.auth && !this.#authorized(camera.auth, m)) {
      this.#counts.authRefused++
      return reply('401 Unauthorized', { 'WWW-Authenticate': this.#challenge(camera.auth.scheme) })
    }
    const clip = this.#o.clips.get(camera.clip)
    if (!clip) return reply('500 Internal Server Error', {}, undefined)
    const base = `${this.#o.tls ? 'rtsps' : 'rtsp'}://${m.url.replace(/^rtsps?:\/\//i, '').split('/')[0]}/live/${id}/`
    switch (m.method) {
      case 'DESCRIBE':
        return reply('200 OK', { 'Content-Type': 'application/sdp', 'Content-Base': base }, sdpOf(id, clip, this.#o.host))
      case 'SETUP':
        return this.#setup(conn, m, id, camera, clip, reply)
      case 'PLAY': {
        const s = this.#streamOf(conn, m)
        if (!s) return reply('454 Session Not Found')
        s.playing = true
        s.lastSeen = Date.now()
        return reply('200 OK', { Session: s.id, Range: 'npt=0.000-', 'RTP-Info': `url=${base}trackID=0;seq=${s.rtp.sequence};rtptime=${s.rtp.timestamp >>> 0}` })
      }
      case 'TEARDOWN': {
        const s = this.#streamOf(conn, m)
        if (s) {
          conn.streams.delete(s.id)
          this.#streams.delete(s.id)
        }
        return reply('200 OK')
      }
      case 'GET_PARAMETER': {
        const s = this.#streamOf(conn, m)
        if (s) s.lastSeen = Date.now()
        return reply('200 OK', s ? { Session: s.id } : {})
      }
      default:
        return reply('501 Not Implemented')
    }
  }

  #setup(conn: Connection, m: RtspServerRequest, id: string, camera: SimCamera, clip: LoadedClip, reply: (status: string, headers?: Record<string, string>) => void): void {
    const transport = header(m.headers, 'transport') ?? ''
    const wantsTcp = /RTP\/AVP\/TCP/i.test(transport)
    const kind = wantsTcp ? 'tcp' : 'udp'
    if (!this.#o.transports.includes(kind) || (kind === 'udp' && !this.#udp)) return reply('461 Unsupported Transport')
    let t: Stream['transport']
    let answer: string
    const ssrc = randomInt(1, 0xffffffff)
    if (kind === 'tcp') {
      const channel = Number(/interleaved=(\d+)/i.exec(transport)?.[1] ?? 0)
      t = { kind: 'tcp', channel }
      answer = `RTP/AVP/TCP;unicast;interleaved=${channel}-${channel + 1};ssrc=${ssrc.toString(16).padStart(8, '0')}`
    } else {
      const ports = /client_port=(\d+)(?:-(\d+))?/i.exec(transport)
      // A port out of range would make every send throw: refused here, for that request only.
      if (!ports || !(Number(ports[1]) >= 1 && Number(ports[1]) <= 65_534)) return reply('461 Unsupported Transport')
      const host = conn.socket.remoteAddress ?? '127.0.0.1'
      t = { kind: 'udp', host: host.replace(/^::ffff:/, ''), port: Number(ports[1]) }
      const serverPort = this.#udp?.address().port ?? 0
      answer = `RTP/AVP;unicast;client_port=${ports[1]}-${ports[2] ?? Number(ports[1]) + 1};server_port=${serverPort}-${serverPort + 1};ssrc=${ssrc.toString(16).padStart(8, '0')}`
    }
    const sid = randomBytes(8).toString('hex')
    const s: Stream = {
      id: sid, cameraId: id, conn, clip, step: stepOf(clip, camera.fps), frame: 0, rtp: { ssrc, sequence: randomInt(0, 0x10000), timestamp: randomInt(0, 0x100000000) },
      transport: t, playing: false, media: camera.fault !== 'no_media', lastSeen: Date.now(),
    }
    conn.streams.set(sid, s)
    this.#streams.set(sid, s)
    reply('200 OK', { Transport: answer, Session: `${sid};timeout=${SESSION_TIMEOUT_S}` })
  }

  #streamOf(conn: Connection, m: RtspServerRequest): Stream | undefined {
    const sid = header(m.headers, 'session')?.split(';')[0]?.trim()
    return sid ? conn.streams.get(sid) : undefined
  }

  #authorized(auth: NonNullable<SimCamera['auth']>, m: RtspServerRequest): boolean {
    const given = header(m.headers, 'authorization')
    if (!given) return false
    if (auth.scheme === 'basic') return given === `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`
    const f = parseDigestAuthorization(given)
    const nonce = f?.get('nonce')
    const issued = nonce ? this.#nonces.get(nonce) : undefined
    if (!f || !nonce || issued === undefined || Date.now() - issued > NONCE_TTL_MS) return false
    if (f.get('username') !== auth.username || f.get('realm') !== REALM || f.get('uri') !== m.url) return false
    const nc = f.get('nc')
    const cnonce = f.get('cnonce')
    const qop = f.get('qop') === 'auth' && nc && cnonce ? { nc, cnonce } : undefined
    if (!qop) return false // this camera asks for qop=auth
    return f.get('response') === digestResponse({ algorithm: 'MD5', username: auth.username, password: auth.password, realm: REALM, nonce, method: m.method, uri: m.url, qop })
  }

  #challenge(scheme: 'basic' | 'digest'): string {
    if (scheme === 'basic') return `Basic realm="${REALM}"`
    const now = Date.now()
    for (const [n, at] of this.#nonces) if (now - at > NONCE_TTL_MS) this.#nonces.delete(n)
    const nonce = randomBytes(16).toString('hex')
    this.#nonces.set(nonce, now)
    return `Digest realm="${REALM}", nonce="${nonce}", qop="auth", algorithm=MD5`
  }

  /** Sends every playing stream its next frame; ends UDP streams not kept alive. */
  #tick(): void {
    const now = Date.now()
    const clockStep = Math.round(90_000 * (this.#frameMs / 1000))
    for (const s of this.#streams.values()) {
      if (!s.playing) continue
      if (s.transport.kind === 'udp' && now - s.lastSeen > SESSION_TIMEOUT_S * 1000) {
        s.conn.streams.delete(s.id)
        this.#streams.delete(s.id)
        continue
      }
      const frames = s.clip.frames
      const index = s.frame % frames.length
      s.frame++
      s.rtp.timestamp = (s.rtp.timestamp + clockStep) >>> 0
      if (!s.media || index % s.step !== 0) continue
      const frame = frames[index] as LoadedClip['frames'][number]
      if (s.transport.kind === 'tcp') {
        const socket = s.conn.socket
        if (socket.writableLength > this.#o.maxQueuedBytes) {
          this.#counts.framesSkipped++
          continue
        }
        const [packet] = framePackets(frame.payloads, PAYLOAD_TYPE, s.rtp, s.transport.channel)
        if (!packet) continue
        socket.write(packet)
        this.#counts.bytesSent += packet.length
      } else {
        try {
          for (const packet of framePackets(frame.payloads, PAYLOAD_TYPE, s.rtp, undefined)) {
            this.#udp?.send(packet, s.transport.port, s.transport.host)
            this.#counts.bytesSent += packet.length
          }
        } catch {
          // An address the socket will not send to: that stream ends, the others go on.
          s.conn.streams.delete(s.id)
          this.#streams.delete(s.id)
          continue
        }
      }
      this.#counts.framesSent++
      this.#counts.packetsSent += frame.payloads.length
    }
  }
}

function stepOf(clip: LoadedClip, fps: number | undefined): number {
  return fps && fps > 0 && fps < clip.fps ? Math.max(1, Math.round(clip.fps / fps)) : 1
}

function pathOf(url: string): string | undefined {
  if (url.startsWith('/')) return url
  try {
    return new URL(url).pathname
  } catch {
    return undefined
  }
}

function sdpOf(id: string, clip: LoadedClip, host: string): string {
  const sprop = `${clip.sps.toString('base64')},${clip.pps.toString('base64')}`
  return [
    'v=0', `o=- ${Date.now()} 1 IN IP4 ${host}`, `s=citytwin camera ${id}`, 'c=IN IP4 0.0.0.0', 't=0 0', 'a=control:*', 'a=range:npt=0-',
    `m=video 0 RTP/AVP ${PAYLOAD_TYPE}`, `a=rtpmap:${PAYLOAD_TYPE} H264/90000`,
    `a=fmtp:${PAYLOAD_TYPE} packetization-mode=1;profile-level-id=${profileLevelId(clip.sps)};sprop-parameter-sets=${sprop}`,
    `a=framerate:${clip.fps}`, 'a=control:trackID=0', '',
  ].join('\r\n')
}
