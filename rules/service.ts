// The rules as a running component: where a row becomes a ticket. It reads
// the elements the bus carries (after the twin has applied them) and the
// twin's status changes, runs them through the rule engine, turns raises
// into tickets in the ticket book, and stores every change: ticket rows
// and audit events first, then the rule state, once a tick. Operator
// actions are stored before they are answered. Tickets go back on the bus
// so the twin counts them on the map, and linkage types into the outbox.
import { watch, type FSWatcher } from 'node:fs'
import type { ClickHouseClient } from '@clickhouse/client'
import type { Bus, Subscription } from '../lib/bus/bus.ts'
import { NO_POSITIONS, placeOf, STREAMS, type Positions } from '../lib/bus/position.ts'
import type { Element } from '../lib/bus/elements.ts'
import type { Component, ComponentStats, Health } from '../lib/component.ts'
import { messageOf } from '../lib/errors.ts'
import { logger } from '../lib/log.ts'
import { counter, gauge } from '../lib/metrics.ts'
import type { LiveTwin } from '../twin/state/live-twin.ts'
import { loadCatalogue, routeToUnit, type Catalogue, type CatalogueType } from './catalogue/catalogue.ts'
import type { RulesConfig } from './config.ts'
import { TwinContext } from './context.ts'
import { RuleEngine } from './engine.ts'
import type { Action, Mode, Place, RuleInput } from './kinds/types.ts'
import { LinkageOutbox, linkageMessages, LoggingLinkage, WebhookLinkage, type LinkageMessage, type LinkageSink } from './linkage.ts'
import { loadRuleDir, SHIPPED_RULES_DIR } from './loader.ts'
import { ModeService } from './mode-service.ts'
import type { Rule } from './schema.ts'
import { TicketBook, type Change } from './tickets/book.ts'
import { OPEN_STATUSES, type ActOptions, type Ticket, type TicketAction } from './tickets/lifecycle.ts'
import { matchComplaint, type Complaint } from './complaints.ts'
import { lastComplaintSeq, storeComplaint } from './complaints-store.ts'
import { loadRuleState, loadTickets, storeRuleState, storeTicketChanges, ticketGrid } from './tickets/store.ts'
import { countStored, storedAfter } from '../lib/bus/stored-after.ts'
import { pushAll } from '../lib/arrays.ts'

const log = logger('rules')
const actionsTotal = counter('citytwin_rules_actions_total', 'Rule actions, by rule and type (raise, clear)', ['rule', 'type'])
const ticketEvents = counter('citytwin_tickets_events_total', 'Ticket changes, by action', ['action'])
const reloads = counter('citytwin_rules_reloads_total', 'Rule file reloads, by outcome', ['outcome'])
const storeFailures = counter('citytwin_rules_store_failures_total', 'Failed writes of tickets or rule state (retried on the next tick)', [])
const tickFailures = counter('citytwin_rules_tick_failures_total', 'Rules ticks that failed (logged; the next tick runs as usual)', [])
const replayedTotal = counter('citytwin_rules_replayed_total', 'Readings and device events the rules judged from the store after a restart or a gap on the bus', [])
const notJudgedTotal = counter('citytwin_rules_not_judged_total', 'Stored elements the rules could not judge: lost on the bus before they replayed, or older than rules.replayMaxMs', [])
const openTickets = gauge('citytwin_tickets_open', 'Open tickets, by severity', ['severity'])

export interface RulesServiceOptions {
  client: ClickHouseClient
  bus: Bus
  twin: LiveTwin
  config: RulesConfig
  /** The clock (tests replay at any speed). */
  clock?: () => number
  /** Where linkage pushes go; default from the config (webhook or log). */
  linkage?: LinkageSink
  /** mqtt.maxPastMs: how far behind its arrival a stored reading's timestamp may be (bounds replay queries by time). */
  maxPastMs?: number
}

export type ActResult = { ok: true; ticket: Ticket } | { ok: false; status: number; code: string; message: string }

export class RulesService implements Component {
  readonly name = 'rules'
  readonly #o: RulesServiceOptions
  readonly #clock: () => number
  #catalogue: Catalogue | undefined
  #engine: RuleEngine | undefined
  #book: TicketBook | undefined
  #outbox: LinkageOutbox | undefined
  readonly #modes: ModeService
  #ctx: TwinContext | undefined
  #subscription: Subscription | undefined
  #timer: NodeJS.Timeout | undefined
  #watcher: FSWatcher | undefined
  #reloadTimer: NodeJS.Timeout | undefined
  /** Changes not yet stored, in order. */
  #pending: Change[] = []
  #pendingState: ReturnType<RuleEngine['drainDirty']> = []
  /** Linkage pushes of stored tickets, not yet in the outbox. */
  #links: LinkageMessage[] = []
  #stateVersion = Date.now() * 1000
  #flushing: Promise<void> | undefined
  #lastReload = { ok: true, at: 0, error: '' }
  /** The day's last complaint number, as a chain every new id extends before it awaits anything (two complaints at once took the same id). */
  #complaintSeq: { day: string; last: Promise<number> } | undefined
  #stats = { elements: 0, raised: 0, cleared: 0, ticketsCreated: 0, storeFailures: 0, judged: 0, replayed: 0, skippedJudged: 0 }
  /** Per stream, the bus position judged up to: stored with the rule state, replayed from after a restart. */
  #positions: Positions = { ...NO_POSITIONS }
  /** The positions last stored (JSON), so an idle tick stores nothing. */
  #savedPositions = ''
  /** A replay from the store in progress: the bus holds the rules' elements until it is done. */
  #replaying: Promise<void> | undefined
  /** Waiting for the store to take the pending changes: the bus holds the rules' elements meanwhile. */
  #storing: Promise<void> | undefined
  #stopping = false

  constructor(o: RulesServiceOptions) {
    this.#o = o
    this.#clock = o.clock ?? Date.now
    this.#modes = new ModeService({ client: o.client, clock: this.#clock })
  }

  get catalogue(): Catalogue {
    if (!this.#catalogue) throw new Error('the rules service has not started')
    return this.#catalogue
  }

  get book(): TicketBook {
    if (!this.#book) throw new Error('the rules service has not started')
    return this.#book
  }

  get engine(): RuleEngine {
    if (!this.#engine) throw new Error('the rules service has not started')
    return this.#engine
  }

  /** The operating modes (a component of its own, started and stopped with the rules). */
  get modes(): ModeService {
    return this.#modes
  }

  get config(): RulesConfig {
    return this.#o.config
  }

  get lastReload(): { ok: boolean; at: number; error: string } {
    return this.#lastReload
  }

  async start(): Promise<void> {
    const cfg = this.#o.config
    const catalogue = loadCatalogue(cfg.catalogueFile || undefined)
    this.#catalogue = catalogue
    const dir = cfg.dir || SHIPPED_RULES_DIR
    const rules = loadRuleDir(dir, catalogue)
    this.#engine = new RuleEngine(rules, (code) => catalogue.type(code)?.severity)
    this.#book = new TicketBook(catalogue, { linkWindowMs: cfg.linkWindowMs, autoCloseAfterMs: cfg.autoCloseAfterMs, slaFactors: cfg.slaFactors, maxEvidence: 10, maxLinks: 20 })
    const client = this.#o.client
    const [state, tickets] = await Promise.all([loadRuleState(client), loadTickets(client, this.#clock() - cfg.keepDoneMs), this.#modes.start()])
    this.#engine.restore(state.rows, this.#clock())
    this.#book.restore(tickets)
    const sink = this.#o.linkage ?? (cfg.linkageWebhookUrl ? new WebhookLinkage(cfg.linkageWebhookUrl, cfg.linkageWebhookToken, cfg.linkageTimeoutMs) : new LoggingLinkage())
    this.#outbox = new LinkageOutbox(client, sink, cfg.linkageMaxAttempts)
    await this.#outbox.load()
    // While ingest is degraded (the twin judges no silence), the silence rules raise nothing either.
    this.#ctx = new TwinContext(() => this.#o.twin.twin, (d) => this.#modes.modeAt(d), cfg.utcOffsetMin, () => this.#o.twin.ingest.degraded)
    this.#o.twin.onStatusChange((i, from, to, lastActivity) => {
      const d = this.#o.twin.twin.devices[i]
      if (d) this.#input({ kind: 'status', deviceId: d.id, ts: this.#clock(), status: to, previous: from, since: lastActivity })
    })
    // After the twin: a batch reaches the rules once the twin has applied it.
    this.#subscription = this.#o.bus.subscribe('rules', (batch) => this.#whenReady(() => this.#judge(batch)), {
      after: this.#o.twin.subscription,
      // The bus dropped elements for the rules: read what they had not judged back from the store.
      onGap: () => this.#replay(this.#o.bus.positions()),
    })
    if (state.positions) {
      this.#positions = state.positions
      this.#savedPositions = JSON.stringify(state.positions)
      // What was stored after the saved state, before the last stop or crash: all of it, whatever
      // the clock says now. Nothing else writes yet (`citytwin start` starts the gateways after the rules).
      await this.#replay({ readings: Number.MAX_SAFE_INTEGER, events: Number.MAX_SAFE_INTEGER })
    }
    // A failed tick (a rule that throws on its time step) is logged and counted; the next tick runs as usual.
    this.#timer = setInterval(() => void this.tick().catch((e: unknown) => {
      tickFailures.inc()
      log.error({ err: messageOf(e) }, 'a rules tick failed; the next one runs as usual')
    }), cfg.tickMs)
    this.#timer.unref()
    if (cfg.dir) this.#watch(cfg.dir)
    this.#lastReload = { ok: true, at: this.#clock(), error: '' }
    log.info({ rules: rules.length, dir, restoredStates: state.rows.length, replayed: this.#stats.replayed, tickets: tickets.length, catalogueTypes: catalogue.types.length }, 'rules started')
  }

  async stop(deadline = Date.now() + 5_000): Promise<void> {
    this.#stopping = true
    // What was stored before the stop is judged, and its tickets stored.
    await this.#subscription?.idle(deadline)
    this.#subscription?.close()
    this.#o.twin.onStatusChange(undefined)
    clearInterval(this.#timer)
    clearTimeout(this.#reloadTimer)
    this.#watcher?.close()
    await this.flush()
    await this.#modes.stop(deadline)
  }

  stats(): ComponentStats {
    const open = this.#book?.openCounts()
    return {
      ...this.#stats, rules: this.#engine?.rules.length ?? 0, ruleStates: this.#engine?.stats().states ?? 0, suppressed: this.#engine?.stats().suppressed ?? 0,
      ticketsInMemory: this.#book?.size ?? 0, openTickets: open?.total ?? 0, pendingWrites: this.#pending.length, busPending: this.#subscription?.pending ?? 0,
      linkage: { ...(this.#outbox?.stats() ?? { pending: 0, sent: 0, failed: 0 }) }, modes: this.#modes.stats(), lastReloadOk: this.#lastReload.ok,
    }
  }

  async health(): Promise<Health> {
    if (!this.#lastReload.ok) return { ok: true, detail: `rule files refused; the previous rules run: ${this.#lastReload.error.split('\n')[0] ?? ''}` }
    const behindMs = this.#subscription?.backlogMs(Date.now()) ?? 0
    if (behindMs >= 60_000) return { ok: false, detail: `the rules are ${Math.round(behindMs / 1000)} s behind the bus` }
    return this.#tooManyPending() ? { ok: false, detail: `${this.#pending.length} ticket changes not stored` } : { ok: true }
  }

  /** Time passes: windows, silences, SLAs; then everything changed is stored. */
  async tick(): Promise<void> {
    const now = this.#clock()
    // Windows and silences at the twin's watermark: readings still in the pipeline are not absences.
    this.#input({ kind: 'tick', ts: now - this.#o.twin.twin.lagMs(now) })
    this.#take(this.book.sweep(now))
    this.book.forget(now - this.#o.config.keepDoneMs)
    const open = this.book.openCounts()
    for (const s of ['info', 'warning', 'critical'] as const) openTickets.set({ severity: s }, open[s])
    await this.flush()
    await this.#outbox?.deliver(now).catch((e: unknown) => log.error({ err: e }, 'linkage delivery round failed'))
  }

  /** Stores what changed: ticket rows and events, then rule state. One flush at a time. */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing
    this.#flushing = this.#flush().finally(() => {
      this.#flushing = undefined
    })
    await this.#flushing
  }

  async #flush(): Promise<void> {
    const changes = this.#pending
    this.#pending = []
    // A key changed again since a failed write is written once, as it is now.
    const byKey = new Map(this.#pendingState.map((r) => [r.key, r]))
    for (const r of this.#engine?.drainDirty() ?? []) byKey.set(r.key, r)
    const states = [...byKey.values()]
    // Taken with the state: it has judged everything up to here.
    const positions = { ...this.#positions }
    const positionsKey = JSON.stringify(positions)
    this.#pendingState = []
    try {
      await storeTicketChanges(this.#o.client, changes)
    } catch (e) {
      this.#pending = [...changes, ...this.#pending]
      this.#pendingState = states
      this.#storeFailed(e)
      return
    }
    // Stored: now they may go on the bus, so the twin counts them on the map.
    if (changes.length > 0) this.#o.bus.publish(changes.map((c) => ticketElement(c.ticket)))
    pushAll(this.#links, changes.filter((c) => c.event.action === 'create' && c.ticket.linkage.length > 0).flatMap((c) => linkageMessages(c.ticket)))
    try {
      if (this.#links.length > 0) await this.#outbox?.enqueue(this.#links, this.#clock())
      this.#links = []
    } catch (e) {
      // The tickets are stored; only their linkage pushes wait for the next tick.
      this.#storeFailed(e)
    }
    try {
      await storeRuleState(this.#o.client, states, ++this.#stateVersion, positionsKey === this.#savedPositions ? undefined : positions)
      this.#savedPositions = positionsKey
    } catch (e) {
      this.#pendingState = states
      this.#storeFailed(e)
    }
  }

  #storeFailed(e: unknown): void {
    this.#stats.storeFailures++
    storeFailures.inc()
    log.error({ err: messageOf(e), pending: this.#pending.length }, 'could not store ticket changes or rule state; retrying on the next tick')
  }

  /**
   * Runs `judge` once no replay is under way and the store has taken enough
   * of the pending changes. While rules.maxPendingChanges wait for it, the
   * rules take nothing more from the bus: what the bus holds meanwhile waits,
   * and what it drops is judged from the store once the store is back
   * (onGap), so an outage of any length costs no memory here.
   */
  #whenReady(judge: () => void): void | Promise<void> {
    if (this.#replaying) return this.#replaying.then(() => this.#whenReady(judge))
    if (this.#tooManyPending() && !this.#stopping) {
      this.#storing ??= this.#untilStored().finally(() => {
        this.#storing = undefined
      })
      return this.#storing.then(() => this.#whenReady(judge))
    }
    judge()
  }

  /** As many ticket changes wait for the store as the rules may keep (rules.maxPendingChanges). */
  #tooManyPending(): boolean {
    return this.#pending.length >= this.#o.config.maxPendingChanges
  }

  async #untilStored(): Promise<void> {
    log.warn({ pending: this.#pending.length, max: this.#o.config.maxPendingChanges }, 'the store does not take ticket changes: the rules take nothing more from the bus until it does')
    const t0 = Date.now()
    while (this.#tooManyPending() && !this.#stopping) {
      await this.flush()
      if (this.#tooManyPending()) await new Promise((r) => setTimeout(r, Math.min(this.#o.config.tickMs, 1_000)))
    }
    log.info({ pending: this.#pending.length, waitedMs: Date.now() - t0 }, 'the store takes ticket changes again: the rules read the bus again')
  }

  /**
   * A batch from the bus or the store. An element at or below the position
   * judged before the batch was judged already (by a replay that read it
   * from the store before the bus brought it); elements of one write share
   * its position and always come in one batch.
   */
  #judge(batch: readonly Element[]): void {
    const before = { ...this.#positions }
    for (const e of batch) {
      if (e.kind === 'ticket') continue
      const at = placeOf(e)
      if (at) {
        if (at.pos <= before[at.stream]) {
          this.#stats.skippedJudged++
          continue
        }
        if (at.pos > this.#positions[at.stream]) this.#positions[at.stream] = at.pos
      }
      this.#stats.judged++
      this.#input(e)
    }
  }

  /**
   * Judges, from the store, what was stored after the positions judged so
   * far and at most at `upto` (what the bus has published: everything at or
   * below it is in the store). The bus holds the rules' batches meanwhile.
   */
  async #replay(upto: Positions): Promise<void> {
    while (this.#replaying) await this.#replaying
    this.#replaying = this.#replayFromStore(upto).finally(() => {
      this.#replaying = undefined
    })
    await this.#replaying
  }

  async #replayFromStore(upto: Positions): Promise<void> {
    const cfg = this.#o.config
    if (cfg.replayMaxMs === 0) return
    const t0 = performance.now()
    // Positions are microseconds of the writers' wall clock: nothing older than replayMaxMs is judged again.
    const oldest = (Date.now() - cfg.replayMaxMs) * 1000
    for (const s of STREAMS) {
      if (this.#positions[s] >= oldest) continue
      const skipped = this.#positions[s] === 0 ? 0 : await countStored(this.#o.client, s, this.#positions[s], oldest).catch(() => -1)
      if (skipped !== 0) {
        if (skipped > 0) notJudgedTotal.inc(skipped)
        log.error({ stream: s, rows: skipped < 0 ? 'unknown' : skipped, replayMaxMs: cfg.replayMaxMs }, 'stored rows older than rules.replayMaxMs are not judged again')
      }
      this.#positions[s] = oldest
    }
    let replayed = 0
    for (let attempt = 1; ; attempt++) {
      try {
        // From where the last attempt got to: what it judged is not judged again.
        for await (const elements of storedAfter(this.#o.client, { from: { ...this.#positions }, upto, maxPastMs: this.#o.maxPastMs ?? 86_400_000 })) {
          this.#judge(elements)
          replayed += elements.length
        }
        break
      } catch (e) {
        if (attempt >= 5) {
          // The live feed goes on; what lies between is not judged, and is said to be so.
          log.error({ err: messageOf(e), replayed, from: this.#positions, upto }, 'could not read from the store what the rules had not judged; rows in this range are not judged')
          break
        }
        log.warn({ err: messageOf(e), attempt }, 'replay from the store failed; trying again')
        await new Promise((r) => setTimeout(r, 500 * 2 ** attempt))
      }
    }
    this.#stats.replayed += replayed
    replayedTotal.inc(replayed)
    log.info({ replayed, positions: this.#positions, ms: Math.round(performance.now() - t0) }, 'rules judged from the store what they had not judged')
  }

  /** The highest bus position judged, over every stream (a position clock must go on above it). */
  get highestPosition(): number {
    return Math.max(...STREAMS.map((s) => this.#positions[s]))
  }

  /** One input through the engine, and its actions into tickets. */
  #input(input: RuleInput): void {
    if (!this.#engine || !this.#ctx) return
    this.#stats.elements++
    let actions: Action[]
    try {
      actions = this.#engine.step(input, this.#ctx)
    } catch (e) {
      // A rule's bug must not stop the others or the feed.
      log.error({ err: e, input: input.kind }, 'a rule failed on an input')
      return
    }
    if (actions.length > 0) this.#actions(actions)
  }

  #actions(actions: readonly Action[]): void {
    const now = this.#clock()
    for (const a of actions) {
      actionsTotal.inc({ rule: a.ruleId, type: a.type })
      if (!a.ticket) continue
      if (a.type === 'raise') {
        this.#stats.raised++
        const mode = this.#modes.modeAt(a.place.districtId, now)
        const changes = this.book.raise(a, { now, mode, newId: () => this.book.newId(now, this.#o.config.utcOffsetMin), route: (t) => this.#route(t, a.place) })
        if (changes.some((c) => c.event.action === 'create')) this.#stats.ticketsCreated++
        this.#take(changes)
      } else {
        this.#stats.cleared++
        this.#take(this.book.clear(a, now))
      }
    }
  }

  #route(t: CatalogueType, place: Place): { unitId: string; unitName: string } {
    return this.catalogue.route(t.code, this.#placeNames(place)) ?? { unitId: t.unit, unitName: t.unit }
  }

  /** A place with its district and street names, for the unit names. */
  #placeNames(place: Place): { districtId: number; streetId: number; districtName?: string; streetName?: string } {
    const twin = this.#o.twin.twin
    const districtName = twin.grid(place.districtId)?.name
    const streetName = twin.grid(place.streetId)?.name
    return { districtId: place.districtId, streetId: place.streetId, ...(districtName ? { districtName } : {}), ...(streetName ? { streetName } : {}) }
  }

  /** Keeps changes for the next flush (which stores them, then puts them on the bus for the twin). */
  #take(changes: readonly Change[]): void {
    if (changes.length === 0) return
    pushAll(this.#pending, changes)
    for (const c of changes) ticketEvents.inc({ action: c.event.action })
  }

  /** An operator's action, stored before it is answered. */
  async act(id: string, action: TicketAction, actor: string, o: ActOptions & { unitKind?: string } = {}): Promise<ActResult> {
    const t = this.book.get(id)
    let unit = o.unit
    if (action === 'dispatch' && o.unitKind && t) {
      const kind = this.catalogue.unit(o.unitKind)
      if (!kind) return { ok: false, status: 400, code: 'TICKET_UNIT_UNKNOWN', message: `no unit "${o.unitKind}" in the catalogue` }
      const r = routeToUnit(kind, this.#placeNames(t.place))
      unit = { id: r.unitId, name: r.unitName }
    }
    const res = this.book.act(id, action, actor, this.#clock(), { ...o, ...(unit ? { unit } : {}) })
    if (!res.ok) return { ok: false, status: res.error.code === 'TICKET_NOT_FOUND' ? 404 : 409, ...res.error }
    this.#take(res.changes)
    await this.flush()
    if (this.#pending.some((c) => c.ticket.id === id)) return { ok: false, status: 503, code: 'STORE_UNAVAILABLE', message: 'the action was taken but is not stored yet; it is retried' }
    return { ok: true, ticket: this.book.get(id) as Ticket }
  }

  /**
   * A complaint from the 12345 platform: matched to the proactive ticket
   * already handling it, or made a ticket of its own and dispatched. Stored
   * before it is answered.
   */
  async complain(c: Pick<Complaint, 'serviceCode' | 'description' | 'address' | 'lon' | 'lat' | 'contact'>): Promise<Complaint> {
    const now = this.#clock()
    const place = this.#ctx?.locate(c.lon, c.lat)
    const id = await this.#complaintId(now)
    const complaint: Complaint = { ...c, id, receivedAt: now, place, matchedTicket: '', leadMs: 0, ticketId: '' }
    const m = matchComplaint(complaint, this.book.tickets, this.catalogue, { radiusM: this.#o.config.matchRadiusM, windowMs: this.#o.config.matchWindowMs })
    if (m) {
      complaint.matchedTicket = m.ticket.id
      complaint.leadMs = m.leadMs
      this.#take(this.book.matched(m.ticket.id, id, now))
    } else {
      const type = this.catalogue.type(c.serviceCode)
      const at = place ?? { microGridId: 0, communityId: 0, streetId: 0, districtId: 0, lon: c.lon, lat: c.lat }
      const tid = this.book.newId(now, this.#o.config.utcOffsetMin)
      complaint.ticketId = tid
      this.#take(this.book.complaint({
        id: tid, type: c.serviceCode, group: type?.group ?? '', title: `${type?.nameZh ?? c.serviceCode}（市民来电）`, description: c.description, severity: type?.severity ?? 'info',
        place: at, subject: undefined, ruleId: '', key: '', mode: this.#modes.modeAt(at.districtId, now), createdAt: now, updatedAt: now,
        signedAt: undefined, resolvedAt: undefined, closedAt: undefined, occurrences: 1, firstSeenAt: now, lastSeenAt: now, signalActive: undefined, linked: [],
        linkage: [...(type?.linkage ?? [])], evidence: [{ complaint: id, address: c.address }], escalations: 0, supervised: false, slaBreaches: [], formalOnly: 0, returns: 0, complaints: 1,
      }, { now, mode: this.#modes.modeAt(at.districtId, now), route: (t) => this.#route(t, at) }))
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

  /** The mode in force in a district now (the mode service's). */
  modeAt(districtId: number): Mode {
    return this.#modes.modeAt(districtId)
  }

  now(): number {
    return this.#clock()
  }

  /** Replaces the rules with those of the folder; a bad set is refused and the old rules run on. */
  reload(): boolean {
    const dir = this.#o.config.dir || SHIPPED_RULES_DIR
    try {
      const rules: Rule[] = loadRuleDir(dir, this.catalogue)
      this.engine.setRules(rules)
      this.#lastReload = { ok: true, at: this.#clock(), error: '' }
      reloads.inc({ outcome: 'ok' })
      log.info({ rules: rules.length, dir }, 'rules reloaded')
      return true
    } catch (e) {
      this.#lastReload = { ok: false, at: this.#clock(), error: messageOf(e) }
      reloads.inc({ outcome: 'refused' })
      log.error({ err: messageOf(e), dir }, 'rule files refused; the previous rules run on')
      return false
    }
  }

  #watch(dir: string): void {
    try {
      this.#watcher = watch(dir, () => {
        // Editors write a file in several steps: reload once they are done.
        clearTimeout(this.#reloadTimer)
        this.#reloadTimer = setTimeout(() => this.reload(), 200)
      })
    } catch (e) {
      log.error({ err: messageOf(e), dir }, 'cannot watch the rules folder; reload with POST /api/admin/rules/reload')
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
