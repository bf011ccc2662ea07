// The rule runner: where a stored row is judged. It reads the elements the
// bus carries (after the twin has applied them) and the twin's status
// changes, runs them through the rule engine and hands the raises and
// clears to the ticket desk. It keeps, per stream, the bus position judged
// up to, and stores it with the rules' state after the desk has stored the
// tickets of what was judged (ticket-desk.ts JudgedState): after a restart
// or a gap on the bus it judges from the store what it had not judged. The
// rule files are reloaded when they change; a bad set is refused and the
// old rules run on.
import { watch, type FSWatcher } from 'node:fs'
import type { ClickHouseClient } from '@clickhouse/client'
import type { Bus, Subscription } from '../lib/bus/bus.ts'
import { NO_POSITIONS, placeOf, STREAMS, type Positions } from '../lib/bus/position.ts'
import type { Element } from '../lib/bus/elements.ts'
import type { Component, ComponentStats, Health } from '../lib/component.ts'
import { messageOf } from '../lib/errors.ts'
import { logger } from '../lib/log.ts'
import { counter } from '../lib/metrics.ts'
import { countStored, storedAfter } from '../lib/bus/stored-after.ts'
import { BatchInTurns } from '../lib/bus/turns.ts'
import type { LiveTwin } from '../twin/state/live-twin.ts'
import type { Catalogue } from './catalogue/catalogue.ts'
import type { RulesConfig } from './config.ts'
import { TwinContext } from './context.ts'
import { RuleEngine } from './engine.ts'
import type { Action, Mode, RuleInput } from './kinds/types.ts'
import { loadRuleDir, SHIPPED_RULES_DIR } from './loader.ts'
import type { Rule } from './schema.ts'
import type { JudgedState, TicketDesk } from './ticket-desk.ts'
import { loadRuleState, storeRuleState } from './tickets/store.ts'

const log = logger('rules')
const actionsTotal = counter('citytwin_rules_actions_total', 'Rule actions, by rule and type (raise, clear)', ['rule', 'type'])
const reloads = counter('citytwin_rules_reloads_total', 'Rule file reloads, by outcome', ['outcome'])
const replayedTotal = counter('citytwin_rules_replayed_total', 'Readings and device events the rules judged from the store after a restart or a gap on the bus', [])
const notJudgedTotal = counter('citytwin_rules_not_judged_total', 'Stored elements the rules could not judge: lost on the bus before they replayed, or older than rules.replayMaxMs', [])

export interface RuleRunnerOptions {
  client: ClickHouseClient
  bus: Bus
  twin: LiveTwin
  config: RulesConfig
  catalogue: Catalogue
  desk: TicketDesk
  clock: () => number
  /** The operating mode of a district at a time (the mode service's). */
  modeAt: (districtId: number, at: number) => Mode
  /** mqtt.maxPastMs: how far behind its arrival a stored reading's timestamp may be (bounds replay queries by time). */
  maxPastMs?: number
}

/** The rule state and positions of one flush (JudgedState). */
interface Judged {
  states: ReturnType<RuleEngine['drainDirty']>
  positions: Positions
  positionsKey: string
}

export class RuleRunner implements Component {
  readonly name = 'rule-runner'
  readonly #o: RuleRunnerOptions
  #engine: RuleEngine | undefined
  #ctx: TwinContext | undefined
  #subscription: Subscription | undefined
  #watcher: FSWatcher | undefined
  #reloadTimer: NodeJS.Timeout | undefined
  /** Rule states a failed flush did not store: stored with the next. */
  #pendingState: Judged['states'] = []
  #stateVersion = Date.now() * 1000
  #lastReload = { ok: true, at: 0, error: '' }
  #stats = { elements: 0, judged: 0, replayed: 0, skippedJudged: 0 }
  /** Per stream, the bus position judged up to: stored with the rule state, replayed from after a restart. */
  #positions: Positions = { ...NO_POSITIONS }
  /** Batches from the bus, judged in turns: the desk stores the state only when none is in progress. */
  readonly #judging = new BatchInTurns()
  /** The positions last stored (JSON), so an idle flush stores nothing. */
  #savedPositions = ''
  /** A replay from the store in progress: the bus holds the rules' elements until it is done. */
  #replaying: Promise<void> | undefined
  /** Waiting for the store to take the desk's pending changes: the bus holds the rules' elements meanwhile. */
  #storing: Promise<void> | undefined
  #stopping = false

  constructor(o: RuleRunnerOptions) {
    this.#o = o
  }

  get engine(): RuleEngine {
    if (!this.#engine) throw new Error('the rule runner has not started')
    return this.#engine
  }

  get lastReload(): { ok: boolean; at: number; error: string } {
    return this.#lastReload
  }

  /** The highest bus position judged, over every stream (a position clock must go on above it). */
  get highestPosition(): number {
    return Math.max(...STREAMS.map((s) => this.#positions[s]))
  }

  /**
   * Loads the rules and their saved state, starts reading the bus, and
   * judges from the store what was stored after the saved position. The
   * desk must have started: what is judged goes to it.
   */
  async start(): Promise<void> {
    const cfg = this.#o.config
    const catalogue = this.#o.catalogue
    const dir = cfg.dir || SHIPPED_RULES_DIR
    const rules = loadRuleDir(dir, catalogue)
    this.#engine = new RuleEngine(rules, (code) => catalogue.type(code)?.severity)
    const state = await loadRuleState(this.#o.client)
    this.#engine.restore(state.rows, this.#o.clock())
    this.#o.desk.storeAfterTickets(this.#judgedState())
    const twin = this.#o.twin
    // While ingest is degraded (the twin judges no silence), the silence rules raise nothing either.
    this.#ctx = new TwinContext(() => twin.twin, (d) => this.#o.modeAt(d, this.#o.clock()), cfg.utcOffsetMin, () => twin.ingest.degraded)
    twin.onStatusChange((i, from, to, lastActivity) => {
      const d = twin.twin.devices[i]
      if (d) this.input({ kind: 'status', deviceId: d.id, ts: this.#o.clock(), status: to, previous: from, since: lastActivity })
    })
    // After the twin: a batch reaches the rules once the twin has applied it.
    this.#subscription = this.#o.bus.subscribe('rules', (batch) => this.#whenReady(() => this.#judgeInTurns(batch)), {
      after: twin.subscription,
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
    if (cfg.dir) this.#watch(cfg.dir)
    this.#lastReload = { ok: true, at: this.#o.clock(), error: '' }
    log.info({ rules: rules.length, dir, restoredStates: state.rows.length, replayed: this.#stats.replayed }, 'rule runner started')
  }

  /** Judges what the bus has brought so far (by `deadline`), then stops reading it. The desk stores the rest. */
  async stop(deadline: number): Promise<void> {
    this.#stopping = true
    await this.#subscription?.idle(deadline)
    this.#subscription?.close()
    this.#o.twin.onStatusChange(undefined)
    clearTimeout(this.#reloadTimer)
    this.#watcher?.close()
  }

  stats(): ComponentStats {
    const engine = this.#engine?.stats()
    return { ...this.#stats, rules: this.#engine?.rules.length ?? 0, ruleStates: engine?.states ?? 0, suppressed: engine?.suppressed ?? 0, busPending: this.#subscription?.pending ?? 0, lastReloadOk: this.#lastReload.ok }
  }

  async health(): Promise<Health> {
    if (!this.#lastReload.ok) return { ok: true, detail: `rule files refused; the previous rules run: ${this.#lastReload.error.split('\n')[0] ?? ''}` }
    const behindMs = this.#subscription?.backlogMs(Date.now()) ?? 0
    if (behindMs >= 60_000) return { ok: false, detail: `the rules are ${Math.round(behindMs / 1000)} s behind the bus` }
    return { ok: true }
  }

  /** Time passes: windows and silences, judged at the twin's watermark (readings still in the pipeline are not absences). */
  tick(now: number): void {
    this.input({ kind: 'tick', ts: now - this.#o.twin.twin.lagMs(now) })
  }

  /** What the desk stores after the tickets of each flush: the rule states changed since, and the positions judged. */
  #judgedState(): JudgedState<Judged> {
    return {
      settled: () => this.#judging.inProgress(),
      take: () => {
        // A key changed again since a failed write is written once, as it is now.
        const byKey = new Map(this.#pendingState.map((r) => [r.key, r]))
        for (const r of this.#engine?.drainDirty() ?? []) byKey.set(r.key, r)
        this.#pendingState = []
        // Taken with the state: it has judged everything up to here.
        const positions = { ...this.#positions }
        return { states: [...byKey.values()], positions, positionsKey: JSON.stringify(positions) }
      },
      store: async (j) => {
        await storeRuleState(this.#o.client, j.states, ++this.#stateVersion, j.positionsKey === this.#savedPositions ? undefined : j.positions)
        this.#savedPositions = j.positionsKey
      },
      putBack: (j) => {
        // Older than what may have changed since: the newer state of a key wins.
        const byKey = new Map(j.states.map((r) => [r.key, r]))
        for (const r of this.#pendingState) byKey.set(r.key, r)
        this.#pendingState = [...byKey.values()]
      },
    }
  }

  /**
   * Runs `judge` once no replay is under way and the store has taken enough
   * of the desk's pending changes. While rules.maxPendingChanges wait for
   * it, the rules take nothing more from the bus: what the bus holds
   * meanwhile waits, and what it drops is judged from the store once the
   * store is back (onGap), so an outage of any length costs no memory here.
   */
  #whenReady(judge: () => void | Promise<void>): void | Promise<void> {
    if (this.#replaying) return this.#replaying.then(() => this.#whenReady(judge))
    if (this.tooManyPending() && !this.#stopping) {
      this.#storing ??= this.#untilStored().finally(() => {
        this.#storing = undefined
      })
      return this.#storing.then(() => this.#whenReady(judge))
    }
    return judge()
  }

  /** As many ticket changes wait for the store as the rules may keep (rules.maxPendingChanges). */
  tooManyPending(): boolean {
    return this.#o.desk.pending >= this.#o.config.maxPendingChanges
  }

  async #untilStored(): Promise<void> {
    const desk = this.#o.desk
    log.warn({ pending: desk.pending, max: this.#o.config.maxPendingChanges }, 'the store does not take ticket changes: the rules take nothing more from the bus until it does')
    const t0 = Date.now()
    while (this.tooManyPending() && !this.#stopping) {
      await desk.flush()
      if (this.tooManyPending()) await new Promise((r) => setTimeout(r, Math.min(this.#o.config.tickMs, 1_000)))
    }
    log.info({ pending: desk.pending, waitedMs: Date.now() - t0 }, 'the store takes ticket changes again: the rules read the bus again')
  }

  /**
   * A batch read back from the store (a replay), in one go. An element at
   * or below the position judged before the batch was judged already (by a
   * replay that read it from the store before the bus brought it); elements
   * of one write share its position and always come in one batch.
   */
  #judge(batch: readonly Element[]): void {
    this.#judgeSlice(batch, { ...this.#positions })
  }

  /**
   * A batch from the bus, a slice at a time (lib/bus/turns.ts): a stored
   * write at full city is thousands of elements, and judged in one turn it
   * held the API's process for 100 ms and more. Every slice skips against
   * the positions judged before the batch (the write's elements share one
   * position). The desk stores the rules' state only between batches
   * (settled), never with half a write judged.
   */
  #judgeInTurns(batch: readonly Element[]): void | Promise<void> {
    const before = { ...this.#positions }
    return this.#judging.run(batch, this.#o.bus.turnMs, (slice) => this.#judgeSlice(slice, before))
  }

  /** Judges `batch`, skipping what lies at or below `before` (judged already). */
  #judgeSlice(batch: readonly Element[], before: Positions): void {
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
      this.input(e)
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

  /** One input through the engine, and its raises and clears to the desk. */
  input(input: RuleInput): void {
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
    if (actions.length === 0) return
    for (const a of actions) actionsTotal.inc({ rule: a.ruleId, type: a.type })
    this.#o.desk.take(actions)
  }

  /** Where a point of the city is (the twin's grids), for a complaint. */
  locate(lon: number, lat: number): ReturnType<TwinContext['locate']> {
    return this.#ctx?.locate(lon, lat)
  }

  /** Replaces the rules with those of the folder; a bad set is refused and the old rules run on. */
  reload(): boolean {
    const dir = this.#o.config.dir || SHIPPED_RULES_DIR
    try {
      const rules: Rule[] = loadRuleDir(dir, this.#o.catalogue)
      this.engine.setRules(rules)
      this.#lastReload = { ok: true, at: this.#o.clock(), error: '' }
      reloads.inc({ outcome: 'ok' })
      log.info({ rules: rules.length, dir }, 'rules reloaded')
      return true
    } catch (e) {
      this.#lastReload = { ok: false, at: this.#o.clock(), error: messageOf(e) }
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
