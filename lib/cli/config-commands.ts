// `citytwin config ...`: the generated reference, and a check of the effective values.
import type { z } from 'zod'
import { configReference, loadConfig, type ComponentConfig } from '../config.ts'
import { storeConfig, writerConfig } from '../../twin/store/config.ts'
import { apiConfig } from '../../twin/api/config.ts'
import { mqttConfig } from '../../ingest/mqtt/config.ts'
import { twinConfig } from '../../twin/state/config.ts'
import { busConfig } from '../bus/config.ts'
import { rulesConfig } from '../../rules/config.ts'
import type { Command } from './command.ts'

/** Every component's config, in the order of the data flow. */
export const ALL_CONFIGS: readonly ComponentConfig<z.ZodObject>[] = [storeConfig, writerConfig, mqttConfig, busConfig, twinConfig, apiConfig, rulesConfig]

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
      for (const c of ALL_CONFIGS) {
        const v = effective[c.name] as Record<string, unknown>
        if (typeof v.password === 'string' && v.password) v.password = '***'
        if (typeof v.deviceSecret === 'string' && v.deviceSecret) v.deviceSecret = '***'
      }
      stdout.write(JSON.stringify(effective, null, 2) + '\n')
    },
  },
]
