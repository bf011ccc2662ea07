// The operating modes as a component of their own (issue 15's split of the
// rules service): the board of mode entries, loaded from the store at start,
// and every switch or cancellation stored before it takes effect. The rule
// runner and the dispatch ask it which mode a district is in.
import type { ClickHouseClient } from '@clickhouse/client'
import type { Component, ComponentStats } from '../lib/component.ts'
import { logger } from '../lib/log.ts'
import type { Mode } from './kinds/types.ts'
import { CITY, ModeBoard, type ModeEntry } from './modes.ts'
import { loadModes, storeModes } from './modes-store.ts'

const log = logger('rule-modes')

export class ModeService implements Component {
  readonly name = 'rule-modes'
  readonly #client: ClickHouseClient
  readonly #clock: () => number
  readonly #board = new ModeBoard()
  #changes = 0

  constructor(o: { client: ClickHouseClient; clock?: () => number }) {
    this.#client = o.client
    this.#clock = o.clock ?? Date.now
  }

  async start(): Promise<void> {
    for (const m of await loadModes(this.#client)) this.#board.add(m)
  }

  /** Nothing to drain: every change is stored before it is answered. */
  async stop(_deadline: number): Promise<void> {}

  stats(): ComponentStats {
    return { entries: this.#board.entries.length, changes: this.#changes }
  }

  get entries(): readonly ModeEntry[] {
    return this.#board.entries
  }

  /** The mode in force in a district (CITY for the city-wide one) at `at`, default now. */
  modeAt(districtId: number, at = this.#clock()): Mode {
    return this.#board.modeAt(districtId, at)
  }

  /** Switches a district (or the city, CITY) to a mode, now or for a period; stored first. */
  async set(e: Omit<ModeEntry, 'id' | 'createdAt'>): Promise<ModeEntry> {
    const now = this.#clock()
    const entry: ModeEntry = { ...e, id: `M-${now.toString(36)}-${Math.random().toString(36).slice(2, 6)}`, createdAt: now }
    await storeModes(this.#client, [entry], false)
    this.#board.add(entry)
    this.#changes++
    log.info({ mode: entry }, `operating mode ${entry.mode} ${entry.districtId === CITY ? 'city-wide' : `in district ${entry.districtId}`}`)
    return entry
  }

  /** Cancels an entry; undefined when there is none of that id. */
  async cancel(id: string): Promise<ModeEntry | undefined> {
    const e = this.#board.entries.find((x) => x.id === id)
    if (!e) return undefined
    await storeModes(this.#client, [e], true)
    this.#board.remove(id)
    this.#changes++
    return e
  }
}
