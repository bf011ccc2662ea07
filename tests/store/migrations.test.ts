// Migrations on a fresh store, on an existing one, and drift detection, on real chDB.
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../lib/config.ts'
import { READINGS_COLUMNS } from '../../ingest/mqtt/telemetry.ts'
import { openStore, type Store } from '../../twin/store/client.ts'
import { storeConfig } from '../../twin/store/config.ts'
import { MIGRATIONS, migrate, type Migration } from '../../twin/store/migrations.ts'
import { tempDir } from '../helpers.ts'

const dir = tempDir()
let store: Store
afterAll(async () => store?.close())

async function tables(): Promise<string[]> {
  const rs = await store.client.query({ query: 'SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name', format: 'JSONEachRow' })
  return (await rs.json<{ name: string }>()).map((r) => r.name)
}

async function expectFailure(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  const e = await p.then(() => undefined, (x: unknown) => x)
  expect(e).toMatchObject({ code })
  expect((e as Error).message).toMatch(message)
}

describe('migrations', () => {
  it('bring a fresh store up to date in order', async () => {
    store = await openStore(loadConfig(storeConfig, { env: {}, overrides: { dataDir: join(dir, 'db') } }))
    expect(store.mode).toBe('embedded')
    // An "existing" store first: only the first two migrations.
    const first = await migrate(store.client, MIGRATIONS.slice(0, 2))
    expect(first.applied).toEqual([1, 2])
    expect(await tables()).not.toContain('tickets')
    await store.client.insert({ table: 'devices', values: [['D1', 'smoke', 1, 1, 1, 1, 113.6, 34.7, 10, 0]], format: 'JSONCompactEachRow' })
    // ...then the code moves on: the rest is applied, the data stays.
    const second = await migrate(store.client)
    expect(second.alreadyApplied).toEqual([1, 2])
    expect(second.applied).toEqual(MIGRATIONS.slice(2).map((m) => m.version))
    const names = await tables()
    for (const t of ['grids', 'devices', 'cameras', 'readings', 'events', 'dead_letters', 'readings_1m', 'readings_1h', 'tickets', 'ticket_history', 'schema_migrations']) {
      expect(names).toContain(t)
    }
    const rs = await store.client.query({ query: 'SELECT toUInt32(count()) AS c FROM devices', format: 'JSONEachRow' })
    expect(await rs.json()).toEqual([{ c: 1 }])
  })

  it('are idempotent: a second run applies nothing', async () => {
    const again = await migrate(store.client)
    expect(again.applied).toEqual([])
    expect(again.alreadyApplied).toEqual(MIGRATIONS.map((m) => m.version))
  })

  it('feed the roll-ups from raw readings through the materialized views', async () => {
    // DateTime64(3) columns take integer epoch milliseconds.
    // Recent data: the roll-ups' TTLs would drop old rows on insert.
    const t = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000 + 30 * 60_000
    const minute = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ')
    const row = (s: number, v: number) => [t + s * 1000, 'D1', 'smoke', 'temperature_c', v, s, 5, 4, 3, 2, t + s * 1000]
    await store.client.insert({ table: 'readings', values: [row(0, 20), row(10, 22), row(70, 30)], columns: [...READINGS_COLUMNS], format: 'JSONCompactEachRow' })
    const m = await store.client.query({
      query: `SELECT toString(minute) AS m, toUInt32(sum(n)) AS count, sum(total) / sum(n) AS avg, min(lo) AS low, max(hi) AS high
              FROM readings_1m WHERE community_id = 4 GROUP BY minute ORDER BY minute`, format: 'JSONEachRow' })
    expect(await m.json()).toEqual([
      { m: minute(t), count: 2, avg: 21, low: 20, high: 22 },
      { m: minute(t + 60_000), count: 1, avg: 30, low: 30, high: 30 },
    ])
    const h = await store.client.query({ query: 'SELECT toUInt32(sum(n)) AS count, max(hi) AS high, any(district_id) AS d FROM readings_1h WHERE community_id = 4', format: 'JSONEachRow' })
    expect(await h.json()).toEqual([{ count: 3, high: 30, d: 2 }])
  })

  it('report drift when an applied migration was edited', async () => {
    const edited: Migration[] = MIGRATIONS.map((m) => (m.version === 2 ? { ...m, statements: [...m.statements, 'SELECT 1'] } : m))
    await expectFailure(migrate(store.client, edited), 'STORE_MIGRATION_DRIFT', /migration 2/)
  })

  it('refuse a store newer than the code', async () => {
    await expectFailure(migrate(store.client, MIGRATIONS.slice(0, 3)), 'STORE_MIGRATION_DRIFT', /does not know/)
  })

  it('name the statement that failed', async () => {
    const broken: Migration[] = [...MIGRATIONS, { version: 999, name: 'broken', statements: ['CREATE TABLE IF NOT EXISTS broken (x NoSuchType) ENGINE = Memory'] }]
    await expectFailure(migrate(store.client, broken), 'STORE_MIGRATION_FAILED', /migration 999 \(broken\), statement 1/)
  })
})
