import { z } from 'zod'
import { defineConfig } from '../config.ts'

export const busConfig = defineConfig(
  'bus',
  z.strictObject({
    capacity: z.number().int().min(1_000).default(200_000).describe('The most stored elements one subscriber of the in-process bus (the twin, the rules) may be behind: about ten seconds of the full city. Beyond it the subscriber loses its oldest elements and says so (citytwin_bus_lost_total, a log line); the twin reads back from the store what it lost, the rules replay from their position. While elements wait on the bus, ingest counts as behind (twin.degradedAfterMs).'),
    maxBatch: z.number().int().min(1).default(5_000).describe('The most elements handed to a subscriber in one call: batches published meanwhile are joined up to it, so the twin and the rules take many readings per turn of the event loop.'),
    turnMs: z.number().int().min(1).max(1_000).default(20).describe('About how long one delivery to a subscriber may take, in milliseconds: from what its handler has cost per element, a delivery joins only the published batches that fit (at least one). The API, timers and I/O get the event loop between deliveries, so under a backlog a request waits about this long, not for a batch of maxBatch elements (the rules took 300 to 900 ms for one at 11,000 msg/s on two cores). A published batch is one stored write and is never split between deliveries; the twin and the rules take a large one in slices, yielding after about this long (lib/bus/turns.ts).'),
  }),
)

export type BusConfig = ReturnType<typeof busConfig.schema.parse>
