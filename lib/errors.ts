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
  AUTH_DENIED: { retryable: false, meaning: 'unknown device, wrong token or anonymous connection' },
  DEVICE_NOT_FOUND: { retryable: false, meaning: 'no device of that id in the city' },
  CAMERA_NOT_FOUND: { retryable: false, meaning: 'no camera of that id in the city' },
  DEVICE_EXISTS: { retryable: false, meaning: 'a device of that id is in the registry already' },
  CAMERA_EXISTS: { retryable: false, meaning: 'a camera of that id is in the registry already' },
  CITY_IMPORT_INVALID: { retryable: false, meaning: 'the city files given to citytwin city import have errors; nothing was imported' },
  CITY_IN_USE: { retryable: true, meaning: 'the city cannot be replaced while citytwin runs on this store' },
  CITY_IMPORTED: { retryable: false, meaning: 'the store holds an imported city, which citytwin start does not replace with a generated one' },
  OVERLOADED: { retryable: true, meaning: 'the process is near its memory limit and refuses new work; retry later' },
  ACL_DENIED: { retryable: false, meaning: 'a device published or subscribed outside its own topics' },
  INGEST_TOPIC_TOO_LONG: { retryable: false, meaning: 'the topic is longer than the gateway accepts' },
  INGEST_PAYLOAD_TOO_LARGE: { retryable: false, meaning: 'the payload is larger than the gateway accepts' },
  INGEST_BAD_JSON: { retryable: false, meaning: 'the payload is not valid JSON' },
  INGEST_BAD_TYPE: { retryable: false, meaning: 'a field of the payload has the wrong type or shape' },
  INGEST_UNKNOWN_METRIC: { retryable: false, meaning: 'the metric is not one the device type sends' },
  INGEST_OUT_OF_RANGE: { retryable: false, meaning: 'the value is outside the physical range of its metric' },
  INGEST_TS_FUTURE: { retryable: false, meaning: 'the timestamp is too far in the future' },
  INGEST_TS_PAST: { retryable: false, meaning: 'the timestamp is too far in the past' },
  INGEST_SEQ_MISSING: { retryable: false, meaning: 'the message has no sequence number' },
  INGEST_SEQ_DUPLICATE: { retryable: false, meaning: 'the sequence number was already used by another message' },
  INGEST_SEQ_REGRESSED: { retryable: false, meaning: 'the sequence number went backwards' },
  INGEST_RATE_LIMITED: { retryable: true, meaning: 'the device sends faster than its rate limit' },
  RULES_BAD_FILE: { retryable: false, meaning: 'a rule file failed validation; the rules that ran before stay in force' },
  RULES_BAD_CATALOGUE: { retryable: false, meaning: 'the dispatch catalogue could not be read or failed validation' },
  FFMPEG_MISSING: { retryable: false, meaning: 'ffmpeg was not found: install the Debian package ffmpeg, or set FFMPEG_PATH' },
  FFMPEG_FAILED: { retryable: true, meaning: 'an ffmpeg run ended with an error' },
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

/** A validation issue's path as people write it: rules[2].values.level_cm. */
export function issuePath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((s, k) => (typeof k === 'number' ? `${s}[${k}]` : s === '' ? String(k) : `${s}.${String(k)}`), '')
}
