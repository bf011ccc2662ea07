// Migrations on a fresh store, on an existing one, and drift detection, on real chDB.
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../lib/config.ts'
import { openStore, type Store } from '../../store/client.ts'
import { storeConfig } from '../../store/config.ts'
import { MIGRATIONS, migrate, type Migration } from '../../store/migrations.ts'
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

  it('leave no view writing on every insert: the roll-ups and the twin checkpoint are written by their owners', async () => {
    const rs = await store.client.query({ query: "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine = 'MaterializedView'", format: 'JSONEachRow' })
    expect(await rs.json()).toEqual([])
    expect(await tables()).toEqual(expect.arrayContaining(['rollup_positions', 'twin_checkpoints', 'device_latest', 'device_connectivity']))
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
