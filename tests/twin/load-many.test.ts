// The twin's load from the store at full city: what no checkpoint holds yet
// may be one element per device and metric, hundreds of thousands of them.
// Appended with a spread (`push(...since)`), that many arguments overflowed
// the stack, and the twin's reload after a bus gap failed again and again
// (bench:rules at full city, 2026-11-30). chDB in a temp dir.
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pushAll } from '../../lib/arrays.ts'
import { checkpointPositions } from '../../twin/state/checkpoint.ts'
import { latestState } from '../../twin/state/load.ts'
import { openMigratedStore, type Store } from '../../store/index.ts'
import { tempDir } from '../helpers.ts'

// Above what one call's arguments may hold on Node 20's default stack (about 120,000).
const PAIRS = 250_000

let store: Store
let checkpointed = 0

beforeAll(async () => {
  ;({ store } = await openMigratedStore({ env: {} }, { dataDir: join(tempDir(), 'db') }))
  // Stored after the checkpoint the migrations leave: bus positions above it.
  checkpointed = (await checkpointPositions(store.client)).readings
  await store.client.command({
    query: `INSERT INTO readings (ts, device_id, device_type, metric, value, seq, micro_grid_id, community_id, street_id, district_id, received_at, bus_pos)
            SELECT now64(3) - INTERVAL 1 MINUTE, concat('D', leftPad(toString(intDiv(number, 2)), 7, '0')), 'water_level', if(number % 2 = 0, 'level_m', 'battery_pct'),
                   number, 1, 1, 1, 1, 1, now64(3), ${checkpointed} + 1 + intDiv(number, 1000)
            FROM numbers(${PAIRS})`,
  })
}, 120_000)

afterAll(async () => {
  await store?.close()
})

describe('twin load with many elements after the checkpoint', () => {
  it('reads one element per device and metric stored after the checkpoint, 250,000 of them, without overflowing the stack', async () => {
    const state = await latestState(store.client)
    expect(state.sinceCheckpoint.length).toBe(PAIRS)
    expect(state.elements.length).toBe(PAIRS)
    expect(state.positions.readings).toBe(checkpointed)
  }, 120_000)

  it('appends any number of items', () => {
    const items = Array.from({ length: 500_000 }, (_, i) => i)
    const target = [-1]
    expect(pushAll(target, items)).toBe(target)
    expect(target.length).toBe(500_001)
    expect(target[500_000]).toBe(499_999)
  })
})
