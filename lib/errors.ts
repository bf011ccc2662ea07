// Errors are data: a stable code, a human reason, and whether a retry can help.
// Codes are part of the public interface (dead letters, logs, metrics labels),
// so they are listed here once and never renamed.

export const ERROR_CODES = {
  CONFIG_INVALID: { retryable: false, meaning: 'a configuration value failed validation' },
  CONFIG_FILE_UNREADABLE: { retryable: false, meaning: 'the configuration file could not be read or parsed' },
  CLI_USAGE: { retryable: false, meaning: 'the command line could not be understood' },
  STORE_UNAVAILABLE: { retryable: true, meaning: 'the store could not be reached' },
  STORE_LOCKED: { retryable: true, meaning: 'another process owns the embedded store and did not answer' },
  STORE_REJECTED: { retryable: false, meaning: 'the store refused a row or a statement' },
  STORE_MIGRATION_FAILED: { retryable: false, meaning: 'a schema migration failed' },
  STORE_MIGRATION_DRIFT: { retryable: false, meaning: 'an applied migration no longer matches the code' },
  QUEUE_CLOSED: { retryable: false, meaning: 'the queue was closed; nothing more is accepted' },
  QUEUE_FULL: { retryable: true, meaning: 'the queue is full; retry after it drains' },
  SHUTDOWN_TIMEOUT: { retryable: false, meaning: 'a component did not stop before the deadline' },
  OWNER_AUTH_DENIED: { retryable: false, meaning: 'the store owner refused the request token' },
  INTERNAL: { retryable: false, meaning: 'an unexpected internal error' },
} as const satisfies Record<string, { retryable: boolean; meaning: string }>

export type ErrorCode = keyof typeof ERROR_CODES

export class CitytwinError extends Error {
  readonly code: ErrorCode
  readonly retryable: boolean
  readonly details: Record<string, unknown>

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown>; retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'CitytwinError'
    this.code = code
    this.retryable = options.retryable ?? ERROR_CODES[code].retryable
    this.details = options.details ?? {}
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, retryable: this.retryable, ...this.details }
  }
}

export function isCitytwinError(e: unknown): e is CitytwinError {
  return e instanceof CitytwinError
}

/** The message of anything thrown, for logs and dead-letter reasons. */
export function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message
  return String(e)
}

/** Result type for pure code that reports failure as a value. */
export type Result<T, E = CitytwinError> = { ok: true; value: T } | { ok: false; error: E }
export const ok = <T>(value: T): Result<T, never> => ({ ok: true, value })
export const err = <E>(error: E): Result<never, E> => ({ ok: false, error })
