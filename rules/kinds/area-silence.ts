// Area silence: when a large share of a grid's devices go silent within a
// window of each other, it is the power or the network of the area, not the
// devices: one "area outage" ticket for the grid. Counts only transitions
// (the twin's status changes), so the state per grid is small: the devices
// that went silent within a window of the latest one and are silent still,
// each once however often it went silent (under overload, devices that went silent and came back over
// and over had raised outages in grids where most devices were fine).
//
// Hysteresis in time as well as in count: the share must hold for `holdS`
// before the outage is raised, and the silent devices must stay under half
// of it for `holdS` before it clears. Starvation that moves from socket to
// socket (an overloaded gateway serving some devices late) makes a third
// of a grid look silent for a few seconds at a time; at full city load that
// had raised and cleared 25,710 outages in 8 minutes. A power cut holds.
// While the device rules wait for a pending outage they raise nothing of
// their own (engine.ts), so an outage still means one ticket, not one per
// device. And while absence is not judged at all (ingest degraded, see
// twin/state/ingest-health.ts) nothing is raised, and the hold starts again
// once it is judged.
import type { AreaSilenceRule } from '../schema.ts'
import type { Action, AreaLevel, Place, StepResult } from './types.ts'

interface SilentDevice {
  id: string
  /** When its latest silence began (it was last heard from). */
  ts: number
}

export interface AreaSilenceState {
  /** Devices of the grid that went silent within the window before the latest one and have not been heard since, each once, oldest first. */
  recent: SilentDevice[]
  /** Devices of the grid silent now (that this rule saw go silent). */
  silentNow: number
  active: boolean
  /** Not raised yet: since when the devices in `recent` have made an outage. */
  overSince?: number
  /** Raised: since when the devices silent now have been under half of an outage. */
  underSince?: number
}

/** Devices that make an outage in a grid of `total` devices. */
export function outageThreshold(r: Pick<AreaSilenceRule, 'percent' | 'minDevices'>, total: number): number {
  return Math.max(r.minDevices, Math.ceil((r.percent / 100) * total))
}

/** Whether an outage is building in this state: over the threshold, not raised yet (the device rules wait for it). */
export function outagePending(s: AreaSilenceState | undefined): boolean {
  return s !== undefined && !s.active && s.overSince !== undefined
}

/** The devices of `s` that went silent after `since`. A state saved before devices were named holds times only: each counts as a device. */
function recentOf(s: AreaSilenceState, since: number): SilentDevice[] {
  return (s.recent as (SilentDevice | number)[]).map((x, i) => (typeof x === 'number' ? { id: `#${i}`, ts: x } : x)).filter((x) => x.ts > since)
}

interface Where {
  key: string
  place: Place
  grid: { gridLevel: AreaLevel; gridId: number }
  /** Devices of the rule's types in the grid. */
  total: number
}

/** An outage not yet raised, timed afresh from `startedAt`: its devices away since then at the earliest, its hold from then (see RuleEngine.restore). */
export function rebaseAreaSilence(s: AreaSilenceState, startedAt: number): AreaSilenceState {
  if (s.active) return s
  const { overSince, ...rest } = s
  return { ...rest, ...(overSince === undefined ? {} : { overSince: Math.max(overSince, startedAt) }), recent: recentOf(s, -Infinity).map((x) => ({ ...x, ts: Math.max(x.ts, startedAt) })) }
}

/**
 * A device's move into silence (`wentSilent`) or out of it, judged at `ts`.
 * `lastHeard`: when the device was last heard from, the start of its
 * silence. The window is measured between those, not between the moments
 * the twin judged them: a spell of ingest degraded (nothing judged) must
 * not split one power cut into two clusters too small to be an outage.
 */
export function stepAreaSilence(r: AreaSilenceRule, s: AreaSilenceState | undefined, deviceId: string, wentSilent: boolean, ts: number, at: Where, held = false, lastHeard = ts): StepResult<AreaSilenceState> {
  const began = Math.min(ts, lastHeard > 0 ? lastHeard : ts)
  // The window is the spread of the silences, not their age: those more than a window before this one are not part of its cluster.
  const state: AreaSilenceState = s ? { ...s, recent: wentSilent ? recentOf(s, began - r.windowS * 1000) : recentOf(s, -Infinity) } : { recent: [], silentNow: 0, active: false }
  const again = state.recent.findIndex((x) => x.id === deviceId)
  if (again >= 0) state.recent.splice(again, 1)
  if (wentSilent) {
    state.recent.push({ id: deviceId, ts: began })
    state.silentNow++
  } else {
    state.silentNow = Math.max(0, state.silentNow - 1)
  }
  return judge(r, state, ts, at, held)
}

/**
 * Time passes: a share held long enough raises, a recovery held long enough
 * clears. Silences do not age out here: a long spell of ingest degraded
 * (nothing judged) must not turn a power cut into a ticket per device.
 */
export function tickAreaSilence(r: AreaSilenceRule, s: AreaSilenceState, ts: number, at: Where, held = false): StepResult<AreaSilenceState> {
  const res = judge(r, { ...s }, ts, at, held)
  // Nothing changed: the same state, so the engine has nothing to store.
  const n = res.state
  if (res.actions.length === 0 && n && n.recent.length === s.recent.length && n.silentNow === s.silentNow && n.active === s.active && n.overSince === s.overSince && n.underSince === s.underSince) return { state: s, actions: [] }
  return res
}

function judge(r: AreaSilenceRule, state: AreaSilenceState, ts: number, at: Where, held: boolean): StepResult<AreaSilenceState> {
  const need = outageThreshold(r, at.total)
  const holdMs = r.holdS * 1000
  const actions: Action[] = []
  if (!state.active) {
    if (state.recent.length < need) delete state.overSince
    // While absence is not judged, the hold starts again: what it saw may be only the system's own delay.
    else if (state.overSince === undefined || held) state.overSince = ts
    if (!held && state.overSince !== undefined && ts - state.overSince >= holdMs) {
      state.active = true
      delete state.overSince
      actions.push({
        type: 'raise', ruleId: r.id, key: at.key, ticketType: r.ticketType, severity: r.severity ?? 'critical', subject: at.grid, place: at.place, ts, ticket: r.ticket,
        title: r.title, evidence: { silent: state.recent.length, devices: at.total, percent: Math.round((100 * state.recent.length) / Math.max(1, at.total)), windowS: r.windowS, holdS: r.holdS },
      })
    }
  } else {
    // The outage is over once most of the silent devices are back, and stay back.
    if (state.silentNow >= need / 2) delete state.underSince
    else state.underSince ??= ts
    if (state.underSince !== undefined && ts - state.underSince >= holdMs) {
      state.active = false
      delete state.underSince
      actions.push({ type: 'clear', ruleId: r.id, key: at.key, ts, place: at.place, ticket: r.ticket })
    }
  }
  const empty = !state.active && state.silentNow === 0 && state.recent.length === 0
  return { state: empty ? undefined : state, actions }
}
