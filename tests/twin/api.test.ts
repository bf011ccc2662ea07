// The twin's HTTP API and live feed against a real chDB store, with real
// HTTP and WebSocket clients: state from the bus, roll-ups matching the
// lists, history and as-of from the store, validation, auth, OpenAPI, and a
// rebuild after restart equal to the live state.
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Validator } from '@seriousme/openapi-schema-validator'
import WebSocket from 'ws'
import { MemoryBus } from '../../lib/bus/bus.ts'
import { loadConfig } from '../../lib/config.ts'
import { READINGS_COLUMNS } from '../../ingest/mqtt/telemetry.ts'
import { EVENTS_COLUMNS } from '../../ingest/mqtt/gateway.ts'
import { generateCity } from '../../simulators/city/generate.ts'
import { DEVICE_TYPES } from '../../registry/device-types.ts'
import { writeCity } from '../../registry/city-store.ts'
import { apiConfig } from '../../twin/api/config.ts'
import { ApiServer } from '../../twin/api/server.ts'
import { LiveTwin } from '../../twin/state/live-twin.ts'
import { loadTwin } from '../../twin/state/load.ts'
import { PositionClock } from '../../lib/bus/position.ts'
import { CITY_ID } from '../../twin/state/twin.ts'
import { openMigratedStore, Rollups, StoreWriter, type Store } from '../../store/index.ts'
import { tempDir } from '../helpers.ts'
import { twinConfig } from '../../twin/state/config.ts'

const ADMIN = 'admin-token-0123456789'
const VIEWER = 'viewer-token-0123456789'
const city = generateCity({ seed: 21, scale: 0.01 })
let store: Store
let bus: MemoryBus
let live: LiveTwin
let api: ApiServer
let readings: StoreWriter
let events: StoreWriter
let rollups: Rollups
const NOW = Date.now()

async function get<T>(path: string, token?: string): Promise<{ status: number; body: T }> {
  const res = await fetch(`${api.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} })
  return { status: res.status, body: (await res.json()) as T }
}

beforeAll(async () => {
  const opened = await openMigratedStore({ env: {} }, { dataDir: join(tempDir(), 'db') })
  store = opened.store
  await writeCity(store.client, city, opened.writerCfg)
  const fast = { ...opened.writerCfg, flushIntervalMs: 20 }
  // Positions as the gateway's writers stamp them: a twin loads what was stored after its checkpoint by position.
  const positions = new PositionClock()
  rollups = new Rollups({ client: store.client, columns: READINGS_COLUMNS, intervalMs: 3_600_000 })
  await rollups.start()
  readings = new StoreWriter({ client: store.client, table: 'readings', columns: READINGS_COLUMNS, config: fast, positions, onStored: rollups.onStored })
  events = new StoreWriter({ client: store.client, table: 'events', columns: EVENTS_COLUMNS, config: fast, positions })
  await readings.start()
  await events.start()
  bus = new MemoryBus()
  live = new LiveTwin({ client: store.client, bus, config: { ...twinConfig.schema.parse({}), silentAfterIntervals: 3, maxLagMs: 0, degradedAfterMs: 0, sweepIntervalMs: 200, checkpointIntervalMs: 3_600_000 } })
  await live.start()
  api = new ApiServer({
    config: loadConfig(apiConfig, { env: {}, overrides: { port: 0, openReads: true, liveTickMs: 50, liveMaxRowsPerMessage: 100, liveMaxBoxes: 3, tokens: [{ name: 'ops-admin', role: 'admin', token: ADMIN }, { name: 'wall', role: 'viewer', token: VIEWER }] } }),
    client: store.client, twin: live,
  })
  await api.start()
})

afterAll(async () => {
  await api?.stop(Date.now() + 2_000)
  await live?.stop()
  await readings?.stop(Date.now() + 2_000)
  await rollups?.stop(Date.now() + 2_000)
  await events?.stop(Date.now() + 2_000)
  await store?.close()
})

/** What the gateway does: store the rows, then publish the elements; resolves once the twin has taken them. */
async function report(deviceId: string, ts: number, values: Record<string, number>): Promise<void> {
  const d = city.devices.find((x) => x.id === deviceId)
  if (!d) throw new Error(`no ${deviceId}`)
  await readings.write(Object.entries(values).map(([m, v]) => [ts, d.id, d.type, m, v, 1, d.microGridId, d.communityId, d.streetId, d.districtId, ts]))
  bus.publish([{ kind: 'reading', deviceId, ts, values }])
  await bus.idle()
}

async function connectivity(deviceId: string, ts: number, state: 'connected' | 'disconnected'): Promise<void> {
  const d = city.devices.find((x) => x.id === deviceId)
  if (!d) throw new Error(`no ${deviceId}`)
  await events.write([[ts, 'device', d.id, state, 'info', d.microGridId, d.communityId, d.streetId, d.districtId, d.lon, d.lat, '{}', '']])
  bus.publish([{ kind: 'connectivity', deviceId, ts, state }])
  await bus.idle()
}

const smoke = city.devices.filter((d) => d.type === 'smoke')
const water = city.devices.filter((d) => d.type === 'water_level')

describe('twin API: live state', () => {
  it('shows a device online with its latest values once it reports, and offline after a disconnect', async () => {
    const d = water[0]
    if (!d) throw new Error('no water level device')
    await connectivity(d.id, NOW - 5_000, 'connected')
    await report(d.id, NOW - 4_000, { level_cm: 12.5, battery_pct: 88 })
    const got = await get<{ status: string; values: Record<string, { value: number }>; battery: number }>(`/api/devices/${d.id}`)
    expect(got.status).toBe(200)
    expect(got.body).toMatchObject({ status: 'online', battery: 88, values: { level_cm: { value: 12.5 } } })
    const other = water[1]
    if (!other) throw new Error('no second device')
    await report(other.id, NOW - 3_000, { level_cm: 3 })
    await connectivity(other.id, NOW - 2_000, 'disconnected')
    expect((await get<{ status: string }>(`/api/devices/${other.id}`)).body.status).toBe('offline')
  })

  it('tells a silent device (no data for k intervals, never disconnected) from a disconnected one', async () => {
    const d = smoke[0]
    if (!d) throw new Error('no smoke device')
    await connectivity(d.id, NOW - 10 * d.intervalS * 1000, 'connected')
    await report(d.id, NOW - 4 * d.intervalS * 1000, { smoke_obscuration_pct: 0.1 })
    live.twin.sweep()
    expect((await get<{ status: string }>(`/api/devices/${d.id}`)).body.status).toBe('silent')
    const silent = await get<{ items: { id: string }[]; total: number }>(`/api/devices?state=silent&limit=1000`)
    expect(silent.body.items.map((x) => x.id)).toContain(d.id)
  })

  it('says whether ingest is degraded, on its own route and with the city', async () => {
    const healthy = { degraded: false, since: null, reason: null, shedding: false }
    expect((await get('/api/ingest')).body).toMatchObject(healthy)
    expect((await get<{ ingest: unknown }>('/api/city')).body.ingest).toMatchObject(healthy)
  })

  it('rolls counts up the hierarchy: the city, a district and its streets agree with the device lists', async () => {
    const cityView = await get<{ city: { devices: Record<string, number>; health: number }; districts: { id: number; devices: { total: number } }[] }>('/api/city')
    expect(cityView.body.city.devices.total).toBe(city.devices.length)
    expect(cityView.body.districts.reduce((n, x) => n + x.devices.total, 0)).toBe(city.devices.length)
    const online = await get<{ total: number }>('/api/devices?state=online&limit=1')
    expect(cityView.body.city.devices.online).toBe(online.body.total)
    const d = water[0]
    if (!d) throw new Error('no device')
    const district = await get<{ grid: { devices: Record<string, number> }; children: { devices: { total: number } }[] }>(`/api/grids/${d.districtId}`)
    expect(district.body.children.reduce((n, s) => n + s.devices.total, 0)).toBe(district.body.grid.devices.total)
    const inDistrict = await get<{ total: number }>(`/api/devices?grid=${d.districtId}&limit=1`)
    expect(inDistrict.body.total).toBe(district.body.grid.devices.total)
    const communities = await get<{ items: unknown[]; total: number; next: string | null }>('/api/grids?level=community&limit=50')
    expect(communities.body.items).toHaveLength(50)
    expect(communities.body.next).toBe('50')
  })
})

describe('twin API: history and as-of', () => {
  it('downsamples a metric to at most N points and answers as-of queries from the store', async () => {
    const d = water[2]
    if (!d) throw new Error('no device')
    const t0 = NOW - 600_000
    for (let k = 0; k < 60; k++) await report(d.id, t0 + k * 10_000, { level_cm: k })
    const h = await get<{ points: { t: number; n: number; avg: number; min: number; max: number }[] }>(`/api/devices/${d.id}/history?metric=level_cm&from=${t0}&to=${t0 + 600_000}&points=6`)
    expect(h.status).toBe(200)
    expect(h.body.points).toHaveLength(6)
    expect(h.body.points[0]).toMatchObject({ t: t0, n: 10, min: 0, max: 9, avg: 4.5 })
    const asOf = await get<{ values: Record<string, { value: number }>; status: string }>(`/api/devices/${d.id}/asof?t=${t0 + 95_000}`)
    expect(asOf.body.values.level_cm?.value).toBe(9)
    expect(asOf.body.status).toBe('online')
    const grid = await get<{ devices: { reporting: number; total: number } }>(`/api/grids/${d.communityId}/asof?t=${t0 + 95_000}`)
    expect(grid.status).toBe(200)
    expect(grid.body.devices.reporting).toBeGreaterThanOrEqual(1)
    // This minute: the roll-ups hold it until it has ended, and the answer sums it from the readings.
    const now = Date.now()
    await report(d.id, now, { level_cm: 77 })
    const current = await get<{ metrics: Record<string, { n: number; max: number }> }>(`/api/grids/${d.communityId}/asof?t=${now}`)
    expect(current.body.metrics.level_cm).toMatchObject({ max: 77 })
  })
})

describe('twin API: map geometry', () => {
  it('answers a box with every grid that overlaps it, also one whose centroid is outside', async () => {
    const g = city.grids.find((x) => x.level === 'micro')
    const corner = g?.ring[0]
    if (!g || !corner) throw new Error('no micro-grid')
    // A tiny box just inside the grid's first corner, far from its centroid.
    const [lon, lat] = [corner[0] + (g.centroid[0] - corner[0]) * 0.05, corner[1] + (g.centroid[1] - corner[1]) * 0.05]
    const box = [lon - 1e-5, lat - 1e-5, lon + 1e-5, lat + 1e-5].join(',')
    const res = await fetch(`${api.url}/api/map/grids?level=micro&bbox=${box}`)
    expect(res.status).toBe(200)
    const buf = Buffer.from(await res.arrayBuffer())
    expect(buf.subarray(0, 4).toString('latin1')).toBe('CTG1')
    const count = buf.readUInt32LE(4)
    const ids = Array.from({ length: count }, (_, i) => buf.readInt32LE(12 + 4 * i))
    expect(ids).toContain(g.id)
  })
})

describe('twin API: replay for the time slider', () => {
  it('gives each hour of the last day a health from the hourly roll-ups and the tickets open at its end', async () => {
    const HOUR = 3_600_000
    const h0 = Math.floor(NOW / HOUR) * HOUR
    // A community none of the other tests reports in.
    const used = new Set(water.map((d) => d.communityId))
    const community = city.grids.find((g) => g.level === 'community' && !used.has(g.id) && city.devices.filter((d) => d.communityId === g.id).length >= 4)
    if (!community) throw new Error('no quiet community')
    const devices = city.devices.filter((d) => d.communityId === community.id)
    // Two hours ago every device reported at its interval; an hour ago only the first half did.
    const half = Math.floor(devices.length / 2)
    const rows: unknown[][] = []
    for (const [frame, reporting] of [[h0 - 2 * HOUR, devices], [h0 - HOUR, devices.slice(0, half)]] as const) {
      for (const d of reporting) {
        const spec = DEVICE_TYPES.find((t) => t.type === d.type)
        for (let ts = frame; ts < frame + HOUR; ts += d.intervalS * 1000) {
          for (const m of spec?.metrics ?? []) rows.push([ts, d.id, d.type, m.name, m.typical, 1, d.microGridId, d.communityId, d.streetId, d.districtId, ts])
        }
      }
    }
    await readings.write(rows)
    // Summed into the hourly roll-up, as the gateway's writer process does every few seconds (all of it: the last minute may not have ended 10 s ago).
    await rollups.flush({ all: true })
    // A warning ticket opened in the later hour, still open.
    await store.client.insert({ table: 'tickets', format: 'JSONEachRow', values: [{ id: 'T-replay-1', version: 1, created_at: h0 - HOUR + 60_000, updated_at: h0 - HOUR + 60_000, origin: 'proactive', status: 'dispatched', severity: 'warning', micro_grid_id: 0, community_id: community.id, street_id: community.streetId, district_id: community.districtId }] })
    const [lon, lat] = community.centroid
    const box = [lon - 1e-6, lat - 1e-6, lon + 1e-6, lat + 1e-6].join(',')
    const r = await get<{ times: number[]; ids: number[]; health: number[]; worst: number[]; stepMs: number }>(`/api/map/replay?level=community&bbox=${box}&to=${h0}`)
    expect(r.status).toBe(200)
    expect(r.body.stepMs).toBe(HOUR)
    expect(r.body.times).toHaveLength(24)
    expect(r.body.times.at(-1)).toBe(h0 - HOUR)
    const col = r.body.ids.indexOf(community.id)
    expect(col).toBeGreaterThanOrEqual(0)
    const at = (f: number): { health: number; worst: number } => ({ health: r.body.health[f * r.body.ids.length + col] ?? NaN, worst: r.body.worst[f * r.body.ids.length + col] ?? NaN })
    // No readings at all three hours ago: no data. Two hours ago: all reported, nothing open.
    expect(at(20)).toEqual({ health: -1, worst: 0 })
    expect(at(22)).toEqual({ health: 100, worst: 0 })
    // An hour ago: half reported, and a warning was open (5 points per 100 assets): the live score's formula.
    expect(at(23)).toEqual({ health: Math.round((100 * half) / devices.length) - 5, worst: 2 })
    const street = await get<{ ids: number[] }>(`/api/map/replay?level=street&to=${h0}`)
    expect(street.body.ids).toContain(community.streetId)
    const bad = await get<{ error: { code: string; message: string } }>(`/api/map/replay?from=${h0}&to=${h0 - 1}`)
    expect(bad.status).toBe(400)
    expect(bad.body.error.message).toMatch(/before/)
    expect((await get<unknown>('/api/map/replay?level=micro')).status).toBe(400)
  })
})

describe('twin API: validation, auth and the document', () => {
  it('answers a bad request with 400 naming the field, and an unknown one with 404', async () => {
    const bad = await get<{ error: { code: string; message: string } }>('/api/devices?state=sleepy')
    expect(bad.status).toBe(400)
    expect(bad.body.error.message).toMatch(/query\.state/)
    expect((await get('/api/devices?limit=5000')).status).toBe(400)
    expect((await get('/api/grids?bbox=1,2,3')).status).toBe(400)
    expect((await get('/api/devices/D9999999')).status).toBe(404)
    expect((await get('/api/grids/999999999')).status).toBe(404)
    expect((await get('/api/nothing')).status).toBe(404)
    const escape = await get<{ error: { code: string; message: string } }>('/api/devices/%ZZ')
    expect({ status: escape.status, code: escape.body.error.code }).toEqual({ status: 400, code: 'BAD_REQUEST' })
    expect(escape.body.error.message).toMatch(/percent-encoding/)
    expect((await get('/api/grids/%E0%A4%A')).status).toBe(400)
    const d = water[0]
    expect((await get(`/api/devices/${d?.id}/history?metric=level_cm&from=10&to=5`)).status).toBe(400)
  })

  it('needs an admin token to rebuild the twin', async () => {
    const post = (token?: string) => fetch(`${api.url}/api/admin/twin/rebuild`, { method: 'POST', headers: token ? { authorization: `Bearer ${token}` } : {} })
    expect((await post()).status).toBe(401)
    expect((await post('not-a-token-at-all-xx')).status).toBe(401)
    expect((await post(VIEWER)).status).toBe(403)
    const ok = await post(ADMIN)
    expect(ok.status).toBe(200)
    expect(await ok.json()).toMatchObject({ ok: true, by: 'ops-admin' })
  })

  it('needs a token for reads by default (open reads are the demo\'s), over HTTP and on the live feed', async () => {
    const closed = new ApiServer({ config: loadConfig(apiConfig, { env: {}, overrides: { port: 0, tokens: [{ name: 'wall', role: 'viewer', token: VIEWER }] } }), client: store.client, twin: live })
    await closed.start()
    try {
      const read = (token?: string) => fetch(`${closed.url}/api/city`, { headers: token ? { authorization: `Bearer ${token}` } : {} })
      expect((await read()).status).toBe(401)
      expect((await read(VIEWER)).status).toBe(200)
      expect((await fetch(`${closed.url}/healthz`)).status).toBe(200) // probes carry no token
      const refused = await new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(`${closed.url.replace('http', 'ws')}/api/live`)
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
        ws.on('open', () => reject(new Error('the live feed opened without a token')))
        ws.on('error', () => undefined)
      })
      expect(refused).toBe(401)
      const opened = await new Promise<boolean>((resolve) => {
        const ws = new WebSocket(`${closed.url.replace('http', 'ws')}/api/live?access_token=${VIEWER}`)
        ws.on('open', () => {
          ws.close()
          resolve(true)
        })
        ws.on('unexpected-response', () => resolve(false))
        ws.on('error', () => resolve(false))
      })
      expect(opened).toBe(true)
    } finally {
      await closed.stop(Date.now() + 2_000)
    }
  })

  it('answers with security headers, routes and errors alike', async () => {
    for (const path of ['/api/city', '/api/nothing']) {
      const res = await fetch(`${api.url}${path}`)
      expect(res.headers.get('x-content-type-options')).toBe('nosniff')
      expect(res.headers.get('x-frame-options')).toBe('DENY')
      expect(res.headers.get('content-security-policy')).toBe("frame-ancestors 'none'")
      expect(res.headers.get('referrer-policy')).toBe('no-referrer')
      // Same origin only unless configured: no CORS header for another site's page.
      expect((await fetch(`${api.url}${path}`, { headers: { origin: 'https://elsewhere.example' } })).headers.get('access-control-allow-origin')).toBeNull()
    }
  })

  it('lets the configured origins call it from a browser (CORS), and no other', async () => {
    const cors = new ApiServer({ config: loadConfig(apiConfig, { env: {}, overrides: { port: 0, openReads: true, corsOrigins: ['https://ops.example.city'] } }), client: store.client, twin: live })
    await cors.start()
    try {
      const pre = await fetch(`${cors.url}/api/tickets`, { method: 'OPTIONS', headers: { origin: 'https://ops.example.city', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } })
      expect(pre.status).toBe(204)
      expect(pre.headers.get('access-control-allow-origin')).toBe('https://ops.example.city')
      expect(pre.headers.get('access-control-allow-headers')).toContain('authorization')
      const read = await fetch(`${cors.url}/api/city`, { headers: { origin: 'https://ops.example.city' } })
      expect(read.status).toBe(200)
      expect(read.headers.get('access-control-allow-origin')).toBe('https://ops.example.city')
      const other = await fetch(`${cors.url}/api/city`, { headers: { origin: 'https://evil.example' } })
      expect(other.headers.get('access-control-allow-origin')).toBeNull()
      expect((await fetch(`${cors.url}/api/city`, { method: 'OPTIONS', headers: { origin: 'https://evil.example' } })).status).toBe(405)
    } finally {
      await cors.stop(Date.now() + 2_000)
    }
  })

  it('answers 429 to an address that sent too many unknown tokens, a good token and the live feed included, and counts it', async () => {
    const guarded = new ApiServer({ config: loadConfig(apiConfig, { env: {}, overrides: { port: 0, authFailuresPerMinute: 3, tokens: [{ name: 'wall', role: 'viewer', token: VIEWER }] } }), client: store.client, twin: live })
    await guarded.start()
    try {
      const read = (token: string) => fetch(`${guarded.url}/api/city`, { headers: { authorization: `Bearer ${token}` } })
      expect((await read(VIEWER)).status).toBe(200)
      for (let i = 0; i < 3; i++) expect((await read(`guess-${i}-xxxxxxxxxxxxxxxx`)).status).toBe(401)
      const blocked = await read(VIEWER)
      expect(blocked.status).toBe(429)
      expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0)
      expect(await blocked.json()).toMatchObject({ error: { code: 'TOO_MANY_AUTH_FAILURES' } })
      const refused = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`${guarded.url.replace('http', 'ws')}/api/live?access_token=${VIEWER}`)
        ws.on('unexpected-response', (_req, res) => resolve(Number(res.headers['retry-after']) > 0 ? (res.statusCode ?? 0) : -1))
        ws.on('open', () => resolve(101))
        ws.on('error', () => undefined)
      })
      expect(refused).toBe(429)
      const metrics = await (await fetch(`${api.url}/metrics`)).text()
      expect(metrics).toMatch(/citytwin_api_auth_failures_total\{outcome="throttled"[^}]*\} [1-9]/)
    } finally {
      await guarded.stop(Date.now() + 2_000)
    }
  })

  it('serves an OpenAPI 3.1 document listing every route', async () => {
    const doc = await get<{ openapi: string; paths: Record<string, Record<string, { parameters?: { name: string }[] }>> }>('/api/openapi.json')
    expect(doc.body.openapi).toBe('3.1.0')
    for (const r of api.router.routes) expect(doc.body.paths[r.path]?.[r.method.toLowerCase()], `${r.method} ${r.path}`).toBeDefined()
    expect(doc.body.paths['/api/devices']?.get?.parameters?.map((p) => p.name)).toEqual(expect.arrayContaining(['type', 'state', 'grid', 'bbox', 'limit', 'cursor']))
    expect(doc.body.paths['/api/live']).toBeDefined()
    // Valid against the OpenAPI 3.1 schema itself.
    const validator = new Validator()
    const result = await validator.validate(doc.body)
    expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([])
    expect(result.valid).toBe(true)
  })
})

describe('twin: rebuild and live feed', () => {
  it('rebuilds from the store to the same state it holds live', async () => {
    await readings.stop(Date.now() + 2_000)
    await events.stop(Date.now() + 2_000)
    await readings.start()
    await events.start()
    const rebuilt = await loadTwin(store.client, live.twin.policy)
    const now = Date.now()
    live.twin.sweep(now)
    rebuilt.sweep(now)
    expect(rebuilt.counts(CITY_ID)).toEqual(live.twin.counts(CITY_ID))
    for (const d of [...water.slice(0, 3), ...smoke.slice(0, 1)]) {
      const i = live.twin.deviceIndex(d.id) ?? -1
      expect(rebuilt.deviceLive(i)).toEqual(live.twin.deviceLive(i))
    }
  })

  it('gives what is published during a rebuild to the rebuilt twin, not to the one it replaces', async () => {
    const d = water[5]
    if (!d) throw new Error('no device')
    const ts = Date.now()
    const before = live.twin
    const rebuilding = live.rebuild()
    // Published while the store is being read (its row lands after that read).
    bus.publish([{ kind: 'reading', deviceId: d.id, ts, values: { level_cm: 77 } }])
    await rebuilding
    await bus.idle()
    await readings.write([[ts, d.id, d.type, 'level_cm', 77, 1, d.microGridId, d.communityId, d.streetId, d.districtId, ts]])
    expect(live.twin).not.toBe(before)
    const shown = await get<{ values: Record<string, { value: number }> }>(`/api/devices/${d.id}`)
    expect(shown.body.values.level_cm?.value).toBe(77)
  })

  it('pushes coalesced deltas for a subscribed level and a bounding box', async () => {
    const ws = new WebSocket(`${api.url.replace('http', 'ws')}/api/live`)
    const messages: { type: string; grids?: number[][]; devices?: unknown[][] }[] = []
    ws.on('message', (m: Buffer) => messages.push(JSON.parse(m.toString('utf8')) as (typeof messages)[number]))
    await new Promise((r) => ws.once('open', r))
    ws.send(JSON.stringify({ subscribe: { level: 'district' } }))
    const d = water[3]
    if (!d) throw new Error('no device')
    ws.send(JSON.stringify({ subscribe: { bbox: [d.lon - 0.0001, d.lat - 0.0001, d.lon + 0.0001, d.lat + 0.0001] } }))
    const until = async (pred: () => boolean): Promise<void> => {
      for (let k = 0; k < 100 && !pred(); k++) await new Promise((r) => setTimeout(r, 50))
    }
    await until(() => messages.some((m) => m.type === 'delta' && (m.grids?.length ?? 0) > 0))
    expect(messages[0]?.type).toBe('hello')
    const districts = city.grids.filter((g) => g.level === 'district').map((g) => g.id)
    const first = messages.find((m) => m.type === 'delta' && (m.grids?.length ?? 0) > 0)
    expect(first?.grids?.map((g) => g[0]).sort()).toEqual([...districts].sort())
    await until(() => messages.some((m) => (m.devices ?? []).some((x) => x[0] === d.id)))
    messages.length = 0
    // Five reports between two ticks (published together, as the gateway does for a batch) arrive as one row.
    const t = Date.now()
    await readings.write([0, 1, 2, 3, 4].map((k) => [t + k, d.id, d.type, 'level_cm', 40 + k, 1, d.microGridId, d.communityId, d.streetId, d.districtId, t]))
    bus.publish([0, 1, 2, 3, 4].map((k) => ({ kind: 'reading' as const, deviceId: d.id, ts: t + k, values: { level_cm: 40 + k } })))
    await until(() => messages.some((m) => (m.devices ?? []).some((x) => x[0] === d.id)))
    await new Promise((r) => setTimeout(r, 200))
    const rows = messages.flatMap((m) => m.devices ?? []).filter((x) => x[0] === d.id)
    expect(rows).toEqual([[d.id, 1, t + 4, 0]])
    expect(messages.flatMap((m) => m.grids ?? []).map((g) => g[0])).toContain(d.districtId)
    ws.send('{"subscribe": {"nonsense": 1}}')
    await until(() => messages.some((m) => m.type === 'error'))
    expect(messages.some((m) => m.type === 'error')).toBe(true)
    ws.close()
  })

  it('sends a box over the whole city in messages of at most api.liveMaxRowsPerMessage rows, and refuses bad or too many boxes', async () => {
    const ws = new WebSocket(`${api.url.replace('http', 'ws')}/api/live`)
    const messages: { type: string; message?: string; grids?: unknown[][]; devices?: unknown[][]; cameras?: unknown[][] }[] = []
    ws.on('message', (m: Buffer) => messages.push(JSON.parse(m.toString('utf8')) as (typeof messages)[number]))
    await new Promise((r) => ws.once('open', r))
    const until = async (pred: () => boolean): Promise<void> => {
      for (let k = 0; k < 200 && !pred(); k++) await new Promise((r) => setTimeout(r, 50))
    }
    const devices = new Set<unknown>()
    const cameras = new Set<unknown>()
    const note = (): boolean => {
      for (const m of messages) {
        for (const d of m.devices ?? []) devices.add(d[0])
        for (const c of m.cameras ?? []) cameras.add(c[0])
      }
      return devices.size === city.devices.length && cameras.size === city.cameras.length
    }
    ws.send(JSON.stringify({ subscribe: { bbox: [-180, -90, 180, 90] } }))
    await until(note)
    expect([devices.size, cameras.size]).toEqual([city.devices.length, city.cameras.length])
    const deltas = messages.filter((m) => m.type === 'delta')
    // 2,193 devices and 1,300 cameras: at least 35 messages of at most 100 rows.
    expect(deltas.length).toBeGreaterThanOrEqual(Math.ceil((city.devices.length + city.cameras.length) / 100))
    for (const m of deltas) expect((m.grids?.length ?? 0) + (m.devices?.length ?? 0) + (m.cameras?.length ?? 0)).toBeLessThanOrEqual(100)

    const errors = () => messages.filter((m) => m.type === 'error').map((m) => m.message ?? '')
    ws.send(JSON.stringify({ subscribe: { bbox: [10, 0, 5, 1] } }))
    await until(() => errors().length === 1)
    expect(errors()[0]).toMatch(/west <= east/)
    ws.send(JSON.stringify({ subscribe: { bbox: [0, 0, 1, 1] } }))
    ws.send(JSON.stringify({ subscribe: { bbox: [0, 0, 2, 2] } }))
    ws.send(JSON.stringify({ subscribe: { bbox: [0, 0, 3, 3] } }))
    await until(() => errors().length === 2)
    expect(errors()[1]).toMatch(/at most 3 boxes/)
    // The connection stays: after unsubscribing, a box is taken again.
    messages.length = 0
    ws.send(JSON.stringify({ unsubscribe: true }))
    const d = city.devices[0]
    if (!d) throw new Error('no device')
    ws.send(JSON.stringify({ subscribe: { bbox: [d.lon - 0.0001, d.lat - 0.0001, d.lon + 0.0001, d.lat + 0.0001] } }))
    await until(() => messages.some((m) => (m.devices ?? []).some((x) => x[0] === d.id)))
    expect(errors()).toEqual([])
    ws.close()
  })
})
