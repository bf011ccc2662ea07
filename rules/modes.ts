// The four operating modes (四种模态): normal, holiday, major event and
// emergency. An operator switches a district or the whole city now, or
// schedules a mode for a period (a holiday week, a marathon). The mode in
// force for a district is the newest entry that covers it at that moment,
// a district's own entry before the city's.
import type { Mode } from './kinds/types.ts'

/** District 0 stands for the whole city. */
export const CITY = 0

export interface ModeEntry {
  id: string
  districtId: number
  mode: Mode
  startsAt: number
  /** undefined: until another entry replaces it. */
  endsAt: number | undefined
  actor: string
  note: string
  createdAt: number
}

export class ModeBoard {
  #entries: ModeEntry[] = []

  constructor(entries: readonly ModeEntry[] = []) {
    this.#entries = [...entries]
  }

  get entries(): readonly ModeEntry[] {
    return this.#entries
  }

  add(e: ModeEntry): void {
    this.#entries = [...this.#entries.filter((x) => x.id !== e.id), e]
  }

  remove(id: string): ModeEntry | undefined {
    const e = this.#entries.find((x) => x.id === id)
    this.#entries = this.#entries.filter((x) => x.id !== id)
    return e
  }

  /** The mode in force in a district (or, with CITY, city-wide) at `now`. */
  modeAt(districtId: number, now: number): Mode {
    let own: ModeEntry | undefined
    let city: ModeEntry | undefined
    for (const e of this.#entries) {
      if (e.startsAt > now || (e.endsAt !== undefined && e.endsAt <= now)) continue
      if (e.districtId === districtId && districtId !== CITY) {
        if (!own || e.createdAt > own.createdAt) own = e
      } else if (e.districtId === CITY) {
        if (!city || e.createdAt > city.createdAt) city = e
      }
    }
    // A district switched after the city follows its own entry; a city-wide
    // switch made later than the district's overrides it.
    if (own && (!city || own.createdAt >= city.createdAt)) return own.mode
    return city?.mode ?? 'normal'
  }
}
