import { z } from 'zod'
import { defineConfig } from '../../lib/config.ts'

export const twinConfig = defineConfig(
  'twin',
  z.strictObject({
    silentAfterIntervals: z.number().positive().default(3).describe('A connected device that has sent nothing for more than this many of its reporting intervals is "silent".'),
    maxLagMs: z.number().int().min(0).default(300_000).describe('Readings that reach the twin late (the gateway or the store behind) push back the time at which silence is judged, by their lag, up to this many milliseconds: a device whose readings are only queued is not called silent. 0: judge silence at the clock.'),
    degradedAfterMs: z.number().int().min(0).default(60_000).describe('Ingest is "degraded" while the data reaching the twin is this many milliseconds late or more (until it is under half that), or while a gateway refuses connections to keep its memory: the twin then judges no device silent, so no silence or area-outage tickets are raised from data that is only queued or refused, and one "ingest degraded" alarm is raised instead (GET /api/ingest, citytwin_ingest_degraded, the viewer\'s banner). 0: never degraded.'),
    degradedSilentPercent: z.number().min(0).max(100).default(10).describe('Ingest is also "degraded" while this share (percent) of the devices heard from lately is overdue at once (until under half of it): data waiting where no queue of the system sees it (in the devices, their QoS 1 window full; in a starved load generator; on the network) looks like silence, and a tenth of the city going quiet within minutes is the system or the network, not the devices. An area\'s power cut is far smaller; a whole district is about 6% of the city. 0: not a cause.'),
    degradedSilentMin: z.number().int().min(1).default(200).describe('The fewest overdue devices that make ingest degraded by their share, whatever it is: in a small fleet a few silent devices are devices.'),
    degradedSilentWindowMs: z.number().int().min(1_000).default(600_000).describe('"Heard from lately": a silent device counts toward that share for this many milliseconds after its silence began; one silent for longer is a device to see to, and no longer holds ingest degraded.'),
    checkpointIntervalMs: z.number().int().min(1_000).default(60_000).describe('How often the twin writes the devices that changed (their latest values and connectivity) and the bus positions it has applied to the store, in milliseconds. A restart reads that checkpoint and then what was stored after it: a longer interval writes less and reads more at start.'),
    sweepIntervalMs: z.number().int().min(100).default(1_000).describe('How often the twin looks for devices that have turned silent, in milliseconds.'),
    registryRefreshMs: z.number().int().min(100).default(15_000).describe('How often the twin looks for devices and cameras provisioned since it loaded (citytwin devices add, cameras move, ...), in milliseconds; when there are, it rebuilds from the store (about 6 s for the full city, holding its elements on the bus meanwhile), at most once in this time.'),
  }),
)

export type TwinConfig = ReturnType<typeof twinConfig.schema.parse>
