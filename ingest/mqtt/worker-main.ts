// The entry of a gateway worker process: `citytwin gateway mqtt` alone,
// bundled into one plain JavaScript file by worker-bundle.ts. A worker
// started through the CLI ran every source through tsx's loader, which in
// Node 20 lives in a thread with a V8 heap of its own: 35 MB more per
// worker (110 MB against 75), thirteen times over for the full city, and a
// `__name` call on every closure it creates. The words `gateway mqtt` stay
// first on its command line, so `ps` shows what it is.
import { parseArgs } from 'node:util'
import { GLOBAL_OPTIONS } from '../../lib/command.ts'
import { readConfigFile } from '../../lib/config.ts'
import { messageOf } from '../../lib/errors.ts'
import { mqttCommands } from './cli.ts'

const command = mqttCommands.find((c) => c.name === 'gateway mqtt')
const argv = process.argv.slice(2)
const rest = argv[0] === 'gateway' && argv[1] === 'mqtt' ? argv.slice(2) : argv
try {
  if (!command) throw new Error('the gateway mqtt command is missing from this build')
  const { values, positionals } = parseArgs({ args: rest, options: { ...GLOBAL_OPTIONS, ...command.options }, allowPositionals: true, strict: true })
  if (typeof values['data-dir'] === 'string') process.env.CITYTWIN_DATA_DIR = values['data-dir']
  const configFile = readConfigFile(typeof values.config === 'string' ? values.config : undefined)
  process.exitCode = (await command.run({ values: values as Record<string, string | boolean | undefined>, positionals, configFile, stdout: process.stdout })) ?? 0
} catch (e) {
  process.stderr.write(`citytwin gateway worker: ${messageOf(e)}\n`)
  process.exitCode = 1
}
