// What waits on the bus counts as ingest's delay, for the rules as well as
// the twin: at full city load the rules fell minutes behind the bus while
// the twin kept up, and raised tickets from what they had not yet judged.
// Now a subscriber far enough behind makes ingest degraded (no silence is
// judged, the silence rules raise nothing), and it recovers once it has
// caught up.
import { afterAll, beforeAll, expect, it } from 'vitest'
import { generateCity } from '../../simulators/city/generate.ts'
import { openSystem, type TestSystem } from '../system.ts'

const city = generateCity({ seed: 43, scale: 0.01 })
let sys: TestSystem

beforeAll(async () => {
  // Degraded after 1 s of waiting; swept every 100 ms.
  sys = await openSystem(city, { sweepIntervalMs: 100, degradedAfterMs: 1_000 })
})

afterAll(async () => {
  await sys?.close()
})

/** Waits (bounded) until `ok()` holds; fails with `what` if it never does. */
async function until(ok: () => boolean, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) throw new Error(`still not ${what} after ${ms} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

it('a subscriber behind the twin on the bus (the rules) makes ingest degraded until it catches up', async () => {
  let release: () => void = () => undefined
  const held = new Promise<void>((r) => (release = r))
  // Follows the twin, as the rules do, and takes its first batch only when released.
  const slow = sys.bus.subscribe('rules', () => held, { after: sys.live.subscription })
  const d = city.devices[0]
  if (!d) throw new Error('no device')
  sys.bus.publish([{ kind: 'reading', deviceId: d.id, ts: Date.now(), values: {} }])
  await until(() => sys.live.ingest.degraded, 'degraded')
  expect(sys.live.ingest.reason).toMatch(/on the bus/)
  // The twin itself is not behind: it applied the element at once.
  expect(sys.live.subscription.pending).toBe(0)
  release()
  await until(() => !sys.live.ingest.degraded, 'recovered')
  expect(sys.live.ingest.spells).toBe(1)
  slow.close()
})
