// The live state of the grids on the map: one row per drawn grid, kept in
// typed arrays next to the geometry, with the fill colour of each row. Live
// deltas change values and colours in place and bump a version, so deck.gl
// recomputes only the colour attribute (updateTriggers), never the
// tessellated polygons.
import { healthColor, ticketColor, type RGBA } from './colors.ts'

/** Columns of a grid row on the live feed (twin/api/live.ts GRID_COLUMNS). */
export interface GridColumns {
  id: number
  health: number
  ticketsInfo: number
  ticketsWarning: number
  ticketsCritical: number
  devOnline: number
  devSilent: number
  devOffline: number
  devUnknown: number
}

export type ColourBy = 'health' | 'tickets'

export class GridState {
  readonly rowOf: ReadonlyMap<number, number>
  readonly health: Float32Array
  readonly tickets: Int32Array
  readonly colors: Uint8Array
  #by: ColourBy
  #version = 0

  constructor(rowOf: ReadonlyMap<number, number>, by: ColourBy = 'health') {
    this.rowOf = rowOf
    const n = rowOf.size
    this.health = new Float32Array(n).fill(Number.NaN)
    this.tickets = new Int32Array(3 * n)
    this.colors = new Uint8Array(4 * n)
    this.#by = by
    for (let r = 0; r < n; r++) this.#paint(r)
  }

  get version(): number {
    return this.#version
  }

  get colourBy(): ColourBy {
    return this.#by
  }

  set colourBy(by: ColourBy) {
    if (by === this.#by) return
    this.#by = by
    for (let r = 0; r < this.rowOf.size; r++) this.#paint(r)
    this.#version++
  }

  /** Applies rows (from /api/grids or the live feed); returns how many drawn grids changed. */
  apply(rows: readonly GridColumns[]): number {
    let changed = 0
    for (const g of rows) {
      const r = this.rowOf.get(g.id)
      if (r === undefined) continue
      this.health[r] = g.health
      this.tickets[3 * r] = g.ticketsInfo
      this.tickets[3 * r + 1] = g.ticketsWarning
      this.tickets[3 * r + 2] = g.ticketsCritical
      this.#paint(r)
      changed++
    }
    if (changed > 0) this.#version++
    return changed
  }

  colorAt(row: number): RGBA {
    return [this.colors[4 * row] ?? 0, this.colors[4 * row + 1] ?? 0, this.colors[4 * row + 2] ?? 0, this.colors[4 * row + 3] ?? 0]
  }

  #paint(r: number): void {
    const c = this.#by === 'health' ? healthColor(this.health[r] ?? Number.NaN) : ticketColor(this.tickets[3 * r] ?? 0, this.tickets[3 * r + 1] ?? 0, this.tickets[3 * r + 2] ?? 0)
    this.colors.set(c, 4 * r)
  }
}

/** A live-feed row (an array in the order the hello message names) as named columns. */
export function rowToColumns(columns: readonly string[], row: readonly number[]): GridColumns {
  const at = indexesOf(columns)
  const get = (name: keyof GridColumns): number => row[at[name]] ?? 0
  return {
    id: get('id'), health: get('health'), ticketsInfo: get('ticketsInfo'), ticketsWarning: get('ticketsWarning'), ticketsCritical: get('ticketsCritical'),
    devOnline: get('devOnline'), devSilent: get('devSilent'), devOffline: get('devOffline'), devUnknown: get('devUnknown'),
  }
}

const indexCache = new WeakMap<readonly string[], Record<keyof GridColumns, number>>()

/** Where each column sits in a row, worked out once per hello message. */
function indexesOf(columns: readonly string[]): Record<keyof GridColumns, number> {
  let at = indexCache.get(columns)
  if (!at) {
    const names: (keyof GridColumns)[] = ['id', 'health', 'ticketsInfo', 'ticketsWarning', 'ticketsCritical', 'devOnline', 'devSilent', 'devOffline', 'devUnknown']
    at = Object.fromEntries(names.map((n) => [n, columns.indexOf(n)])) as Record<keyof GridColumns, number>
    indexCache.set(columns, at)
  }
  return at
}
