// The rules save the bus position they have judged up to with their state,
// and judge from the store whatever was stored after it: after a restart
// (what came while they were down, or judged but not yet saved when they
// stopped), and when they fell so far behind that the bus dropped elements
// for them. Each stored reading is judged once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../lib/config.ts'
import type { Element } from '../../lib/bus/elements.ts'
import { rulesConfig, type RulesConfig } from '../../rules/config.ts'
import type { RulesService } from '../../rules/service.ts'
import { generateCity } from '../../simulators/city/generate.ts'
import { openSystem, startRules, type TestSystem } from '../system.ts'
import { EVENTS_COLUMNS } from '../../ingest/mqtt/gateway.ts'
import { PositionClock } from '../../lib/bus/position.ts'
import { writerConfig } from '../../store/config.ts'
import { StoreWriter } from '../../store/writer.ts'

const MIN = 60_000
const city = generateCity({ seed: 33, scale: 0.01 })
const water = city.devices.filter((d) => d.type === 'water_level')

let sys: TestSystem
let cfg: RulesConfig
let now = Date.now()

const openFor = (rules: RulesService, deviceId: string) =>
  [...rules.book.tickets].filter((t) => t.subject !== undefined && 'deviceId' in t.subject && t.subject.deviceId === deviceId && t.status !== 'closed')

beforeAll(async () => {
  // A bus of 50 elements per subscriber, so a test can make the rules fall behind it.
  sys = await openSystem(city, { sweepIntervalMs: 3_600_000 }, 50)
  // Ticks only when the test says, on the test's clock.
  cfg = loadConfig(rulesConfig, { env: {}, overrides: { tickMs: 3_600_000 } })
})

afterAll(async () => {
  await sys?.close()
})

describe('rules replay from the store', () => {
  it('judge after a restart what was stored while they were down, once', async () => {
    const [calm, flooded] = water
    if (!calm || !flooded) throw new Error('no water gauges')
    let rules = await startRules(sys, cfg, () => now)
    // Something positioned is judged and saved with the state.
    await sys.report(calm.id, now, { level_cm: 10 })
    await rules.tick()
    await rules.stop()

    // Six minutes of water above 30 cm, and the gauge's own alarm event, stored while no rules run.
    for (let k = 0; k <= 6; k++) await sys.report(flooded.id, now + k * MIN, { level_cm: 50 })
    const events = new StoreWriter({ client: sys.store.client, table: 'events', columns: EVENTS_COLUMNS, config: { ...loadConfig(writerConfig, { env: {} }), flushIntervalMs: 20 }, positions: new PositionClock() })
    await events.start()
    await events.write([[now + 6 * MIN, 'device', flooded.id, 'high_water', 'warning', flooded.microGridId, flooded.communityId, flooded.streetId, flooded.districtId, flooded.lon, flooded.lat, '{}', '']])
    await events.stop(Date.now() + 2_000)
    now += 6 * MIN

    rules = await startRules(sys, cfg, () => now)
    // Seven readings and the event, in the order they were stored.
    expect(rules.stats()).toMatchObject({ replayed: 8, judged: 8 })
    await rules.tick()
    expect(openFor(rules, flooded.id).map((t) => t.type)).toEqual(['waterlogging'])
    await rules.stop()

    // Saved with the state after the replay: the next start has nothing to judge again, and raises nothing twice.
    rules = await startRules(sys, cfg, () => now)
    expect(rules.stats()).toMatchObject({ replayed: 0, judged: 0 })
    await rules.tick()
    expect(openFor(rules, flooded.id)).toHaveLength(1)
    await rules.stop()
  })

  it('judge from the store what the bus dropped for them when they fell behind, and skip it when the bus brings the rest', async () => {
    const rules = await startRules(sys, cfg, () => now)
    const devices = water.slice(2, 6)
    // 200 stored readings, published faster than the twin and the rules take them: the bus keeps 50.
    const outcomes = await Promise.all(Array.from({ length: 200 }, (_, k) => {
      const d = devices[k % devices.length]
      if (!d) throw new Error('no device')
      return sys.readings.write([[now + k, d.id, d.type, 'level_cm', 5, k, d.microGridId, d.communityId, d.streetId, d.districtId, now + k]])
    }))
    const batches: Element[][] = outcomes.map((o, k) => [{ kind: 'reading', deviceId: devices[k % devices.length]?.id ?? '', ts: now + k, values: { level_cm: 5 }, ...(o.position === undefined ? {} : { pos: o.position }) }])
    for (const b of batches) sys.bus.publish(b)
    await sys.bus.idle()
    // The rules were told of the 150 dropped, read all 200 back from the store (up to what the bus had published),
    // and skipped the 50 the bus then brought: every reading judged once.
    expect(rules.stats()).toMatchObject({ replayed: 200, judged: 200, skippedJudged: 50 })
    await rules.stop()
  })
})
