// Migration 17 on a store with readings written before it, on real chDB: the
// readings table loses its codecs, and the parts written with them still
// read, alone and merged with parts written after.
import { afterAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../lib/config.ts'
import { openStore, type Store } from '../../store/client.ts'
import { storeConfig } from '../../store/config.ts'
import { MIGRATIONS, migrate } from '../../store/migrations.ts'
import { tempDir } from '../helpers.ts'

let store: Store | undefined
afterAll(async () => store?.close())

const columns: [string, ...string[]] = ['ts', 'device_id', 'device_type', 'metric', 'value', 'seq', 'micro_grid_id', 'community_id', 'street_id', 'district_id', 'received_at', 'bus_pos']
const row = (seq: number): unknown[] => ['2026-12-01 06:00:00.000', 'D1', 'smoke', 'temperature_c', 21.5 + seq, seq, 1, 1, 1, 1, '2026-12-01 06:00:00.100', seq]

describe('the readings table\'s compression (migration 17)', () => {
  it("is LZ4 once migrated, bears migrating twice, and rows written before the change still read, merged or not", async () => {
    const s = (store = await openStore(loadConfig(storeConfig, { env: {}, overrides: { dataDir: tempDir() } })))
    await migrate(s.client, MIGRATIONS.filter((m) => m.version < 17))
    // The columns whose codec is anything but LZ4 (LowCardinality and community_id had none to begin with).
    const codecs = async (): Promise<unknown[]> =>
      (await s.client.query({ query: "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'readings' AND compression_codec NOT IN ('', 'CODEC(LZ4)') ORDER BY name", format: 'JSONEachRow' })).json()
    expect(await codecs()).not.toEqual([])
    await s.client.insert({ table: 'readings', columns, values: [row(1)], format: 'JSONCompactEachRow' })
    expect((await migrate(s.client, MIGRATIONS.filter((m) => m.version <= 17))).applied).toEqual([17])
    expect(await codecs()).toEqual([])
    // Its statements bear running again (two processes migrating at once, a crash before it was recorded).
    for (const sql of MIGRATIONS.find((m) => m.version === 17)?.statements ?? []) await s.client.command({ query: sql })
    expect(await codecs()).toEqual([])
    await s.client.insert({ table: 'readings', columns, values: [row(2)], format: 'JSONCompactEachRow' })
    const read = async (): Promise<unknown[]> => (await s.client.query({ query: 'SELECT seq, value FROM readings ORDER BY seq', format: 'JSONEachRow' })).json()
    expect(await read()).toEqual([{ seq: 1, value: 22.5 }, { seq: 2, value: 23.5 }])
    await s.client.command({ query: 'OPTIMIZE TABLE readings FINAL' })
    expect(await read()).toEqual([{ seq: 1, value: 22.5 }, { seq: 2, value: 23.5 }])
    const parts = await (await s.client.query({ query: "SELECT toUInt32(count()) AS n FROM system.parts WHERE database = currentDatabase() AND table = 'readings' AND active", format: 'JSONEachRow' })).json()
    expect(parts).toEqual([{ n: 1 }])
  })
})
