// The deny list against the store itself (real chDB in a temp dir): read at
// start, again on refresh, the devices newly denied handed on once, and a
// store out of reach at start tried again before the start gives up.
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DenyList, listDenials, setDenial } from '../../ingest/mqtt/deny-list.ts'
import { openMigratedStore, type Store } from '../../store/index.ts'
import { tempDir } from '../helpers.ts'

let store: Store
beforeAll(async () => {
  ;({ store } = await openMigratedStore({ env: {} }, { dataDir: join(tempDir(), 'db') }))
})
afterAll(async () => {
  await store?.close()
})

describe('device deny list', () => {
  it('keeps the latest change per device, and hands on each newly denied device once', async () => {
    const denied: string[][] = []
    const list = new DenyList({ client: store.client, refreshMs: 60_000, onDenied: (ids) => void denied.push([...ids]) })
    await list.start()
    await setDenial(store.client, { deviceId: 'D1', denied: true, reason: 'stolen', actor: 'test', at: 1_000 })
    await setDenial(store.client, { deviceId: 'D2', denied: true, reason: 'floods', actor: 'test', at: 1_000 })
    await setDenial(store.client, { deviceId: 'D2', denied: false, reason: '', actor: 'test', at: 2_000 })
    await list.refresh()
    await list.refresh()
    expect([list.has('D1'), list.has('D2')]).toEqual([true, false])
    expect(denied).toEqual([['D1']])
    expect(await listDenials(store.client)).toMatchObject([{ deviceId: 'D1', reason: 'stolen', actor: 'test', at: 1_000 }])
    await list.stop()
  })

  it('tries the first read again while the store cannot answer it, and gives up after its time', async () => {
    await store.client.command({ query: 'RENAME TABLE device_denials TO device_denials_away' })
    const list = new DenyList({ client: store.client, refreshMs: 60_000, onDenied: () => undefined, startTimeoutMs: 20_000 })
    const started = list.start()
    await new Promise((r) => setTimeout(r, 500))
    await store.client.command({ query: 'RENAME TABLE device_denials_away TO device_denials' })
    await started
    expect(list.has('D1')).toBe(true)
    await list.stop()
    await store.client.command({ query: 'RENAME TABLE device_denials TO device_denials_away' })
    const never = new DenyList({ client: store.client, refreshMs: 60_000, onDenied: () => undefined, startTimeoutMs: 500 })
    await expect(never.start()).rejects.toThrow(/cannot read the device deny list/)
    await store.client.command({ query: 'RENAME TABLE device_denials_away TO device_denials' })
  })
})
