// The rules as a running component: where a row becomes a ticket. Three
// parts, each a component of its own, started and stopped here in order:
//   - the rule runner (rule-runner.ts) judges what the bus brings after the
//     twin, and the twin's status changes, through the rule engine;
//   - the ticket desk (ticket-desk.ts) turns raises into tickets in the
//     ticket book and stores every change (ticket rows and audit events
//     first, then the runner's state, once a tick) behind one lock;
//     operator actions and complaints are stored before they are answered;
//   - the mode service (mode-service.ts) says which operating mode each
//     district is in.
// This class ticks them (windows, silences, SLAs, linkage pushes) and is
// what the API and the command line talk to.
import type { ClickHouseClient } from '@clickhouse/client'
import type { Bus } from '../lib/bus/bus.ts'
import type { Component, ComponentStats, Health } from '../lib/component.ts'
import { messageOf } from '../lib/errors.ts'
import { logger } from '../lib/log.ts'
import { counter } from '../lib/metrics.ts'
import type { LiveTwin } from '../twin/state/live-twin.ts'
import { loadCatalogue, type Catalogue } from './catalogue/catalogue.ts'
import type { RulesConfig } from './config.ts'
import type { RuleEngine } from './engine.ts'
import type { Mode, Place } from './kinds/types.ts'
import type { LinkageSink } from './linkage.ts'
import { ModeService } from './mode-service.ts'
import { RuleRunner } from './rule-runner.ts'
import { TicketDesk, type ActResult } from './ticket-desk.ts'
import type { TicketBook } from './tickets/book.ts'
import type { ActOptions, TicketAction } from './tickets/lifecycle.ts'
import type { Complaint } from './complaints.ts'

export type { ActResult } from './ticket-desk.ts'

const log = logger('rules')
const tickFailures = counter('citytwin_rules_tick_failures_total', 'Rules ticks that failed (logged; the next tick runs as usual)', [])

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

interface Parts {
  catalogue: Catalogue
  desk: TicketDesk
  runner: RuleRunner
}

export class RulesService implements Component {
  readonly name = 'rules'
  readonly #o: RulesServiceOptions
  readonly #clock: () => number
  readonly #modes: ModeService
  #parts: Parts | undefined
  #timer: NodeJS.Timeout | undefined

  constructor(o: RulesServiceOptions) {
    this.#o = o
    this.#clock = o.clock ?? Date.now
    this.#modes = new ModeService({ client: o.client, clock: this.#clock })
  }

  #started(): Parts {
    if (!this.#parts) throw new Error('the rules service has not started')
    return this.#parts
  }

  get catalogue(): Catalogue {
    return this.#started().catalogue
  }

  get book(): TicketBook {
    return this.#started().desk.book
  }

  get engine(): RuleEngine {
    return this.#started().runner.engine
  }

  /** The ticket desk (a component of its own, started and stopped with the rules). */
  get desk(): TicketDesk {
    return this.#started().desk
  }

  /** The rule runner (a component of its own, started and stopped with the rules). */
  get runner(): RuleRunner {
    return this.#started().runner
  }

  /** The operating modes (a component of its own, started and stopped with the rules). */
  get modes(): ModeService {
    return this.#modes
  }

  get config(): RulesConfig {
    return this.#o.config
  }

  get lastReload(): { ok: boolean; at: number; error: string } {
    return this.#parts?.runner.lastReload ?? { ok: true, at: 0, error: '' }
  }

  async start(): Promise<void> {
    const o = this.#o
    const catalogue = loadCatalogue(o.config.catalogueFile || undefined)
    const modeAt = (districtId: number, at: number): Mode => this.#modes.modeAt(districtId, at)
    const desk = new TicketDesk({ client: o.client, bus: o.bus, catalogue, config: o.config, clock: this.#clock, modeAt, placeNames: (p) => this.#placeNames(p), ...(o.linkage ? { linkage: o.linkage } : {}) })
    const runner = new RuleRunner({ client: o.client, bus: o.bus, twin: o.twin, config: o.config, catalogue, desk, clock: this.#clock, modeAt, ...(o.maxPastMs === undefined ? {} : { maxPastMs: o.maxPastMs }) })
    await Promise.all([desk.start(), this.#modes.start()])
    // The runner last: what it judges at its start (a replay from the store) goes to the desk.
    await runner.start()
    this.#parts = { catalogue, desk, runner }
    // A failed tick (a rule that throws on its time step) is logged and counted; the next tick runs as usual.
    this.#timer = setInterval(() => void this.tick().catch((e: unknown) => {
      tickFailures.inc()
      log.error({ err: messageOf(e) }, 'a rules tick failed; the next one runs as usual')
    }), o.config.tickMs)
    this.#timer.unref()
    log.info({ rules: runner.engine.rules.length, tickets: desk.book.size, catalogueTypes: catalogue.types.length }, 'rules started')
  }

  /** The runner judges what the bus brought before the stop, the desk stores its tickets, then the modes stop. */
  async stop(deadline = Date.now() + 5_000): Promise<void> {
    clearInterval(this.#timer)
    const parts = this.#parts
    if (parts) {
      // The runner judges what the bus holds in two thirds of the time left, so that the desk has the rest to store it.
      await parts.runner.stop(Date.now() + Math.max(0, deadline - Date.now()) * 2 / 3)
      await parts.desk.stop(deadline)
    }
    await this.#modes.stop(deadline)
  }

  stats(): ComponentStats {
    const p = this.#parts
    return { ...(p?.runner.stats() ?? {}), ...(p?.desk.stats() ?? {}), modes: this.#modes.stats() }
  }

  async health(): Promise<Health> {
    const p = this.#parts
    if (!p) return { ok: true, detail: 'not started' }
    const runner = await p.runner.health()
    if (!runner.ok || runner.detail) return runner
    return p.runner.tooManyPending() ? { ok: false, detail: `${p.desk.pending} ticket changes not stored` } : { ok: true }
  }

  /** Time passes: windows, silences, SLAs; then everything changed is stored, and linkage pushed. */
  async tick(): Promise<void> {
    const { runner, desk } = this.#started()
    const now = this.#clock()
    runner.tick(now)
    desk.sweep(now)
    await desk.flush()
    await desk.deliver(now)
  }

  /** Stores what changed: ticket rows and events, then rule state. */
  async flush(): Promise<void> {
    await this.#parts?.desk.flush()
  }

  /** The highest bus position judged, over every stream (a position clock must go on above it). */
  get highestPosition(): number {
    return this.#started().runner.highestPosition
  }

  /** A place with its district and street names, for the unit names. */
  #placeNames(place: Place): { districtId: number; streetId: number; districtName?: string; streetName?: string } {
    const twin = this.#o.twin.twin
    const districtName = twin.grid(place.districtId)?.name
    const streetName = twin.grid(place.streetId)?.name
    return { districtId: place.districtId, streetId: place.streetId, ...(districtName ? { districtName } : {}), ...(streetName ? { streetName } : {}) }
  }

  /** An operator's action, stored before it is answered (the desk's). */
  act(id: string, action: TicketAction, actor: string, o: ActOptions & { unitKind?: string } = {}): Promise<ActResult> {
    return this.#started().desk.act(id, action, actor, o)
  }

  /**
   * A complaint from the 12345 platform: matched to the proactive ticket
   * already handling it, or made a ticket of its own and dispatched. Stored
   * before it is answered.
   */
  complain(c: Pick<Complaint, 'serviceCode' | 'description' | 'address' | 'lon' | 'lat' | 'contact'>): Promise<Complaint> {
    const { runner, desk } = this.#started()
    return desk.complain(c, runner.locate(c.lon, c.lat))
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
    return this.#started().runner.reload()
  }
}
