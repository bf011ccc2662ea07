// Area silence: when a large share of a grid's devices go silent within a
// window, it is the power or the network of the area, not the devices: one
// "area outage" ticket for the grid. Counts only transitions (the twin's
// status changes), so the state per grid is a few numbers.
import type { AreaSilenceRule } from '../schema.ts'
import type { AreaLevel, Place, StepResult } from './types.ts'

export interface AreaSilenceState {
  /** Times devices of the grid went silent, within the window, oldest first. */
  recent: number[]
  /** Devices of the grid silent now (that this rule saw go silent). */
  silentNow: number
  active: boolean
}

/** Devices that make an outage in a grid of `total` devices. */
export function outageThreshold(r: Pick<AreaSilenceRule, 'percent' | 'minDevices'>, total: number): number {
  return Math.max(r.minDevices, Math.ceil((r.percent / 100) * total))
}

export function stepAreaSilence(
  r: AreaSilenceRule, s: AreaSilenceState | undefined, wentSilent: boolean, ts: number, total: number,
  key: string, place: Place, grid: { gridLevel: AreaLevel; gridId: number },
): StepResult<AreaSilenceState> {
  const state: AreaSilenceState = s ? { recent: s.recent.filter((t) => t > ts - r.windowS * 1000), silentNow: s.silentNow, active: s.active } : { recent: [], silentNow: 0, active: false }
  const need = outageThreshold(r, total)
  if (wentSilent) {
    state.recent.push(ts)
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
  const recent = s.recent.filter((t) => t > ts - r.windowS * 1000)
  if (!s.active && s.silentNow === 0 && recent.length === 0) return undefined
  return recent.length === s.recent.length ? s : { ...s, recent }
}
