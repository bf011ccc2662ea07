// A twin that lost elements on the bus while the store was away: its
// catch-up and the rebuild after it fail, and a retry waits. If another gap
// comes before the retry, reading back only what that one lost would mark
// the first hole covered, and the next checkpoint would lose it for good;
// the twin rebuilds instead. Real chDB; the outage is injected in front of
// it, in the client the twin reads through.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateCity } from '../../simulators/city/generate.ts'
import { twinConfig } from '../../twin/state/config.ts'
import { LiveTwin } from '../../twin/state/live-twin.ts'
import { faultyClient } from '../helpers.ts'
import { openSystem, type TestSystem } from '../system.ts'

const city = generateCity({ seed: 43, scale: 0.01 })
const water = city.devices.filter((d) => d.type === 'water_level')

let sys: TestSystem
let storeDown = false

beforeAll(async () => {
  // A bus of 5 elements per subscriber, so the test can make the twin lose some.
  sys = await openSystem(city, { sweepIntervalMs: 3_600_000 }, 5)
  // The test's own twin, reading through the faulty client, takes the system's place on the bus.
  await sys.live.stop()
})

afterAll(async () => {
  storeDown = false
  await sys?.close()
})

/** Eight readings stored by the gateway's writer (not through the twin's client), then published at once: the twin loses three. */
async function burst(devices: typeof water, level: number): Promise<void> {
  const t = Date.now()
  const published = []
  for (const [k, d] of devices.entries()) {
    const stored = await sys.readings.write([[t + k, d.id, d.type, 'level_cm', level + k, 1, d.microGridId, d.communityId, d.streetId, d.districtId, t + k]])
    published.push({ kind: 'reading' as const, deviceId: d.id, ts: t + k, values: { level_cm: level + k }, ...(stored.position === undefined ? {} : { pos: stored.position }) })
  }
  for (const e of published) sys.bus.publish([e])
  await sys.bus.idle()
}

describe('twin catch-up after a gap the store could not fill', () => {
  it('rebuilds at the next gap instead of marking the first hole covered', async () => {
    const live = new LiveTwin({ client: faultyClient(sys.store.client, () => storeDown, ['query', 'insert']), bus: sys.bus, config: { ...twinConfig.schema.parse({}), silentAfterIntervals: 3, maxLagMs: 0, degradedAfterMs: 0, sweepIntervalMs: 3_600_000, checkpointIntervalMs: 3_600_000 } })
    await live.start()
    try {
      const first = water.slice(0, 8)
      const second = water.slice(8, 16)
      storeDown = true
      await burst(first, 100)
      // The first three never reached this twin, and the store could not give them back.
      const value = (id: string) => live.twin.deviceLive(live.twin.deviceIndex(id) ?? -1).values[0]
      expect(first.slice(0, 3).map((d) => value(d.id))).not.toEqual([100, 101, 102])
      storeDown = false
      // Before the retry (a second away): another gap.
      await burst(second, 200)
      for (const [k, d] of first.entries()) expect(value(d.id), d.id).toBe(100 + k)
      for (const [k, d] of second.entries()) expect(value(d.id), d.id).toBe(200 + k)
      expect(live.stats()).toMatchObject({ rebuilds: 1 })
    } finally {
      storeDown = false
      await live.stop()
    }
  })
})
