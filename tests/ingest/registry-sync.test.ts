// Devices provisioned while a cluster runs (ingest/mqtt/registry-sync.ts):
// the primary hands a change to every worker, and only once each has it in
// its registry are connections ended. A real store (chDB in a temp dir), the
// real provisioner and registries; the workers' IPC channels are in-process
// pairs that deliver a message a turn later, as a pipe would (the real
// cluster's channels are in tests/ingest/provision.test.ts).
import { EventEmitter } from 'node:events'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadDevices, type DeviceRegistry } from '../../ingest/mqtt/devices.ts'
import { createMqttIngest } from '../../ingest/mqtt/index.ts'
import { deviceToken } from '../../ingest/mqtt/tokens.ts'
import { loadConfig } from '../../lib/config.ts'
import { startAll, stopAll, type Component } from '../../lib/component.ts'
import { writerConfig } from '../../store/config.ts'
import { RegistrySync, followPrimaryRegistry, type PrimaryChannel, type SyncWorker } from '../../ingest/mqtt/registry-sync.ts'
import { RegistryWatch, readDeviceChanges } from '../../ingest/mqtt/registry-watch.ts'
import { deviceLogPosition, Provisioner, registryLogMark } from '../../registry/provision.ts'
import { openGatewayStore, type GatewayStore } from './gateway-store.ts'

interface Linked {
  worker: SyncWorker & { exit(): void }
  channel: PrimaryChannel
}

/**
 * A worker as the primary sees it and its channel as the worker sees it;
 * `answers: false` drops the worker's answers to changes; `delayMs` holds what
 * the primary sends to it (a busy worker), in order.
 */
function link(pid: number, answers = true, delayMs = 0): Linked {
  const toWorker = new EventEmitter()
  const toPrimary = new EventEmitter()
  const later = (to: EventEmitter, event: string, m: object): void => void setImmediate(() => to.emit(event, structuredClone(m)))
  let last = Promise.resolve()
  const slowly = (m: object): void => {
    last = last.then(() => new Promise<void>((r) => setTimeout(r, delayMs))).then(() => void toWorker.emit('message', structuredClone(m)))
  }
  return {
    worker: {
      process: { pid },
      isConnected: () => true,
      send: (m) => (delayMs > 0 ? slowly(m) : later(toWorker, 'message', m)),
      on: (event, listener) => toPrimary.on(event, listener),
      once: (event, listener) => toPrimary.once(event, listener),
      exit: () => toPrimary.emit('exit'),
    },
    channel: {
      connected: true,
      send: (m) => (answers || (m as { type?: string }).type !== 'citytwin-device-changes-applied') && later(toPrimary, 'message', m),
      on: (event, listener) => toWorker.on(event, listener),
    },
  }
}

describe('registry sync between a gateway primary and its workers', () => {
  let fx: GatewayStore
  let provisioner: Provisioner
  let micros: { id: number; community_id: number }[] = []

  beforeAll(async () => {
    fx = await openGatewayStore(71, 20)
    provisioner = new Provisioner({ client: fx.store.client })
    const rs = await fx.store.client.query({ query: "SELECT id, community_id FROM grids WHERE level = 'micro' ORDER BY id", format: 'JSONEachRow' })
    micros = await rs.json<{ id: number; community_id: number }>()
  })

  afterAll(async () => {
    await fx.close()
  })

  /** Polls until `ok` (the IPC pairs deliver a turn or `delayMs` later). */
  async function until(ok: () => boolean): Promise<void> {
    for (let i = 0; i < 300 && !ok(); i++) await new Promise((r) => setTimeout(r, 20))
  }

  /** Two workers, each with its own registry read from the store, following the primary. */
  async function workers(answers: [boolean, boolean] = [true, true]) {
    const since = await deviceLogPosition(fx.store.client)
    const out: { linked: Linked; registry: DeviceRegistry; ends: { ids: readonly string[]; micros: (number | undefined)[] }[] }[] = []
    for (const [i, a] of answers.entries()) {
      const registry = await loadDevices(fx.store.client)
      const watch = new RegistryWatch({ client: fx.store.client, registry, since, refreshMs: 60_000 })
      // The second worker is slow to read: were the end sent without waiting for it, the first would end its connections before the second had the change.
      const linked = link(1000 + i, a, i === 1 ? 100 : 0)
      const ends: { ids: readonly string[]; micros: (number | undefined)[] }[] = []
      // What every worker's registry says of each device at the moment this one is told to end its connections.
      followPrimaryRegistry(watch, (ids) => ends.push({ ids, micros: out.map((w) => w.registry.get(ids[0] ?? '')?.microGridId) }), linked.channel)
      out.push({ linked, registry, ends })
    }
    return out
  }

  /** A primary's sync over `ws` from the log's position now, having heard `which` of them say they listen. */
  async function syncFor(ws: { linked: Linked }[], applyTimeoutMs: number, which: boolean[] = [true, true]): Promise<RegistrySync> {
    const sync = new RegistrySync({ client: fx.store.client, since: await deviceLogPosition(fx.store.client), refreshMs: 60_000, applyTimeoutMs })
    for (const w of ws) sync.watch(w.linked.worker)
    await ready(ws, which)
    return sync
  }

  /** The workers that say they listen, as cli.ts has a worker say once its gateway does; resolves once the primary has heard. */
  async function ready(ws: { linked: Linked }[], which: boolean[] = [true, true]): Promise<void> {
    for (const [i, w] of ws.entries()) if (which[i]) w.linked.channel.send?.({ type: 'mqtt-ready', port: 0, pid: 1000 + i })
    await new Promise((r) => setTimeout(r, 20))
  }

  it('ends a moved device\'s connections only once every worker has the move', async () => {
    const id = 'X-SYNC-1'
    const [here, there] = [micros[0], micros.find((m) => m.community_id !== micros[0]?.community_id)] as [{ id: number }, { id: number }]
    expect((await provisioner.apply({ op: 'add', id, type: 'gas', at: { microGridId: here.id } }, 'test')).ok).toBe(true)
    const ws = await workers()
    const sync = await syncFor(ws, 30_000)
    // The add is older than both registries: nothing to hand over, nothing to end.
    await sync.refresh()
    expect(ws.map((w) => w.registry.get(id)?.microGridId)).toEqual([here.id, here.id])

    expect((await provisioner.apply({ op: 'move', id, at: { microGridId: there.id } }, 'test')).ok).toBe(true)
    await sync.refresh()
    await until(() => ws.every((w) => w.ends.length > 0))
    for (const w of ws) expect(w.ends).toEqual([{ ids: [id], micros: [there.id, there.id] }])
    expect(sync.stats()).toMatchObject({ changes: 1, rounds: 1, timedOut: 0 })
  })

  it('ends them after applyTimeoutMs when a worker does not answer, and at once when it has exited', async () => {
    const id = 'X-SYNC-2'
    const [here, there] = [micros[1], micros.find((m) => m.community_id !== micros[1]?.community_id)] as [{ id: number }, { id: number }]
    expect((await provisioner.apply({ op: 'add', id, type: 'gas', at: { microGridId: here.id } }, 'test')).ok).toBe(true)
    const ws = await workers([true, false])
    const sync = await syncFor(ws, 300)
    expect((await provisioner.apply({ op: 'move', id, at: { microGridId: there.id } }, 'test')).ok).toBe(true)
    await sync.refresh()
    await until(() => ws.every((w) => w.ends.length > 0))
    // The silent worker applied the move too (it only failed to say so); the timeout let the end go.
    for (const w of ws) expect(w.ends).toEqual([{ ids: [id], micros: [there.id, there.id] }])
    expect(sync.stats()).toMatchObject({ timedOut: 1 })

    // A worker that exits while the primary waits for it does not hold the others for the timeout.
    const slow = await syncFor(ws, 60_000)
    expect((await provisioner.apply({ op: 'move', id, at: { microGridId: here.id } }, 'test')).ok).toBe(true)
    const done = slow.refresh()
    setTimeout(() => ws[1]?.linked.worker.exit(), 100)
    await done
    expect(slow.stats()).toMatchObject({ rounds: 1, timedOut: 0 })
  })

  it('hands a change to a worker still starting but does not wait for it', async () => {
    const id = 'X-SYNC-4'
    const [here, there] = [micros[4], micros.find((m) => m.community_id !== micros[4]?.community_id)] as [{ id: number }, { id: number }]
    expect((await provisioner.apply({ op: 'add', id, type: 'gas', at: { microGridId: here.id } }, 'test')).ok).toBe(true)
    // The second has not said it listens (it would be loading its registry): it does not answer, and is not waited for.
    const ws = await workers([true, false])
    const sync = await syncFor(ws, 60_000, [true, false])
    expect((await provisioner.apply({ op: 'move', id, at: { microGridId: there.id } }, 'test')).ok).toBe(true)
    await sync.refresh()
    await until(() => ws.every((w) => w.ends.length > 0))
    expect(ws.map((w) => w.registry.get(id)?.microGridId)).toEqual([there.id, there.id])
    expect(sync.stats()).toMatchObject({ rounds: 1, timedOut: 0 })
  })

  it('never lets an older change handed over undo a newer one a worker read itself', async () => {
    const id = 'X-SYNC-3'
    const [a, b] = [micros[2], micros[3]] as [{ id: number }, { id: number }]
    const since = await deviceLogPosition(fx.store.client)
    expect((await provisioner.apply({ op: 'add', id, type: 'gas', at: { microGridId: a.id } }, 'test')).ok).toBe(true)
    expect((await provisioner.apply({ op: 'move', id, at: { microGridId: b.id } }, 'test')).ok).toBe(true)
    const rows = await readDeviceChanges(fx.store.client, since)
    expect(rows.map((r) => r[2])).toEqual(['add', 'move'])
    const registry = await loadDevices(fx.store.client)
    const watch = new RegistryWatch({ client: fx.store.client, registry, since, refreshMs: 60_000 })
    expect(watch.apply(rows)).toEqual([id])
    expect(registry.get(id)?.microGridId).toBe(b.id)
    // The add alone, handed over late: already applied, skipped.
    expect(watch.apply(rows.slice(0, 1))).toEqual([])
    expect(registry.get(id)?.microGridId).toBe(b.id)
  })

  it('reads a change that landed after a later-stamped one was read, once, and the twin\'s mark moves for it', async () => {
    const [a, b] = ['X-SYNC-6', 'X-SYNC-7']
    const [here, there] = [micros[6], micros[7]] as [{ id: number; community_id: number }, { id: number; community_id: number }]
    for (const id of [a, b]) expect((await provisioner.apply({ op: 'add', id, type: 'gas', at: { microGridId: here.id } }, 'test')).ok).toBe(true)
    const registry = await loadDevices(fx.store.client)
    const ended: string[][] = []
    const watch = new RegistryWatch({ client: fx.store.client, registry, since: await deviceLogPosition(fx.store.client), refreshMs: 60_000, onChanged: (ids) => ended.push([...ids]) })
    await watch.refresh()
    ended.length = 0 // the read's overlap applies the two adds again, to the same result
    const moved = await provisioner.apply({ op: 'move', id: a, at: { microGridId: there.id } }, 'test')
    expect(moved.ok).toBe(true)
    await watch.refresh()
    expect(ended).toEqual([[a]])
    const mark = await registryLogMark(fx.store.client)
    // Another process stamped its change of b just before a's and wrote it only now.
    const stamp = new Date((moved as { at: number }).at - 5).toISOString().replace('T', ' ').replace('Z', '')
    await fx.store.client.insert({
      table: 'device_changes', format: 'JSONEachRow',
      values: [{ at: stamp, device_id: b, op: 'move', type: 'gas', micro_grid_id: there.id, community_id: there.community_id, street_id: 0, district_id: 0, lon: 0, lat: 0, interval_s: 5, credential_version: 0, actor: 'test', reason: 'late' }],
    })
    expect(await registryLogMark(fx.store.client)).not.toBe(mark)
    await watch.refresh()
    expect(ended).toEqual([[a], [b]])
    expect(registry.get(b)?.microGridId).toBe(there.id)
    await watch.refresh()
    expect(ended).toEqual([[a], [b]])
  })

  it('in a gateway of one process, ends a moved device\'s connection on reading the move itself', async () => {
    const id = 'X-SYNC-5'
    const [here, there] = [micros[5], micros.find((m) => m.community_id !== micros[5]?.community_id)] as [{ id: number }, { id: number }]
    expect((await provisioner.apply({ op: 'add', id, type: 'gas', at: { microGridId: here.id } }, 'test')).ok).toBe(true)
    const secret = 'registry-sync-test-secret-0123456789'
    const writer = { ...loadConfig(writerConfig, { env: {} }), flushIntervalMs: 20 }
    const ingest = await createMqttIngest(fx.store, writer, { env: {} }, { port: 0, host: '127.0.0.1', deviceSecret: secret, denyListRefreshMs: 100 })
    const started: Component[] = []
    await startAll(ingest.components, started)
    try {
      const device = await mqtt.connectAsync(`mqtt://127.0.0.1:${ingest.gateway.port}`, { clientId: id, username: id, password: deviceToken(secret, id), reconnectPeriod: 0 })
      const closed = new Promise<void>((resolve) => device.once('close', () => resolve()))
      expect((await provisioner.apply({ op: 'move', id, at: { microGridId: there.id } }, 'test')).ok).toBe(true)
      let timer: NodeJS.Timeout | undefined
      await Promise.race([closed, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('the moved device\'s connection was not ended within 30 s')), 30_000)))])
      clearTimeout(timer)
      await device.endAsync()
    } finally {
      await stopAll(started, Date.now() + 5_000)
    }
  })
})
