// What the map draws, in the forms a GPU takes without copying: grid
// outlines as one binary buffer per level (ids, ring starts, float32
// coordinates), and devices or cameras in a box as parallel columns. The
// viewer loads them straight into deck.gl binary attributes.
//
// Grid geometry, little-endian:
//   "CTG1" | u32 count | u32 vertices | i32 ids[count] | u32 starts[count + 1] | f32 lonlat[2 * vertices]
// Ring i is vertices starts[i] .. starts[i + 1] - 1 (closed: the first point repeated).
import type { ClickHouseClient } from '@clickhouse/client'
import { z } from 'zod'
import { GRID_LEVELS } from '../../registry/city.ts'
import { DEVICE_STATUSES } from '../state/device.ts'
import type { LiveTwin } from '../state/live-twin.ts'
import { gridReplay, REPLAY_LEVELS } from '../state/replay.ts'
import { boxesOverlap, CAMERA_STATUSES, inBox, ringBounds, type BBox, type Twin } from '../state/twin.ts'
import { HttpError, route, type Route } from '../../lib/http/router.ts'
import { bboxSchema, type TwinReads } from './twin-routes.ts'

export const GEOMETRY_MAGIC = 'CTG1'

/** Encodes grid rings as the binary geometry above. */
export function encodeGeometry(grids: readonly { id: number; ring: readonly (readonly [number, number])[] }[]): Buffer {
  const vertices = grids.reduce((n, g) => n + g.ring.length, 0)
  const buf = Buffer.alloc(12 + 4 * grids.length + 4 * (grids.length + 1) + 8 * vertices)
  buf.write(GEOMETRY_MAGIC, 0, 'latin1')
  buf.writeUInt32LE(grids.length, 4)
  buf.writeUInt32LE(vertices, 8)
  const ids = new Int32Array(buf.buffer, buf.byteOffset + 12, grids.length)
  const starts = new Uint32Array(buf.buffer, buf.byteOffset + 12 + 4 * grids.length, grids.length + 1)
  const coords = new Float32Array(buf.buffer, buf.byteOffset + 12 + 8 * grids.length + 4, 2 * vertices)
  let v = 0
  grids.forEach((g, i) => {
    ids[i] = g.id
    starts[i] = v
    for (const [lon, lat] of g.ring) {
      coords[2 * v] = lon
      coords[2 * v + 1] = lat
      v++
    }
  })
  starts[grids.length] = v
  return buf
}

/** Most devices or cameras one points request returns: what a map can draw legibly (and software GL can draw at all). */
export const MAX_POINTS = 20_000

/** The longest replay one request may ask for. */
export const MAX_REPLAY_MS = 7 * 86_400_000

/** The map's routes answered from the live state alone (the API's own thread serves these: see twinReadRoutes). */
export function mapReadRoutes(live: TwinReads): Route[] {
  const cache = new Map<string, Buffer>()
  let cachedFor: Twin | undefined
  // Each grid's bounding box, made once per twin: a box query takes every
  // grid that overlaps it, so a grid larger than the view (close up) is drawn
  // although its centroid is off screen.
  let boxes: Map<number, BBox> | undefined
  return [
    route({
      method: 'GET', path: '/api/map/grids', tag: 'map',
      summary: 'Grid outlines of a level (optionally only those that overlap a box) as binary geometry: "CTG1", u32 count, u32 vertices, i32 ids, u32 ring starts (count + 1), f32 lon/lat pairs',
      query: z.strictObject({ level: z.enum(GRID_LEVELS).default('district'), bbox: bboxSchema.optional() }),
      handler: ({ query }) => {
        const t = live.twin
        if (t !== cachedFor) {
          cache.clear()
          boxes = undefined
          cachedFor = t
        }
        const key = `${query.level}|${query.bbox?.join(',') ?? ''}`
        let buf = cache.get(key)
        if (!buf) {
          const box = query.bbox
          const of = boxes ??= new Map(t.grids.map((g) => [g.id, ringBounds(g.ring)]))
          buf = encodeGeometry(t.grids.filter((g) => g.level === query.level && (!box || boxesOverlap(of.get(g.id) ?? [0, 0, 0, 0], box))))
          // Whole levels are asked for again and again; boxes rarely twice.
          if (!query.bbox) cache.set(key, buf)
        }
        return { status: 200, body: buf, contentType: 'application/octet-stream' }
      },
    }),
    route({
      method: 'GET', path: '/api/map/points', tag: 'map',
      summary: `Devices or cameras in a box as parallel columns (id, type or kind, lon, lat, status), at most ${MAX_POINTS}; "truncated" says when there were more`,
      query: z.strictObject({ kind: z.enum(['devices', 'cameras']).default('devices'), bbox: bboxSchema }),
      handler: ({ query }) => {
        const t = live.twin
        const list = query.kind === 'devices' ? t.devices : t.cameras
        const out = { ids: [] as string[], types: [] as string[], lon: [] as number[], lat: [] as number[], status: [] as number[] }
        let more = false
        for (let i = 0; i < list.length; i++) {
          const p = list[i]
          if (!p || !inBox(p.lon, p.lat, query.bbox)) continue
          if (out.ids.length >= MAX_POINTS) {
            more = true
            break
          }
          out.ids.push(p.id)
          out.types.push('type' in p ? p.type : p.kind)
          out.lon.push(p.lon)
          out.lat.push(p.lat)
          out.status.push(query.kind === 'devices' ? DEVICE_STATUSES.indexOf(t.deviceStatus(i)) : CAMERA_STATUSES.indexOf(t.cameraStatus(i)))
        }
        return { status: 200, body: { kind: query.kind, statuses: query.kind === 'devices' ? DEVICE_STATUSES : CAMERA_STATUSES, truncated: more, ...out } }
      },
    }),
  ]
}

/** Every map route: the reads above, and the replay from the store's roll-ups. */
export function mapRoutes(live: LiveTwin, client: ClickHouseClient): Route[] {
  return [
    ...mapReadRoutes(live),
    route({
      method: 'GET', path: '/api/map/replay', tag: 'map',
      summary: 'The grids of a level hour by hour (default: the last 24 hours), from the store\'s hourly roll-ups: per frame and grid, the health score (-1: no readings stored for that hour) and the worst ticket open at its end (0 none, 1 info, 2 warning, 3 critical)',
      query: z.strictObject({
        level: z.enum(REPLAY_LEVELS).default('district'),
        from: z.coerce.number().int().min(0).optional().describe('Epoch milliseconds (default: 24 hours before `to`).'),
        to: z.coerce.number().int().min(0).optional().describe('Epoch milliseconds (default: now).'),
        bbox: bboxSchema.optional(),
      }),
      handler: async ({ query }) => {
        const to = query.to ?? Date.now()
        const from = query.from ?? to - 86_400_000
        if (from >= to) throw new HttpError(400, 'BAD_REQUEST', '`from` must be before `to`')
        if (to - from > MAX_REPLAY_MS) throw new HttpError(400, 'BAD_REQUEST', `a replay covers at most ${MAX_REPLAY_MS / 86_400_000} days`)
        return { status: 200, body: await gridReplay(client, live.twin, query.level, from, to, query.bbox) }
      },
    }),
  ]
}
