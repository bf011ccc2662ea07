// Writes a city (generated or imported) into the store, reads it back, and
// reads its figures. A new city replaces the old one whole: every table is
// filled as `<table>_new` first, and only once all three are written are
// they swapped in with EXCHANGE TABLES, one right after the other (a swap
// that fails has those before it swapped back). A failed write leaves the
// old city as it was; a reader in the instant between two swaps, or a
// process killed there, can see grids of the new city with devices of the
// old, which is why imports are made with citytwin stopped.
import type { ClickHouseClient } from '@clickhouse/client'
import type { Camera, CameraKind, City, Device, Grid, GridLevel, LonLat } from './city.ts'
import type { DeviceType } from './device-types.ts'
import type { WriterConfig } from '../store/config.ts'
import { StoreWriter, type Row } from '../store/writer.ts'
import { readOwnerInfo, type Store } from '../store/client.ts'
import { CitytwinError, messageOf } from '../lib/errors.ts'

const TABLES = {
  grids: ['id', 'level', 'code', 'name', 'parent_id', 'district_id', 'street_id', 'community_id', 'kind', 'ring', 'centroid_lon', 'centroid_lat', 'area_km2', 'city_seed', 'city_source'],
  devices: ['id', 'type', 'micro_grid_id', 'community_id', 'street_id', 'district_id', 'lon', 'lat', 'interval_s', 'installed_at'],
  cameras: ['id', 'kind', 'micro_grid_id', 'community_id', 'street_id', 'district_id', 'lon', 'lat', 'rtsp_url', 'codec', 'width', 'height', 'fps', 'bitrate_kbps', 'gop'],
} as const

function rowsOf(city: City, source: string): Record<keyof typeof TABLES, Row[]> {
  return {
    grids: city.grids.map((g) => [g.id, g.level, g.code, g.name, g.parentId, g.districtId, g.streetId, g.communityId, g.kind, g.ring, g.centroid[0], g.centroid[1], g.areaKm2, city.seed, source]),
    devices: city.devices.map((d) => [d.id, d.type, d.microGridId, d.communityId, d.streetId, d.districtId, d.lon, d.lat, d.intervalS, d.installedAt]),
    cameras: city.cameras.map((c) => [c.id, c.kind, c.microGridId, c.communityId, c.streetId, c.districtId, c.lon, c.lat, c.rtspUrl,
      c.profile.codec, c.profile.width, c.profile.height, c.profile.fps, c.profile.bitrateKbps, c.profile.gop]),
  }
}

/**
 * The registry as it is now, for any reader: a change writes a device's or
 * camera's new row before it deletes the old one (registry/provision.ts),
 * so for a moment an id may have two rows; the latest is the one.
 */
export const CURRENT_DEVICES = '(SELECT * FROM devices ORDER BY id, changed_at DESC LIMIT 1 BY id)'
export const CURRENT_CAMERAS = '(SELECT * FROM cameras ORDER BY id, changed_at DESC LIMIT 1 BY id)'

/**
 * Refuses (CITY_IN_USE) to replace the city while a citytwin command that
 * holds it in memory (its twin, its gateways' registries, its rules) runs
 * on this store: they would go on with the old city. Seen through the
 * store's owner (an embedded store served by that command); a ClickHouse
 * server cannot tell who else uses it, so there it is the operator's to
 * stop citytwin first.
 */
export function refuseWhileCityHeld(store: Store, doing: string): void {
  if (store.mode !== 'owner') return
  const owner = readOwnerInfo(store.dataDir)
  if (!owner?.cityHeldBy) return
  throw new CitytwinError('CITY_IN_USE', `citytwin is running on the store in ${store.dataDir} (${owner.cityHeldBy}, pid ${owner.pid}): stop it, ${doing}, then start it again`)
}

/**
 * Replaces the city in the store with `city`. `source` says where it came
 * from: '' for a generated city (its seed is the city's), 'import: <name>'
 * for an imported one, which `citytwin start` then keeps.
 */
export async function writeCity(client: ClickHouseClient, city: City, writer: WriterConfig, source = ''): Promise<Record<keyof typeof TABLES, number>> {
  const rows = rowsOf(city, source)
  const tables = Object.keys(TABLES) as (keyof typeof TABLES)[]
  const written = { grids: 0, devices: 0, cameras: 0 }
  const swapped: (keyof typeof TABLES)[] = []
  try {
    for (const table of tables) {
      const staging = `${table}_new`
      await client.command({ query: `DROP TABLE IF EXISTS ${staging}` })
      await client.command({ query: `CREATE TABLE ${staging} AS ${table}` })
      const w = new StoreWriter({ client, table: staging, columns: TABLES[table], config: { ...writer, maxBatchRows: 50_000, queueRows: Math.max(writer.queueRows, 50_000) } })
      await w.start()
      try {
        // Flushed at once (no point waiting for the flush timer: this is all there is), both awaited together
        // so that a write the store refuses is this call's error, not an unhandled rejection.
        const [outcome] = await Promise.all([w.write(rows[table]), w.flush()])
        if (outcome.deadLettered > 0) throw new Error(`${outcome.deadLettered} rows were dead-lettered`)
        written[table] = outcome.inserted
      } catch (e) {
        throw new CitytwinError('STORE_REJECTED', `the store refused the new city's ${table} (${messageOf(e)}); the city was not replaced`, { cause: e })
      } finally {
        await w.stop(Date.now() + 60_000)
      }
    }
    // All three written: now swap them in, one right after the other. Should a swap fail, those
    // already made are swapped back, so the old city stays whole rather than half replaced.
    try {
      for (const table of tables) {
        await client.command({ query: `EXCHANGE TABLES ${table} AND ${table}_new` })
        swapped.push(table)
      }
    } catch (e) {
      for (const table of swapped.reverse()) await client.command({ query: `EXCHANGE TABLES ${table} AND ${table}_new` })
      throw e
    }
  } finally {
    for (const table of tables) await client.command({ query: `DROP TABLE IF EXISTS ${table}_new` })
  }
  return written
}

/** The whole city in the store, as the model has it (for export). */
export async function readCity(client: ClickHouseClient): Promise<City & { source: string }> {
  const q = async <T>(query: string): Promise<T[]> => (await client.query({ query, format: 'JSONEachRow', clickhouse_settings: { output_format_json_quote_64bit_integers: 0 } })).json<T>()
  const grids = await q<{ id: number; level: GridLevel; code: string; name: string; parent_id: number; district_id: number; street_id: number; community_id: number; kind: string; ring: LonLat[]; centroid_lon: number; centroid_lat: number; area_km2: number; city_seed: number; city_source: string }>(
    'SELECT * FROM grids ORDER BY id')
  const devices = await q<{ id: string; type: DeviceType; micro_grid_id: number; community_id: number; street_id: number; district_id: number; lon: number; lat: number; interval_s: number; installed_at: number }>(
    `SELECT id, type, micro_grid_id, community_id, street_id, district_id, lon, lat, interval_s, toUnixTimestamp64Milli(installed_at) AS installed_at FROM ${CURRENT_DEVICES} ORDER BY id`)
  const cameras = await readCameras(client)
  return {
    seed: Number(grids[0]?.city_seed ?? 0),
    scale: 1,
    source: grids[0]?.city_source ?? '',
    grids: grids.map((g): Grid => ({ id: g.id, level: g.level, code: g.code, name: g.name, parentId: g.parent_id, districtId: g.district_id, streetId: g.street_id, communityId: g.community_id, kind: g.kind, ring: g.ring, centroid: [g.centroid_lon, g.centroid_lat], areaKm2: g.area_km2 })),
    devices: devices.map((d): Device => ({ id: d.id, type: d.type, microGridId: d.micro_grid_id, communityId: d.community_id, streetId: d.street_id, districtId: d.district_id, lon: d.lon, lat: d.lat, intervalS: d.interval_s, installedAt: Number(d.installed_at) })),
    cameras,
  }
}

/** The city's cameras as they are now (the latest row of each), in id order. */
export async function readCameras(client: ClickHouseClient): Promise<Camera[]> {
  const rows = await (await client.query({ query: `SELECT * FROM ${CURRENT_CAMERAS} ORDER BY id`, format: 'JSONEachRow', clickhouse_settings: { output_format_json_quote_64bit_integers: 0 } }))
    .json<{ id: string; kind: CameraKind; micro_grid_id: number; community_id: number; street_id: number; district_id: number; lon: number; lat: number; rtsp_url: string; codec: 'h264' | 'h265'; width: number; height: number; fps: number; bitrate_kbps: number; gop: number }>()
  return rows.map((c): Camera => ({ id: c.id, kind: c.kind, microGridId: c.micro_grid_id, communityId: c.community_id, streetId: c.street_id, districtId: c.district_id, lon: c.lon, lat: c.lat, rtspUrl: c.rtsp_url,
    profile: { codec: c.codec, width: c.width, height: c.height, fps: c.fps, bitrateKbps: c.bitrate_kbps, gop: c.gop } }))
}

export interface CityFigures {
  seed: number | null
  /** '' for a generated city; 'import: <name>' for one imported with citytwin city import. */
  source: string
  grids: Record<string, number>
  devices: number
  devicesByType: Record<string, number>
  cameras: number
}

export async function readCityFigures(client: ClickHouseClient): Promise<CityFigures> {
  const q = async <T>(query: string): Promise<T[]> => (await client.query({ query, format: 'JSONEachRow' })).json<T>()
  const levels = await q<{ level: string; n: string }>('SELECT level, count() AS n FROM grids GROUP BY level ORDER BY level')
  const seed = await q<{ s: number | null; source: string }>('SELECT any(city_seed) AS s, any(city_source) AS source FROM grids')
  const types = await q<{ type: string; n: string }>(`SELECT type, count() AS n FROM ${CURRENT_DEVICES} GROUP BY type ORDER BY type`)
  const cams = await q<{ n: string }>(`SELECT count() AS n FROM ${CURRENT_CAMERAS}`)
  const devicesByType = Object.fromEntries(types.map((t) => [t.type, Number(t.n)]))
  return {
    seed: levels.length > 0 ? Number(seed[0]?.s ?? 0) : null,
    source: seed[0]?.source ?? '',
    grids: Object.fromEntries(levels.map((l) => [l.level, Number(l.n)])),
    devices: Object.values(devicesByType).reduce((s, n) => s + n, 0),
    devicesByType,
    cameras: Number(cams[0]?.n ?? 0),
  }
}
