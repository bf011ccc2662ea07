// Rate of change: "gas concentration rising faster than 5 %LEL a minute".
// The rate is the change between the oldest and newest reading in the
// window; the signal ends once it is back under half the limit, so a
// noisy-but-steady sensor does not flap.
import type { RateRule } from '../schema.ts'
import type { Place, StepResult } from './types.ts'

export interface RateState {
  /** Recent readings, oldest first: [ts, value] pairs. */
  samples: [number, number][]
  active: boolean
}

/** Readings kept per device and rule: enough for a window of a fast sensor. */
const MAX_SAMPLES = 64

export function ratePerMin(samples: readonly [number, number][]): number | undefined {
  const first = samples[0]
  const last = samples[samples.length - 1]
  if (!first || !last || last[0] <= first[0]) return undefined
  return ((last[1] - first[1]) / (last[0] - first[0])) * 60_000
}

export function stepRate(r: RateRule, s: RateState | undefined, value: number, ts: number, key: string, place: Place, subject: { deviceId: string }): StepResult<RateState> {
  const samples = (s?.samples ?? []).filter(([t]) => t > ts - r.windowS * 1000 && t < ts)
  samples.push([ts, value])
  if (samples.length > MAX_SAMPLES) samples.splice(0, samples.length - MAX_SAMPLES)
  const state: RateState = { samples, active: s?.active ?? false }
  const rate = samples.length >= r.minSamples ? ratePerMin(samples) : undefined
  const limit = r.risePerMin ?? -(r.fallPerMin ?? 0)
  const over = (x: number, lim: number): boolean => (r.risePerMin !== undefined ? x > lim : x < lim)
  if (!state.active) {
    if (rate === undefined || !over(rate, limit)) return { state, actions: [] }
    state.active = true
    return {
      state,
      actions: [{
        type: 'raise', ruleId: r.id, key, ticketType: r.ticketType, severity: r.severity ?? 'warning', subject, place, ts, ticket: r.ticket,
        title: r.title, evidence: { metric: r.metric, value, ratePerMin: Number(rate.toFixed(3)), limitPerMin: limit, windowS: r.windowS },
      }],
    }
  }
  if (rate !== undefined && over(rate, limit / 2)) return { state, actions: [] }
  state.active = false
  return { state, actions: [{ type: 'clear', ruleId: r.id, key, ts, place, ticket: r.ticket }] }
}
