// The twin's read API: the city, grids, devices and cameras with their live
// state, history and as-of queries; and the admin rebuild. Every list is
// paged (limit at most 1000) so no request can return the whole city.
import type { ClickHouseClient } from '@clickhouse/client'
import { z } from 'zod'
import { GRID_LEVELS } from '../../registry/city.ts'
import { DEVICE_TYPES } from '../../registry/device-types.ts'
import { DEVICE_STATUSES } from '../state/device.ts'
import { deviceAsOf, deviceHistory, gridAsOf } from '../state/history.ts'
import type { IngestHealth } from '../state/ingest-health.ts'
import type { LiveTwin } from '../state/live-twin.ts'
import { CAMERA_STATUSES, CITY_ID, inBox, type Twin } from '../state/twin.ts'
import { HttpError, route, type Route } from '../../lib/http/router.ts'
import { page, paged } from '../../lib/http/page.ts'

export const bboxSchema = z.string().transform((s, ctx) => {
  const n = s.split(',').map(Number)
  const [w, south, e, north] = n
  if (n.length !== 4 || n.some((x) => !Number.isFinite(x)) || w === undefined || south === undefined || e === undefined || north === undefined || w > e || south > north) {
    ctx.addIssue({ code: 'custom', message: 'bbox is minLon,minLat,maxLon,maxLat with min <= max' })
    return z.NEVER
  }
  return [w, south, e, north] as const
}).describe('minLon,minLat,maxLon,maxLat (WGS-84)')

const paging = {
  limit: z.coerce.number().int().min(1).max(1000).default(100).describe('Items per page (at most 1000).'),
  cursor: z.string().regex(/^\d+$/, 'a cursor from a previous page').optional().describe('The "next" of the previous page.'),
}

const time = z.coerce.number().int().min(0).describe('Epoch milliseconds.')


export function gridView(twin: Twin, id: number) {
  const counts = twin.counts(id)
  if (!counts) return undefined
  if (id === CITY_ID) return { id: CITY_ID, level: 'city', code: '', name: 'city', parentId: null, kind: '', centroid: null, ...counts }
  const g = twin.grid(id)
  if (!g) return undefined
  return { id: g.id, level: g.level, code: g.code, name: g.name, parentId: g.parentId || null, kind: g.kind, centroid: g.centroid, ...counts }
}

export function deviceView(twin: Twin, i: number) {
  const d = twin.devices[i]
  if (!d) return undefined
  const live = twin.deviceLive(i)
  const values: Record<string, { value: number; ts: number }> = {}
  twin.deviceMetrics(i).forEach((m, k) => {
    const v = live.values[k] ?? Number.NaN
    if (!Number.isNaN(v)) values[m] = { value: v, ts: live.times[k] ?? 0 }
  })
  return {
    id: d.id, type: d.type, status: live.status, connected: live.connected, lastActivity: live.lastActivity || null, values,
    battery: values.battery_pct?.value ?? null, openTickets: twin.deviceOpenTickets(i), intervalS: d.intervalS,
    grids: { micro: d.microGridId, community: d.communityId, street: d.streetId, district: d.districtId, special: twin.deviceSpecials(i) },
    lon: d.lon, lat: d.lat,
  }
}

export function cameraView(twin: Twin, i: number) {
  const c = twin.cameras[i]
  if (!c) return undefined
  return { id: c.id, kind: c.kind, status: twin.cameraStatus(i), lastSeen: twin.cameraLastSeen(i) || null, grids: { micro: c.microGridId, community: c.communityId, street: c.streetId, district: c.districtId }, lon: c.lon, lat: c.lat }
}

/** What the read routes need of a twin: the twin itself and ingest's state. The live twin, or the API thread's reader of it (front/reader.ts). */
export interface TwinReads {
  readonly twin: Twin
  readonly ingest: IngestHealth
}

const grid404 = (id: number): never => {
  throw new HttpError(404, 'NOT_FOUND', `no grid ${id} (0 is the city)`)
}

const deviceIndexOf = (t: Twin, id: string): number => {
  const i = t.deviceIndex(id)
  if (i === undefined) throw new HttpError(404, 'NOT_FOUND', `no device ${id}`)
  return i
}

const gridIdOf = (t: Twin, raw: string): number => {
  const id = Number(raw)
  if (!Number.isInteger(id) || id < 0) throw new HttpError(400, 'BAD_REQUEST', `params.id: a grid id is a non-negative integer, not ${raw}`)
  if (!t.hasGrid(id)) grid404(id)
  return id
}

const countsSchema = { type: 'object', description: 'devices, cameras and open tickets by state, and the health score (0-100; see docs/twin.md)' }
const ingestSchema = {
  type: 'object', description: 'Whether ingest is degraded (see docs/twin.md): then no device is judged silent, and this is the one alarm raised instead',
  properties: {
    degraded: { type: 'boolean' }, since: { type: ['integer', 'null'], description: 'epoch ms the degraded spell began' },
    reason: { type: ['string', 'null'] }, lagMs: { type: 'integer', description: 'how long data has waited inside the system (the gateways and the store writers), in ms' },
    shedding: { type: 'boolean', description: 'a gateway refuses connections to keep its memory' }, spells: { type: 'integer', description: 'degraded spells since start' },
  },
}

/**
 * The routes answered from the live state alone, with no store: the ones
 * the viewer and wall screens poll. The API's own thread serves these
 * (twin/api/front), so they are answered while the main thread is busy.
 */
export function twinReadRoutes(live: TwinReads): Route[] {
  return [
    route({
      method: 'GET', path: '/api/city', tag: 'twin', summary: 'The whole city: counts by state, health, each district, and whether ingest is degraded',
      response: { type: 'object', properties: { city: countsSchema, districts: { type: 'array' }, ingest: ingestSchema } },
      handler: () => {
        const t = live.twin
        return { status: 200, body: { city: gridView(t, CITY_ID), districts: t.children(CITY_ID).map((id) => gridView(t, id)), ingest: live.ingest } }
      },
    }),
    route({
      method: 'GET', path: '/api/ingest', tag: 'twin', summary: 'The "ingest degraded" alarm: while data reaches the twin too late or a gateway sheds devices, no device is judged silent',
      response: ingestSchema,
      handler: () => ({ status: 200, body: live.ingest }),
    }),
    route({
      method: 'GET', path: '/api/grids', tag: 'twin', summary: 'Grids of a level with their live counts and health, optionally within a bounding box',
      query: z.strictObject({ level: z.enum(GRID_LEVELS).default('district'), bbox: bboxSchema.optional(), ...paging }),
      handler: ({ query }) => {
        const t = live.twin
        const ids = t.grids.filter((g) => g.level === query.level && (!query.bbox || inBox(g.centroid[0], g.centroid[1], query.bbox))).map((g) => g.id)
        const p = page(ids, query.limit, query.cursor)
        return { status: 200, body: { ...p, items: p.items.map((id) => gridView(t, id)) } }
      },
    }),
    route({
      method: 'GET', path: '/api/grids/{id}', tag: 'twin', summary: 'A grid (0: the city) with its children and the first devices and cameras in it',
      query: z.strictObject({ limit: paging.limit }),
      handler: ({ params, query }) => {
        const t = live.twin
        const id = gridIdOf(t, params.id ?? '')
        const g = t.grid(id)
        // The first page (the next through /api/devices?grid= or /api/cameras?grid=).
        const devices = paged(t.devicesPage(id, 0, query.limit), 0, query.limit)
        const cameras = paged(t.camerasPage(id, 0, query.limit), 0, query.limit)
        return {
          status: 200,
          body: {
            grid: gridView(t, id), ring: g?.ring ?? null,
            children: page(t.children(id), 1000, undefined).items.map((c) => gridView(t, c)),
            devices: { ...devices, items: devices.items.map((i) => deviceView(t, i)) },
            cameras: { ...cameras, items: cameras.items.map((i) => cameraView(t, i)) },
          },
        }
      },
    }),
    route({
      method: 'GET', path: '/api/devices', tag: 'twin', summary: 'Devices with their live state, filtered by type, state, grid or bounding box',
      query: z.strictObject({
        type: z.enum(DEVICE_TYPES.map((d) => d.type) as [string, ...string[]]).optional(),
        state: z.enum(DEVICE_STATUSES).optional(),
        grid: z.coerce.number().int().min(0).optional().describe('A grid id at any level (0: the city).'),
        bbox: bboxSchema.optional(),
        ...paging,
      }),
      handler: ({ query }) => {
        const t = live.twin
        if (query.grid !== undefined && !t.hasGrid(query.grid)) grid404(query.grid)
        const pool = query.grid === undefined ? t.devices.map((_, i) => i) : t.devicesIn(query.grid)
        const ids = pool.filter((i) => {
          const d = t.devices[i]
          if (!d) return false
          return (!query.type || d.type === query.type) && (!query.state || t.deviceStatus(i) === query.state) && (!query.bbox || inBox(d.lon, d.lat, query.bbox))
        })
        const p = page(ids, query.limit, query.cursor)
        return { status: 200, body: { ...p, items: p.items.map((i) => deviceView(t, i)) } }
      },
    }),
    route({
      method: 'GET', path: '/api/devices/{id}', tag: 'twin', summary: 'A device: latest values, status, battery, open tickets, grids',
      handler: ({ params }) => ({ status: 200, body: deviceView(live.twin, deviceIndexOf(live.twin, params.id ?? '')) }),
    }),
    route({
      method: 'GET', path: '/api/cameras', tag: 'twin', summary: 'Cameras with their live state, filtered by state, grid or bounding box',
      query: z.strictObject({ state: z.enum(CAMERA_STATUSES).optional(), grid: z.coerce.number().int().min(0).optional(), bbox: bboxSchema.optional(), ...paging }),
      handler: ({ query }) => {
        const t = live.twin
        if (query.grid !== undefined && !t.hasGrid(query.grid)) grid404(query.grid)
        const pool = query.grid === undefined ? t.cameras.map((_, i) => i) : t.camerasIn(query.grid)
        const ids = pool.filter((i) => {
          const c = t.cameras[i]
          return c !== undefined && (!query.state || t.cameraStatus(i) === query.state) && (!query.bbox || inBox(c.lon, c.lat, query.bbox))
        })
        const p = page(ids, query.limit, query.cursor)
        return { status: 200, body: { ...p, items: p.items.map((i) => cameraView(t, i)) } }
      },
    }),
    route({
      method: 'GET', path: '/api/cameras/{id}', tag: 'twin', summary: 'A camera and its state',
      handler: ({ params }) => {
        const i = live.twin.cameraIndex(params.id ?? '')
        if (i === undefined) throw new HttpError(404, 'NOT_FOUND', `no camera ${params.id}`)
        return { status: 200, body: cameraView(live.twin, i) }
      },
    }),
  ]
}

/** Every twin route: the reads above, and those that need the store (history, as-of) or change the twin. */
export function twinRoutes(live: LiveTwin, client: ClickHouseClient): Route[] {
  const policy = () => live.twin.policy
  return [
    route({
      method: 'GET', path: '/api/health', tag: 'system', summary: 'Whether the twin is loaded and how many elements it has applied',
      handler: () => ({ status: 200, body: { ok: true, twin: live.stats() } }),
    }),
    ...twinReadRoutes(live),
    route({
      method: 'GET', path: '/api/devices/{id}/history', tag: 'history', summary: 'A metric of a device between two times, downsampled to at most N points (avg, min, max, count per bucket)',
      query: z.strictObject({ metric: z.string().min(1), from: time, to: time, points: z.coerce.number().int().min(1).max(1000).default(200) })
        .refine((q) => q.from < q.to, { message: 'from must be before to', path: ['from'] }),
      handler: async ({ params, query }) => {
        const t = live.twin
        const i = deviceIndexOf(t, params.id ?? '')
        const d = t.devices[i]
        if (!d) throw new HttpError(404, 'NOT_FOUND', `no device ${params.id}`)
        if (!t.deviceMetrics(i).includes(query.metric)) throw new HttpError(400, 'BAD_REQUEST', `query.metric: a ${d.type} device reports ${t.deviceMetrics(i).join(', ')}, not ${query.metric}`)
        const h = await deviceHistory(client, d, query.metric, query.from, query.to, query.points)
        return { status: 200, body: { device: d.id, metric: query.metric, from: query.from, to: query.to, ...h } }
      },
    }),
    route({
      method: 'GET', path: '/api/devices/{id}/asof', tag: 'history', summary: 'A device as it was at time t: its latest values then and its status',
      query: z.strictObject({ t: time }),
      handler: async ({ params, query }) => {
        const t = live.twin
        const d = t.devices[deviceIndexOf(t, params.id ?? '')]
        if (!d) throw new HttpError(404, 'NOT_FOUND', `no device ${params.id}`)
        return { status: 200, body: { device: d.id, ...(await deviceAsOf(client, d, query.t, policy())) } }
      },
    }),
    route({
      method: 'GET', path: '/api/grids/{id}/asof', tag: 'history', summary: 'A grid as it was at time t: devices reporting, offline, silent or unknown; its metrics that minute; open tickets',
      query: z.strictObject({ t: time }),
      handler: async ({ params, query }) => {
        const t = live.twin
        const id = gridIdOf(t, params.id ?? '')
        const devices = t.devicesIn(id).map((i) => t.devices[i]).filter((d) => d !== undefined)
        const communities = [...new Set(devices.map((d) => d.communityId))]
        return { status: 200, body: { grid: id, ...(await gridAsOf(client, { communities, devices }, query.t, policy())) } }
      },
    }),
    route({
      method: 'POST', path: '/api/admin/twin/rebuild', tag: 'admin', role: 'admin', summary: 'Reload the live twin from the store (after a restore, say)',
      handler: async ({ caller }) => {
        await live.rebuild()
        return { status: 200, body: { ok: true, by: caller?.name, twin: live.stats() } }
      },
    }),
  ]
}
