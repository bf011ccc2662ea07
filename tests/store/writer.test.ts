// The batching writer against real chDB: batching by rows and by time,
// dead letters for rows the engine rejects, retries through a flaky link,
// failure after the retries run out, and backpressure while the store stalls.
// The flaky and stalled links are a real TCP proxy in front of the store
// owner's HTTP endpoint, so the client sees real connection failures.
import { join } from 'node:path'
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../lib/config.ts'
import { openMigratedStore, StoreOwner, StoreWriter, DeadLetterWriter, type Store, type WriterConfig } from '../../store/index.ts'
import { readOwnerInfo } from '../../store/client.ts'
import { writerConfig } from '../../store/config.ts'
import { PositionClock } from '../../lib/bus/position.ts'
import { metricsText } from '../../lib/metrics.ts'
import { tempDir } from '../helpers.ts'
import { Link } from '../tcp-link.ts'

const dir = tempDir()
let store: Store
let owner: StoreOwner
const base: WriterConfig = loadConfig(writerConfig, { env: {} })

beforeAll(async () => {
  ;({ store } = await openMigratedStore({ env: {} }, { dataDir: join(dir, 'db') }))
  owner = new StoreOwner(store)
  await owner.start()
  await store.client.command({ query: 'CREATE TABLE w (id UInt32, name String, at DateTime64(3, \'UTC\')) ENGINE = MergeTree ORDER BY id' })
})

afterAll(async () => {
  await owner?.stop(Date.now() + 5_000)
  await store?.close()
})

const cfg = (over: Partial<WriterConfig>): WriterConfig => ({ ...base, retryInitialMs: 20, retryMaxMs: 100, ...over })

/** An emptied table `w`, and a started writer into it whose refused rows go to a started dead-letter writer. */
async function writerWithDeadLetters(over: Partial<WriterConfig>): Promise<{ w: StoreWriter; dl: DeadLetterWriter }> {
  await store.client.command({ query: 'TRUNCATE TABLE w' })
  const dl = new DeadLetterWriter(store.client, cfg({}))
  await dl.start()
  const w = new StoreWriter({ client: store.client, table: 'w', columns: ['id', 'name', 'at'], config: cfg(over), deadLetters: dl })
  await w.start()
  return { w, dl }
}
const rows = (from: number, n: number) => Array.from({ length: n }, (_, i) => [from + i, `row ${from + i}`, 1_790_000_000_000 + i])

async function count(table = 'w', where = '1'): Promise<number> {
  const rs = await store.client.query({ query: `SELECT toUInt32(count()) AS c FROM ${table} WHERE ${where}`, format: 'JSONEachRow' })
  return (await rs.json<{ c: number }>())[0]?.c ?? -1
}

async function clientThrough(link: Link): Promise<ClickHouseClient> {
  const info = readOwnerInfo(store.dataDir)
  if (!info) throw new Error('owner file missing')
  // keep_alive off: every request opens a connection, so the link decides each one.
  return createClient({ url: await link.listen(), username: 'citytwin', password: info.token, database: store.database, keep_alive: { enabled: false }, request_timeout: 30_000, log: { level: ClickHouseLogLevel.OFF } })
}

describe('StoreWriter', () => {
  it('flushes full batches by rows, and the rest by time', async () => {
    await store.client.command({ query: 'TRUNCATE TABLE w' })
    const w = new StoreWriter({ client: store.client, table: 'w', columns: ['id', 'name', 'at'], config: cfg({ maxBatchRows: 100, flushIntervalMs: 300 }) })
    await w.start()
    const outcome = await w.write(rows(0, 250))
    expect(outcome).toEqual({ inserted: 250, deadLettered: 0 })
    // Two full batches went at once; the last 50 rows waited for the timer.
    expect(w.stats()).toMatchObject({ batches: 3, inserted: 250, queued: 0 })
    expect(await count()).toBe(250)
    const small = await w.write(rows(1000, 3))
    expect(small.inserted).toBe(3)
    expect(w.stats().batches).toBe(4)
    await w.stop(Date.now() + 5_000)
    await expect(w.write(rows(2000, 1))).rejects.toMatchObject({ code: 'QUEUE_CLOSED' })
  })

  it('flushes what is queued on stop, and its queue gauge says what waits', async () => {
    await store.client.command({ query: 'TRUNCATE TABLE w' })
    const w = new StoreWriter({ client: store.client, table: 'w', columns: ['id', 'name', 'at'], config: cfg({ flushIntervalMs: 60_000 }) })
    await w.start()
    const pending = w.write(rows(0, 10))
    expect((await metricsText()).body).toMatch(/^citytwin_store_queue_rows\{table="w"[^}]*\} 10$/m)
    await w.stop(Date.now() + 10_000)
    expect((await metricsText()).body).toMatch(/^citytwin_store_queue_rows\{table="w"[^}]*\} 0$/m)
    await expect(pending).resolves.toEqual({ inserted: 10, deadLettered: 0 })
    expect(await count()).toBe(10)
  })

  it('isolates rows the engine rejects and dead-letters them with the reason', async () => {
    const { w, dl } = await writerWithDeadLetters({ flushIntervalMs: 50 })
    const batch = rows(0, 40)
    batch[7] = ['not a number', 'bad id', 1_790_000_000_000]
    batch[31] = [31, 'bad time', 'yesterday-ish']
    const outcome = await w.write(batch)
    // Which rows were refused, by their index in the write: the others are stored, and go on the bus.
    expect(outcome).toEqual({ inserted: 38, deadLettered: 2, deadLetteredRows: [7, 31] })
    expect(await count()).toBe(38)
    await w.stop(Date.now() + 5_000)
    await dl.stop(Date.now() + 5_000)
    const rs = await store.client.query({ query: "SELECT source, code, reason, raw FROM dead_letters WHERE source = 'store:w' ORDER BY raw", format: 'JSONEachRow' })
    const letters = await rs.json<{ source: string; code: string; reason: string; raw: string }>()
    expect(letters).toHaveLength(2)
    expect(letters.map((l) => l.code)).toEqual(['STORE_REJECTED', 'STORE_REJECTED'])
    expect(letters.map((l) => JSON.parse(l.raw) as unknown[])).toEqual(expect.arrayContaining([batch[7], batch[31]]))
    for (const l of letters) expect(l.reason).toMatch(/^[A-Z_]+: Cannot (parse|read)/)
  })

  it('names the refused rows of a write by their index, also when the write was cut across batches', async () => {
    const { w, dl } = await writerWithDeadLetters({ maxBatchRows: 30, flushIntervalMs: 20 })
    const batch = rows(0, 100)
    batch[45] = ['not a number', 'bad id', 1_790_000_000_000]
    batch[97] = [97, 'bad time', 'yesterday-ish']
    const outcome = await w.write(batch)
    expect(outcome).toEqual({ inserted: 98, deadLettered: 2, deadLetteredRows: [45, 97] })
    expect(Number(w.stats().batches)).toBeGreaterThanOrEqual(4)
    await w.stop(Date.now() + 5_000)
    await dl.stop(Date.now() + 5_000)
  })

  it('tells writes their outcome in the order they were made, also when a later batch is stored first', async () => {
    // Two inserts in flight: the first batch holds a bad row and takes several inserts to isolate it.
    const { w, dl } = await writerWithDeadLetters({ maxBatchRows: 64, concurrency: 2, flushIntervalMs: 20 })
    const first = rows(0, 64)
    first[63] = ['not a number', 'bad id', 1_790_000_000_000]
    const told: string[] = []
    const a = w.write(first).then((o) => told.push(`first ${o.inserted}+${o.deadLettered}`))
    const b = w.write(rows(100, 64)).then((o) => told.push(`second ${o.inserted}+${o.deadLettered}`))
    await Promise.all([a, b])
    expect(told).toEqual(['first 63+1', 'second 64+0'])
    expect(Number(w.stats().splits)).toBeGreaterThan(0)
    await w.stop(Date.now() + 5_000)
    await dl.stop(Date.now() + 5_000)
  })

  it('stamps each write with the next bus position, stored with its rows and given back', async () => {
    await store.client.command({ query: 'CREATE TABLE wp (id UInt32, name String, at DateTime64(3, \'UTC\'), bus_pos UInt64) ENGINE = MergeTree ORDER BY id' })
    const positions = new PositionClock()
    const w = new StoreWriter({ client: store.client, table: 'wp', columns: ['id', 'name', 'at'], config: cfg({ maxBatchRows: 10, flushIntervalMs: 20 }), positions })
    await w.start()
    const given = rows(0, 25)
    const outcomes = await Promise.all([w.write(given.slice(0, 15)), w.write(given.slice(15))])
    const [p1, p2] = outcomes.map((o) => o.position ?? 0)
    expect(p1).toBeGreaterThan(Date.now() * 1000 - 60_000_000)
    expect(p2).toBeGreaterThan(p1 ?? 0)
    // The caller's rows are left as they were.
    expect(given[0]).toHaveLength(3)
    const rs = await store.client.query({ query: 'SELECT bus_pos, toUInt32(count()) AS n FROM wp GROUP BY bus_pos ORDER BY bus_pos', format: 'JSONEachRow' })
    expect((await rs.json<{ bus_pos: string; n: number }>()).map((r) => [Number(r.bus_pos), r.n])).toEqual([[p1, 15], [p2, 10]])
    await w.stop(Date.now() + 5_000)
  })

  it('fails loudly, without dead letters, when the statement itself is wrong', async () => {
    const w = new StoreWriter({ client: store.client, table: 'no_such_table', columns: ['id'], config: cfg({ flushIntervalMs: 10 }) })
    await w.start()
    await expect(w.write([[1]])).rejects.toMatchObject({ code: 'STORE_REJECTED', retryable: false })
    await w.stop(Date.now() + 1_000)
  })

  it('retries through a flaky link and stores every row once', async () => {
    await store.client.command({ query: 'TRUNCATE TABLE w' })
    const link = new Link(new URL(owner.url))
    const client = await clientThrough(link)
    const w = new StoreWriter({ client, table: 'w', columns: ['id', 'name', 'at'], config: cfg({ flushIntervalMs: 10, maxRetries: 20 }) })
    await w.start()
    link.mode = 'drop'
    const pending = w.write(rows(0, 500))
    // Let a few attempts fail for real before the link comes back.
    while (link.accepted < 3) await new Promise((r) => setTimeout(r, 10))
    link.mode = 'pass'
    await expect(pending).resolves.toEqual({ inserted: 500, deadLettered: 0 })
    expect(w.stats().retries).toBeGreaterThanOrEqual(2)
    expect(await w.health()).toEqual({ ok: true })
    expect(await count()).toBe(500)
    await w.stop(Date.now() + 5_000)
    await client.close()
    link.close()
  })

  it('stores a batch once when its answer was lost and it was sent again', async () => {
    // As the element streams are after migration 10: the store remembers recent inserts' tokens.
    await store.client.command({ query: 'CREATE TABLE IF NOT EXISTS wd (id UInt32, name String, at DateTime64(3, \'UTC\')) ENGINE = MergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 100' })
    const link = new Link(new URL(owner.url))
    const client = await clientThrough(link)
    const w = new StoreWriter({ client, table: 'wd', columns: ['id', 'name', 'at'], config: cfg({ flushIntervalMs: 10, maxRetries: 5 }) })
    await w.start()
    link.mode = 'lose-answer'
    const pending = w.write(rows(0, 500))
    while (link.lost < 1) await new Promise((r) => setTimeout(r, 5))
    link.mode = 'pass'
    await expect(pending).resolves.toEqual({ inserted: 500, deadLettered: 0 })
    expect(w.stats().retries).toBeGreaterThanOrEqual(1)
    expect(await count('wd')).toBe(500)
    // A second batch of the same rows is new data, not a retry: stored again.
    await expect(w.write(rows(0, 500))).resolves.toEqual({ inserted: 500, deadLettered: 0 })
    expect(await count('wd')).toBe(1000)
    // The token is the batch's alone: inserts after it without one (other writers on the same store sessions) are stored.
    for (let i = 0; i < 8; i++) await store.client.insert({ table: 'wd', values: [[10_000 + i, 'other', 1_790_000_000_000]], format: 'JSONCompactEachRow' })
    expect(await count('wd')).toBe(1008)
    await w.stop(Date.now() + 5_000)
    await client.close()
    link.close()
  })

  it('element streams keep the window that makes a retried insert count once', async () => {
    const rs = await store.client.query({ query: `SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() AND name IN ('readings', 'events', 'dead_letters') ORDER BY name`, format: 'JSONEachRow' })
    const tables = await rs.json<{ name: string; engine_full: string }>()
    expect(tables.map((t) => t.name)).toEqual(['dead_letters', 'events', 'readings'])
    for (const t of tables) expect(t.engine_full).toContain('non_replicated_deduplication_window = 1000')
  })

  it('tells the writer, with a retryable error, when retries run out; nothing is stored', async () => {
    await store.client.command({ query: 'TRUNCATE TABLE w' })
    const link = new Link(new URL(owner.url))
    link.mode = 'drop'
    const client = await clientThrough(link)
    const w = new StoreWriter({ client, table: 'w', columns: ['id', 'name', 'at'], config: cfg({ flushIntervalMs: 10, maxRetries: 2 }) })
    await w.start()
    await expect(w.write(rows(0, 5))).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', retryable: true })
    expect(link.accepted).toBe(3)
    expect(w.stats()).toMatchObject({ failed: 5, inserted: 0 })
    const health = await w.health()
    expect(health.ok).toBe(false)
    expect(health.detail).toMatch(/socket hang up|ECONNRESET/)
    expect(await count()).toBe(0)
    await w.stop(Date.now() + 1_000)
    await client.close()
    link.close()
  })

  it('pushes back on writers while the store stalls, then drains', async () => {
    await store.client.command({ query: 'TRUNCATE TABLE w' })
    const link = new Link(new URL(owner.url))
    link.mode = 'hold'
    const client = await clientThrough(link)
    const w = new StoreWriter({ client, table: 'w', columns: ['id', 'name', 'at'], config: cfg({ maxBatchRows: 10, queueRows: 20, concurrency: 1, flushIntervalMs: 10 }) })
    await w.start()
    const first = w.write(rows(0, 10)) // goes out as one batch, and hangs in the link
    while (link.accepted < 1) await new Promise((r) => setTimeout(r, 5))
    const second = w.write(rows(10, 10))
    const third = w.write(rows(20, 10))
    let admitted = false
    const fourth = w.write(rows(30, 10)).then((o) => {
      admitted = true
      return o
    })
    await new Promise((r) => setImmediate(r))
    // 20 rows queued behind the stalled insert fill the queue: the fourth write waits outside.
    expect(w.stats()).toMatchObject({ queued: 20, inFlight: 1 })
    expect(admitted).toBe(false)
    link.release()
    const outcomes = await Promise.all([first, second, third, fourth])
    expect(outcomes.map((o) => o.inserted)).toEqual([10, 10, 10, 10])
    expect(await count()).toBe(40)
    await w.stop(Date.now() + 5_000)
    await client.close()
    link.close()
  })
})

describe('encodeRows', () => {
  it('writes 64-bit integers given as bigint as JSON strings, and refuses what JSON cannot hold', async () => {
    const { encodeRows } = await import('../../store/writer.ts')
    expect(encodeRows([[1, 'a'], [2n ** 63n, 'b']])).toEqual(['[1,"a"]', '["9223372036854775808","b"]'])
    const loop: unknown[] = []
    loop.push(loop)
    expect(() => encodeRows([[1], loop])).toThrow(/row 1 cannot be encoded/)
  })
})
