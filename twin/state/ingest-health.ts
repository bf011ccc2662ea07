// Overload is a state, not a flood of tickets. When ingest falls behind
// (readings waiting in the gateway, the store writers or on the bus for the
// twin and the rules) or sheds devices (a gateway refusing connections to
// keep its memory), a device that sends nothing tells us nothing: it may be
// reporting into a queue, or be refused at the door. At full city load the
// twin called 40,000 reporting devices silent that way. So ingest is
// "degraded" while:
//
// - data has waited inside the system `degradedAfterMs` or more;
// - any gateway sheds;
// - a large share of the devices heard from lately went silent at once
//   (`silentPercent` of them, and at least `silentMin`). Data can also
//   wait where no queue of ours sees it: in the devices, their QoS 1 window
//   full because the gateway answers late, or in a load generator that does
//   not get the CPU. A tenth of the city going quiet within minutes is the
//   gateway, the network or the load, not that many devices failing; one
//   alarm says so better than 60,000 tickets. An area's power cut is a few
//   hundred devices, a whole district about 6% of the city: both stay
//   under the default share (twin.degradedSilentPercent, 10).
//
// Meanwhile the twin judges no new silence, and the rules raise no silence
// or area-outage tickets (rules/engine.ts): the system raises this one
// alarm instead. It clears once every cause is under half its threshold
// and has stayed so for `recoverAfterMs`, so a wait hovering at the line
// does not flap. The wait is the system's own queueing, never the readings'
// timestamps: one device with a slow clock must not hold the city degraded.
//
// Pure: the caller gives the signals and the clock.

export interface IngestSignals {
  /** How long data has waited inside the system (the gateways' and writers' backlog, the bus; lag.ts), in ms. */
  lagMs: number
  /** Whether a gateway process is refusing connections to keep its memory (heap-guard.ts). */
  shedding: boolean
  /** Devices heard from lately (within a window of their silence) that are overdue now; absent: not counted. */
  silent?: { overdue: number; of: number }
}

export interface IngestHealth {
  degraded: boolean
  /** When the current degraded spell began (epoch ms); null while healthy. */
  since: number | null
  /** Why it is degraded, in words; null while healthy. */
  reason: string | null
  lagMs: number
  shedding: boolean
  /** Degraded spells so far. */
  spells: number
}

export interface IngestHealthOptions {
  /** Wait inside the system that makes ingest degraded, ms; 0: never degraded for any cause (silence is always judged). */
  degradedAfterMs: number
  /** Share of the devices heard from lately, in percent, that going silent at once makes ingest degraded; 0: not a cause. */
  silentPercent?: number
  /** Fewest such devices that do, whatever the share (a small fleet's few silences are devices). */
  silentMin?: number
  /** How long every cause must stay under half its threshold before ingest counts as recovered, ms. */
  recoverAfterMs?: number
}

export class IngestHealthMonitor {
  readonly #o: Required<IngestHealthOptions>
  #state: IngestHealth = { degraded: false, since: null, reason: null, lagMs: 0, shedding: false, spells: 0 }
  /** Degraded, causes under half: since when. */
  #calmSince: number | undefined

  constructor(opts: IngestHealthOptions) {
    this.#o = { silentPercent: 0, silentMin: 1, recoverAfterMs: 0, ...opts }
  }

  get state(): IngestHealth {
    return this.#state
  }

  /** Carries a state over (a twin rebuilt from the store goes on with its predecessor's spell). */
  restore(state: IngestHealth): void {
    this.#state = { ...state }
  }

  /** Takes the signals at `now`; returns whether the state turned (degraded or recovered). */
  update(s: IngestSignals, now: number): boolean {
    const was = this.#state.degraded
    const { degradedAfterMs: limit, silentPercent, silentMin } = this.#o
    // Entering: at the thresholds; leaving: under half of each.
    const scale = was ? 0.5 : 1
    const lagging = limit > 0 && s.lagMs >= limit * scale
    const quiet = limit > 0 && silentPercent > 0 && s.silent !== undefined && s.silent.overdue >= silentMin && s.silent.overdue >= (silentPercent / 100) * scale * s.silent.of
    let degraded = limit > 0 && (lagging || s.shedding || quiet)
    if (was && !degraded) {
      this.#calmSince ??= now
      if (now - this.#calmSince < this.#o.recoverAfterMs) degraded = true
    } else {
      this.#calmSince = undefined
    }
    const causes = [
      lagging ? `data has waited ${Math.round(s.lagMs / 1000)} s in the gateway, the store or on the bus` : '',
      s.shedding ? 'a gateway is refusing connections to keep its memory' : '',
      quiet && s.silent ? `${s.silent.overdue} of ${s.silent.of} devices heard from lately went silent at once (${Math.round((100 * s.silent.overdue) / Math.max(1, s.silent.of))}%): the gateway, the network or the load, not the devices` : '',
    ].filter(Boolean)
    const reason = !degraded ? null : causes.length > 0 ? causes.join('; ') : `recovering: waiting ${Math.round(this.#o.recoverAfterMs / 1000)} s to be sure`
    this.#state = {
      degraded, reason, lagMs: Math.round(s.lagMs), shedding: s.shedding,
      since: degraded ? (was ? this.#state.since : now) : null,
      spells: this.#state.spells + (degraded && !was ? 1 : 0),
    }
    return degraded !== was
  }
}
