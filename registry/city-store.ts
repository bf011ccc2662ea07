// Writes a generated city into the store and reads its figures back. The
// new city replaces the old one atomically: each table is filled as
// `<table>_new` and swapped in with EXCHANGE TABLES, so readers never see a
// half-written city.
import type { ClickHouseClient } from '@clickhouse/client'
import type { City } from './city.ts'
import type { WriterConfig } from '../store/config.ts'
import { StoreWriter, type Row } from '../store/writer.ts'

const TABLES = {
  grids: ['id', 'level', 'code', 'name', 'parent_id', 'district_id', 'street_id', 'community_id', 'kind', 'ring', 'centroid_lon', 'centroid_lat', 'area_km2', 'city_seed'],
  devices: ['id', 'type', 'micro_grid_id', 'community_id', 'street_id', 'district_id', 'lon', 'lat', 'interval_s', 'installed_at'],
  cameras: ['id', 'kind', 'micro_grid_id', 'community_id', 'street_id', 'district_id', 'lon', 'lat', 'rtsp_url', 'codec', 'width', 'height', 'fps', 'bitrate_kbps', 'gop'],
} as const

function rowsOf(city: City): Record<keyof typeof TABLES, Row[]> {
  return {
    grids: city.grids.map((g) => [g.id, g.level, g.code, g.name, g.parentId, g.districtId, g.streetId, g.communityId, g.kind, g.ring, g.centroid[0], g.centroid[1], g.areaKm2, city.seed]),
    devices: city.devices.map((d) => [d.id, d.type, d.microGridId, d.communityId, d.streetId, d.districtId, d.lon, d.lat, d.intervalS, d.installedAt]),
    cameras: city.cameras.map((c) => [c.id, c.kind, c.microGridId, c.communityId, c.streetId, c.districtId, c.lon, c.lat, c.rtspUrl,
      c.profile.codec, c.profile.width, c.profile.height, c.profile.fps, c.profile.bitrateKbps, c.profile.gop]),
  }
}

export async function writeCity(client: ClickHouseClient, city: City, writer: WriterConfig): Promise<Record<keyof typeof TABLES, number>> {
  const rows = rowsOf(city)
  const written = { grids: 0, devices: 0, cameras: 0 }
  for (const table of Object.keys(TABLES) as (keyof typeof TABLES)[]) {
    const staging = `${table}_new`
    await client.command({ query: `DROP TABLE IF EXISTS ${staging}` })
    await client.command({ query: `CREATE TABLE ${staging} AS ${table}` })
    const w = new StoreWriter({ client, table: staging, columns: TABLES[table], config: { ...writer, maxBatchRows: 50_000, queueRows: Math.max(writer.queueRows, 50_000) } })
    await w.start()
    const pending = w.write(rows[table])
    await w.flush() // no point waiting for the flush timer: this is all there is
    const outcome = await pending
    await w.stop(Date.now() + 60_000)
    if (outcome.deadLettered > 0) throw new Error(`${outcome.deadLettered} ${table} rows were refused by the store; the city was not replaced`)
    await client.command({ query: `EXCHANGE TABLES ${table} AND ${staging}` })
    await client.command({ query: `DROP TABLE ${staging}` })
    written[table] = outcome.inserted
  }
  return written
}

export interface CityFigures {
  seed: number | null
  grids: Record<string, number>
  devices: number
  devicesByType: Record<string, number>
  cameras: number
}

export async function readCityFigures(client: ClickHouseClient): Promise<CityFigures> {
  const q = async <T>(query: string): Promise<T[]> => (await client.query({ query, format: 'JSONEachRow' })).json<T>()
  const levels = await q<{ level: string; n: string }>('SELECT level, count() AS n FROM grids GROUP BY level ORDER BY level')
  const seed = await q<{ s: number | null }>('SELECT any(city_seed) AS s FROM grids')
  const types = await q<{ type: string; n: string }>('SELECT type, count() AS n FROM devices GROUP BY type ORDER BY type')
  const cams = await q<{ n: string }>('SELECT count() AS n FROM cameras')
  const devicesByType = Object.fromEntries(types.map((t) => [t.type, Number(t.n)]))
  return {
    seed: levels.length > 0 ? Number(seed[0]?.s ?? 0) : null,
    grids: Object.fromEntries(levels.map((l) => [l.level, Number(l.n)])),
    devices: Object.values(devicesByType).reduce((s, n) => s + n, 0),
    devicesByType,
    cameras: Number(cams[0]?.n ?? 0),
  }
}
