// Camera credentials on RTSP: Basic and Digest (RFC 2617, with the SHA-256
// of RFC 7616), as IP cameras and NVRs ask for them. A camera answers 401
// with one WWW-Authenticate header per scheme it takes; Digest is used when
// offered, since Basic sends the password in clear over plain RTSP. Pure:
// the client keeps the nonce count and supplies the cnonce.
import { createHash } from 'node:crypto'

export interface Credentials {
  username: string
  password: string
}

export interface DigestChallenge {
  scheme: 'digest'
  realm: string
  nonce: string
  opaque?: string
  /** 'MD5' (the default) or 'SHA-256'; the "-sess" variants are not supported. */
  algorithm: 'MD5' | 'SHA-256'
  /** Whether the server asks for qop=auth (a cnonce and a nonce count in every request). */
  qopAuth: boolean
  stale: boolean
}

export interface BasicChallenge {
  scheme: 'basic'
  realm: string
}

export type Challenge = DigestChallenge | BasicChallenge

/** Why a challenge cannot be answered, for the probe's failure. */
export class UnsupportedAuthError extends Error {
  override name = 'UnsupportedAuthError'
}

/** The parameters of a challenge: key=value or key="quoted value", comma-separated. */
function params(text: string): Map<string, string> {
  const out = new Map<string, string>()
  const re = /\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?/gy
  let m: RegExpExecArray | null
  while ((m = re.exec(text)) !== null) {
    out.set((m[1] as string).toLowerCase(), m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? ''))
    if (re.lastIndex >= text.length) break
  }
  return out
}

/**
 * The challenges in WWW-Authenticate values, the one to use first: Digest
 * before Basic. Throws UnsupportedAuthError when nothing offered can be
 * answered (another scheme, another Digest algorithm, qop other than auth).
 */
export function pickChallenge(values: readonly string[]): Challenge {
  const problems: string[] = []
  let basic: BasicChallenge | undefined
  for (const value of values) {
    const space = value.indexOf(' ')
    const scheme = (space < 0 ? value : value.slice(0, space)).toLowerCase()
    const p = params(space < 0 ? '' : value.slice(space + 1))
    if (scheme === 'digest') {
      const algorithm = (p.get('algorithm') ?? 'MD5').toUpperCase()
      const qops = p.has('qop') ? (p.get('qop') as string).split(',').map((q) => q.trim().toLowerCase()) : []
      const nonce = p.get('nonce')
      if (!nonce) problems.push('Digest without a nonce')
      else if (algorithm !== 'MD5' && algorithm !== 'SHA-256') problems.push(`Digest with algorithm ${algorithm}`)
      else if (qops.length > 0 && !qops.includes('auth')) problems.push(`Digest with qop ${qops.join(',')}`)
      else {
        const opaque = p.get('opaque')
        return { scheme: 'digest', realm: p.get('realm') ?? '', nonce, ...(opaque !== undefined ? { opaque } : {}), algorithm, qopAuth: qops.includes('auth'), stale: p.get('stale')?.toLowerCase() === 'true' }
      }
    } else if (scheme === 'basic') {
      basic = { scheme: 'basic', realm: p.get('realm') ?? '' }
    } else {
      problems.push(`the ${scheme || '(empty)'} scheme`)
    }
  }
  if (basic) return basic
  throw new UnsupportedAuthError(values.length === 0 ? 'the camera answered 401 without a WWW-Authenticate header' : `no authentication the client can answer: ${problems.join('; ')}`)
}

function hash(algorithm: DigestChallenge['algorithm'], text: string): string {
  return createHash(algorithm === 'MD5' ? 'md5' : 'sha256').update(text, 'utf8').digest('hex')
}

/** The Digest `response` value (RFC 2617 §3.2.2.1); the simulator checks requests with it too. */
export function digestResponse(o: { algorithm: DigestChallenge['algorithm']; username: string; password: string; realm: string; nonce: string; method: string; uri: string; qop?: { nc: string; cnonce: string } }): string {
  const ha1 = hash(o.algorithm, `${o.username}:${o.realm}:${o.password}`)
  const ha2 = hash(o.algorithm, `${o.method}:${o.uri}`)
  return o.qop ? hash(o.algorithm, `${ha1}:${o.nonce}:${o.qop.nc}:${o.qop.cnonce}:auth:${ha2}`) : hash(o.algorithm, `${ha1}:${o.nonce}:${ha2}`)
}

const quote = (s: string): string => `"${s.replace(/["\\]/g, '\\$&')}"`

/**
 * The Authorization header for one request. `nc` is the count of requests
 * made with this nonce so far, this one included; `cnonce` a fresh random
 * string (both used only when the challenge asks for qop=auth).
 */
export function authorization(c: Challenge, creds: Credentials, method: string, uri: string, nc: number, cnonce: string): string {
  if (c.scheme === 'basic') return `Basic ${Buffer.from(`${creds.username}:${creds.password}`, 'utf8').toString('base64')}`
  const qop = c.qopAuth ? { nc: nc.toString(16).padStart(8, '0'), cnonce } : undefined
  const response = digestResponse({ algorithm: c.algorithm, username: creds.username, password: creds.password, realm: c.realm, nonce: c.nonce, method, uri, ...(qop ? { qop } : {}) })
  const parts = [`username=${quote(creds.username)}`, `realm=${quote(c.realm)}`, `nonce=${quote(c.nonce)}`, `uri=${quote(uri)}`, `response=${quote(response)}`]
  if (c.algorithm !== 'MD5') parts.push(`algorithm=${c.algorithm}`)
  if (c.opaque !== undefined) parts.push(`opaque=${quote(c.opaque)}`)
  if (qop) parts.push('qop=auth', `nc=${qop.nc}`, `cnonce=${quote(qop.cnonce)}`)
  return `Digest ${parts.join(', ')}`
}

/** The fields of a Digest Authorization header, for a server checking one (the camera simulator). */
export function parseDigestAuthorization(value: string): Map<string, string> | undefined {
  const space = value.indexOf(' ')
  if (space < 0 || value.slice(0, space).toLowerCase() !== 'digest') return undefined
  return params(value.slice(space + 1))
}
