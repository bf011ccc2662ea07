// The twin writes its own checkpoint (the latest value of each device's
// metrics, its latest connectivity, the bus positions applied) and a twin
// that loads reads the checkpoint and then what was stored after its
// positions. No view writes those tables on every insert any more.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EVENTS_COLUMNS } from '../../ingest/mqtt/gateway.ts'
import { eventElements } from '../../lib/bus/stored.ts'
import { PositionClock } from '../../lib/bus/position.ts'
import { loadConfig } from '../../lib/config.ts'
import { generateCity } from '../../simulators/city/generate.ts'
import { checkpointRows } from '../../twin/state/checkpoint.ts'
import { loadTwin } from '../../twin/state/load.ts'
import { writerConfig } from '../../store/config.ts'
import { StoreWriter } from '../../store/writer.ts'
import { openSystem, type TestSystem } from '../system.ts'

const city = generateCity({ seed: 41, scale: 0.01 })
const water = city.devices.filter((d) => d.type === 'water_level')

let sys: TestSystem
let events: StoreWriter

beforeAll(async () => {
  // A bus of 5 elements per subscriber, so a test can make the twin lose some.
  sys = await openSystem(city, { sweepIntervalMs: 3_600_000 }, 5)
  events = new StoreWriter({ client: sys.store.client, table: 'events', columns: EVENTS_COLUMNS, config: { ...loadConfig(writerConfig, { env: {} }), flushIntervalMs: 20 }, positions: new PositionClock() })
  await events.start()
})

afterAll(async () => {
  await events?.stop(Date.now() + 2_000)
  await sys?.close()
})

async function count(query: string, params: Record<string, unknown> = {}): Promise<number> {
  const rs = await sys.store.client.query({ query, query_params: params, format: 'JSONCompactEachRow' })
  const [[n] = [0]] = await rs.json<[number | string]>()
  return Number(n)
}

const latestOf = (id: string) => count('SELECT count() FROM device_latest WHERE device_id = {id:String}', { id })

/** A device's connectivity as the gateway stores and publishes it. */
async function connectivity(deviceIndex: number, kind: 'connected' | 'disconnected', ts: number): Promise<void> {
  const d = water[deviceIndex]
  if (!d) throw new Error('no device')
  const row = [ts, 'device', d.id, kind, 'info', d.microGridId, d.communityId, d.streetId, d.districtId, d.lon, d.lat, '{}', '']
  const stored = await events.write([row])
  sys.bus.publish(eventElements([row], stored.position))
  await sys.bus.idle()
}

function expectSameDevices(rebuilt: Awaited<ReturnType<typeof loadTwin>>, ids: string[]): void {
  const now = Date.now()
  rebuilt.sweep(now)
  sys.live.twin.sweep(now)
  for (const id of ids) {
    const i = sys.live.twin.deviceIndex(id) ?? -1
    expect(rebuilt.deviceLive(i), id).toEqual(sys.live.twin.deviceLive(i))
  }
}

describe("the twin's checkpoint", () => {
  it('is written by the twin, not on every insert, and a load reads it and what was stored after it', async () => {
    const [a, b, c] = water
    if (!a || !b || !c) throw new Error('no water gauges')
    const t = Date.now() - 5_000
    await sys.report(a.id, t, { level_cm: 12 })
    await connectivity(2, 'connected', t)
    // No view: the insert into readings wrote nothing into the checkpoint's tables.
    expect(await latestOf(a.id)).toBe(0)
    const before = await count('SELECT count() FROM twin_checkpoints')

    await sys.live.checkpoint()
    expect(await latestOf(a.id)).toBe(1)
    expect(await count("SELECT count() FROM device_connectivity WHERE device_id = {id:String} AND connected = 1", { id: c.id })).toBe(1)
    expect(await count('SELECT count() FROM twin_checkpoints')).toBe(before + 1)
    expect(sys.live.stats()).toMatchObject({ checkpoints: 1, checkpointFailures: 0, checkpointPending: 0 })
    // Each part of the twin is counted too (docs/twin.md, "Its parts").
    const twin = sys.live.twin
    expect(sys.live.stats()['parts']).toEqual({
      index: { grids: twin.grids.length, devices: twin.devices.length, cameras: twin.cameras.length },
      live: { devices: twin.devices.length, cameras: twin.cameras.length, openTickets: expect.any(Number) as number },
      rollups: { rows: expect.any(Number) as number, changed: expect.any(Number) as number },
    })

    // After the checkpoint: b reports, c disconnects, and a's reading is gone from the readings.
    await sys.report(b.id, t + 1_000, { level_cm: 34 })
    await connectivity(2, 'disconnected', t + 1_000)
    await sys.store.client.command({ query: 'ALTER TABLE readings DELETE WHERE device_id = {id:String}', query_params: { id: a.id }, clickhouse_settings: { mutations_sync: '1' } })
    expect(await latestOf(b.id)).toBe(0)

    const rebuilt = await loadTwin(sys.store.client, sys.live.twin.policy)
    // a from the checkpoint alone; b and c's disconnection from what was stored after it.
    expectSameDevices(rebuilt, [a.id, b.id, c.id])
    const i = (id: string) => rebuilt.deviceIndex(id) ?? -1
    expect(rebuilt.deviceLive(i(a.id)).values[0]).toBe(12)
    expect(rebuilt.deviceLive(i(b.id)).values[0]).toBe(34)
    expect(rebuilt.deviceLive(i(c.id)).connected).toBe(false)
  })

  it('reads back from the store what the bus dropped for the twin, and takes nothing twice', async () => {
    const some = water.slice(3, 11)
    const twin = sys.live.twin
    const applied = twin.applied
    const t = Date.now() - 2_000
    // Eight readings stored, then published together: five fit on the bus, three are dropped for the twin.
    const published = []
    for (const [k, d] of some.entries()) {
      const stored = await sys.readings.write([[t + k, d.id, d.type, 'level_cm', 100 + k, 1, d.microGridId, d.communityId, d.streetId, d.districtId, t + k]])
      published.push({ kind: 'reading' as const, deviceId: d.id, ts: t + k, values: { level_cm: 100 + k }, ...(stored.position === undefined ? {} : { pos: stored.position }) })
    }
    for (const e of published) sys.bus.publish([e])
    await sys.bus.idle()
    // The twin read the eight back from the store, so it holds all of them ...
    for (const [k, d] of some.entries()) expect(sys.live.twin.deviceLive(sys.live.twin.deviceIndex(d.id) ?? -1).values[0]).toBe(100 + k)
    // ... in place (no rebuild of the whole city), and skipped the five the bus still brought.
    expect(sys.live.twin).toBe(twin)
    expect(twin.applied - applied).toBe(8)
    expect(sys.live.stats()).toMatchObject({ caughtUp: 8, rebuilds: 0 })
    // ... and so does its next checkpoint, also those that never reached it on the bus.
    await sys.live.checkpoint()
    for (const d of some) expect(await latestOf(d.id)).toBe(1)
    expectSameDevices(await loadTwin(sys.store.client, sys.live.twin.policy), some.map((d) => d.id))
  })

  it('reads the twin a slice of devices at a time, with turns of the event loop between, and takes what was applied meanwhile', async () => {
    const some = water.slice(13, 23)
    const t = Date.now() - 3_000
    for (const [k, d] of some.entries()) await sys.report(d.id, t + k, { level_cm: 200 + k })
    const twin = sys.live.twin
    const last = some[some.length - 1]
    if (!last) throw new Error('no device')
    // Turns of the event loop while the rows are read; at the first, a newer reading of the last device.
    let turns = 0
    let reading = true
    const spin = (): void => {
      if (!reading) return
      if (turns++ === 0) twin.apply([{ kind: 'reading', deviceId: last.id, ts: t + 100, values: { level_cm: 999 } }], Date.now())
      setImmediate(spin)
    }
    setImmediate(spin)
    const rows = await checkpointRows(twin, { readings: new Set(some.map((d) => d.id)), connectivity: new Map(), positions: { readings: 0, events: 0 } }, 3)
    reading = false
    // Ten devices in slices of three: three turns at least.
    expect(turns).toBeGreaterThanOrEqual(3)
    const lines = rows.latest.body.toString().trim().split('\n').map((l) => JSON.parse(l) as unknown)
    expect(rows.latest.rows).toBe(lines.length)
    // One row a metric reported (no battery reading, no battery row); the last device as the twin had it when read.
    expect(lines).toEqual(some.map((d, k) => (d === last ? [d.id, 'level_cm', t + 100, 999] : [d.id, 'level_cm', t + k, 200 + k])))
  })

  it('is written once more when the twin stops', async () => {
    const d = water[12]
    if (!d) throw new Error('no device')
    await sys.report(d.id, Date.now(), { level_cm: 56 })
    expect(await latestOf(d.id)).toBe(0)
    await sys.live.stop()
    expect(await latestOf(d.id)).toBe(1)
  })
})
