// The twin from the store: the city model, then the latest state of every
// device (from the twin's last checkpoint, checkpoint.ts, and what was
// stored after it) and the open tickets. A restart therefore knows who is
// silent and what is open without replaying the readings.
import type { ClickHouseClient } from '@clickhouse/client'
import { DONE_TICKET_STATUSES, type Element, type Severity, type TicketElement } from '../../lib/bus/elements.ts'
import { earliestTs, type Positions } from '../../lib/bus/position.ts'
import { checkpointPositions } from './checkpoint.ts'
import type { DeviceType } from '../../registry/device-types.ts'
import type { GridLevel } from '../../registry/city.ts'
import { CURRENT_CAMERAS, CURRENT_DEVICES } from '../../registry/city-store.ts'
import type { SilencePolicy } from './device.ts'
import { Twin, type TwinCamera, type TwinCity, type TwinDevice, type TwinGrid } from './twin.ts'
import { pushAll } from '../../lib/arrays.ts'

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
  const devices: TwinDevice[] = (await rows<D>(client, `SELECT id, type, micro_grid_id, community_id, street_id, district_id, lon, lat, interval_s FROM ${CURRENT_DEVICES} ORDER BY id`))
    .map(([id, type, micro, community, street, district, lon, lat, interval]) => ({
      id, type, microGridId: Number(micro), communityId: Number(community), streetId: Number(street), districtId: Number(district), lon, lat, intervalS: Number(interval),
    }))
  type C = [string, string, number, number, number, number, number, number]
  const cameras: TwinCamera[] = (await rows<C>(client, `SELECT id, kind, micro_grid_id, community_id, street_id, district_id, lon, lat FROM ${CURRENT_CAMERAS} ORDER BY id`))
    .map(([id, kind, micro, community, street, district, lon, lat]) => ({
      id, kind, microGridId: Number(micro), communityId: Number(community), streetId: Number(street), districtId: Number(district), lon, lat,
    }))
  return { grids, devices, cameras }
}

/** mqtt.maxPastMs's default: how far behind its arrival a stored row's timestamp may be. */
const DEFAULT_MAX_PAST_MS = 86_400_000

export interface LatestState {
  /** The elements that bring a fresh twin to the store's latest state. */
  elements: Element[]
  /** Those of them stored after the checkpoint (not yet in one: the next checkpoint must write them). */
  sinceCheckpoint: Element[]
  /**
   * Per stream: the checkpoint's positions. Not the highest read after it:
   * a writer may have a later write stored before an earlier one is, so
   * only the bus, which gets a stream's writes in order, says how far all
   * is applied.
   */
  positions: Positions
}

/**
 * The latest state of every device and the open tickets: the checkpoint,
 * then, per device, the latest of what was stored after its positions.
 * `maxPastMs` (mqtt.maxPastMs) bounds those queries by time.
 */
export async function latestState(client: ClickHouseClient, maxPastMs = DEFAULT_MAX_PAST_MS): Promise<LatestState> {
  const out: Element[] = []
  const loadedAt = Date.now()
  const positions = await checkpointPositions(client)
  // Connectivity first, then readings: the reducer orders them by time either way.
  for (const [deviceId, ts, connected] of await rows<[string, number | string, number]>(client,
    'SELECT device_id, toUnixTimestamp64Milli(max(ts)), argMax(connected, ts) FROM device_connectivity GROUP BY device_id')) {
    out.push({ kind: 'connectivity', deviceId, ts: Number(ts), state: Number(connected) === 1 ? 'connected' : 'disconnected' })
  }
  const checkpointed = await rows<[string, string, number | string, number]>(client,
    'SELECT device_id, metric, toUnixTimestamp64Milli(max(ts)), argMax(value, ts) FROM device_latest GROUP BY device_id, metric')
  // What the checkpoint does not hold yet: per device, the latest stored after it.
  const since: Element[] = []
  for (const [deviceId, ts, connected] of await rows<[string, number | string, number]>(client,
    `SELECT source_id, toUnixTimestamp64Milli(max(ts)), argMax(kind = 'connected', ts) FROM events
     WHERE source = 'device' AND kind IN ('connected', 'disconnected') AND bus_pos > {pos:UInt64} AND ts >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')
     GROUP BY source_id`, { pos: positions.events, since: earliestTs(positions.events, maxPastMs) })) {
    since.push({ kind: 'connectivity', deviceId, ts: Number(ts), state: Number(connected) === 1 ? 'connected' : 'disconnected' })
  }
  for (const [deviceId, metric, ts, value, receivedAt] of await rows<[string, string, number | string, number, number | string]>(client,
    `SELECT device_id, metric, toUnixTimestamp64Milli(max(ts)), argMax(value, ts), toUnixTimestamp64Milli(max(received_at)) FROM readings
     WHERE bus_pos > {pos:UInt64} AND ts >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')
     GROUP BY device_id, metric`, { pos: positions.readings, since: earliestTs(positions.readings, maxPastMs) })) {
    // Rows from before received_at was kept hold 0 there: their own time stands for it.
    since.push({ kind: 'reading', deviceId, ts: Number(ts), values: { [metric]: value }, receivedAt: Number(receivedAt) > 0 ? Number(receivedAt) : Number(ts) })
  }
  // The checkpoint keeps a reading's device time only, and a device's clock may be ahead: it was heard at
  // that time at the latest, not after now, and not after it was last seen to disconnect.
  const latest = new Map<string, { ts: number; connected: boolean }>()
  for (const list of [out, since]) {
    for (const e of list) {
      if (e.kind !== 'connectivity') continue
      const l = latest.get(e.deviceId)
      if (!l || e.ts > l.ts || (e.ts === l.ts && e.state === 'disconnected')) latest.set(e.deviceId, { ts: e.ts, connected: e.state === 'connected' })
    }
  }
  const gone = new Map([...latest].filter(([, l]) => !l.connected).map(([id, l]) => [id, l.ts]))
  for (const [deviceId, metric, ts, value] of checkpointed) {
    out.push({ kind: 'reading', deviceId, ts: Number(ts), values: { [metric]: value }, receivedAt: Math.min(Number(ts), loadedAt, gone.get(deviceId) ?? Number.POSITIVE_INFINITY) })
  }
  pushAll(out, since)
  pushAll(out, await openTickets(client))
  return { elements: out, sinceCheckpoint: since, positions }
}

/** Every ticket the store holds as open, as the bus carries tickets to the twin. */
export async function openTickets(client: ClickHouseClient): Promise<TicketElement[]> {
  type T = [string, Severity, string, string, number, number | string]
  const out: TicketElement[] = []
  for (const [ticketId, severity, deviceId, cameraId, gridId, ts] of await rows<T>(client,
    `SELECT id, argMax(severity, version), argMax(device_id, version), argMax(camera_id, version), argMax(grid_id, version), toUnixTimestamp64Milli(max(updated_at))
     FROM tickets GROUP BY id HAVING argMax(status, version) NOT IN {done:Array(String)}`, { done: DONE_TICKET_STATUSES })) {
    out.push({ kind: 'ticket', ticketId, ts: Number(ts), open: true, severity, ...(deviceId ? { deviceId } : {}), ...(cameraId ? { cameraId } : {}), gridId: Number(gridId) })
  }
  return out
}

/** A twin of the stored city, at its latest stored state, and what of that state no checkpoint holds yet. */
export async function loadTwinState(client: ClickHouseClient, policy: SilencePolicy, maxPastMs?: number, now = Date.now()): Promise<{ twin: Twin; state: LatestState }> {
  const twin = new Twin(await loadTwinCity(client), policy)
  const state = await latestState(client, maxPastMs)
  twin.apply(state.elements, now, true)
  twin.drainChanges()
  return { twin, state }
}

/** A twin of the stored city, at its latest stored state. */
export async function loadTwin(client: ClickHouseClient, policy: SilencePolicy, maxPastMs?: number, now = Date.now()): Promise<Twin> {
  return (await loadTwinState(client, policy, maxPastMs, now)).twin
}
