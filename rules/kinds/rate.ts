// Rate of change: "gas concentration rising faster than 5 %LEL a minute".
// The rate is the least-squares slope of the readings in the window, and is
// believed only once they span half the window: two noisy readings a few
// seconds apart say nothing about a trend (a sensor jittering by 1 %LEL
// every 5 s "rises" 12 %LEL a minute between two of them). The signal ends
// once the slope is back under half the limit.
import type { RateRule } from '../schema.ts'
import type { Place, StepResult } from './types.ts'

export interface RateState {
  /** Recent readings, oldest first: [ts, value] pairs. */
  samples: [number, number][]
  active: boolean
}

/** Readings kept per device and rule: enough for a window of a fast sensor. */
const MAX_SAMPLES = 64

/** Least-squares slope of the samples, per minute; undefined when they span less than `minSpanMs`. */
export function ratePerMin(samples: readonly [number, number][], minSpanMs = 1): number | undefined {
  const first = samples[0]
  const last = samples[samples.length - 1]
  if (!first || !last || last[0] - first[0] < Math.max(1, minSpanMs)) return undefined
  let mt = 0
  let mv = 0
  for (const [t, v] of samples) {
    mt += t - first[0]
    mv += v
  }
  mt /= samples.length
  mv /= samples.length
  let num = 0
  let den = 0
  for (const [t, v] of samples) {
    const dt = t - first[0] - mt
    num += dt * (v - mv)
    den += dt * dt
  }
  return den === 0 ? undefined : (num / den) * 60_000
}

export function stepRate(r: RateRule, s: RateState | undefined, value: number, ts: number, key: string, place: Place, subject: { deviceId: string }): StepResult<RateState> {
  const samples = (s?.samples ?? []).filter(([t]) => t > ts - r.windowS * 1000 && t < ts)
  samples.push([ts, value])
  if (samples.length > MAX_SAMPLES) samples.splice(0, samples.length - MAX_SAMPLES)
  const state: RateState = { samples, active: s?.active ?? false }
  const rate = samples.length >= r.minSamples ? ratePerMin(samples, (r.windowS * 1000) / 2) : undefined
  const limit = r.risePerMin ?? -(r.fallPerMin ?? 0)
  const over = (x: number, lim: number): boolean => (r.risePerMin !== undefined ? x > lim : x < lim)
  const relevant = (r.minValue === undefined || value >= r.minValue) && (r.maxValue === undefined || value <= r.maxValue)
  if (!state.active) {
    if (rate === undefined || !relevant || !over(rate, limit)) return { state, actions: [] }
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
