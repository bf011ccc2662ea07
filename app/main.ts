// `citytwin`: one CLI, a subcommand per task. Commands live beside the code
// they drive and are listed here.
import { parseArgs } from 'node:util'
import { CitytwinError, isCitytwinError, messageOf } from '../lib/errors.ts'
import { readConfigFile } from '../lib/config.ts'
import { rootLogger } from '../lib/log.ts'
import { GLOBAL_OPTIONS, UsageError, type Command, type OptionSpec } from '../lib/command.ts'
import { cityCommands } from '../simulators/city/cli.ts'
import { storeCommands } from '../store/cli.ts'
import { registryCommands } from '../registry/cli.ts'
import { configCommands } from './config-commands.ts'
import { startCommand } from './start.ts'
import { mqttCommands } from '../ingest/mqtt/cli.ts'
import { simCommands } from '../simulators/devices/cli.ts'
import { scenarioCommand } from '../simulators/scenarios/cli.ts'
import { ticketCommands } from '../rules/cli.ts'
import { apiCommands } from '../twin/api/cli.ts'
import { cameraCommands } from '../ingest/rtsp/cli.ts'
import { cameraSimCommands } from '../simulators/cameras/cli.ts'

export const COMMANDS: readonly Command[] = [startCommand, ...mqttCommands, ...cameraCommands, ...cityCommands, ...registryCommands, ...simCommands, ...cameraSimCommands, scenarioCommand, ...ticketCommands, ...apiCommands, ...storeCommands, ...configCommands]

function optionLines(options: Record<string, OptionSpec>): string[] {
  return Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` <${o.valueName ?? 'value'}>` : ''}`
    return `  ${flag.padEnd(30)} ${o.description}`
  })
}

export function helpText(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2
  return [
    'citytwin: IoT and video ingestion and the digital twin for handling city problems before anyone complains (未诉先办).',
    '',
    'Usage: citytwin <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)} ${c.summary}`),
    '',
    'Global options:',
    ...optionLines(GLOBAL_OPTIONS),
    '',
    'Run `citytwin <command> --help` for the options of a command.',
  ].join('\n')
}

function commandHelp(c: Command): string {
  return [`Usage: citytwin ${c.name}${c.options ? ' [options]' : ''}${c.args ? ` ${c.args}` : ''}`, '', c.summary, '',
    'Options:', ...optionLines({ ...c.options, ...GLOBAL_OPTIONS })].join('\n')
}

/** Finds the longest command name that prefixes argv. */
function findCommand(argv: string[]): { command: Command; rest: string[] } | undefined {
  let best: { command: Command; rest: string[] } | undefined
  for (const c of COMMANDS) {
    const words = c.name.split(' ')
    if (words.every((w, i) => argv[i] === w) && (!best || words.length > best.command.name.split(' ').length)) {
      best = { command: c, rest: argv.slice(words.length) }
    }
  }
  return best
}

export async function main(argv: string[], stdout: NodeJS.WritableStream = process.stdout): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    stdout.write(helpText() + '\n')
    return argv.length === 0 ? 1 : 0
  }
  const found = findCommand(argv)
  if (!found) {
    process.stderr.write(`citytwin: unknown command "${argv.join(' ')}"\n\n${helpText()}\n`)
    return 2
  }
  const { command, rest } = found
  try {
    const { values, positionals } = parseArgs({ args: rest, options: { ...GLOBAL_OPTIONS, ...command.options }, allowPositionals: true, strict: true })
    if (values.help) {
      stdout.write(commandHelp(command) + '\n')
      return 0
    }
    if (typeof values['data-dir'] === 'string') process.env.CITYTWIN_DATA_DIR = values['data-dir']
    const configFile = readConfigFile(typeof values.config === 'string' ? values.config : undefined)
    const code = await command.run({ values: values as Record<string, string | boolean | undefined>, positionals, configFile, stdout })
    return code ?? 0
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`citytwin ${command.name}: ${messageOf(e)}\n\n${commandHelp(command)}\n`)
      return 2
    }
    if (isCitytwinError(e)) {
      process.stderr.write(`citytwin ${command.name}: ${e.code}: ${e.message}\n`)
      return e.code === 'CONFIG_INVALID' || e.code === 'CONFIG_FILE_UNREADABLE' ? 78 : 1
    }
    rootLogger.error({ err: e }, 'command failed')
    const wrapped = new CitytwinError('INTERNAL', messageOf(e), { cause: e })
    process.stderr.write(`citytwin ${command.name}: ${wrapped.code}: ${wrapped.message}\n`)
    return 1
  }
}
