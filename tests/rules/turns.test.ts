// A stored write of thousands of elements, taken in turns by the twin and
// the rules (lib/bus/turns.ts): the process that answers the API gets the
// event loop between slices, and neither saves the write's position before
// all of it is through: a checkpoint of the twin taken between two slices
// holds the position from before the write, and the rules' state is stored
// only once the write is judged, so a restart judges none of it twice.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../lib/config.ts'
import type { Element } from '../../lib/bus/elements.ts'
import { rulesConfig } from '../../rules/config.ts'
import { generateCity } from '../../simulators/city/generate.ts'
import { checkpointPositions } from '../../twin/state/checkpoint.ts'
import { openSystem, startRules, type TestSystem } from '../system.ts'

const city = generateCity({ seed: 35, scale: 0.01 })
let sys: TestSystem

beforeAll(async () => {
  // A turn of 1 ms: a write of 4,000 elements takes several.
  sys = await openSystem(city, { sweepIntervalMs: 3_600_000 }, { turnMs: 1 })
})

afterAll(async () => {
  await sys?.close()
})

describe('a large stored write', () => {
  it('is taken in turns by the twin and the rules, each saving its position only once all of it is through', async () => {
    const cfg = loadConfig(rulesConfig, { env: {}, overrides: { tickMs: 3_600_000 } })
    const now = Date.now()
    let rules = await startRules(sys, cfg, () => now)
    const devices = city.devices.filter((d) => d.type === 'water_level' || d.type === 'air_quality')
    const n = 4_000
    const rows = Array.from({ length: n }, (_, k) => {
      const d = devices[k % devices.length]
      if (!d) throw new Error('no device')
      return [now - n + k, d.id, d.type, d.type === 'water_level' ? 'level_cm' : 'pm25', 5, k, d.microGridId, d.communityId, d.streetId, d.districtId, now] as const
    })
    // One write: one position for all of it, as a gateway's store batch.
    const stored = await sys.readings.write(rows)
    const pos = stored.position
    if (pos === undefined) throw new Error('the writer gave no position')
    const batch: Element[] = rows.map((r) => ({ kind: 'reading', deviceId: r[1], ts: r[0], values: { [r[3]]: r[4] }, pos }))

    const appliedBefore = Number(sys.live.stats().applied)
    const seen = { twinPart: false, rulesPart: false }
    let twinCheckpoint: Promise<void> | undefined
    let pendingMidway: number | undefined
    let rulesFlushSaw: number | undefined
    let rulesFlush: Promise<void> | undefined
    let watching = true
    const watch = (): void => {
      const applied = Number(sys.live.stats().applied) - appliedBefore
      const judged = Number(rules.stats().judged)
      if (applied > 0 && applied < n && !twinCheckpoint) {
        seen.twinPart = true
        pendingMidway = Number(sys.live.stats().checkpointPending)
        twinCheckpoint = sys.live.checkpoint()
      }
      if (judged > 0 && judged < n && !rulesFlush) {
        seen.rulesPart = true
        // The desk's flush waits for the write to be judged before it takes the rules' state.
        rulesFlush = rules.flush().then(() => void (rulesFlushSaw = Number(rules.stats().judged)))
      }
      if (watching) setImmediate(watch)
    }
    setImmediate(watch)
    sys.bus.publish(batch)
    await sys.bus.idle()
    await twinCheckpoint
    await rulesFlush
    watching = false

    expect(seen).toEqual({ twinPart: true, rulesPart: true })
    // Between two slices of the twin, nothing of the write was noted for a checkpoint yet.
    expect(pendingMidway).toBe(0)
    // The checkpoint taken halfway holds a position below the write's: a restart reads all of it back.
    expect((await checkpointPositions(sys.store.client)).readings).toBeLessThan(pos)
    await sys.live.checkpoint()
    expect((await checkpointPositions(sys.store.client)).readings).toBe(pos)
    expect(rulesFlushSaw).toBe(n)
    expect(rules.stats()).toMatchObject({ judged: n, skippedJudged: 0 })
    await rules.stop()

    // Stored with the write's position: a new start judges none of it again.
    rules = await startRules(sys, cfg, () => now)
    expect(rules.stats()).toMatchObject({ replayed: 0, judged: 0 })
    await rules.stop()
  })
})
