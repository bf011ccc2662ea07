// Large inserts encoded a slice at a time: the same rows, in one INSERT, with
// the event loop free between slices (for the API in the same process).
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openMigratedStore, type Store } from '../../store/index.ts'
import { encodeInSlices, insertRows, insertStatement, sendEncoded } from '../../store/insert-rows.ts'
import { classifyInsertError } from '../../store/errors.ts'
import { drained, encodeRows } from '../../store/writer.ts'
import { tempDir } from '../helpers.ts'

const dir = tempDir()
let store: Store

beforeAll(async () => {
  ;({ store } = await openMigratedStore({ env: {} }, { dataDir: join(dir, 'db') }))
  // Remembering the last inserts' tokens, as the element streams do (migration 10).
  await store.client.command({ query: "CREATE TABLE s (id UInt32, name String, at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 100" })
})

afterAll(async () => {
  await store?.close()
})

const rows = Array.from({ length: 12_001 }, (_, i) => [i, `row "${i}"`, 1_790_000_000_000 + i] as const)

describe('inserting rows a slice at a time', () => {
  it('encodes what the writer encodes, and lets the event loop turn between slices', async () => {
    let immediates = 0
    const count = (): void => {
      immediates++
      if (immediates < 100) setImmediate(count)
    }
    setImmediate(count)
    const body = await encodeInSlices(rows, 1_000)
    expect(body.toString('utf8')).toBe(encodeRows(rows).join('\n') + '\n')
    // Twelve slices, eleven turns between them: what waited for the loop ran meanwhile.
    expect(immediates).toBeGreaterThanOrEqual(11)
  })

  it('stores every row in one insert, and nothing for no rows', async () => {
    await insertRows(store.client, 's', ['id', 'name', 'at'], rows)
    await insertRows(store.client, 's', ['id', 'name', 'at'], [])
    const rs = await store.client.query({ query: "SELECT count(), uniqExact(id), max(name = 'row \"12000\"'), countDistinct(_part) FROM s", format: 'JSONCompactEachRow' })
    expect((await rs.json<number[]>())[0]?.map(Number)).toEqual([12_001, 12_001, 1, 1])
  })

  it('gives the embedded engine the bytes with their settings, and its refusal of a row reads as a bad row', async () => {
    const body = Buffer.from('[900001,"名字 \\"quoted\\"",1790000000000]\n')
    await sendEncoded(store.client, { table: 's', columns: ['id', 'name', 'at'], settings: { insert_deduplication_token: "t'1" }, body })
    // The same token again: the table keeps the last inserts' tokens, so this one is not stored twice.
    await sendEncoded(store.client, { table: 's', columns: ['id', 'name', 'at'], settings: { insert_deduplication_token: "t'1" }, body })
    const rs = await store.client.query({ query: 'SELECT count(), any(name) FROM s WHERE id = 900001', format: 'JSONCompactEachRow' })
    expect(await rs.json()).toEqual([[1, '名字 "quoted"']])
    const bad = sendEncoded(store.client, { table: 's', columns: ['id', 'name', 'at'], body: Buffer.from('[900002,"ok",1790000000000]\n["not a number","x",1]\n') })
    const e: unknown = await bad.then(() => undefined, (err: unknown) => err)
    expect(e).toBeInstanceOf(Error)
    expect(classifyInsertError(e)).toBe('row')
  })

  it("writes a server's statement with the settings quoted, which the engine reads", async () => {
    const statement = insertStatement({ table: 's', columns: ['id', 'name', 'at'], settings: { insert_deduplication_token: "it's \\ 2" } })
    expect(statement).toBe("INSERT INTO s (id, name, at) SETTINGS insert_deduplication_token = 'it\\'s \\\\ 2' FORMAT JSONCompactEachRow")
    const r = await store.client.exec({ query: statement, values: Readable.from([Buffer.from('[900003,"srv",1790000000000]\n')], { objectMode: false }) })
    await drained(r.stream)
    const rs = await store.client.query({ query: 'SELECT count() FROM s WHERE id = 900003', format: 'JSONCompactEachRow' })
    expect(await rs.json()).toEqual([[1]])
  })

  it("reads an insert's answer to its end, and a failed answer is that insert's error, not the process's", async () => {
    await expect(drained(Readable.from(['Ok.\n']))).resolves.toBeUndefined()
    const reset = new Readable({ read() { this.destroy(new Error('connection reset by the server')) } })
    await expect(drained(reset)).rejects.toThrow(/connection reset/)
  })
})
