// The shape every `citytwin` subcommand has. Each stage declares its own
// commands next to its code; app/main.ts lists them.
import { userInfo } from 'node:os'
import type { ParseArgsConfig } from 'node:util'

export type OptionSpec = NonNullable<ParseArgsConfig['options']>[string] & { description: string; valueName?: string }

export interface CommandContext {
  /** Parsed options of this command and the global ones. */
  values: Record<string, string | boolean | undefined>
  positionals: string[]
  /** The parsed config file (`--config` or CITYTWIN_CONFIG), `{}` when none. */
  configFile: Record<string, unknown>
  stdout: NodeJS.WritableStream
}

export interface Command {
  /** Words after `citytwin`, e.g. "city generate". */
  name: string
  summary: string
  /** Positional arguments, for the usage line, e.g. "<sql>". */
  args?: string
  options?: Record<string, OptionSpec>
  run(ctx: CommandContext): Promise<number | void>
}

export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  config: { type: 'string', description: 'JSON config file (also CITYTWIN_CONFIG)', valueName: 'file' },
  'data-dir': { type: 'string', description: 'embedded store directory (also CITYTWIN_DATA_DIR; default ./data)', valueName: 'dir' },
  help: { type: 'boolean', short: 'h', description: 'show help' },
}

/** Parses a numeric option, naming it in the error. */
export function numberOption(values: CommandContext['values'], name: string): number | undefined {
  const raw = values[name]
  if (raw === undefined || typeof raw === 'boolean') return undefined
  const n = Number(raw)
  if (raw.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${raw}"`)
  return n
}

export class UsageError extends Error {
  override name = 'UsageError'
}

/** Who runs the CLI, for the record: the login name, or the uid where the user has no passwd entry (a container). */
export function cliActor(): string {
  try {
    return `cli:${userInfo().username}`
  } catch {
    return `cli:${process.env.USER ?? `uid ${process.getuid?.() ?? '?'}`}`
  }
}
