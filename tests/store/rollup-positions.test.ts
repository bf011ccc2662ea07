// Migration 18 on a store whose roll-ups were flushed before it, on real
// chDB: a record written then still says what it said (every reading up to
// its position summed, none held back), so the first start after the
// upgrade takes back exactly what came after it.
import { afterAll, describe, expect, it } from 'vitest'
import { READINGS_COLUMNS } from '../../ingest/mqtt/telemetry.ts'
import { loadConfig } from '../../lib/config.ts'
import { openStore, type Store } from '../../store/client.ts'
import { storeConfig } from '../../store/config.ts'
import { MIGRATIONS, migrate } from '../../store/migrations.ts'
import { Rollups } from '../../store/rollups.ts'
import { tempDir } from '../helpers.ts'

let store: Store | undefined
afterAll(async () => store?.close())

// Half past the last full hour: recent enough for the roll-ups' TTLs, and its minutes have ended.
const t = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 30 * 60_000
// Positions are microseconds of the clock; these are above migration 9's own record (now).
const P = (Date.now() + 60_000) * 1000
const row = (s: number, v: number, pos: number): unknown[] => [t + s * 1000, 'D1', 'smoke', 'temperature_c', v, s, 5, 9, 3, 2, t + s * 1000, pos]

describe('the roll-ups\' record of what they hold back (migration 18)', () => {
  it('reads a record from before it as holding nothing back, and bears migrating twice', async () => {
    const s = (store = await openStore(loadConfig(storeConfig, { env: {}, overrides: { dataDir: tempDir() } })))
    await migrate(s.client, MIGRATIONS.filter((m) => m.version < 18))
    // Three readings stored after migration 9's own record, and a flush from before the upgrade that wrote the first two.
    await s.client.insert({ table: 'readings', columns: [...READINGS_COLUMNS, 'bus_pos'], values: [row(0, 1, P), row(10, 3, P + 1), row(20, 5, P + 2)], format: 'JSONCompactEachRow' })
    await s.client.insert({ table: 'readings_1m', values: [{ minute: Math.floor(t / 1000), community_id: 9, metric: 'temperature_c', device_type: 'smoke', street_id: 3, district_id: 2, n: 2, total: 4, lo: 1, hi: 3 }], format: 'JSONEachRow' })
    await s.client.insert({ table: 'rollup_positions', columns: ['at', 'readings_pos'], values: [[Date.now(), String(P + 1)]], format: 'JSONCompactEachRow' })
    expect((await migrate(s.client)).applied).toEqual([18])
    for (const sql of MIGRATIONS.find((m) => m.version === 18)?.statements ?? []) await s.client.command({ query: sql })
    const records = await (await s.client.query({ query: 'SELECT toString(readings_pos) AS pos, open_from, toString(base_pos) AS base FROM rollup_positions ORDER BY readings_pos DESC LIMIT 1', format: 'JSONEachRow' })).json()
    expect(records).toEqual([{ pos: String(P + 1), open_from: 0, base: String(P + 1) }])

    const rollups = new Rollups({ client: s.client, columns: READINGS_COLUMNS, intervalMs: 3_600_000 })
    await rollups.start()
    expect(rollups.stats()).toMatchObject({ caughtUp: 1 })
    await rollups.stop(Date.now() + 2_000)
    const minute = await (await s.client.query({ query: 'SELECT toUInt32(sum(n)) AS n, sum(total) AS total, max(hi) AS hi FROM readings_1m WHERE community_id = 9', format: 'JSONEachRow' })).json()
    expect(minute).toEqual([{ n: 3, total: 9, hi: 5 }])
  })
})
