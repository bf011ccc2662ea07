// Devices or cameras in view as binary attributes: positions and colours in
// typed arrays, a status update recolours one point in place.
import { CAMERA_STATUS_COLORS, DEVICE_STATUS_COLORS, type RGBA } from './colors.ts'

export interface PointColumns {
  kind: 'devices' | 'cameras'
  ids: string[]
  types: string[]
  lon: number[]
  lat: number[]
  status: number[]
  truncated: boolean
}

export interface PointFilter {
  type?: string | undefined
  status?: number | undefined
}

export class PointSet {
  readonly kind: 'devices' | 'cameras'
  readonly ids: readonly string[]
  readonly types: readonly string[]
  readonly positions: Float32Array
  readonly colors: Uint8Array
  readonly status: Uint8Array
  readonly rowOf = new Map<string, number>()
  /**
   * deck.gl's binary layer data for the points that pass the filter: made
   * again only when the filter changes (see GridGeometry.polygons for why
   * it must otherwise stay the same object).
   */
  data: { length: number; attributes: { getPosition: { value: Float32Array; size: 2 } } }
  /** Row of each drawn point. */
  #drawn: Uint32Array
  #filter: PointFilter = {}
  #version = 0

  constructor(p: PointColumns) {
    this.kind = p.kind
    this.ids = p.ids
    this.types = p.types
    const n = p.ids.length
    this.positions = new Float32Array(2 * n)
    this.colors = new Uint8Array(4 * n)
    this.status = new Uint8Array(n)
    for (let i = 0; i < n; i++) {
      this.positions[2 * i] = p.lon[i] ?? 0
      this.positions[2 * i + 1] = p.lat[i] ?? 0
      this.rowOf.set(p.ids[i] ?? '', i)
      this.#set(i, p.status[i] ?? 0)
    }
    this.#drawn = Uint32Array.from({ length: n }, (_, i) => i)
    this.data = { length: n, attributes: { getPosition: { value: this.positions, size: 2 } } }
  }

  /** Draws only the points of a type and a status (undefined: any). */
  setFilter(f: PointFilter): void {
    this.#filter = f
    this.#refilter()
  }

  /** The row of the i-th drawn point (what deck.gl's index means). */
  drawnRow(i: number): number {
    return this.#drawn[i] ?? 0
  }

  #refilter(): void {
    const { type, status } = this.#filter
    if (type === undefined && status === undefined) {
      this.#drawn = Uint32Array.from({ length: this.length }, (_, i) => i)
      this.data = { length: this.length, attributes: { getPosition: { value: this.positions, size: 2 } } }
    } else {
      const rows: number[] = []
      for (let i = 0; i < this.length; i++) {
        if ((type === undefined || this.types[i] === type) && (status === undefined || this.status[i] === status)) rows.push(i)
      }
      this.#drawn = Uint32Array.from(rows)
      const pos = new Float32Array(2 * rows.length)
      rows.forEach((r, k) => pos.set(this.positions.subarray(2 * r, 2 * r + 2), 2 * k))
      this.data = { length: rows.length, attributes: { getPosition: { value: pos, size: 2 } } }
    }
    this.#version++
  }

  get length(): number {
    return this.ids.length
  }

  get version(): number {
    return this.#version
  }

  /** Applies [id, status] updates; returns how many points in the set changed. */
  update(rows: readonly (readonly [string, number])[]): number {
    let n = 0
    for (const [id, s] of rows) {
      const i = this.rowOf.get(id)
      if (i === undefined || this.status[i] === s) continue
      this.#set(i, s)
      n++
    }
    // Only a status filter can now take or drop a point: then the drawn set is made again.
    if (n > 0 && this.#filter.status !== undefined) this.#refilter()
    else if (n > 0) this.#version++
    return n
  }

  #set(i: number, s: number): void {
    this.status[i] = s
    const palette: readonly RGBA[] = this.kind === 'devices' ? DEVICE_STATUS_COLORS : CAMERA_STATUS_COLORS
    this.colors.set(palette[s] ?? [0, 0, 0, 255], 4 * i)
  }
}
