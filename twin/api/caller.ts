// Who a request's bearer token names, with the guard against guessing:
// an address that sent too many unknown tokens this minute is answered 429
// before any token is compared (auth-throttle.ts). One per server that
// checks tokens; failures are told to `onFailure` (a metric in the main
// thread, a count posted from the API's thread).
import type { IncomingMessage } from 'node:http'
import { logger } from '../../lib/log.ts'
import { HttpError, type Caller } from '../../lib/http/router.ts'
import { callerOf, type TokenEntry } from '../../lib/http/tokens.ts'
import { AuthThrottle } from './auth-throttle.ts'

const log = logger('api')

export type AuthFailure = 'throttled' | 'unknown_token'

export class CallerCheck {
  readonly #tokens: readonly TokenEntry[]
  readonly #throttle: AuthThrottle
  readonly #onFailure: (outcome: AuthFailure) => void

  constructor(opts: { tokens: readonly TokenEntry[]; authFailuresPerMinute: number; onFailure: (outcome: AuthFailure) => void }) {
    this.#tokens = opts.tokens
    this.#throttle = new AuthThrottle(opts.authFailuresPerMinute, 60_000)
    this.#onFailure = opts.onFailure
  }

  /**
   * The caller the bearer token (Authorization header, or access_token in
   * the query) names; undefined without one; 401 for an unknown one, and
   * 429 for an address that sent too many unknown ones this minute.
   */
  callerOf(req: IncomingMessage, url: URL, address: string): Caller | undefined {
    const header = req.headers.authorization
    const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : (url.searchParams.get('access_token') ?? undefined)
    if (token === undefined) return undefined
    const now = Date.now()
    const wait = this.#throttle.blockedFor(address, now)
    if (wait > 0) {
      this.#onFailure('throttled')
      throw new HttpError(429, 'TOO_MANY_AUTH_FAILURES', `too many unknown tokens from ${address}; try again in ${Math.ceil(wait / 1000)} s`, { retryAfterS: Math.ceil(wait / 1000) })
    }
    const caller = callerOf(this.#tokens, token)
    if (caller) return caller
    this.#throttle.failed(address, now)
    this.#onFailure('unknown_token')
    log.warn({ address, route: url.pathname }, 'unknown bearer token')
    throw new HttpError(401, 'UNAUTHORIZED', 'unknown bearer token')
  }
}
