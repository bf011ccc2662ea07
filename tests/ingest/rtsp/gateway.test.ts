// The camera gateway end to end: cameras of a generated city in chDB, the
// camera simulator as their streams (with the real ffmpeg), the gateway on a
// fast schedule; statuses and events land in the events table and, once
// stored, in the live twin through the bus.
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MemoryBus } from '../../../lib/bus/bus.ts'
import { PositionClock } from '../../../lib/bus/position.ts'
import { eventElements } from '../../../lib/bus/stored.ts'
import { startAll, stopAll, type Component } from '../../../lib/component.ts'
import { createCameraIngest, streamAt, type CameraIngest } from '../../../ingest/rtsp/index.ts'
import { loadConfig } from '../../../lib/config.ts'
import { apiConfig } from '../../../twin/api/config.ts'
import { ApiServer } from '../../../twin/api/server.ts'
import { snapshotRoutes } from '../../../twin/api/snapshot-routes.ts'
import { readCameras, writeCity } from '../../../registry/city-store.ts'
import { generateCity } from '../../../simulators/city/generate.ts'
import { loadClips } from '../../../simulators/cameras/clips.ts'
import { CameraSimulator, type SimCamera } from '../../../simulators/cameras/server.ts'
import { openMigratedStore, type Store } from '../../../store/index.ts'
import { twinConfig } from '../../../twin/state/config.ts'
import { LiveTwin } from '../../../twin/state/live-twin.ts'
import { tempDir } from '../../helpers.ts'

const SET: Record<string, SimCamera> = {
  C000002: { clip: 'black' },
  C000003: { clip: 'street', fault: 'offline' },
  C000004: { clip: 'street', fps: 5 },
}

let store: Store
let sim: CameraSimulator
let twin: LiveTwin
let ingest: CameraIngest
/** The cameras the registry holds for this test: the first few of the city's. */
let cameraCount = 6
let bus: MemoryBus
let api: ApiServer
const started: Component[] = []

beforeAll(async () => {
  const opened = await openMigratedStore({ env: {} }, { dataDir: join(tempDir(), 'db') })
  store = opened.store
  await writeCity(store.client, generateCity({ seed: 1, scale: 0.001 }), opened.writerCfg)
  sim = new CameraSimulator({ host: '127.0.0.1', port: 0, clips: await loadClips(['street', 'black']), camera: (id) => SET[id] ?? { clip: 'street' } })
  await sim.start()
  bus = new MemoryBus()
  twin = new LiveTwin({ client: store.client, bus, config: { ...twinConfig.schema.parse({}), sweepIntervalMs: 200, checkpointIntervalMs: 3_600_000 } })
  await startAll([twin], started)
  ingest = createCameraIngest(store, { ...opened.writerCfg, flushIntervalMs: 20 }, {
    env: {}, file: { rtsp: { reachEveryS: 10, picturesEveryS: 10, retryAfterS: 1, windowMs: 500, pictures: 2, registryRefreshS: 1, streamHost: `127.0.0.1:${sim.port}` } },
  }, { shard: { index: 0, count: 1 }, bus, positions: new PositionClock(), cameras: async () => (await readCameras(store.client)).slice(0, cameraCount) })
  await startAll(ingest.components, started)
  api = new ApiServer({ config: loadConfig(apiConfig, { env: {}, overrides: { port: 0, tokens: [{ name: 'wall', role: 'viewer', token: 'v'.repeat(32) }] } }), client: store.client, twin, routes: snapshotRoutes(ingest.snapshots!) })
  await startAll([api], started)
})

afterAll(async () => {
  await stopAll(started, Date.now() + 10_000)
  await sim?.stop(Date.now() + 1_000)
  await store?.close()
})

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

const statusOf = (id: string): string => twin.twin.cameraStatus(twin.twin.cameraIndex(id) ?? -1)

describe('the camera gateway', () => {
  it('probes its cameras and the twin shows each as it is: ok, tampered, offline, degraded', async () => {
    await until('every camera judged after a deep probe', () => ['C000001', 'C000002', 'C000003', 'C000004', 'C000005', 'C000006'].every((id) => statusOf(id) !== 'unknown') && statusOf('C000002') === 'tampered' && statusOf('C000004') === 'degraded')
    expect(['C000001', 'C000002', 'C000003', 'C000004', 'C000005', 'C000006'].map(statusOf)).toEqual(['ok', 'tampered', 'offline', 'degraded', 'ok', 'ok'])
    // The city's counts: these six of its 130 cameras known, the rest unknown.
    expect(twin.twin.counts(0)?.cameras).toMatchObject({ ok: 3, tampered: 1, offline: 1, degraded: 1, unknown: 124 })
  })

  it('keeps what it reported in the events table, which reads back as the same elements', async () => {
    const rows = await (await store.client.query({ query: "SELECT toUnixTimestamp64Milli(ts) AS ts, source, source_id, kind, severity, attributes FROM events WHERE source = 'camera' ORDER BY ts", format: 'JSONEachRow' }))
      .json<{ ts: string; source: string; source_id: string; kind: string; severity: string; attributes: string }>()
    const black = rows.find((r) => r.source_id === 'C000002' && r.kind === 'black')
    expect(black).toMatchObject({ severity: 'warning' })
    expect(JSON.parse(black!.attributes)).toMatchObject({ detail: expect.stringMatching(/dark and flat/) as unknown })
    const offline = rows.find((r) => r.source_id === 'C000003' && r.kind === 'status:offline')
    expect(JSON.parse(offline!.attributes)).toMatchObject({ failure: 'reset' })
    const elements = eventElements(rows.map((r) => [Number(r.ts), r.source, r.source_id, r.kind, r.severity]))
    expect(elements.filter((e) => e.kind === 'camera-status' && e.cameraId === 'C000002').map((e) => e.kind === 'camera-status' && e.status)).toContain('tampered')
    expect(elements.some((e) => e.kind === 'camera-event' && e.cameraId === 'C000002' && e.name === 'black')).toBe(true)
  })

  it('keeps a snapshot of the keyframe a condition was first seen in, linked from its event and served to a token', async () => {
    const rows = await (await store.client.query({ query: "SELECT kind, evidence_path FROM events WHERE source = 'camera' AND source_id = 'C000002' AND kind = 'black'", format: 'JSONEachRow' })).json<{ kind: string; evidence_path: string }>()
    const path = rows[0]?.evidence_path ?? ''
    expect(path).toMatch(/^\/api\/cameras\/C000002\/snapshots\/\d+$/)
    const denied = await fetch(`${api.url}${path}`)
    expect(denied.status).toBe(401)
    const res = await fetch(`${api.url}${path}`, { headers: { authorization: `Bearer ${'v'.repeat(32)}` } })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('image/jpeg')
    const jpeg = Buffer.from(await res.arrayBuffer())
    expect([jpeg[0], jpeg[1]]).toEqual([0xff, 0xd8])
    const list = await fetch(`${api.url}/api/cameras/C000002/snapshots`, { headers: { authorization: `Bearer ${'v'.repeat(32)}` } })
    expect(((await list.json()) as { items: { url: string }[] }).items[0]?.url).toBe(path)
    const gone = await fetch(`${api.url}/api/cameras/C000002/snapshots/1`, { headers: { authorization: `Bearer ${'v'.repeat(32)}` } })
    expect(gone.status).toBe(404)
    expect(((await gone.json()) as { error: { message: string } }).error.message).toMatch(/never taken, or removed by retention/)
    // Motion and statuses carry none.
    const others = await (await store.client.query({ query: "SELECT count() AS n FROM events WHERE source = 'camera' AND evidence_path != '' AND kind NOT IN ('black', 'frozen', 'obstructed', 'scene_change')", format: 'JSONEachRow' })).json<{ n: string }>()
    expect(Number(others[0]?.n)).toBe(0)
  })

  it('watches a camera with an open ticket, from the rules\' ticket elements on the bus', async () => {
    bus.publish([{ kind: 'ticket', ticketId: 'T-1', ts: Date.now(), open: true, severity: 'warning', cameraId: 'C000002' }, { kind: 'ticket', ticketId: 'T-2', ts: Date.now(), open: true, severity: 'warning', cameraId: 'C999999' }])
    await bus.idle(Date.now() + 5_000)
    expect(ingest.gateway.stats()).toMatchObject({ watched: 1 })
    bus.publish([{ kind: 'ticket', ticketId: 'T-1', ts: Date.now(), open: false, severity: 'warning', cameraId: 'C000002' }])
    await bus.idle(Date.now() + 5_000)
    expect(ingest.gateway.stats()).toMatchObject({ watched: 0 })
  })

  it('follows the registry while it runs: a camera added is probed, one decommissioned dropped', async () => {
    cameraCount = 7
    await until('the seventh camera probed', () => ingest.gateway.size === 7 && statusOf('C000007') === 'ok')
    cameraCount = 5
    await until('the sixth and seventh dropped', () => ingest.gateway.size === 5)
  })

  it('points a camera at another host, keeping its path', () => {
    expect(streamAt('rtsp://nvr-0001.video.citytwin.internal:554/live/C000001', '127.0.0.1:8554')).toBe('rtsp://127.0.0.1:8554/live/C000001')
    expect(streamAt('rtsp://user:pw@cam/ch1?x=1', '10.0.0.9:10554')).toBe('rtsp://user:pw@10.0.0.9:10554/ch1?x=1')
  })
})
