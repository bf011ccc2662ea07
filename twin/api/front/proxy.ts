// Passing a request the API's thread does not answer to the main thread's
// server (a Unix socket), and its answer back, streamed both ways; and a
// WebSocket upgrade (the live feed), after which the two sockets are joined.
// The client's own copies of the trusted headers are dropped, and the
// thread's put in their place: the main thread believes them because only
// this thread can reach its socket.
import { Agent, request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect } from 'node:net'
import type { Duplex } from 'node:stream'
import { send } from '../../../lib/http/respond.ts'
import type { Caller } from '../../../lib/http/router.ts'
import { logger } from '../../../lib/log.ts'
import { CALLER_HEADER, encodeCaller, PEER_HEADER } from './protocol.ts'

const log = logger('api-front')

/** Per connection, not per message: hop-by-hop headers (RFC 9110 7.6.1) are not passed on. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-authorization'])

/** The headers to pass on: the client's, less hop-by-hop and trusted ones, plus the caller and the address. */
export function passedHeaders(headers: IncomingHttpHeaders, caller: Caller | undefined, address: string, keepUpgrade = false): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || k === CALLER_HEADER || k === PEER_HEADER) continue
    if (HOP_BY_HOP.has(k) && !(keepUpgrade && (k === 'upgrade' || k === 'connection'))) continue
    out[k] = v
  }
  out[PEER_HEADER] = address
  if (caller) out[CALLER_HEADER] = encodeCaller(caller)
  return out
}

export class Backend {
  readonly #socketPath: string
  // Kept-alive connections to the main thread: a request does not pay for a connect.
  readonly #agent = new Agent({ keepAlive: true, maxFreeSockets: 64 })
  /** Live connections joined to the main thread's: the server's close does not end them. */
  readonly #joined = new Set<Duplex>()

  constructor(socketPath: string) {
    this.#socketPath = socketPath
  }

  /** Passes the request on and streams the answer back; 503 when the main thread cannot be reached. */
  forward(req: IncomingMessage, res: ServerResponse, caller: Caller | undefined, address: string): void {
    const out = request({ socketPath: this.#socketPath, agent: this.#agent, method: req.method, path: req.url, headers: passedHeaders(req.headers, caller, address) }, (answer) => {
      const headers: Record<string, string | string[]> = {}
      for (const [k, v] of Object.entries(answer.headers)) if (v !== undefined && !HOP_BY_HOP.has(k) && k !== 'transfer-encoding') headers[k] = v
      res.writeHead(answer.statusCode ?? 502, headers)
      answer.pipe(res)
      answer.on('error', () => res.destroy())
    })
    out.on('error', (e) => {
      if (res.headersSent) {
        res.destroy()
        return
      }
      log.warn({ err: e.message, route: req.url?.slice(0, 200) }, 'the main thread could not be reached for a request')
      send(res, { status: 503, body: { error: { code: 'UNAVAILABLE', message: `the API's main thread could not be reached: ${e.message}` } }, retryAfterS: 1 })
    })
    // A client gone before its answer: the main thread's work for it is cut off too.
    res.on('close', () => {
      if (!res.writableFinished) out.destroy()
    })
    req.pipe(out)
  }

  /** Passes a WebSocket upgrade on, then joins the client's socket to the main thread's. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, caller: Caller | undefined, address: string): void {
    const conn = connect(this.#socketPath)
    const cut = (): void => {
      socket.destroy()
      conn.destroy()
    }
    conn.on('error', (e) => {
      log.warn({ err: e.message }, 'the main thread could not be reached for a live connection')
      if (!socket.destroyed) socket.end('HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nretry-after: 1\r\n\r\nthe API\'s main thread could not be reached\n')
      conn.destroy()
    })
    socket.on('error', cut)
    conn.once('connect', () => {
      const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1`]
      for (const [k, v] of Object.entries(passedHeaders(req.headers, caller, address, true))) {
        for (const one of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${one.replace(/[\r\n]/g, '')}`)
      }
      conn.write(`${lines.join('\r\n')}\r\n\r\n`)
      if (head.length > 0) conn.write(head)
      socket.pipe(conn)
      conn.pipe(socket)
      this.#joined.add(socket)
      conn.on('close', () => socket.destroy())
      socket.on('close', () => {
        this.#joined.delete(socket)
        conn.destroy()
      })
    })
  }

  /** Ends the live connections (a server's close waits for them, though they are its no more). */
  endLive(): void {
    for (const s of this.#joined) s.destroy()
  }

  /** Ends the kept-alive connections, and any request still on one. */
  close(): void {
    this.endLive()
    this.#agent.destroy()
  }
}
