// Operators' bearer tokens: who a given token names. A deployment may keep
// each token as itself or, better, only as its SHA-256 (`citytwin api-token
// new` prints both): a configuration file or environment that leaks then
// gives no working token. Comparisons take the same time whatever matches.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Caller } from './router.ts'

export interface TokenEntry {
  name: string
  role: Caller['role']
  /** The token itself. */
  token?: string | undefined
  /** Or only its SHA-256, 64 hexadecimal digits. */
  sha256?: string | undefined
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex')
}

/** A new token: 32 random bytes, base64url (43 characters). */
export function newToken(): string {
  return randomBytes(32).toString('base64url')
}

/** The caller `given` names among `entries`; undefined for none. Every entry is compared, in constant time each. */
export function callerOf(entries: readonly TokenEntry[], given: string): Caller | undefined {
  const plain = Buffer.from(given)
  const hashed = Buffer.from(hashToken(given), 'hex')
  let found: Caller | undefined
  for (const e of entries) {
    const known = e.sha256 !== undefined ? Buffer.from(e.sha256, 'hex') : Buffer.from(e.token ?? '')
    const against = e.sha256 !== undefined ? hashed : plain
    if (known.length === against.length && timingSafeEqual(known, against) && !found) found = { name: e.name, role: e.role }
  }
  return found
}
