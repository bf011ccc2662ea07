// How the store writer reads a failed INSERT: a transient failure is retried,
// a row the engine cannot parse is isolated and dead-lettered, anything else
// (a schema mistake, a missing table) fails the batch loudly.

/** ClickHouse error types that mean "try again later". */
const TRANSIENT_TYPES = new Set([
  'TIMEOUT_EXCEEDED', 'TOO_MANY_SIMULTANEOUS_QUERIES', 'SOCKET_TIMEOUT', 'NETWORK_ERROR', 'MEMORY_LIMIT_EXCEEDED',
  'TOO_MANY_PARTS', 'TABLE_IS_READ_ONLY', 'UNKNOWN_STATUS_OF_INSERT', 'KEEPER_EXCEPTION', 'ALL_CONNECTION_TRIES_FAILED',
  'NO_FREE_CONNECTION', 'ABORTED', 'QUERY_WAS_CANCELLED', 'SERVER_OVERLOADED', 'CANNOT_SCHEDULE_TASK', 'TABLE_IS_DROPPED',
])

/** ClickHouse error types that blame the data of a row, not the statement. */
const ROW_TYPES = new Set([
  'CANNOT_PARSE_TEXT', 'CANNOT_PARSE_QUOTED_STRING', 'CANNOT_PARSE_INPUT_ASSERTION_FAILED', 'ATTEMPT_TO_READ_AFTER_EOF',
  'CANNOT_PARSE_DATE', 'CANNOT_PARSE_DATETIME', 'TYPE_MISMATCH', 'ARGUMENT_OUT_OF_BOUND', 'CANNOT_CONVERT_TYPE',
  'CANNOT_PARSE_NUMBER', 'INCORRECT_DATA', 'CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN', 'VIOLATED_CONSTRAINT',
  'UNKNOWN_ELEMENT_OF_ENUM', 'TOO_LARGE_STRING_SIZE', 'CANNOT_READ_ARRAY_FROM_TEXT', 'CANNOT_PARSE_UUID', 'CANNOT_PARSE_IPV4',
  'CANNOT_PARSE_IPV6', 'CANNOT_PARSE_BOOL', 'VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE', 'DECIMAL_OVERFLOW', 'INCORRECT_NUMBER_OF_COLUMNS',
  'CANNOT_READ_ALL_DATA', 'SIZES_OF_ARRAYS_DONT_MATCH', 'ILLEGAL_COLUMN', 'CANNOT_PARSE_ESCAPE_SEQUENCE', 'UNEXPECTED_END_OF_FILE',
])

const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_SOCKET'])

export type InsertFailure = 'transient' | 'row' | 'fatal'

export function classifyInsertError(e: unknown): InsertFailure {
  const type = (e as { type?: unknown }).type
  if (typeof type === 'string') {
    if (TRANSIENT_TYPES.has(type)) return 'transient'
    if (ROW_TYPES.has(type) || type.startsWith('CANNOT_PARSE')) return 'row'
    return 'fatal'
  }
  // No ClickHouse error type: retry only what looks like the network (the
  // request was refused, reset or timed out, or the owner process went
  // away); anything else is a bug that retrying would only hide.
  const code = (e as { code?: unknown }).code
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return 'transient'
  const message = e instanceof Error ? e.message : String(e)
  return /socket hang up|timeout|timed out|ECONN|EPIPE|EHOSTUNREACH|ENETUNREACH|other side closed/i.test(message) ? 'transient' : 'fatal'
}
