// Area silence: when a large share of a grid's devices go silent within a
// window, it is the power or the network of the area, not the devices: one
// "area outage" ticket for the grid. Counts only transitions (the twin's
// status changes), so the state per grid is small: the devices that went
// silent in the window, each once however often it went silent (a device
// that goes silent and comes back three times is one device, not three:
// under overload, a few such devices had raised outages in grids where
// most devices were fine).
import type { AreaSilenceRule } from '../schema.ts'
import type { AreaLevel, Place, StepResult } from './types.ts'

interface SilentDevice {
  id: string
  /** When it last went silent. */
  ts: number
}

export interface AreaSilenceState {
  /** Devices of the grid that went silent within the window, each once (at its latest time), oldest first. */
  recent: SilentDevice[]
  /** Devices of the grid silent now (that this rule saw go silent). */
  silentNow: number
  active: boolean
}

/** Devices that make an outage in a grid of `total` devices. */
export function outageThreshold(r: Pick<AreaSilenceRule, 'percent' | 'minDevices'>, total: number): number {
  return Math.max(r.minDevices, Math.ceil((r.percent / 100) * total))
}

/** The devices of `s` that went silent after `since`. A state saved before devices were named holds times only: each counts as a device. */
function recentOf(s: AreaSilenceState, since: number): SilentDevice[] {
  return (s.recent as (SilentDevice | number)[]).map((x, i) => (typeof x === 'number' ? { id: `#${i}`, ts: x } : x)).filter((x) => x.ts > since)
}

export function stepAreaSilence(
  r: AreaSilenceRule, s: AreaSilenceState | undefined, deviceId: string, wentSilent: boolean, ts: number, total: number,
  key: string, place: Place, grid: { gridLevel: AreaLevel; gridId: number },
): StepResult<AreaSilenceState> {
  const state: AreaSilenceState = s ? { recent: recentOf(s, ts - r.windowS * 1000), silentNow: s.silentNow, active: s.active } : { recent: [], silentNow: 0, active: false }
  const need = outageThreshold(r, total)
  if (wentSilent) {
    const again = state.recent.findIndex((x) => x.id === deviceId)
    if (again >= 0) state.recent.splice(again, 1)
    state.recent.push({ id: deviceId, ts })
    state.silentNow++
    if (!state.active && state.recent.length >= need) {
      state.active = true
      return {
        state,
        actions: [{
          type: 'raise', ruleId: r.id, key, ticketType: r.ticketType, severity: r.severity ?? 'critical', subject: grid, place, ts, ticket: r.ticket,
          title: r.title, evidence: { silent: state.recent.length, devices: total, percent: Math.round((100 * state.recent.length) / Math.max(1, total)), windowS: r.windowS },
        }],
      }
    }
    return { state, actions: [] }
  }
  state.silentNow = Math.max(0, state.silentNow - 1)
  // The outage is over once most of the silent devices are back.
  if (state.active && state.silentNow < need / 2) {
    return { state: state.silentNow > 0 || state.recent.length > 0 ? { ...state, active: false } : undefined, actions: [{ type: 'clear', ruleId: r.id, key, ts, place, ticket: r.ticket }] }
  }
  return { state: !state.active && state.silentNow === 0 && state.recent.length === 0 ? undefined : state, actions: [] }
}

/** Forgets transitions that fell out of the window. */
export function tickAreaSilence(r: AreaSilenceRule, s: AreaSilenceState, ts: number): AreaSilenceState | undefined {
  const recent = recentOf(s, ts - r.windowS * 1000)
  if (!s.active && s.silentNow === 0 && recent.length === 0) return undefined
  return recent.length === s.recent.length ? s : { ...s, recent }
}
