// Time travel: a device or a grid as it was at time T, and a metric's
// history downsampled to N points, answered from the store (readings, the
// connectivity events and the tickets), not from the live twin.
import { DONE_TICKET_STATUSES } from '../../lib/bus/elements.ts'
import type { ClickHouseClient } from '@clickhouse/client'
import { rollupsHoldUpTo } from '../../store/rollups.ts'
import { deviceStatus, type DeviceStatus, type SilencePolicy } from './device.ts'

export interface HistoryPoint {
  /** Start of the bucket, ms. */
  t: number
  n: number
  avg: number
  min: number
  max: number
}

async function rows<T>(client: ClickHouseClient, query: string, params: Record<string, unknown>): Promise<T[]> {
  const rs = await client.query({ query, query_params: params, format: 'JSONCompactEachRow' })
  return rs.json<T>()
}

/** A metric of a device between `from` and `to` (ms), in at most `points` equal buckets. */
export async function deviceHistory(client: ClickHouseClient, device: { id: string; communityId: number }, metric: string, from: number, to: number, points: number): Promise<{ stepMs: number; points: HistoryPoint[] }> {
  const stepMs = Math.max(1, Math.ceil((to - from) / points))
  // community_id, metric, device_id lead the readings key: this reads only the device's own rows.
  const out = await rows<[number | string, number | string, number, number, number]>(client,
    `SELECT intDiv(toUnixTimestamp64Milli(ts) - {from:Int64}, {step:Int64}) AS b, count(), avg(value), min(value), max(value)
     FROM readings
     WHERE community_id = {community:UInt32} AND metric = {metric:String} AND device_id = {device:String}
       AND ts >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') AND ts < fromUnixTimestamp64Milli({to:Int64}, 'UTC')
     GROUP BY b ORDER BY b`,
    { from, to, step: stepMs, community: device.communityId, metric, device: device.id })
  return { stepMs, points: out.map(([b, n, avg, min, max]) => ({ t: from + Number(b) * stepMs, n: Number(n), avg, min, max })) }
}

export interface DeviceAsOf {
  at: number
  status: DeviceStatus
  connected: boolean | null
  lastActivity: number | null
  values: Record<string, { value: number; ts: number }>
}

/** A device as it was at `at` (ms): its latest values then, and its status by the same rule as the live twin. */
export async function deviceAsOf(client: ClickHouseClient, device: { id: string; communityId: number; intervalS: number }, at: number, policy: SilencePolicy, lookbackMs = 86_400_000): Promise<DeviceAsOf> {
  const readings = await rows<[string, number, number | string]>(client,
    `SELECT metric, argMax(value, ts), toUnixTimestamp64Milli(max(ts)) FROM readings
     WHERE community_id = {community:UInt32} AND device_id = {device:String}
       AND ts <= fromUnixTimestamp64Milli({at:Int64}, 'UTC') AND ts > fromUnixTimestamp64Milli({since:Int64}, 'UTC')
     GROUP BY metric ORDER BY metric`,
    { community: device.communityId, device: device.id, at, since: at - lookbackMs })
  const conn = await rows<[string, number | string]>(client,
    `SELECT argMax(kind, ts), toUnixTimestamp64Milli(max(ts)) FROM events
     WHERE kind IN ('connected', 'disconnected') AND community_id = {community:UInt32} AND source = 'device' AND source_id = {device:String}
       AND ts <= fromUnixTimestamp64Milli({at:Int64}, 'UTC') AND ts > fromUnixTimestamp64Milli({since:Int64}, 'UTC')
     HAVING count() > 0`,
    { community: device.communityId, device: device.id, at, since: at - lookbackMs })
  const values: DeviceAsOf['values'] = {}
  let lastReading = 0
  for (const [metric, value, ts] of readings) {
    values[metric] = { value, ts: Number(ts) }
    lastReading = Math.max(lastReading, Number(ts))
  }
  const [kind, connTs] = conn[0] ?? [undefined, 0]
  const lastConn = Number(connTs)
  // The later of the last reading and the last connectivity event decides, as in the reducer.
  const connected = kind === undefined ? (lastReading > 0 ? true : null) : lastReading > lastConn ? true : kind === 'connected'
  const lastActivity = Math.max(lastReading, lastConn)
  const status = deviceStatus({ connected: connected === true, lastActivity, status: 'unknown' }, at, device.intervalS * 1000, policy)
  return { at, status, connected, lastActivity: lastActivity || null, values }
}

/**
 * Per metric, over some community grids, in the minute that holds {at}:
 * from readings_1m, or from the readings themselves for a minute the
 * roll-ups may not have written yet (`held`: they write a minute once it
 * has ended, store/rollups.ts).
 */
function minuteMetricsQuery(held: boolean): string {
  return held
    ? `SELECT metric, count(), sum(value), min(value), max(value) FROM readings
       WHERE community_id IN {communities:Array(UInt32)} AND ts >= toStartOfMinute(fromUnixTimestamp64Milli({at:Int64}, 'UTC'))
         AND ts < toStartOfMinute(fromUnixTimestamp64Milli({at:Int64}, 'UTC')) + INTERVAL 1 MINUTE
       GROUP BY metric ORDER BY metric`
    : `SELECT metric, sum(n), sum(total), min(lo), max(hi) FROM readings_1m
       WHERE community_id IN {communities:Array(UInt32)} AND minute = toStartOfMinute(fromUnixTimestamp64Milli({at:Int64}, 'UTC'))
       GROUP BY metric ORDER BY metric`
}

export interface GridAsOf {
  at: number
  devices: { total: number; reporting: number; offline: number; notReporting: number }
  /** Per metric, over the grid's devices, in the minute that holds `at`. */
  metrics: Record<string, { n: number; avg: number; min: number; max: number }>
  openTickets: number
}

/**
 * A grid as it was at `at`: how many of its devices were reporting (a
 * reading within k of their intervals before `at`), how many had
 * disconnected, the minute roll-up of its metrics, and its open tickets.
 */
export async function gridAsOf(client: ClickHouseClient, grid: { communities: readonly number[]; devices: readonly { id: string; intervalS: number }[] }, at: number, policy: SilencePolicy): Promise<GridAsOf> {
  const maxInterval = Math.max(1, ...grid.devices.map((d) => d.intervalS))
  const windowMs = Math.ceil(policy.silentAfterIntervals * maxInterval * 1000)
  const params = { communities: grid.communities, at, since: at - windowMs, dayAgo: at - 86_400_000, done: DONE_TICKET_STATUSES }
  const last = new Map((await rows<[string, number | string]>(client,
    `SELECT device_id, toUnixTimestamp64Milli(max(ts)) FROM readings
     WHERE community_id IN {communities:Array(UInt32)} AND ts <= fromUnixTimestamp64Milli({at:Int64}, 'UTC') AND ts > fromUnixTimestamp64Milli({since:Int64}, 'UTC')
     GROUP BY device_id`, params)).map(([id, ts]) => [id, Number(ts)]))
  const disconnected = new Set((await rows<[string]>(client,
    `SELECT source_id FROM events
     WHERE kind IN ('connected', 'disconnected') AND community_id IN {communities:Array(UInt32)} AND source = 'device'
       AND ts <= fromUnixTimestamp64Milli({at:Int64}, 'UTC') AND ts > fromUnixTimestamp64Milli({dayAgo:Int64}, 'UTC')
     GROUP BY source_id HAVING argMax(kind, ts) = 'disconnected'`, params)).map(([id]) => id))
  let reporting = 0
  let offline = 0
  for (const d of grid.devices) {
    const ts = last.get(d.id)
    if (ts !== undefined && at - ts <= policy.silentAfterIntervals * d.intervalS * 1000) reporting++
    else if (disconnected.has(d.id)) offline++
  }
  const metrics: GridAsOf['metrics'] = {}
  const held = Math.floor(at / 60_000) * 60_000 + 60_000 > await rollupsHoldUpTo(client)
  for (const [metric, n, total, lo, hi] of await rows<[string, number | string, number, number, number]>(client, minuteMetricsQuery(held), params)) {
    metrics[metric] = { n: Number(n), avg: Number(n) > 0 ? total / Number(n) : 0, min: lo, max: hi }
  }
  const [[open] = [0]] = await rows<[number | string]>(client,
    `SELECT count() FROM (
       SELECT id, argMax(status, version) AS status, argMax(updated_at, version) AS updated, min(created_at) AS created
       FROM tickets WHERE community_id IN {communities:Array(UInt32)} GROUP BY id)
     WHERE created <= fromUnixTimestamp64Milli({at:Int64}, 'UTC') AND NOT (status IN {done:Array(String)} AND updated <= fromUnixTimestamp64Milli({at:Int64}, 'UTC'))`, params)
  return { at, devices: { total: grid.devices.length, reporting, offline, notReporting: grid.devices.length - reporting - offline }, metrics, openTickets: Number(open) }
}
