// Count in a window: "3 or more motion events at night in a closed park".
// The signal ends once the window holds no counted event.
import type { CountRule } from '../schema.ts'
import type { Place, StepResult, Subject } from './types.ts'

export interface CountState {
  times: number[]
  active: boolean
}

export function stepCount(r: CountRule, s: CountState | undefined, ts: number, key: string, place: Place, subject: Subject, event: string): StepResult<CountState> {
  const times = (s?.times ?? []).filter((t) => t > ts - r.windowS * 1000)
  times.push(ts)
  // Only the newest `count` matter: enough to know the window holds `count`, and when it empties.
  if (times.length > r.count) times.splice(0, times.length - r.count)
  const state: CountState = { times, active: s?.active ?? false }
  if (state.active || times.length < r.count) return { state, actions: [] }
  state.active = true
  return {
    state,
    actions: [{
      type: 'raise', ruleId: r.id, key, ticketType: r.ticketType, severity: r.severity ?? 'warning', subject, place, ts, ticket: r.ticket,
      title: r.title, evidence: { event, count: times.length, windowS: r.windowS },
    }],
  }
}

export function tickCount(r: CountRule, s: CountState, ts: number, key: string, place: Place): StepResult<CountState> {
  const times = s.times.filter((t) => t > ts - r.windowS * 1000)
  if (times.length > 0) return { state: times.length === s.times.length ? s : { ...s, times }, actions: [] }
  return { state: undefined, actions: s.active ? [{ type: 'clear', ruleId: r.id, key, ts, place, ticket: r.ticket }] : [] }
}
