// Threshold with duration and hysteresis: "water level above 30 cm for 5
// minutes". The signal starts once the condition has held for `forS` (by the
// readings' own times) and ends only once the value is back beyond the clear
// level, so a value hovering at the line does not flap.
import type { ThresholdRule } from '../schema.ts'
import type { Place, StepResult } from './types.ts'

export interface ThresholdState {
  /** When the condition began to hold (ms); absent while it does not. */
  since?: number
  active: boolean
  /** Most extreme value while active or pending. */
  peak?: number
}

/** The level at which an active signal ends. */
export function clearLevel(r: Pick<ThresholdRule, 'above' | 'below' | 'clear'>): number {
  if (r.clear !== undefined) return r.clear
  const t = r.above ?? r.below ?? 0
  const margin = Math.abs(t) * 0.1
  return r.above !== undefined ? t - margin : t + margin
}

export function stepThreshold(r: ThresholdRule, s: ThresholdState | undefined, value: number, ts: number, key: string, place: Place, subject: { deviceId: string }): StepResult<ThresholdState> {
  const above = r.above !== undefined
  const line = (above ? r.above : r.below) ?? 0
  const beyond = above ? value > line : value < line
  const state: ThresholdState = s ? { ...s } : { active: false }
  const extreme = (a: number | undefined): number => (a === undefined ? value : above ? Math.max(a, value) : Math.min(a, value))
  if (state.active) {
    const back = above ? value < clearLevel(r) : value > clearLevel(r)
    if (!back) {
      // An unchanged state is the same object: the engine stores only what changed.
      if (s && extreme(s.peak) === s.peak) return { state: s, actions: [] }
      state.peak = extreme(state.peak)
      return { state, actions: [] }
    }
    return { state: undefined, actions: [{ type: 'clear', ruleId: r.id, key, ts, place, ticket: r.ticket }] }
  }
  if (!beyond) return { state: undefined, actions: [] }
  if (s?.since !== undefined && extreme(s.peak) === s.peak && ts - s.since < r.forS * 1000) return { state: s, actions: [] }
  state.since ??= ts
  state.peak = extreme(state.peak)
  if (ts - state.since < r.forS * 1000) return { state, actions: [] }
  state.active = true
  return {
    state,
    actions: [{
      type: 'raise', ruleId: r.id, key, ticketType: r.ticketType, severity: r.severity ?? 'warning', subject, place, ts, ticket: r.ticket,
      title: r.title, evidence: { metric: r.metric, value, peak: state.peak, line, since: state.since, heldS: Math.round((ts - state.since) / 1000) },
    }],
  }
}
