// One process owns the embedded store; other processes reach it through the
// owner, with the same client and SQL. Here the test process owns it and
// real `citytwin` processes query and write through it.
import { join } from 'node:path'
import { createClient } from '@clickhouse/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openMigratedStore, StoreOwner, type Store } from '../../store/index.ts'
import { ownerFile, readOwnerInfo } from '../../store/client.ts'
import { runCli, tempDir } from '../helpers.ts'
import { existsSync } from 'node:fs'

const dir = tempDir()
const dataDir = join(dir, 'db')
let store: Store
let owner: StoreOwner

beforeAll(async () => {
  ;({ store } = await openMigratedStore({ env: {} }, { dataDir }))
})

afterAll(async () => {
  await owner?.stop(Date.now() + 5_000)
  await store?.close()
})

describe('store owner', () => {
  it('refuses a second process with a clear message while the owner does not serve', async () => {
    const r = await runCli(['store', 'query', 'SELECT 1', '--data-dir', dataDir])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/STORE_LOCKED: the store in .* is open in another process/)
  })

  it('serves other processes once started: they read and write through it', async () => {
    owner = new StoreOwner(store)
    await owner.start()
    expect(readOwnerInfo(dataDir)).toMatchObject({ pid: process.pid, database: 'citytwin' })
    const gen = await runCli(['city', 'generate', '--seed', '3', '--scale', '0.01', '--data-dir', dataDir])
    expect(gen.stderr).toBe('')
    expect(gen.code).toBe(0)
    expect(gen.stdout).toMatch(/\(owner store\)/)
    // What the other process wrote is in this process's store.
    const rs = await store.client.query({ query: 'SELECT toUInt32(count()) AS c FROM devices', format: 'JSONEachRow' })
    expect((await rs.json<{ c: number }>())[0]?.c).toBeGreaterThan(2000)
    const q = await runCli(['store', 'query', "SELECT type, toUInt32(count()) AS n FROM devices WHERE type = 'smoke' GROUP BY type", '--data-dir', dataDir])
    expect(q.code).toBe(0)
    expect(q.stdout).toMatch(/"type":"smoke"/)
  })

  it('passes query parameters and reports server errors as ClickHouse errors', async () => {
    const info = readOwnerInfo(dataDir)
    if (!info) throw new Error('no owner file')
    const client = createClient({ url: info.url, username: 'citytwin', password: info.token, database: 'citytwin' })
    const rs = await client.query({ query: 'SELECT {n:UInt32} + 1 AS x, {s:String} AS s, {a:Array(String)} AS a', query_params: { n: 41, s: "it's", a: ['p', 'q'] }, format: 'JSONEachRow' })
    expect(await rs.json()).toEqual([{ x: 42, s: "it's", a: ['p', 'q'] }])
    await expect(client.query({ query: 'SELECT * FROM no_such_table' })).rejects.toMatchObject({ type: 'UNKNOWN_TABLE', code: '60' })
    await client.close()
  })

  it('refuses a wrong token', async () => {
    const info = readOwnerInfo(dataDir)
    if (!info) throw new Error('no owner file')
    const client = createClient({ url: info.url, username: 'citytwin', password: 'guess', database: 'citytwin' })
    await expect(client.query({ query: 'SELECT 1' })).rejects.toMatchObject({ type: 'AUTHENTICATION_FAILED' })
    await client.close()
    expect(owner.stats()).toMatchObject({ denied: 1 })
  })

  it('removes its owner file when it stops', async () => {
    await owner.stop(Date.now() + 5_000)
    expect(existsSync(ownerFile(dataDir))).toBe(false)
  })
})
