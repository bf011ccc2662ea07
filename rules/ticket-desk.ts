// The ticket desk: where a rule's raise becomes a ticket, and where every
// ticket change is stored before anyone hears of it.
//
// It owns the ticket book (tickets/book.ts), the changes not stored yet,
// and the linkage outbox, behind one lock: one flush at a time stores the
// ticket rows and audit events, then puts the tickets on the bus for the
// twin, then the linkage pushes of new tickets into the outbox, then what
// the rule runner has judged up to them (its state and bus positions, taken
// at the same moment as the changes, so the state stored never runs ahead
// of the tickets stored). Operator actions and 12345 complaints are stored
// before they are answered.
import type { ClickHouseClient } from '@clickhouse/client'
import type { Bus } from '../lib/bus/bus.ts'
import type { Element } from '../lib/bus/elements.ts'
import type { Component, ComponentStats } from '../lib/component.ts'
import { messageOf } from '../lib/errors.ts'
import { logger } from '../lib/log.ts'
import { counter, gauge } from '../lib/metrics.ts'
import { pushAll } from '../lib/arrays.ts'
import { routeToUnit, type Catalogue, type CatalogueType } from './catalogue/catalogue.ts'
import type { RulesConfig } from './config.ts'
import type { Action, Mode, Place } from './kinds/types.ts'
import { LinkageOutbox, linkageMessages, LoggingLinkage, WebhookLinkage, type LinkageMessage, type LinkageSink } from './linkage.ts'
import { TicketBook, type Change } from './tickets/book.ts'
import { OPEN_STATUSES, type ActOptions, type Ticket, type TicketAction } from './tickets/lifecycle.ts'
import { matchComplaint, type Complaint } from './complaints.ts'
import { lastComplaintSeq, storeComplaint } from './complaints-store.ts'
import { loadTickets, storeTicketChanges, ticketGrid } from './tickets/store.ts'

const log = logger('ticket-desk')
const ticketEvents = counter('citytwin_tickets_events_total', 'Ticket changes, by action', ['action'])
const storeFailures = counter('citytwin_rules_store_failures_total', 'Failed writes of tickets or rule state (retried on the next tick)', [])
const openTickets = gauge('citytwin_tickets_open', 'Open tickets, by severity', ['severity'])

export type ActResult = { ok: true; ticket: Ticket } | { ok: false; status: number; code: string; message: string }

/** A place with its district and street names, for the unit names of the dispatch catalogue. */
export type PlaceNames = (place: Place) => { districtId: number; streetId: number; districtName?: string; streetName?: string }

/**
 * What the rule runner stores after the tickets, in the same flush: `take`
 * is called at the moment the desk takes its pending changes, `store` once
 * they are stored (and never when they are not); what was not stored is
 * given back with `putBack`, for the next flush.
 */
export interface JudgedState<S> {
  /** While a batch is being judged, when it is (taken between two slices of it, the state would hold half of it); undefined when none is. */
  settled(): Promise<void> | undefined
  take(): S
  /** Stores what `take` gave; throws when it could not. */
  store(s: S): Promise<void>
  putBack(s: S): void
}

export interface TicketDeskOptions {
  client: ClickHouseClient
  bus: Bus
  catalogue: Catalogue
  config: RulesConfig
  clock: () => number
  /** The operating mode of a district at a time (the mode service's). */
  modeAt: (districtId: number, at: number) => Mode
  placeNames: PlaceNames
  /** Where linkage pushes go; default from the config (webhook or log). */
  linkage?: LinkageSink
}

export class TicketDesk implements Component {
  readonly name = 'ticket-desk'
  readonly #o: TicketDeskOptions
  readonly #book: TicketBook
  #outbox: LinkageOutbox | undefined
  /** Changes not yet stored, in order. */
  #pending: Change[] = []
  /** Linkage pushes of stored tickets, not yet in the outbox. */
  #links: LinkageMessage[] = []
  #flushing: Promise<void> | undefined
  #judged: JudgedState<unknown> | undefined
  /** The day's last complaint number, as a chain every new id extends before it awaits anything (two complaints at once took the same id). */
  #complaintSeq: { day: string; last: Promise<number> } | undefined
  #stats = { raised: 0, cleared: 0, ticketsCreated: 0, storeFailures: 0 }

  constructor(o: TicketDeskOptions) {
    this.#o = o
    const cfg = o.config
    this.#book = new TicketBook(o.catalogue, { linkWindowMs: cfg.linkWindowMs, autoCloseAfterMs: cfg.autoCloseAfterMs, slaFactors: cfg.slaFactors, maxEvidence: 10, maxLinks: 20 })
  }

  get book(): TicketBook {
    return this.#book
  }

  /** Loads the tickets still of interest (open, or done within rules.keepDoneMs) and the linkage outbox. */
  async start(): Promise<void> {
    const cfg = this.#o.config
    this.#book.restore(await loadTickets(this.#o.client, this.#o.clock() - cfg.keepDoneMs))
    const sink = this.#o.linkage ?? (cfg.linkageWebhookUrl ? new WebhookLinkage(cfg.linkageWebhookUrl, cfg.linkageWebhookToken, cfg.linkageTimeoutMs) : new LoggingLinkage())
    this.#outbox = new LinkageOutbox(this.#o.client, sink, cfg.linkageMaxAttempts)
    await this.#outbox.load()
  }

  /**
   * Stores what is pending. The flush is waited for even past `deadline`
   * (the store client's request timeout bounds it): returning early would
   * leave its write under a store about to close, and the tickets and the
   * rules' state of the last moments lost. Running late is logged.
   */
  async stop(deadline: number): Promise<void> {
    await this.flush()
    if (Date.now() > deadline) log.warn({ lateMs: Date.now() - deadline, pending: this.#pending.length }, 'the ticket desk stored its last changes after the stop deadline')
    if (this.#pending.length > 0) log.error({ pending: this.#pending.length }, 'ticket changes not stored at stop; the rules judge again from their saved position at the next start')
  }

  stats(): ComponentStats {
    return { ...this.#stats, ticketsInMemory: this.#book.size, openTickets: this.#book.openCounts().total, pendingWrites: this.#pending.length, linkage: { ...(this.#outbox?.stats() ?? { pending: 0, sent: 0, failed: 0 }) } }
  }

  /** The rule runner's state, stored after the tickets in every flush. One; a second call replaces it. */
  storeAfterTickets<S>(judged: JudgedState<S>): void {
    this.#judged = judged
  }

  /** Changes waiting for the store. */
  get pending(): number {
    return this.#pending.length
  }

  /** Whether a ticket has a change not stored yet. */
  hasPending(ticketId: string): boolean {
    return this.#pending.some((c) => c.ticket.id === ticketId)
  }

  /** The rules' raises and clears, into the book. */
  take(actions: readonly Action[]): void {
    const now = this.#o.clock()
    for (const a of actions) {
      if (!a.ticket) continue
      if (a.type === 'raise') {
        this.#stats.raised++
        const mode = this.#o.modeAt(a.place.districtId, now)
        const changes = this.#book.raise(a, { now, mode, newId: () => this.#book.newId(now, this.#o.config.utcOffsetMin), route: (t) => this.#route(t, a.place) })
        if (changes.some((c) => c.event.action === 'create')) this.#stats.ticketsCreated++
        this.#keep(changes)
      } else {
        this.#stats.cleared++
        this.#keep(this.#book.clear(a, now))
      }
    }
  }

  /** Time passes: SLA clocks, auto-closing; tickets done long ago leave memory. */
  sweep(now: number): void {
    this.#keep(this.#book.sweep(now))
    this.#book.forget(now - this.#o.config.keepDoneMs)
    const open = this.#book.openCounts()
    for (const s of ['info', 'warning', 'critical'] as const) openTickets.set({ severity: s }, open[s])
  }

  /** Pushes due linkage messages (110/119/120) from the outbox. */
  async deliver(now: number): Promise<void> {
    await this.#outbox?.deliver(now).catch((e: unknown) => log.error({ err: e }, 'linkage delivery round failed'))
  }

  #route(t: CatalogueType, place: Place): { unitId: string; unitName: string } {
    return this.#o.catalogue.route(t.code, this.#o.placeNames(place)) ?? { unitId: t.unit, unitName: t.unit }
  }

  /** Keeps changes for the next flush (which stores them, then puts them on the bus for the twin). */
  #keep(changes: readonly Change[]): void {
    if (changes.length === 0) return
    pushAll(this.#pending, changes)
    for (const c of changes) ticketEvents.inc({ action: c.event.action })
  }

  /** Stores what changed: ticket rows and events, then the runner's state. One flush at a time. */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing
    this.#flushing = this.#flush().finally(() => {
      this.#flushing = undefined
    })
    await this.#flushing
  }

  async #flush(): Promise<void> {
    const judged = this.#judged
    // What a batch being judged raises is stored with the state it leaves, in one flush. Asked again after
    // each wait, and taken with no wait between (another batch may begin as one ends).
    for (let judging = judged?.settled(); judging; judging = judged?.settled()) await judging
    const changes = this.#pending
    this.#pending = []
    const state = judged?.take()
    try {
      await storeTicketChanges(this.#o.client, changes)
    } catch (e) {
      this.#pending = [...changes, ...this.#pending]
      judged?.putBack(state)
      this.#storeFailed(e)
      return
    }
    // Stored: now they may go on the bus, so the twin counts them on the map.
    if (changes.length > 0) this.#o.bus.publish(changes.map((c) => ticketElement(c.ticket)))
    pushAll(this.#links, changes.filter((c) => c.event.action === 'create' && c.ticket.linkage.length > 0).flatMap((c) => linkageMessages(c.ticket)))
    try {
      if (this.#links.length > 0) await this.#outbox?.enqueue(this.#links, this.#o.clock())
      this.#links = []
    } catch (e) {
      // The tickets are stored; only their linkage pushes wait for the next flush.
      this.#storeFailed(e)
    }
    if (!judged) return
    try {
      await judged.store(state)
    } catch (e) {
      judged.putBack(state)
      this.#storeFailed(e)
    }
  }

  #storeFailed(e: unknown): void {
    this.#stats.storeFailures++
    storeFailures.inc()
    log.error({ err: messageOf(e), pending: this.#pending.length }, 'could not store ticket changes or rule state; retrying on the next tick')
  }

  /** An operator's action, stored before it is answered. */
  async act(id: string, action: TicketAction, actor: string, o: ActOptions & { unitKind?: string } = {}): Promise<ActResult> {
    const t = this.#book.get(id)
    let unit = o.unit
    if (action === 'dispatch' && o.unitKind && t) {
      const kind = this.#o.catalogue.unit(o.unitKind)
      if (!kind) return { ok: false, status: 400, code: 'TICKET_UNIT_UNKNOWN', message: `no unit "${o.unitKind}" in the catalogue` }
      const r = routeToUnit(kind, this.#o.placeNames(t.place))
      unit = { id: r.unitId, name: r.unitName }
    }
    const res = this.#book.act(id, action, actor, this.#o.clock(), { ...o, ...(unit ? { unit } : {}) })
    if (!res.ok) return { ok: false, status: res.error.code === 'TICKET_NOT_FOUND' ? 404 : 409, ...res.error }
    this.#keep(res.changes)
    await this.flush()
    if (this.hasPending(id)) return { ok: false, status: 503, code: 'STORE_UNAVAILABLE', message: 'the action was taken but is not stored yet; it is retried' }
    return { ok: true, ticket: this.#book.get(id) as Ticket }
  }

  /**
   * A complaint from the 12345 platform, at `place` (where it was located in
   * the city, if it was): matched to the proactive ticket already handling
   * it, or made a ticket of its own and dispatched. Stored before it is
   * answered.
   */
  async complain(c: Pick<Complaint, 'serviceCode' | 'description' | 'address' | 'lon' | 'lat' | 'contact'>, place: Place | undefined): Promise<Complaint> {
    const now = this.#o.clock()
    const cfg = this.#o.config
    const id = await this.#complaintId(now)
    const complaint: Complaint = { ...c, id, receivedAt: now, place, matchedTicket: '', leadMs: 0, ticketId: '' }
    const m = matchComplaint(complaint, this.#book.tickets, this.#o.catalogue, { radiusM: cfg.matchRadiusM, windowMs: cfg.matchWindowMs })
    if (m) {
      complaint.matchedTicket = m.ticket.id
      complaint.leadMs = m.leadMs
      this.#keep(this.#book.matched(m.ticket.id, id, now))
    } else {
      const type = this.#o.catalogue.type(c.serviceCode)
      const at = place ?? { microGridId: 0, communityId: 0, streetId: 0, districtId: 0, lon: c.lon, lat: c.lat }
      const tid = this.#book.newId(now, cfg.utcOffsetMin)
      complaint.ticketId = tid
      const mode = this.#o.modeAt(at.districtId, now)
      this.#keep(this.#book.complaint({
        id: tid, type: c.serviceCode, group: type?.group ?? '', title: `${type?.nameZh ?? c.serviceCode}（市民来电）`, description: c.description, severity: type?.severity ?? 'info',
        place: at, subject: undefined, ruleId: '', key: '', mode, createdAt: now, updatedAt: now,
        signedAt: undefined, resolvedAt: undefined, closedAt: undefined, occurrences: 1, firstSeenAt: now, lastSeenAt: now, signalActive: undefined, linked: [],
        linkage: [...(type?.linkage ?? [])], evidence: [{ complaint: id, address: c.address }], escalations: 0, supervised: false, slaBreaches: [], formalOnly: 0, returns: 0, complaints: 1,
      }, { now, mode, route: (t) => this.#route(t, at) }))
    }
    await storeComplaint(this.#o.client, complaint)
    await this.flush()
    return complaint
  }

  /** C-<yyyymmdd>-<seq>: a sequence of its own per day, continued from the store after a restart. */
  async #complaintId(now: number): Promise<string> {
    const day = new Date(now + this.#o.config.utcOffsetMin * 60_000).toISOString().slice(0, 10).replaceAll('-', '')
    if (this.#complaintSeq?.day !== day) this.#complaintSeq = { day, last: lastComplaintSeq(this.#o.client, day) }
    const seq = this.#complaintSeq
    // Taken in call order, before the first await: complaints at once, at start-up or at midnight, get ids of their own.
    seq.last = seq.last.then((n) => n + 1)
    try {
      return `C-${day}-${String(await seq.last).padStart(6, '0')}`
    } catch (e) {
      // The store could not say where the day stands: the next complaint asks again.
      if (this.#complaintSeq === seq) this.#complaintSeq = undefined
      throw e
    }
  }
}

/** A ticket as the bus carries it to the twin: open or not, where it counts on the map. */
function ticketElement(t: Ticket): Element {
  const subject = t.subject
  return {
    kind: 'ticket', ticketId: t.id, ts: t.updatedAt, open: OPEN_STATUSES.has(t.status), severity: t.severity, gridId: ticketGrid(t),
    ...(subject && 'deviceId' in subject ? { deviceId: subject.deviceId } : {}), ...(subject && 'cameraId' in subject ? { cameraId: subject.cameraId } : {}),
  }
}
