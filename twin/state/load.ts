// The twin from the store: the city model, then the latest state of every
// device (from device_latest and device_connectivity, which materialized
// views keep up to date on every insert) and the open tickets. A restart
// therefore knows who is silent and what is open without replaying readings.
import type { ClickHouseClient } from '@clickhouse/client'
import { DONE_TICKET_STATUSES, type Element, type Severity } from '../../lib/bus/elements.ts'
import type { DeviceType } from '../model/device-types.ts'
import type { GridLevel } from '../model/city.ts'
import type { SilencePolicy } from './device.ts'
import { Twin, type TwinCamera, type TwinCity, type TwinDevice, type TwinGrid } from './twin.ts'

async function rows<T>(client: ClickHouseClient, query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  const rs = await client.query({ query, query_params: params, format: 'JSONCompactEachRow' })
  const out: T[] = []
  for await (const batch of rs.stream<T>()) for (const r of batch) out.push(r.json())
  return out
}

/** The city model as the twin needs it. */
export async function loadTwinCity(client: ClickHouseClient): Promise<TwinCity> {
  type G = [number, GridLevel, string, string, number, number, number, number, string, [number, number][], number, number]
  const grids: TwinGrid[] = (await rows<G>(client, 'SELECT id, level, code, name, parent_id, district_id, street_id, community_id, kind, ring, centroid_lon, centroid_lat FROM grids ORDER BY id'))
    .map(([id, level, code, name, parentId, districtId, streetId, communityId, kind, ring, lon, lat]) => ({
      id: Number(id), level, code, name, parentId: Number(parentId), districtId: Number(districtId), streetId: Number(streetId), communityId: Number(communityId), kind, ring, centroid: [lon, lat] as const,
    }))
  type D = [string, DeviceType, number, number, number, number, number, number, number]
  const devices: TwinDevice[] = (await rows<D>(client, 'SELECT id, type, micro_grid_id, community_id, street_id, district_id, lon, lat, interval_s FROM devices ORDER BY id'))
    .map(([id, type, micro, community, street, district, lon, lat, interval]) => ({
      id, type, microGridId: Number(micro), communityId: Number(community), streetId: Number(street), districtId: Number(district), lon, lat, intervalS: Number(interval),
    }))
  type C = [string, string, number, number, number, number, number, number]
  const cameras: TwinCamera[] = (await rows<C>(client, 'SELECT id, kind, micro_grid_id, community_id, street_id, district_id, lon, lat FROM cameras ORDER BY id'))
    .map(([id, kind, micro, community, street, district, lon, lat]) => ({
      id, kind, microGridId: Number(micro), communityId: Number(community), streetId: Number(street), districtId: Number(district), lon, lat,
    }))
  return { grids, devices, cameras }
}

/** The elements that bring a fresh twin to the store's latest state. */
export async function latestElements(client: ClickHouseClient): Promise<Element[]> {
  const out: Element[] = []
  // Connectivity first, then readings: the reducer orders them by time either way.
  for (const [deviceId, ts, connected] of await rows<[string, number | string, number]>(client,
    'SELECT device_id, toUnixTimestamp64Milli(max(ts)), argMax(connected, ts) FROM device_connectivity GROUP BY device_id')) {
    out.push({ kind: 'connectivity', deviceId, ts: Number(ts), state: Number(connected) === 1 ? 'connected' : 'disconnected' })
  }
  for (const [deviceId, metric, ts, value] of await rows<[string, string, number | string, number]>(client,
    'SELECT device_id, metric, toUnixTimestamp64Milli(max(ts)), argMax(value, ts) FROM device_latest GROUP BY device_id, metric')) {
    out.push({ kind: 'reading', deviceId, ts: Number(ts), values: { [metric]: value } })
  }
  type T = [string, Severity, string, string, number, number | string]
  for (const [ticketId, severity, deviceId, cameraId, gridId, ts] of await rows<T>(client,
    `SELECT id, argMax(severity, version), argMax(device_id, version), argMax(camera_id, version), argMax(grid_id, version), toUnixTimestamp64Milli(max(updated_at))
     FROM tickets GROUP BY id HAVING argMax(status, version) NOT IN {done:Array(String)}`, { done: DONE_TICKET_STATUSES })) {
    out.push({ kind: 'ticket', ticketId, ts: Number(ts), open: true, severity, ...(deviceId ? { deviceId } : {}), ...(cameraId ? { cameraId } : {}), gridId: Number(gridId) })
  }
  return out
}

/** A twin of the stored city, at its latest stored state. */
export async function loadTwin(client: ClickHouseClient, policy: SilencePolicy, now = Date.now()): Promise<Twin> {
  const twin = new Twin(await loadTwinCity(client), policy)
  twin.apply(await latestElements(client), now, true)
  twin.drainChanges()
  return twin
}
