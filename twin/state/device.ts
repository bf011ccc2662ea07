// A device's live state and the pure reducer that moves it along. The twin
// keeps 219,300 of these; it stores them column-wise (see twin.ts) and runs
// this reducer on one device's record at a time.
import type { Element } from '../../lib/bus/elements.ts'

/**
 * unknown: never heard from since the twin has existed;
 * online:  connected, and heard from within k x its reporting interval;
 * silent:  not disconnected, yet nothing for more than k x its interval
 *          (a dead battery, a cut cable: the connection may even look up);
 * offline: its connection ended (a clean DISCONNECT or a lost connection).
 */
export const DEVICE_STATUSES = ['unknown', 'online', 'silent', 'offline'] as const
export type DeviceStatus = (typeof DEVICE_STATUSES)[number]

export interface DeviceLive {
  status: DeviceStatus
  /** Whether the gateway last saw it connect (1) rather than disconnect (0). */
  connected: boolean
  /** Latest reading, connect or event, in ms; 0 when never. */
  lastActivity: number
  /** Latest value and its time per metric of the device's type, in the type's metric order; NaN where none yet. */
  values: Float64Array
  times: Float64Array
}

export interface SilencePolicy {
  /** A device silent for more than this many reporting intervals is "silent". */
  silentAfterIntervals: number
  /** Most lag of late readings the twin waits for before judging silence (see lag.ts); 0: judge at the clock. */
  maxLagMs?: number
  /** Lag at which ingest is degraded and no silence is judged (see ingest-health.ts); 0 or absent: never. */
  degradedAfterMs?: number
  /** Share of the devices heard from lately (percent) that going silent at once makes ingest degraded; 0 or absent: not a cause. */
  degradedSilentPercent?: number
  /** Fewest silent devices that make ingest degraded that way. */
  degradedSilentMin?: number
  /** "Lately": a device counts while its silence began at most this long ago, ms. */
  degradedSilentWindowMs?: number
}

export type DeviceElement = Extract<Element, { kind: 'reading' | 'connectivity' | 'device-event' }>

/** The status a device's record implies at `now`. */
export function deviceStatus(live: Pick<DeviceLive, 'connected' | 'lastActivity' | 'status'>, now: number, intervalMs: number, policy: SilencePolicy): DeviceStatus {
  if (live.lastActivity === 0) return 'unknown'
  if (!live.connected) return 'offline'
  return now - live.lastActivity > policy.silentAfterIntervals * intervalMs ? 'silent' : 'online'
}

/**
 * Applies one element to a device's record. `metrics` is the type's metric
 * list (the order of `values`). Readings that arrive late never overwrite a
 * newer value. Returns a new record; `prev` is not changed.
 */
export function reduceDevice(prev: DeviceLive, e: DeviceElement, metrics: readonly string[], intervalMs: number, policy: SilencePolicy, now: number): DeviceLive {
  const next: DeviceLive = { ...prev, values: prev.values, times: prev.times }
  if (e.kind === 'reading') {
    let copied = false
    metrics.forEach((m, i) => {
      const v = e.values[m]
      const t = prev.times[i] ?? Number.NaN
      if (v === undefined || t > e.ts) return // NaN (never) compares false: taken
      if (!copied) {
        next.values = Float64Array.from(prev.values)
        next.times = Float64Array.from(prev.times)
        copied = true
      }
      next.values[i] = v
      next.times[i] = e.ts
    })
    // A reading proves the device is connected, unless a later disconnect was already heard. Both by the
    // gateway's clock: connectivity is stamped by it, and a device's own clock may be minutes off.
    const heard = e.receivedAt ?? e.ts
    if (heard >= prev.lastActivity) next.connected = true
    next.lastActivity = Math.max(prev.lastActivity, heard)
  } else if (e.kind === 'connectivity') {
    // Connectivity events from two gateway workers can cross: the later one wins.
    if (e.ts >= prev.lastActivity || prev.lastActivity === 0) {
      next.connected = e.state === 'connected'
      next.lastActivity = Math.max(prev.lastActivity, e.ts)
    }
  } else {
    // A device event carries the device's time (its clock may be ahead): heard no later than now.
    const heard = Math.min(e.ts, now)
    if (heard >= prev.lastActivity) next.connected = true
    next.lastActivity = Math.max(prev.lastActivity, heard)
  }
  next.status = deviceStatus(next, now, intervalMs, policy)
  return next
}
