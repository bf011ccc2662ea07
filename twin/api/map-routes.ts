// What the map draws, in the forms a GPU takes without copying: grid
// outlines as one binary buffer per level (ids, ring starts, float32
// coordinates), and devices or cameras in a box as parallel columns. The
// viewer loads them straight into deck.gl binary attributes.
//
// Grid geometry, little-endian:
//   "CTG1" | u32 count | u32 vertices | i32 ids[count] | u32 starts[count + 1] | f32 lonlat[2 * vertices]
// Ring i is vertices starts[i] .. starts[i + 1] - 1 (closed: the first point repeated).
import { z } from 'zod'
import { GRID_LEVELS } from '../model/city.ts'
import { DEVICE_STATUSES } from '../state/device.ts'
import type { LiveTwin } from '../state/live-twin.ts'
import { CAMERA_STATUSES, inBox, type Twin } from '../state/twin.ts'
import { route, type Route } from './router.ts'
import { bboxSchema } from './twin-routes.ts'

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

export function mapRoutes(live: LiveTwin): Route[] {
  const cache = new Map<string, Buffer>()
  let cachedFor: Twin | undefined
  return [
    route({
      method: 'GET', path: '/api/map/grids', tag: 'map',
      summary: 'Grid outlines of a level (optionally only those whose centroid is in a box) as binary geometry: "CTG1", u32 count, u32 vertices, i32 ids, u32 ring starts (count + 1), f32 lon/lat pairs',
      query: z.strictObject({ level: z.enum(GRID_LEVELS).default('district'), bbox: bboxSchema.optional() }),
      handler: ({ query }) => {
        const t = live.twin
        if (t !== cachedFor) {
          cache.clear()
          cachedFor = t
        }
        const key = `${query.level}|${query.bbox?.join(',') ?? ''}`
        let buf = cache.get(key)
        if (!buf) {
          buf = encodeGeometry(t.grids.filter((g) => g.level === query.level && (!query.bbox || inBox(g.centroid[0], g.centroid[1], query.bbox))))
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
