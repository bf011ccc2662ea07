// Overload is a state, not a flood of tickets. When ingest falls behind
// (readings waiting in the gateway or the store writers) or sheds devices
// (a gateway refusing connections to keep its memory), a device that sends
// nothing tells us nothing: it may be reporting into a queue, or be
// refused at the door. At full city load the twin called 40,000 reporting
// devices silent that way. So ingest is "degraded" while data has waited
// inside the system `degradedAfterMs` or more, or any gateway sheds;
// meanwhile the twin judges no new silence (and so the rules raise no
// silence or area-outage tickets), and the system raises this one alarm
// instead. It clears once the wait is back under half the threshold and
// nothing sheds, so a wait hovering at the line does not flap. The wait is
// the system's own queueing, never the readings' timestamps: one device
// with a slow clock must not hold the city degraded.
//
// Pure: the caller gives the signals and the clock.

export interface IngestSignals {
  /** How long data has waited inside the system (the gateways' and writers' backlog, lag.ts), in ms. */
  lagMs: number
  /** Whether a gateway process is refusing connections to keep its memory (heap-guard.ts). */
  shedding: boolean
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

export class IngestHealthMonitor {
  readonly #degradedAfterMs: number
  #state: IngestHealth = { degraded: false, since: null, reason: null, lagMs: 0, shedding: false, spells: 0 }

  /** `degradedAfterMs` 0: never degraded (silence is always judged). */
  constructor(opts: { degradedAfterMs: number }) {
    this.#degradedAfterMs = opts.degradedAfterMs
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
    const limit = this.#degradedAfterMs
    const lagging = limit > 0 && s.lagMs >= (was ? limit / 2 : limit)
    const degraded = limit > 0 && (lagging || s.shedding)
    const reason = !degraded ? null : [lagging ? `data has waited ${Math.round(s.lagMs / 1000)} s in the gateway or the store` : '', s.shedding ? 'a gateway is refusing connections to keep its memory' : ''].filter(Boolean).join('; ')
    this.#state = {
      degraded, reason, lagMs: Math.round(s.lagMs), shedding: s.shedding,
      since: degraded ? (was ? this.#state.since : now) : null,
      spells: this.#state.spells + (degraded && !was ? 1 : 0),
    }
    return degraded !== was
  }
}
