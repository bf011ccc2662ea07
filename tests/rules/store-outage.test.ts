// The rules while the store refuses their writes: ticket changes wait in
// memory up to rules.maxPendingChanges, then the rules take nothing more
// from the bus (it holds, or drops, their elements) until the store takes
// the changes again; then they judge the rest, and every ticket is stored
// once. Real chDB underneath; the fault is injected in front of it, in the
// client the rules write through.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../lib/config.ts'
import { rulesConfig } from '../../rules/config.ts'
import { RulesService } from '../../rules/service.ts'
import { generateCity } from '../../simulators/city/generate.ts'
import { faultyClient } from '../helpers.ts'
import { openSystem, type TestSystem } from '../system.ts'

const city = generateCity({ seed: 35, scale: 0.01 })
// Manhole covers in different community grids: one "open" reading raises a ticket at once (forS 0), none linked to another.
const covers = [...new Map(city.devices.filter((d) => d.type === 'manhole_cover').map((d) => [d.communityId, d])).values()].slice(0, 8)

let sys: TestSystem
let storeDown = false

async function until(pred: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let k = 0; k < 300; k++) {
    if (await pred()) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`timed out waiting for ${what}`)
}

beforeAll(async () => {
  sys = await openSystem(city, { sweepIntervalMs: 3_600_000 })
})

afterAll(async () => {
  storeDown = false
  await sys?.close()
})

describe('rules during a store outage', () => {
  it('stop taking from the bus at rules.maxPendingChanges, and judge and store the rest once the store is back', async () => {
    expect(covers.length).toBe(8)
    const cfg = loadConfig(rulesConfig, { env: {}, overrides: { tickMs: 100, maxPendingChanges: 3 } })
    const rules = new RulesService({ client: faultyClient(sys.store.client, () => storeDown, ['insert']), bus: sys.bus, twin: sys.live, config: cfg })
    await rules.start()
    try {
      storeDown = true
      const t = Date.now()
      // Stored by the gateway's writer (not through the rules' client), then published, one batch a cover.
      for (const [k, d] of covers.entries()) {
        const stored = await sys.readings.write([[t + k, d.id, d.type, 'open', 1, 1, d.microGridId, d.communityId, d.streetId, d.districtId, t + k]])
        sys.bus.publish([{ kind: 'reading', deviceId: d.id, ts: t + k, values: { open: 1 }, ...(stored.position === undefined ? {} : { pos: stored.position }) }])
      }
      // Three changes wait; the rules hold the rest of the bus instead of piling up more.
      await until(() => Number(rules.stats().pendingWrites) >= 3 && Number(rules.stats().busPending) > 0, 'the rules to hold the bus')
      await new Promise((r) => setTimeout(r, 500))
      const held = rules.stats()
      expect(Number(held.pendingWrites)).toBeLessThan(covers.length)
      expect(Number(held.busPending)).toBeGreaterThan(0)
      expect((await rules.health()).ok).toBe(false)

      storeDown = false
      await until(() => Number(rules.stats().busPending) === 0 && Number(rules.stats().pendingWrites) === 0, 'the rules to catch up')
      await until(async () => (await ticketsOf(covers.map((d) => d.id))) === covers.length, 'every ticket stored')
      expect((await rules.health()).ok).toBe(true)
    } finally {
      storeDown = false
      await rules.stop()
    }
  })
})

async function ticketsOf(deviceIds: string[]): Promise<number> {
  const rs = await sys.store.client.query({
    query: 'SELECT count(DISTINCT id) FROM tickets WHERE device_id IN {ids:Array(String)}',
    query_params: { ids: deviceIds }, format: 'JSONCompactEachRow',
  })
  const [[n] = [0]] = await rs.json<[number | string]>()
  return Number(n)
}
