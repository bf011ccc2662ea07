// The rule engine: the rules of every file, their state per subject, and the
// step that turns one input into actions. Pure: the caller brings the input,
// the context (the twin) and, inside the input, the time. Rule state is kept
// per key, marked dirty when it changes so the service can persist it, and
// restored from those rows at start-up, so durations and windows survive a
// restart.
import type { Severity } from '../lib/bus/elements.ts'
import type { DeviceType } from '../registry/device-types.ts'
import type { DeviceStatus } from '../twin/state/device.ts'
import { outagePending, rebaseAreaSilence, stepAreaSilence, tickAreaSilence, type AreaSilenceState } from './kinds/area-silence.ts'
import { stepCamera, type CameraState } from './kinds/camera.ts'
import { stepComposite, tickComposite, type CompositeState } from './kinds/composite.ts'
import { stepCount, tickCount, type CountState } from './kinds/count.ts'
import { stepRate, type RateState } from './kinds/rate.ts'
import { rebaseSilence, stepSilenceStatus, stepSilenceTick, type SilenceState } from './kinds/silence.ts'
import { stepThreshold, type ThresholdState } from './kinds/threshold.ts'
import { gridOf, inHours, localHour, MODES, type Action, type Mode, type Place, type RuleContext, type RuleInput, type StepResult, type Subject, type SubjectInfo } from './kinds/types.ts'
import type { AreaSilenceRule, CompositeRule, CountRule, Rule, SilenceRule } from './schema.ts'

type AnyState = ThresholdState | RateState | SilenceState | AreaSilenceState | CountState | CompositeState | CameraState

interface Entry {
  ruleId: string
  state: AnyState
  /** Where the subject stands (for ticks, which carry no subject). */
  place: Place
  subject: Subject
}

/** A rule's state for one key, as persisted. */
export interface RuleStateRow {
  key: string
  ruleId: string
  /** undefined: the state was dropped (back to normal). */
  state: AnyState | undefined
  place: Place
  subject: Subject
}

export interface EngineStats {
  rules: number
  states: number
  raised: number
  cleared: number
  suppressed: number
}

const keyOf = (ruleId: string, s: Subject): string =>
  'deviceId' in s ? `${ruleId}|d:${s.deviceId}` : 'cameraId' in s ? `${ruleId}|c:${s.cameraId}` : `${ruleId}|g:${s.gridLevel}:${s.gridId}`

/** A rule with a mode's overrides applied; undefined when the mode turns it off. */
export function effectiveRule(r: Rule, mode: Mode): Rule | undefined {
  const o = r.modes[mode]
  const eff = o ? ({ ...r, ...o }) : r
  return eff.enabled ? eff : undefined
}

export class RuleEngine {
  #rules: Rule[] = []
  /** The rules in the order ticks visit them: area rules first, as a device's silence waits while its area's outage is building. */
  #tickOrder: Rule[] = []
  #byId = new Map<string, Rule>()
  /** Per mode, per rule id: the rule as that mode has it. */
  #byMode = new Map<Mode, Map<string, Rule | undefined>>()
  /** Rules reading each device type's readings. */
  #readingRules = new Map<DeviceType, Rule[]>()
  /** Composite rules listening to each rule's signal, with the part index. */
  #signalListeners = new Map<string, { rule: CompositeRule; part: number }[]>()
  #states = new Map<string, Entry>()
  /** Keys per rule (ticks visit only the rules that need them). */
  #keysByRule = new Map<string, Set<string>>()
  #dirty = new Set<string>()
  #dropped = new Map<string, Entry>()
  /** Keys whose state the store holds (a state that stops being worth keeping must be deleted there). */
  #persisted = new Set<string>()
  readonly #severityOf: (ticketType: string) => Severity | undefined
  #stats = { raised: 0, cleared: 0, suppressed: 0 }

  constructor(rules: readonly Rule[], severityOf: (ticketType: string) => Severity | undefined = () => undefined) {
    this.#severityOf = severityOf
    this.setRules(rules)
  }

  get rules(): readonly Rule[] {
    return this.#rules
  }

  /**
   * Replaces the rule set (a hot reload). State is kept for rules that kept
   * their id, kind and parameters; a changed rule starts afresh.
   */
  setRules(rules: readonly Rule[]): void {
    const old = this.#byId
    this.#rules = [...rules]
    this.#tickOrder = [...rules.filter((r) => r.kind === 'area-silence'), ...rules.filter((r) => r.kind !== 'area-silence')]
    this.#byId = new Map(rules.map((r) => [r.id, r]))
    this.#byMode = new Map(MODES.map((m) => [m, new Map(rules.map((r) => [r.id, effectiveRule(r, m)]))]))
    this.#readingRules = new Map()
    this.#signalListeners = new Map()
    for (const r of rules) {
      if (r.kind === 'threshold' || r.kind === 'rate') {
        for (const t of r.deviceTypes) this.#readingRules.set(t, [...(this.#readingRules.get(t) ?? []), r])
      }
      if (r.kind === 'composite') {
        r.parts.forEach((p, part) => {
          if ('rule' in p) this.#signalListeners.set(p.rule, [...(this.#signalListeners.get(p.rule) ?? []), { rule: r, part }])
        })
      }
    }
    for (const [ruleId, keys] of this.#keysByRule) {
      const before = old.get(ruleId)
      const now = this.#byId.get(ruleId)
      if (now && before && JSON.stringify(before) === JSON.stringify(now)) continue
      for (const k of keys) this.#drop(k)
      this.#keysByRule.delete(ruleId)
    }
  }

  /** Whether the signal of a key (rule and subject) is on now. */
  active(key: string): boolean {
    const e = this.#states.get(key)
    return e !== undefined && 'active' in e.state && e.state.active
  }

  /** The state rows changed since the last call, for persisting. */
  drainDirty(): RuleStateRow[] {
    const rows: RuleStateRow[] = []
    for (const k of this.#dirty) {
      const e = this.#states.get(k) ?? this.#dropped.get(k)
      if (!e) continue
      if (this.#states.has(k) && persistable(e.state)) {
        rows.push({ key: k, ...e })
        this.#persisted.add(k)
      } else if (this.#persisted.delete(k)) {
        rows.push({ key: k, ruleId: e.ruleId, state: undefined, place: e.place, subject: e.subject })
      }
    }
    this.#dirty.clear()
    this.#dropped.clear()
    return rows
  }

  /** Restores persisted state (at start-up), for rules that still exist. */
  /**
   * The states saved by an earlier run. With `startedAt`, absence that was
   * building is timed afresh from it: while the system was down (and as it
   * stops: a graceful stop ends every device's connection while the rules
   * still listen) it could not hear anyone, so a device's silence comes due
   * its full time after the start, and an area's outage must hold its full
   * time after it. Raised ones stay raised. Without this, a restart after a
   * stop longer than an outage's hold raised one outage per grid of the city
   * on its first tick.
   */
  restore(rows: readonly RuleStateRow[], startedAt?: number): void {
    for (const r of rows) {
      const rule = this.#byId.get(r.ruleId)
      if (!r.state || !rule) continue
      const state = startedAt === undefined ? r.state : rebased(rule, r.state, startedAt)
      this.#set(r.key, { ruleId: r.ruleId, state, place: r.place, subject: r.subject }, false)
      this.#persisted.add(r.key)
    }
  }

  stats(): EngineStats {
    return { rules: this.#rules.length, states: this.#states.size, ...this.#stats }
  }

  /** One input through every rule it concerns. */
  step(input: RuleInput, ctx: RuleContext): Action[] {
    const out: Action[] = []
    switch (input.kind) {
      case 'reading': {
        const d = ctx.device(input.deviceId)
        if (!d || d.type === '') break
        const mode = ctx.mode(d.districtId)
        for (const base of this.#readingRules.get(d.type) ?? []) {
          const r = this.#rule(base.id, mode)
          if (!r) {
            this.#off(base, keyOf(base.id, { deviceId: input.deviceId }), input.ts, out, ctx)
            continue
          }
          if (r.kind !== 'threshold' && r.kind !== 'rate') continue
          const v = input.values[r.metric]
          if (v === undefined) continue
          const subject = { deviceId: input.deviceId }
          const key = keyOf(r.id, subject)
          const prev = this.#states.get(key)?.state
          const res = r.kind === 'threshold'
            ? stepThreshold(r, prev, v, input.ts, key, d, subject)
            : stepRate(r, prev as RateState | undefined, v, input.ts, key, d, subject)
          this.#apply(r.id, key, d, subject, res, out, ctx)
        }
        break
      }
      case 'status': {
        const d = ctx.device(input.deviceId)
        if (!d || d.type === '') break
        // Absent: silent (connected, sending nothing), or disconnected. A power cut shows as both, in either
        // order: devices fall silent, then the gateway ends their connections when their keep-alive runs
        // out (or first, with a keep-alive shorter than the silence). Counting only "silent" had read the
        // disconnection as a recovery, cleared the outage while the power was still off, and never
        // ticketed a device that left and did not come back (tests/faults/power-cut.test.ts).
        const silent = absent(input.status)
        const wasSilent = absent(input.previous)
        const mode = ctx.mode(d.districtId)
        for (const base of this.#rules) {
          if (base.kind !== 'silence' && base.kind !== 'area-silence') continue
          const r = this.#rule(base.id, mode)
          if (!r || (r.kind !== 'silence' && r.kind !== 'area-silence') || (r.deviceTypes.length > 0 && !r.deviceTypes.includes(d.type))) continue
          if (r.kind === 'silence') {
            const subject = { deviceId: input.deviceId }
            const key = keyOf(r.id, subject)
            const prev = this.#states.get(key)?.state as SilenceState | undefined
            if (silent === (prev !== undefined)) continue
            this.#apply(r.id, key, d, subject, stepSilenceStatus(r, prev, silent, input.since, d.intervalS, input.ts, key, d), out, ctx)
          } else {
            // Only a move into or out of absence counts for an area.
            if (silent === wasSilent) continue
            const gridId = gridOf(d, r.level)
            const subject = { gridLevel: r.level, gridId }
            const key = keyOf(r.id, subject)
            const place = ctx.gridPlace(r.level, gridId) ?? d
            const prev = this.#states.get(key)?.state as AreaSilenceState | undefined
            if (!silent && !prev) continue
            const at = { key, place, grid: subject, total: ctx.devicesIn(r.level, gridId, r.deviceTypes) }
            this.#apply(r.id, key, place, subject, stepAreaSilence(r, prev, input.deviceId, silent, input.ts, at, ctx.absenceHeld?.() ?? false, input.since), out, ctx)
          }
        }
        break
      }
      case 'device-event':
      case 'camera-event': {
        const info = input.kind === 'device-event' ? ctx.device(input.deviceId) : ctx.camera(input.cameraId)
        if (!info) break
        const subject: Subject = input.kind === 'device-event' ? { deviceId: input.deviceId } : { cameraId: input.cameraId }
        for (const base of this.#rules) {
          if (base.kind === 'count' && base.source === input.kind) this.#count(base, input.name, input.ts, info, subject, out, ctx)
          if (input.kind === 'camera-event' && base.kind === 'camera') this.#camera(base.id, input.cameraId, input.name, input.ts, info, out, ctx, input.snapshot)
          if (input.kind === 'camera-event' && base.kind === 'composite') {
            base.parts.forEach((p, part) => {
              if ('cameraEvent' in p && p.cameraEvent === input.name) this.#composite(base.id, part, true, input.ts, info, { camera: input.cameraId, cameraEvent: input.name, ...(input.snapshot ? { snapshot: input.snapshot } : {}) }, out, ctx)
            })
          }
        }
        break
      }
      case 'camera-status': {
        const info = ctx.camera(input.cameraId)
        if (!info) break
        for (const base of this.#rules) if (base.kind === 'camera') this.#camera(base.id, input.cameraId, input.status === 'ok' ? 'ok' : input.status, input.ts, info, out, ctx)
        break
      }
      case 'tick':
        this.#tick(input.ts, out, ctx)
        break
      case 'signal':
        for (const l of this.#signalListeners.get(input.ruleId) ?? []) this.#composite(l.rule.id, l.part, input.active, input.ts, input.place, { [input.ruleId]: input.key }, out, ctx)
        break
      case 'connectivity':
      case 'ticket':
        break
    }
    return out
  }

  #rule(id: string, mode: Mode): Rule | undefined {
    return this.#byMode.get(mode)?.get(id)
  }

  #count(base: CountRule, event: string, ts: number, info: SubjectInfo, subject: Subject, out: Action[], ctx: RuleContext): void {
    const r = this.#rule(base.id, ctx.mode(info.districtId))
    if (!r || r.kind !== 'count' || !r.events.includes(event)) return
    if (r.deviceTypes.length > 0 && (info.type === '' || !r.deviceTypes.includes(info.type))) return
    if (r.hours && !inHours(localHour(ts, ctx.utcOffsetMin), r.hours)) return
    if (r.specialKinds.length > 0 && !r.specialKinds.some((k) => info.specialKinds.includes(k))) return
    const subj: Subject = r.per === 'subject' ? subject : { gridLevel: r.per, gridId: gridOf(info, r.per) }
    const place = r.per === 'subject' ? info : (ctx.gridPlace(r.per, gridOf(info, r.per)) ?? info)
    const key = keyOf(r.id, subj)
    this.#apply(r.id, key, place, subj, stepCount(r, this.#states.get(key)?.state as CountState | undefined, ts, key, place, subj, event), out, ctx)
  }

  #camera(id: string, cameraId: string, condition: string, ts: number, info: SubjectInfo, out: Action[], ctx: RuleContext, snapshot?: string): void {
    const r = this.#rule(id, ctx.mode(info.districtId))
    if (!r || r.kind !== 'camera') return
    const subject = { cameraId }
    const key = keyOf(r.id, subject)
    this.#apply(r.id, key, info, subject, stepCamera(r, this.#states.get(key)?.state as CameraState | undefined, condition, ts, key, info, cameraId, snapshot), out, ctx)
  }

  #composite(id: string, part: number, on: boolean, ts: number, at: Place, evidence: Record<string, unknown>, out: Action[], ctx: RuleContext): void {
    const r = this.#rule(id, ctx.mode(at.districtId))
    if (!r || r.kind !== 'composite') return
    const gridId = gridOf(at, r.level)
    const subject = { gridLevel: r.level, gridId }
    const key = keyOf(r.id, subject)
    const prev = this.#states.get(key)?.state as CompositeState | undefined
    if (!on && !prev) return
    const place = ctx.gridPlace(r.level, gridId) ?? at
    this.#apply(r.id, key, place, subject, stepComposite(r, prev, part, on, ts, key, place, subject, evidence), out, ctx)
  }

  #tick(ts: number, out: Action[], ctx: RuleContext): void {
    const held = ctx.absenceHeld?.() ?? false
    for (const base of this.#tickOrder) {
      const keys = this.#keysByRule.get(base.id)
      if (!keys || keys.size === 0) continue
      if (base.kind !== 'silence' && base.kind !== 'area-silence' && base.kind !== 'count' && base.kind !== 'composite') continue
      for (const key of keys) {
        const e = this.#states.get(key)
        if (!e) continue
        const r = this.#rule(base.id, ctx.mode(e.place.districtId))
        if (!r) {
          this.#off(base, key, ts, out, ctx)
          continue
        }
        let res: StepResult<AnyState>
        if (r.kind === 'silence' && 'deviceId' in e.subject) {
          const s = e.state as SilenceState
          // Only a silence coming due now; not while absence is not judged, nor while an outage of its area is building (it may take this silence in).
          if (s.active || ts < s.due || held || this.#inArea(r, e.place, ctx, outagePending)) continue
          res = stepSilenceTick(r, s, ts, key, e.place, e.subject.deviceId)
        } else if (r.kind === 'count') res = tickCount(r, e.state as CountState, ts, key, e.place)
        else if (r.kind === 'area-silence' && 'gridId' in e.subject) res = tickAreaSilence(r, e.state as AreaSilenceState, ts, { key, place: e.place, grid: e.subject, total: ctx.devicesIn(r.level, e.subject.gridId, r.deviceTypes) }, held)
        else if (r.kind === 'composite') res = { state: tickComposite(r, e.state as CompositeState, ts), actions: [] }
        else continue
        this.#apply(r.id, key, e.place, e.subject, res, out, ctx)
      }
    }
  }

  /** The mode in force turned a rule off: its state goes, and an active signal ends with it. */
  #off(base: Rule, key: string, ts: number, out: Action[], ctx: RuleContext): void {
    const e = this.#states.get(key)
    if (!e) return
    const active = 'active' in e.state && e.state.active
    this.#apply(base.id, key, e.place, e.subject, { state: undefined, actions: active ? [{ type: 'clear', ruleId: base.id, key, ts, place: e.place, ticket: base.ticket }] : [] }, out, ctx)
  }

  /** Keeps a step's new state and passes on its actions, with what they set off. */
  #apply(ruleId: string, key: string, place: Place, subject: Subject, res: StepResult<AnyState>, out: Action[], ctx: RuleContext): void {
    const prev = this.#states.get(key)
    if (res.state === undefined) {
      if (prev) this.#drop(key)
    } else if (res.state !== prev?.state) {
      this.#set(key, { ruleId, state: res.state, place, subject }, true)
    }
    for (const a of res.actions) {
      if (a.type === 'raise') {
        const rule = this.#byId.get(ruleId)
        if (rule?.severity === undefined) a.severity = this.#severityOf(a.ticketType) ?? a.severity
        if (rule?.kind === 'silence' && a.ticket && this.#inArea(rule, a.place, ctx, (s) => s?.active === true)) {
          a.ticket = false
          a.evidence = { ...a.evidence, suppressedBy: rule.suppressedBy }
          this.#stats.suppressed++
        }
        this.#stats.raised++
      } else {
        this.#stats.cleared++
      }
      out.push(a)
      // Other rules may be waiting for this one's signal.
      if (this.#signalListeners.has(ruleId)) {
        out.push(...this.step({ kind: 'signal', ruleId, ts: a.ts, active: a.type === 'raise', place: a.place, key: a.key }, ctx))
      }
    }
  }

  /** Whether, for an area rule that suppresses this silence rule, the state of the device's area passes `test`. */
  #inArea(rule: SilenceRule, place: Place, ctx: RuleContext, test: (s: AreaSilenceState | undefined) => boolean): boolean {
    for (const id of rule.suppressedBy) {
      const area = this.#rule(id, ctx.mode(place.districtId)) as AreaSilenceRule | undefined
      if (area?.kind !== 'area-silence') continue
      if (test(this.#states.get(keyOf(id, { gridLevel: area.level, gridId: gridOf(place, area.level) }))?.state as AreaSilenceState | undefined)) return true
    }
    return false
  }

  #set(key: string, e: Entry, dirty: boolean): void {
    this.#states.set(key, e)
    let keys = this.#keysByRule.get(e.ruleId)
    if (!keys) this.#keysByRule.set(e.ruleId, (keys = new Set()))
    keys.add(key)
    if (dirty) this.#dirty.add(key)
  }

  #drop(key: string): void {
    const e = this.#states.get(key)
    if (!e) return
    this.#states.delete(key)
    this.#keysByRule.get(e.ruleId)?.delete(key)
    this.#dropped.set(key, e)
    this.#dirty.add(key)
  }
}

/** A rate's samples rebuild within a window; only an active rate signal is worth keeping across a restart. */
function persistable(s: AnyState): boolean {
  return !('samples' in s) || s.active
}

/** A device that is not heard from: silent, or disconnected. */
function absent(status: DeviceStatus): boolean {
  return status === 'silent' || status === 'offline'
}

/** An absence state timed from `startedAt` at the earliest (see RuleEngine.restore); any other state as it was. */
function rebased(rule: Rule, state: AnyState, startedAt: number): AnyState {
  if (rule.kind === 'silence') return rebaseSilence(state as SilenceState, startedAt)
  if (rule.kind === 'area-silence') return rebaseAreaSilence(state as AreaSilenceState, startedAt)
  return state
}
