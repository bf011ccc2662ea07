// Replay: the grid map as it was, hour by hour, over the last day, for the
// viewer's time slider. Answered from the store's roll-ups, not from the
// readings: a day of the full city is about two billion readings, but
// readings_1h holds one row per community grid, device type, metric and hour.
//
// A past hour has no device states (silent and offline are decided live), so
// a frame's health is the same score as the live one (health.ts) over what
// the roll-ups can tell: how many of a grid's devices reported, taken as
// messages received over messages expected at the devices' intervals, and
// the tickets open at the end of the hour. Cameras have no history yet and
// count as unknown.
import type { ClickHouseClient } from '@clickhouse/client'
import { DONE_TICKET_STATUSES, SEVERITIES, type Severity } from '../../lib/bus/elements.ts'
import { DEVICE_TYPES } from '../../registry/device-types.ts'
import { rollupsHoldUpTo } from '../../store/rollups.ts'
import { healthScore } from './health.ts'
import { boxesOverlap, ringBounds, type BBox, type Twin } from './twin.ts'

export const REPLAY_STEP_MS = 3_600_000
/** The levels a replay can show: the roll-ups are per community grid. */
export const REPLAY_LEVELS = ['district', 'street', 'community'] as const
export type ReplayLevel = (typeof REPLAY_LEVELS)[number]

export interface ReplayFrames {
  level: ReplayLevel
  stepMs: number
  /** Start of each frame (an hour), ms. */
  times: number[]
  ids: number[]
  /** Frame-major: health[f * ids.length + i], 0..100; -1 where the store has no readings at all for the frame. */
  health: number[]
  /** Frame-major worst open ticket at the end of the frame: 0 none, 1 info, 2 warning, 3 critical. */
  worst: number[]
}

/** Messages one device of each type sends per roll-up row of its first metric: one per message (a message carries all its metrics). */
const FIRST_METRIC = DEVICE_TYPES.map((t) => [t.type, t.metrics[0]?.name ?? ''] as const)

export interface ReplayInputs {
  level: ReplayLevel
  from: number
  to: number
  /** Grid ids of the level, and for each community grid the grid of the level it counts in. */
  ids: readonly number[]
  levelOf: ReadonlyMap<number, number>
  /** Devices per community grid and type, and each type's interval. */
  devices: ReadonlyMap<number, ReadonlyMap<string, number>>
  intervalS: ReadonlyMap<string, number>
  /** Messages received: [hour start ms, community, type, messages]. */
  received: readonly (readonly [number, number, string, number])[]
  /** Tickets: [created ms, done ms or null, severity, community]. */
  tickets: readonly (readonly [number, number | null, Severity, number])[]
  /**
   * Up to when (ms) the roll-ups hold what was stored (store/rollups.ts
   * rollupsHoldUpTo: they write a minute once it has ended); `to` when unset.
   * The hour under way is expected only up to there: its last minute or two
   * counted as missing would show a grid reporting less than it does.
   */
  heldUpTo?: number
}

/** The frames, from what the store said (pure). */
export function replayFrames(x: ReplayInputs): ReplayFrames {
  const times: number[] = []
  for (let t = Math.floor(x.from / REPLAY_STEP_MS) * REPLAY_STEP_MS; t < x.to; t += REPLAY_STEP_MS) times.push(t)
  const col = new Map(x.ids.map((id, i) => [id, i]))
  const n = x.ids.length
  const reported = new Float64Array(times.length * n)
  const total = new Float64Array(n)
  for (const [community, byType] of x.devices) {
    const i = col.get(x.levelOf.get(community) ?? -1)
    if (i === undefined) continue
    for (const count of byType.values()) total[i] = (total[i] ?? 0) + count
  }
  const frameOf = new Map(times.map((t, f) => [t, f]))
  const hasData = new Uint8Array(times.length)
  for (const [hour, community, type, messages] of x.received) {
    const f = frameOf.get(hour)
    const i = col.get(x.levelOf.get(community) ?? -1)
    const devices = x.devices.get(community)?.get(type) ?? 0
    // An hour the roll-ups have not reached by their record (sums written ahead of it: a reading from the
    // future, a record still owed) has no figure to be judged against: no data rather than a full score.
    const upTo = Math.min(hour + REPLAY_STEP_MS, x.to, x.heldUpTo ?? x.to)
    if (f === undefined || i === undefined || devices === 0 || upTo <= hour) continue
    hasData[f] = 1
    // The hour still running is expected only as far as it has gone, and as the roll-ups have written it.
    const seconds = Math.max(1, (upTo - hour) / 1000)
    const perDevice = seconds / (x.intervalS.get(type) ?? 60)
    const k = f * n + i
    reported[k] = (reported[k] ?? 0) + Math.min(devices, messages / perDevice)
  }
  const open = new Int32Array(times.length * n * 3)
  for (const [created, done, severity, community] of x.tickets) {
    const i = col.get(x.levelOf.get(community) ?? -1)
    if (i === undefined) continue
    const s = SEVERITIES.indexOf(severity)
    // Open at the end of frame f (ending at first + (f + 1) * step) when created before it and not done by it.
    const first = times[0] ?? 0
    const fromFrame = Math.max(0, Math.floor((created - first) / REPLAY_STEP_MS))
    const toFrame = done === null ? times.length - 1 : Math.min(times.length - 1, Math.floor((done - first) / REPLAY_STEP_MS) - 1)
    for (let f = fromFrame; f <= toFrame; f++) {
      const k = 3 * (f * n + i) + s
      open[k] = (open[k] ?? 0) + 1
    }
  }
  const health: number[] = new Array<number>(times.length * n).fill(-1)
  const worst: number[] = new Array<number>(times.length * n).fill(0)
  for (let f = 0; f < times.length; f++) {
    for (let i = 0; i < n; i++) {
      const k = f * n + i
      const tickets = { info: open[3 * k] ?? 0, warning: open[3 * k + 1] ?? 0, critical: open[3 * k + 2] ?? 0 }
      worst[k] = tickets.critical > 0 ? 3 : tickets.warning > 0 ? 2 : tickets.info > 0 ? 1 : 0
      if (!hasData[f]) continue
      const all = total[i] ?? 0
      const online = Math.round(reported[k] ?? 0)
      health[k] = healthScore({ devices: { online, offline: all - online, silent: 0, unknown: 0 }, cameras: { unknown: 0, ok: 0, offline: 0, degraded: 0, tampered: 0 }, tickets })
    }
  }
  return { level: x.level, stepMs: REPLAY_STEP_MS, times, ids: [...x.ids], health, worst }
}

const levelKey = { district: 'districtId', street: 'streetId', community: 'communityId' } as const

/** The frames of `level` (optionally only grids whose centroid is in `bbox`) between `from` and `to`, from the store. */
export async function gridReplay(client: ClickHouseClient, twin: Twin, level: ReplayLevel, from: number, to: number, bbox?: BBox): Promise<ReplayFrames> {
  // The grids the map draws for the box: those that overlap it (as /api/map/grids answers).
  const grids = twin.grids.filter((g) => g.level === level && (!bbox || boxesOverlap(ringBounds(g.ring), bbox)))
  const wanted = new Set(grids.map((g) => g.id))
  const levelOf = new Map<number, number>()
  for (const g of twin.grids) {
    if (g.level !== 'community') continue
    const up = g[levelKey[level]]
    if (wanted.has(up)) levelOf.set(g.id, up)
  }
  const devices = new Map<number, Map<string, number>>()
  const intervalS = new Map<string, number>()
  for (const d of twin.devices) {
    if (!levelOf.has(d.communityId)) continue
    const m = devices.get(d.communityId) ?? new Map<string, number>()
    devices.set(d.communityId, m)
    m.set(d.type, (m.get(d.type) ?? 0) + 1)
    intervalS.set(d.type, d.intervalS)
  }
  const communities = [...levelOf.keys()]
  const params = { from, to, types: FIRST_METRIC.map(([t]) => t), metrics: FIRST_METRIC.map(([, m]) => m), ...(bbox ? { communities } : {}) }
  const where = bbox ? 'AND community_id IN {communities:Array(UInt32)}' : ''
  const received = (await (await client.query({
    query: `SELECT toUnixTimestamp(hour) * 1000 AS h, community_id, device_type, sum(n) FROM readings_1h
            WHERE hour >= toStartOfHour(fromUnixTimestamp64Milli({from:Int64}, 'UTC')) AND hour < fromUnixTimestamp64Milli({to:Int64}, 'UTC')
              AND has(arrayZip({types:Array(String)}, {metrics:Array(String)}), (device_type, metric)) ${where}
            GROUP BY h, community_id, device_type`,
    query_params: params, format: 'JSONCompactEachRow',
  })).json<[number | string, number, string, number | string]>()).map(([h, c, t, m]) => [Number(h), c, t, Number(m)] as const)
  const tickets = (await (await client.query({
    query: `SELECT toUnixTimestamp64Milli(created_at), if(status IN {done:Array(String)}, toUnixTimestamp64Milli(updated_at), NULL), severity, community_id
            FROM tickets FINAL
            WHERE created_at < fromUnixTimestamp64Milli({to:Int64}, 'UTC')
              AND NOT (status IN {done:Array(String)} AND updated_at < fromUnixTimestamp64Milli({from:Int64}, 'UTC')) ${where}`,
    query_params: { ...params, done: [...DONE_TICKET_STATUSES] }, format: 'JSONCompactEachRow',
  })).json<[number | string, number | string | null, Severity, number]>()).map(([c, d, s, g]) => [Number(c), d === null ? null : Number(d), s, g] as const)
  return replayFrames({ level, from, to, ids: grids.map((g) => g.id), levelOf, devices, intervalS, received, tickets, heldUpTo: Math.min(to, await rollupsHoldUpTo(client)) })
}
