// Silence: a device heard from nothing for k x its reporting interval, and
// at least minSilentS. The twin says when a device turns silent (after its
// own, shorter k); this rule waits until its own time has passed, on the
// clock ticks, and raises then.
import type { SilenceRule } from '../schema.ts'
import type { Place, StepResult } from './types.ts'

export interface SilenceState {
  /** Last time the device was heard from (ms). */
  since: number
  /** When the rule raises if the device is still silent. */
  due: number
  active: boolean
}

export function stepSilenceStatus(r: SilenceRule, s: SilenceState | undefined, silent: boolean, since: number, intervalS: number, ts: number, key: string, place: Place): StepResult<SilenceState> {
  if (silent) return { state: s ?? { since, due: since + Math.max(r.afterIntervals * intervalS, r.minSilentS) * 1000, active: false }, actions: [] }
  if (s?.active) return { state: undefined, actions: [{ type: 'clear', ruleId: r.id, key, ts, place, ticket: r.ticket }] }
  return { state: undefined, actions: [] }
}

/** A silence not yet raised, timed afresh from `startedAt` (the system was down meanwhile: see RuleEngine.restore). */
export function rebaseSilence(s: SilenceState, startedAt: number): SilenceState {
  const wait = s.due - s.since
  return s.active || s.due >= startedAt + wait ? s : { ...s, due: startedAt + wait }
}

export function stepSilenceTick(r: SilenceRule, s: SilenceState, ts: number, key: string, place: Place, deviceId: string): StepResult<SilenceState> {
  if (s.active || ts < s.due) return { state: s, actions: [] }
  return {
    state: { ...s, active: true },
    actions: [{
      type: 'raise', ruleId: r.id, key, ticketType: r.ticketType, severity: r.severity ?? 'warning', subject: { deviceId }, place, ts, ticket: r.ticket,
      title: r.title, evidence: { lastHeard: s.since, silentS: Math.round((ts - s.since) / 1000), afterIntervals: r.afterIntervals },
    }],
  }
}
