// The device registry the gateway authenticates and validates against,
// loaded once from the store's `devices` table (219,300 rows is ~40 MB).
import type { ClickHouseClient } from '@clickhouse/client'
import type { DeviceType } from '../../twin/model/device-types.ts'
import type { DeviceInfo } from './telemetry.ts'

export async function loadDevices(client: ClickHouseClient): Promise<Map<string, DeviceInfo>> {
  const rs = await client.query({
    query: 'SELECT id, type, micro_grid_id, community_id, street_id, district_id, lon, lat FROM devices',
    format: 'JSONCompactEachRow',
  })
  const rows = await rs.json<[string, DeviceType, number, number, number, number, number, number]>()
  const out = new Map<string, DeviceInfo>()
  for (const [id, type, micro, community, street, district, lon, lat] of rows) {
    out.set(id, { id, type, microGridId: Number(micro), communityId: Number(community), streetId: Number(street), districtId: Number(district), lon, lat })
  }
  return out
}

/** The topics a device may publish to, and the filter it may subscribe to. */
export const deviceTopics = (id: string) => ({
  telemetry: `devices/${id}/telemetry`,
  status: `devices/${id}/status`,
  events: `devices/${id}/events`,
  commands: `devices/${id}/commands/#`,
})

export type PublishKind = 'telemetry' | 'status' | 'events'

/**
 * Which of its own topics `devices/{id}/{kind}` a PUBLISH goes to, or
 * undefined when it is not one of them. Runs for every message, so it
 * compares in place instead of building the three topic strings.
 */
export function ownPublishKind(topic: string, id: string): PublishKind | undefined {
  if (!topic.startsWith('devices/') || !topic.startsWith(id, 8) || topic.charCodeAt(8 + id.length) !== 0x2f) return undefined
  const kind = topic.slice(9 + id.length)
  return kind === 'telemetry' || kind === 'status' || kind === 'events' ? kind : undefined
}
