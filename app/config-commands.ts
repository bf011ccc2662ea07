// `citytwin config ...`: the generated reference, and a check of the effective values.
import type { z } from 'zod'
import { configReference, loadConfig, type ComponentConfig } from '../lib/config.ts'
import { storeConfig, writerConfig } from '../store/config.ts'
import { apiConfig } from '../twin/api/config.ts'
import { mqttConfig } from '../ingest/mqtt/config.ts'
import { rtspConfig } from '../ingest/rtsp/config.ts'
import { twinConfig } from '../twin/state/config.ts'
import { busConfig } from '../lib/bus/config.ts'
import { rulesConfig } from '../rules/config.ts'
import type { Command } from '../lib/command.ts'

/** Every component's config, in the order of the data flow. */
export const ALL_CONFIGS: readonly ComponentConfig<z.ZodObject>[] = [storeConfig, writerConfig, mqttConfig, rtspConfig, busConfig, twinConfig, apiConfig, rulesConfig]

export const configCommands: Command[] = [
  {
    name: 'config docs',
    summary: 'Print the configuration reference (Markdown), generated from the schemas',
    async run({ stdout }) {
      stdout.write(configReference(ALL_CONFIGS) + '\n')
    },
  },
  {
    name: 'config check',
    summary: 'Validate the configuration from file and environment and print the effective values',
    async run({ configFile, stdout }) {
      const effective = Object.fromEntries(ALL_CONFIGS.map((c) => [c.name, loadConfig(c, { file: configFile })]))
      stdout.write(JSON.stringify(redactSecrets(effective), null, 2) + '\n')
    },
  },
]

/** Settings whose values are secrets, by the name of their field: passwords, tokens, device secrets, API keys. */
const SECRET_FIELD = /(password|secret|token|apikeys?)$/i

/**
 * The configuration with every secret replaced by `***`, so it can be
 * printed, pasted into a ticket or logged. Whether a secret is set still
 * shows: an empty one stays empty.
 */
export function redactSecrets(value: unknown, field = ''): unknown {
  if (typeof value === 'string') return value !== '' && SECRET_FIELD.test(field) ? '***' : value
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v, field))
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactSecrets(v, k)]))
  return value
}
