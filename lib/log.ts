// Structured logs: one JSON event per line (pino), the error as a field.
// Components take a child logger named after themselves so every line says
// where it came from.
import { pino, type Logger } from 'pino'

export type { Logger }

const level = process.env.CITYTWIN_LOG_LEVEL ?? process.env.LOG_LEVEL ?? 'info'

/** The process-wide root logger. Logs go to stderr so stdout stays free for command output. */
export const rootLogger: Logger = pino(
  { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
  pino.destination({ fd: 2, sync: false }),
)

export function logger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return rootLogger.child({ component, ...bindings })
}
