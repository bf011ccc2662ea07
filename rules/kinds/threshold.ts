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

/** The more extreme of a peak so far and a value, on the rule's side of the line. */
function extreme(above: boolean, peak: number | undefined, value: number): number {
  return peak === undefined ? value : above ? Math.max(peak, value) : Math.min(peak, value)
}

// Runs for every reading of every device a threshold rule watches (the
// city's whole rate): no closure and no copy of the state unless it changes.
// A closure made per call also cost a property definition each (the
// function-naming helper of the TypeScript loader): 5% of the primary's main
// thread at 11,000 msg/s.
export function stepThreshold(r: ThresholdRule, s: ThresholdState | undefined, value: number, ts: number, key: string, place: Place, subject: { deviceId: string }): StepResult<ThresholdState> {
  const above = r.above !== undefined
  const line = (above ? r.above : r.below) ?? 0
  if (s?.active) {
    const back = above ? value < clearLevel(r) : value > clearLevel(r)
    if (!back) {
      const peak = extreme(above, s.peak, value)
      // An unchanged state is the same object: the engine stores only what changed.
      return { state: peak === s.peak ? s : { ...s, peak }, actions: [] }
    }
    return { state: undefined, actions: [{ type: 'clear', ruleId: r.id, key, ts, place, ticket: r.ticket }] }
  }
  const beyond = above ? value > line : value < line
  if (!beyond) return { state: undefined, actions: [] }
  const peak = extreme(above, s?.peak, value)
  if (s?.since !== undefined && peak === s.peak && ts - s.since < r.forS * 1000) return { state: s, actions: [] }
  const since = s?.since ?? ts
  if (ts - since < r.forS * 1000) return { state: { ...s, active: false, since, peak }, actions: [] }
  const state: ThresholdState = { ...s, active: true, since, peak }
  return {
    state,
    actions: [{
      type: 'raise', ruleId: r.id, key, ticketType: r.ticketType, severity: r.severity ?? 'warning', subject, place, ts, ticket: r.ticket,
      title: r.title, evidence: { metric: r.metric, value, peak, line, since, heldS: Math.round((ts - since) / 1000) },
    }],
  }
}
