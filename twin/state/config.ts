import { z } from 'zod'
import { defineConfig } from '../../lib/config.ts'

export const twinConfig = defineConfig(
  'twin',
  z.strictObject({
    silentAfterIntervals: z.number().positive().default(3).describe('A connected device that has sent nothing for more than this many of its reporting intervals is "silent".'),
    maxLagMs: z.number().int().min(0).default(300_000).describe('Readings that reach the twin late (the gateway or the store behind) push back the time at which silence is judged, by their lag, up to this many milliseconds: a device whose readings are only queued is not called silent. 0: judge silence at the clock.'),
    degradedAfterMs: z.number().int().min(0).default(60_000).describe('Ingest is "degraded" while the data reaching the twin is this many milliseconds late or more (until it is under half that), or while a gateway refuses connections to keep its memory: the twin then judges no device silent, so no silence or area-outage tickets are raised from data that is only queued or refused, and one "ingest degraded" alarm is raised instead (GET /api/ingest, citytwin_ingest_degraded, the viewer\'s banner). 0: never degraded.'),
    checkpointIntervalMs: z.number().int().min(1_000).default(60_000).describe('How often the twin writes the devices that changed (their latest values and connectivity) and the bus positions it has applied to the store, in milliseconds. A restart reads that checkpoint and then what was stored after it: a longer interval writes less and reads more at start.'),
    sweepIntervalMs: z.number().int().min(100).default(1_000).describe('How often the twin looks for devices that have turned silent, in milliseconds.'),
  }),
)

export type TwinConfig = ReturnType<typeof twinConfig.schema.parse>
