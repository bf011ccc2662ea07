// `citytwin city generate`: build the synthetic city. Import, export and
// stats of any city are the registry's (registry/cli.ts).
import type { Command } from '../../lib/command.ts'
import { numberOption, UsageError } from '../../lib/command.ts'
import { logger } from '../../lib/log.ts'
import { withStore } from '../../store/index.ts'
import { countByLevel, generateCity } from './generate.ts'
import { refuseWhileCityHeld, writeCity } from '../../registry/city-store.ts'

const log = logger('city')

export const cityCommands: Command[] = [
  {
    name: 'city generate',
    summary: 'Generate the synthetic city (grids, devices, cameras) for a seed and write it to the store',
    options: {
      seed: { type: 'string', description: 'random seed; the same seed always gives the same city (default 1)', valueName: 'n' },
      scale: { type: 'string', description: 'size relative to the full city, in (0, 1]; 0.01 for a small city (default 1)', valueName: 's' },
    },
    async run({ values, configFile, stdout }) {
      const seed = numberOption(values, 'seed') ?? 1
      const scale = numberOption(values, 'scale') ?? 1
      if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new UsageError('--seed must be an integer from 0 to 4294967295')
      if (!(scale > 0 && scale <= 1)) throw new UsageError('--scale must be greater than 0 and at most 1')
      return withStore({ file: configFile }, async ({ store, writerCfg }) => {
        // Before the work: a full city takes a while to generate.
        refuseWhileCityHeld(store, 'generate the city')
        const t0 = performance.now()
        const city = generateCity({ seed, scale })
        const genMs = performance.now() - t0
        await writeCity(store.client, city, writerCfg)
        const totalMs = performance.now() - t0
        const levels = countByLevel(city.grids)
        log.info({ seed, scale, generateMs: Math.round(genMs), totalMs: Math.round(totalMs) }, 'city generated')
        stdout.write(`city seed ${seed}, scale ${scale}: generated in ${(genMs / 1000).toFixed(1)} s, written in ${((totalMs - genMs) / 1000).toFixed(1)} s (${store.mode} store)\n`)
        stdout.write(`  districts ${levels.district}, streets ${levels.street}\n`)
        stdout.write(`  community grids ${levels.community}, micro-grids ${levels.micro}, special grids ${levels.special}\n`)
        stdout.write(`  devices ${city.devices.length}, cameras ${city.cameras.length}\n`)
      })
    },
  },
]
