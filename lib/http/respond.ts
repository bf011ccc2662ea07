// Writing answers, the same way from every server of the API (the main
// thread's and the API thread's, twin/api/front): the security headers,
// CORS for the configured origins, a Reply as JSON or bytes, and an error
// written on a raw socket before a WebSocket upgrade.
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { messageOf } from '../errors.ts'
import { errorBody, type Reply } from './router.ts'

/**
 * Sent with every answer, the viewer's files included: no sniffing of
 * content types, no framing by other sites (clickjacking of the operators'
 * buttons), no referrer with tokens in it, a window of its own.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': "frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
}

export function setSecurityHeaders(res: ServerResponse): void {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v)
}

/**
 * CORS for the `allowed` origins: their pages may read and call this API
 * from a browser; a preflight is answered here (true: answered). Other
 * origins get no CORS headers (the browser then refuses the answer to the
 * page).
 */
export function cors(req: IncomingMessage, res: ServerResponse, allowed: readonly string[]): boolean {
  const origin = req.headers.origin
  if (origin === undefined || allowed.length === 0) return false
  const any = allowed.includes('*')
  if (!any && !allowed.includes(origin)) return false
  res.setHeader('access-control-allow-origin', any ? '*' : origin)
  res.setHeader('vary', 'origin')
  if (req.method !== 'OPTIONS') return false
  res.writeHead(204, {
    'access-control-allow-methods': 'GET, HEAD, POST',
    'access-control-allow-headers': 'authorization, content-type',
    'access-control-max-age': '600',
  }).end()
  return true
}

/** Writes a Reply: JSON unless it is a string or bytes. */
export function send(res: ServerResponse, out: Reply): void {
  const text = typeof out.body === 'string' || Buffer.isBuffer(out.body) ? out.body : JSON.stringify(out.body)
  res.writeHead(out.status, {
    'content-type': out.contentType ?? 'application/json; charset=utf-8', 'cache-control': 'no-store',
    ...(out.retryAfterS === undefined ? {} : { 'retry-after': String(out.retryAfterS) }),
  }).end(text)
}

/** The answer a route would give to `e`, written on a raw socket (there is no response object before an upgrade). */
export function refuseUpgrade(socket: Duplex, e: unknown): void {
  const out = errorBody(e)
  const retry = out.retryAfterS === undefined ? '' : `retry-after: ${out.retryAfterS}\r\n`
  socket.end(`HTTP/1.1 ${out.status} ${STATUS_CODES[out.status] ?? ''}\r\ncontent-type: text/plain\r\n${retry}\r\n${messageOf(e)}\n`)
}
