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

/**
 * Whether `given` is the secret whose SHA-256 is `knownSha256` (hex). Digests
 * are compared, so secrets of any length and characters compare in constant
 * time. Shared by API tokens and Open311 api_keys.
 */
export function secretMatches(given: string, knownSha256: string): boolean {
  return timingSafeEqual(Buffer.from(hashToken(given), 'hex'), Buffer.from(knownSha256, 'hex'))
}

/** The caller `given` names among `entries`; undefined for none. Every entry is compared, in constant time each. */
export function callerOf(entries: readonly TokenEntry[], given: string): Caller | undefined {
  let found: Caller | undefined
  for (const e of entries) {
    if (secretMatches(given, e.sha256 ?? hashToken(e.token ?? '')) && !found) found = { name: e.name, role: e.role }
  }
  return found
}
