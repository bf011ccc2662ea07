// The open tickets and what happens to them: a rule's raise becomes a new
// ticket or one more occurrence of the open one with its key; related
// tickets in the same community grid and window are linked; operator
// actions move tickets through the lifecycle; resolving is checked against
// the rule's signal (a "resolved" ticket whose water is still high was
// closed on paper only, 形式办结, and is reopened); SLA timers escalate.
// Pure apart from the clock and ids the caller passes in: every change comes
// back as the new ticket and its audit event, for the caller to store.
import type { Severity } from '../../lib/bus/elements.ts'
import type { Catalogue, CatalogueType } from '../catalogue/catalogue.ts'
import type { Clear, Mode, Raise, Subject } from '../kinds/types.ts'
import { OPEN_STATUSES, transition, type ActOptions, type Moved, type Ticket, type TicketAction, type TicketEvent } from './lifecycle.ts'

export interface Change {
  ticket: Ticket
  event: TicketEvent
}

export interface SlaFactors {
  sign: number
  resolve: number
}

export interface BookPolicy {
  /** Tickets raised within this window in the same community grid are linked. */
  linkWindowMs: number
  /** Verified tickets close by themselves after this long (the follow-up window). */
  autoCloseAfterMs: number
  /** SLA multipliers per operating mode. */
  slaFactors: Record<Mode, SlaFactors>
  /** Most evidence entries kept on a ticket (the first and the latest ones). */
  maxEvidence: number
  /** Most links a ticket keeps. */
  maxLinks: number
}

export const SYSTEM = 'system'

const typeSubject = (type: string, s: Subject | undefined): string =>
  `${type}|${s === undefined ? '' : 'deviceId' in s ? `d:${s.deviceId}` : 'cameraId' in s ? `c:${s.cameraId}` : `g:${s.gridId}`}`

export class TicketBook {
  readonly #tickets = new Map<string, Ticket>()
  readonly #byKey = new Map<string, string>()
  /** Open tickets by (type, subject): two rules raising the same type about the same thing make one ticket. */
  readonly #byTypeSubject = new Map<string, string>()
  /**
   * Open tickets by community grid. Linking looks only here: scanning the
   * whole book for each new ticket stalled the rules at city scale, where a
   * power cut or a reconnect storm raises thousands of tickets in a minute.
   */
  readonly #openByCommunity = new Map<number, Set<string>>()
  readonly #catalogue: Catalogue
  readonly #policy: BookPolicy
  #seqDay = ''
  #seq = 0

  constructor(catalogue: Catalogue, policy: BookPolicy) {
    this.#catalogue = catalogue
    this.#policy = policy
  }

  /** Tickets still kept in memory: every open one and those closed recently. */
  get tickets(): IterableIterator<Ticket> {
    return this.#tickets.values()
  }

  get size(): number {
    return this.#tickets.size
  }

  get(id: string): Ticket | undefined {
    return this.#tickets.get(id)
  }

  /** The open ticket with a key. */
  byKey(key: string): Ticket | undefined {
    const id = this.#byKey.get(key)
    return id === undefined ? undefined : this.#tickets.get(id)
  }

  /** Loads tickets read back from the store (at start-up); ids continue after the highest of the day. */
  restore(tickets: readonly Ticket[]): void {
    for (const t of tickets) this.#keep(t)
  }

  /** Forgets closed tickets last changed before `before` (they stay in the store). */
  forget(before: number): number {
    let n = 0
    for (const [id, t] of this.#tickets) {
      if (t.status === 'closed' && t.updatedAt < before) {
        this.#tickets.delete(id)
        n++
      }
    }
    return n
  }

  /** A new ticket id: T-<yyyymmdd>-<seq> in local time, the sequence restarting each day. */
  newId(now: number, utcOffsetMin: number): string {
    const day = new Date(now + utcOffsetMin * 60_000).toISOString().slice(0, 10).replaceAll('-', '')
    if (day !== this.#seqDay) {
      this.#seqDay = day
      this.#seq = 0
      for (const id of this.#tickets.keys()) {
        if (id.startsWith(`T-${day}-`)) this.#seq = Math.max(this.#seq, Number(id.slice(11)))
      }
    }
    this.#seq++
    return `T-${day}-${String(this.#seq).padStart(6, '0')}`
  }

  /**
   * A rule raised: one more occurrence of the open ticket with its key, or a
   * new ticket, dispatched straight to the catalogue unit of its place.
   */
  raise(a: Raise, ctx: { now: number; mode: Mode; newId: () => string; route: (type: CatalogueType) => { unitId: string; unitName: string } }): Change[] {
    const other = this.#byTypeSubject.get(typeSubject(a.ticketType, a.subject))
    const open = this.byKey(a.key) ?? (other === undefined ? undefined : this.#tickets.get(other))
    if (open) {
      const next: Ticket = { ...open, version: open.version + 1, updatedAt: ctx.now, occurrences: open.occurrences + 1, lastSeenAt: a.ts, signalActive: true, evidence: this.#evidence(open.evidence, a.evidence) }
      return [this.#keep(next, { ticketId: open.id, ts: ctx.now, version: next.version, action: 'occur', actor: `rule:${a.ruleId}`, from: open.status, to: open.status, note: '', payload: a.evidence })]
    }
    const type = this.#catalogue.type(a.ticketType)
    if (!type) return [] // the loader refuses rule sets naming unknown types
    const unit = ctx.route(type)
    const f = this.#policy.slaFactors[ctx.mode]
    const created: Ticket = {
      id: ctx.newId(), version: 1, origin: 'proactive', status: 'created', type: type.code, group: type.group,
      title: a.title, description: `${type.nameZh} / ${type.nameEn}`, severity: a.severity, place: a.place, subject: a.subject,
      ruleId: a.ruleId, key: a.key, unitId: unit.unitId, unitName: unit.unitName, mode: ctx.mode,
      createdAt: ctx.now, updatedAt: ctx.now, dispatchedAt: undefined, signedAt: undefined, resolvedAt: undefined, closedAt: undefined,
      signDueAt: undefined, resolveDueAt: ctx.now + type.resolveMinutes * f.resolve * 60_000,
      occurrences: 1, firstSeenAt: a.ts, lastSeenAt: a.ts, signalActive: true, linked: [], linkage: [...type.linkage], evidence: [a.evidence],
      escalations: 0, supervised: false, slaBreaches: [], formalOnly: 0, returns: 0, complaints: 0,
    }
    const changes = [this.#keep(created, { ticketId: created.id, ts: ctx.now, version: 1, action: 'create', actor: `rule:${a.ruleId}`, from: '', to: 'created', note: a.title, payload: { key: a.key, evidence: a.evidence } })]
    changes.push(...this.#dispatch(created, type, ctx.now, ctx.mode))
    changes.push(...this.#link(this.#tickets.get(created.id) ?? created, ctx.now))
    return changes
  }

  /** A complaint that matched no proactive ticket becomes a ticket of its own, dispatched the same way. */
  complaint(t: Omit<Ticket, 'version' | 'status' | 'origin' | 'unitId' | 'unitName' | 'signDueAt' | 'resolveDueAt' | 'dispatchedAt'>, ctx: { now: number; mode: Mode; route: (type: CatalogueType) => { unitId: string; unitName: string } }): Change[] {
    const type = this.#catalogue.type(t.type)
    if (!type) return []
    const unit = ctx.route(type)
    const created: Ticket = { ...t, origin: 'complaint', version: 1, status: 'created', unitId: unit.unitId, unitName: unit.unitName, dispatchedAt: undefined, signDueAt: undefined, resolveDueAt: ctx.now + type.resolveMinutes * this.#policy.slaFactors[ctx.mode].resolve * 60_000 }
    const changes = [this.#keep(created, { ticketId: t.id, ts: ctx.now, version: 1, action: 'create', actor: 'open311', from: '', to: 'created', note: t.description, payload: {} })]
    changes.push(...this.#dispatch(created, type, ctx.now, ctx.mode))
    return changes
  }

  /** A complaint matched this ticket: counted on it, and said in its history. */
  matched(id: string, complaintId: string, now: number): Change[] {
    const t = this.#tickets.get(id)
    if (!t) return []
    const next: Ticket = { ...t, version: t.version + 1, updatedAt: now, complaints: t.complaints + 1, linked: t.linked.includes(complaintId) ? t.linked : [...t.linked, complaintId].slice(-this.#policy.maxLinks) }
    return [this.#keep(next, { ticketId: id, ts: now, version: next.version, action: 'link', actor: 'open311', from: t.status, to: t.status, note: `complaint ${complaintId} matched`, payload: { complaint: complaintId } })]
  }

  /** A rule's signal ended: the ticket remembers it (and a resolved one is verified by it). */
  clear(a: Clear, now: number): Change[] {
    const t = this.byKey(a.key)
    if (!t || t.signalActive === false) return []
    const next: Ticket = { ...t, version: t.version + 1, updatedAt: now, signalActive: false }
    const changes = [this.#keep(next, { ticketId: t.id, ts: now, version: next.version, action: 'signal', actor: `rule:${a.ruleId}`, from: t.status, to: t.status, note: 'the signal is back to normal', payload: {} })]
    if (next.status === 'resolved') changes.push(...this.#verify(next, now))
    return changes
  }

  /**
   * An operator's action. Resolving is checked against the rule's signal:
   * back to normal, the ticket is verified; still abnormal, it was closed
   * on paper only and is reopened, flagged and re-dispatched.
   */
  act(id: string, action: TicketAction, actor: string, now: number, o: ActOptions = {}): { ok: true; changes: Change[] } | { ok: false; error: { code: string; message: string } } {
    const t = this.#tickets.get(id)
    if (!t) return { ok: false, error: { code: 'TICKET_NOT_FOUND', message: `no ticket ${id}` } }
    const type = this.#catalogue.type(t.type)
    const moved = transition(t, action, actor, now, { signMinutes: (type?.signMinutes ?? 5) * this.#policy.slaFactors[t.mode].sign, ...o })
    if (!moved.ok) return moved
    const changes = [this.#keep(moved.ticket, moved.event)]
    if (action === 'resolve' && moved.ticket.signalActive === false) changes.push(...this.#verify(moved.ticket, now))
    if (action === 'resolve' && moved.ticket.signalActive === true) changes.push(...this.#formalOnly(moved.ticket, now))
    return { ok: true, changes }
  }

  /** SLA timers and follow-up closing, at `now`. */
  sweep(now: number): Change[] {
    const changes: Change[] = []
    for (const t of [...this.#tickets.values()]) {
      if (t.status === 'dispatched' && t.signDueAt !== undefined && now > t.signDueAt && !t.slaBreaches.includes('sign')) {
        changes.push(...this.#breach(t, 'sign', now, `not signed within ${Math.round((t.signDueAt - (t.dispatchedAt ?? t.createdAt)) / 60_000)} min`))
      } else if (OPEN_STATUSES.has(t.status) && t.status !== 'resolved' && t.resolveDueAt !== undefined && now > t.resolveDueAt && !t.slaBreaches.includes('resolve')) {
        changes.push(...this.#breach(t, 'resolve', now, 'not resolved by its deadline'))
      } else if (t.status === 'verified' && now - t.updatedAt >= this.#policy.autoCloseAfterMs) {
        const m = transition(t, 'close', SYSTEM, now, { note: 'closed after the follow-up window' })
        if (m.ok) changes.push(this.#keep(m.ticket, m.event))
      }
    }
    return changes
  }

  /** Open tickets: how many by severity (for stats). */
  openCounts(): Record<Severity, number> & { total: number } {
    const c = { info: 0, warning: 0, critical: 0, total: 0 }
    for (const t of this.#tickets.values()) {
      if (!OPEN_STATUSES.has(t.status)) continue
      c[t.severity]++
      c.total++
    }
    return c
  }

  #breach(t: Ticket, which: 'sign' | 'resolve', now: number, why: string): Change[] {
    const m = transition(t, 'escalate', 'system:sla', now, { note: `SLA breached: ${why}`, payload: { sla: which } })
    if (m.ok) return [this.#keep({ ...m.ticket, slaBreaches: [...t.slaBreaches, which] }, m.event)]
    // Not escalatable from here (e.g. already escalated): flag it all the same.
    const next: Ticket = { ...t, version: t.version + 1, updatedAt: now, supervised: true, slaBreaches: [...t.slaBreaches, which] }
    return [this.#keep(next, { ticketId: t.id, ts: now, version: next.version, action: 'escalate', actor: 'system:sla', from: t.status, to: t.status, note: `SLA breached: ${why}`, payload: { sla: which } })]
  }

  #verify(t: Ticket, now: number): Change[] {
    const m = transition(t, 'verify', 'system:twin', now, { note: 'the signal that raised it is back to normal' })
    return m.ok ? [this.#keep(m.ticket, m.event)] : []
  }

  #formalOnly(t: Ticket, now: number): Change[] {
    const reopened: Moved = transition({ ...t, formalOnly: t.formalOnly + 1, supervised: true }, 'reopen', 'system:twin', now, { note: 'resolved while the signal is still abnormal (formal-only closure)', payload: { formalOnly: true } })
    if (!reopened.ok) return []
    const changes = [this.#keep(reopened.ticket, reopened.event)]
    const type = this.#catalogue.type(t.type)
    if (type) changes.push(...this.#dispatch(reopened.ticket, type, now, t.mode))
    return changes
  }

  #dispatch(t: Ticket, type: CatalogueType, now: number, mode: Mode): Change[] {
    const m = transition(t, 'dispatch', SYSTEM, now, { signMinutes: type.signMinutes * this.#policy.slaFactors[mode].sign, payload: { direct: true } })
    return m.ok ? [this.#keep(m.ticket, m.event)] : []
  }

  /** Links a new ticket with the open ones raised in its community grid within the window. */
  #link(t: Ticket, now: number): Change[] {
    const changes: Change[] = []
    const related: string[] = []
    for (const id of this.#openByCommunity.get(t.place.communityId) ?? []) {
      const o = this.#tickets.get(id)
      // The index holds only open tickets of this community grid.
      if (!o || o.id === t.id) continue
      if (t.createdAt - o.createdAt > this.#policy.linkWindowMs || o.linked.length >= this.#policy.maxLinks) continue
      related.push(o.id)
      const next: Ticket = { ...o, version: o.version + 1, updatedAt: now, linked: [...o.linked, t.id] }
      changes.push(this.#keep(next, { ticketId: o.id, ts: now, version: next.version, action: 'link', actor: SYSTEM, from: o.status, to: o.status, note: `related to ${t.id}`, payload: { ticket: t.id } }))
      if (related.length >= this.#policy.maxLinks) break
    }
    if (related.length === 0) return []
    const next: Ticket = { ...t, version: t.version + 1, updatedAt: now, linked: related }
    changes.push(this.#keep(next, { ticketId: t.id, ts: now, version: next.version, action: 'link', actor: SYSTEM, from: t.status, to: t.status, note: `related to ${related.join(', ')}`, payload: { tickets: related } }))
    return changes
  }

  #evidence(list: readonly Record<string, unknown>[], add: Record<string, unknown>): Record<string, unknown>[] {
    const all = [...list, add]
    return all.length <= this.#policy.maxEvidence ? all : [all[0] as Record<string, unknown>, ...all.slice(-(this.#policy.maxEvidence - 1))]
  }

  #keep(t: Ticket, event?: TicketEvent): Change {
    this.#tickets.set(t.id, t)
    const community = t.place.communityId
    if (OPEN_STATUSES.has(t.status)) {
      const set = this.#openByCommunity.get(community) ?? new Set<string>()
      this.#openByCommunity.set(community, set)
      set.add(t.id)
    } else {
      const set = this.#openByCommunity.get(community)
      set?.delete(t.id)
      if (set?.size === 0) this.#openByCommunity.delete(community)
    }
    if (t.key !== '') {
      const ts = typeSubject(t.type, t.subject)
      if (OPEN_STATUSES.has(t.status)) {
        this.#byKey.set(t.key, t.id)
        this.#byTypeSubject.set(ts, t.id)
      } else {
        if (this.#byKey.get(t.key) === t.id) this.#byKey.delete(t.key)
        if (this.#byTypeSubject.get(ts) === t.id) this.#byTypeSubject.delete(ts)
      }
    }
    return { ticket: t, event: event ?? { ticketId: t.id, ts: t.updatedAt, version: t.version, action: 'comment', actor: SYSTEM, from: t.status, to: t.status, note: '', payload: {} } }
  }
}
