// The embedded store spreads its calls over a few chDB connections to the
// same directory: chDB runs one query at a time per connection, and one
// slow query (a checkpoint, a report) must not hold up the writers.
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openMigratedStore, type Store } from '../../store/index.ts'
import { tempDir } from '../helpers.ts'

let store: Store
beforeAll(async () => {
  store = (await openMigratedStore({ env: {} }, { dataDir: join(tempDir(), 'db') })).store
})
afterAll(async () => store?.close())

describe('the embedded store', () => {
  it('stores an insert while a slow query runs, and every connection sees the same tables', async () => {
    expect(store.chdb?.size).toBe(4)
    const order: string[] = []
    const slow = store.client.query({ query: 'SELECT sleep(2)', format: 'JSONEachRow' }).then(async (r) => {
      await r.json()
      order.push('slow query')
    })
    const insert = store.client.insert({ table: 'dead_letters', values: [{ ts: Date.now(), source: 'test', code: 'X', reason: 'pool', raw: '' }], format: 'JSONEachRow' })
      .then(() => order.push('insert'))
    await Promise.all([slow, insert])
    expect(order).toEqual(['insert', 'slow query'])
    // Read back through each of the connections in turn (each call takes the least busy).
    const counts = await Promise.all([0, 1, 2, 3].map(async () => {
      const rs = await store.client.query({ query: "SELECT count() AS n FROM dead_letters WHERE reason = 'pool'", format: 'JSONEachRow' })
      return (await rs.json<{ n: string | number }>())[0]?.n
    }))
    expect(counts.map(Number)).toEqual([1, 1, 1, 1])
  })
})
