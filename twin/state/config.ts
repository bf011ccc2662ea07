import { z } from 'zod'
import { defineConfig } from '../../lib/config.ts'

export const twinConfig = defineConfig(
  'twin',
  z.strictObject({
    silentAfterIntervals: z.number().positive().default(3).describe('A connected device that has sent nothing for more than this many of its reporting intervals is "silent".'),
    sweepIntervalMs: z.number().int().min(100).default(1_000).describe('How often the twin looks for devices that have turned silent, in milliseconds.'),
  }),
)

export type TwinConfig = ReturnType<typeof twinConfig.schema.parse>
