import { z } from 'zod'
import { defineConfig } from '../../lib/config.ts'

export const twinConfig = defineConfig(
  'twin',
  z.strictObject({
    silentAfterIntervals: z.number().positive().default(3).describe('A connected device that has sent nothing for more than this many of its reporting intervals is "silent".'),
    maxLagMs: z.number().int().min(0).default(300_000).describe('Readings that reach the twin late (the gateway or the store behind) push back the time at which silence is judged, by their lag, up to this many milliseconds: a device whose readings are only queued is not called silent. 0: judge silence at the clock.'),
    sweepIntervalMs: z.number().int().min(100).default(1_000).describe('How often the twin looks for devices that have turned silent, in milliseconds.'),
  }),
)

export type TwinConfig = ReturnType<typeof twinConfig.schema.parse>
