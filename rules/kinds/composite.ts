// Composite: signals from different sources in the same grid within a
// window, e.g. a smoke sensor over its line and a camera seeing the scene
// change is a fire. Parts are other rules' signals or camera events.
import type { CompositeRule } from '../schema.ts'
import type { AreaLevel, Place, StepResult } from './types.ts'

export interface CompositeState {
  /** Per part: when it was last seen on (ms); 0 when not. */
  seen: number[]
  active: boolean
}

export function stepComposite(
  r: CompositeRule, s: CompositeState | undefined, part: number, on: boolean, ts: number,
  key: string, place: Place, grid: { gridLevel: AreaLevel; gridId: number }, evidence: Record<string, unknown>,
): StepResult<CompositeState> {
  const state: CompositeState = { seen: s ? [...s.seen] : r.parts.map(() => 0), active: s?.active ?? false }
  if (!on) {
    state.seen[part] = 0
    if (state.active) {
      state.active = false
      return { state: state.seen.some((t) => t > 0) ? state : undefined, actions: [{ type: 'clear', ruleId: r.id, key, ts, place, ticket: r.ticket }] }
    }
    return { state: state.seen.some((t) => t > 0) ? state : undefined, actions: [] }
  }
  state.seen[part] = ts
  const all = state.seen.every((t) => t > 0 && ts - t <= r.windowS * 1000)
  if (state.active || !all) return { state, actions: [] }
  state.active = true
  return {
    state,
    actions: [{
      type: 'raise', ruleId: r.id, key, ticketType: r.ticketType, severity: r.severity ?? 'critical', subject: grid, place, ts, ticket: r.ticket,
      title: r.title, evidence: { ...evidence, parts: r.parts, seen: state.seen },
    }],
  }
}

/** Forgets parts seen longer ago than the window (an active signal waits for its parts to end). */
export function tickComposite(r: CompositeRule, s: CompositeState, ts: number): CompositeState | undefined {
  if (s.active) return s
  const seen = s.seen.map((t) => (t > 0 && ts - t <= r.windowS * 1000 ? t : 0))
  return seen.some((t) => t > 0) ? { ...s, seen } : undefined
}
