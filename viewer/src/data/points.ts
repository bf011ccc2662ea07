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

export class PointSet {
  readonly kind: 'devices' | 'cameras'
  readonly ids: readonly string[]
  readonly types: readonly string[]
  readonly positions: Float32Array
  readonly colors: Uint8Array
  readonly status: Uint8Array
  readonly rowOf = new Map<string, number>()
  /** deck.gl's binary layer data, made once (see GridGeometry.polygons). */
  readonly data: { length: number; attributes: { getPosition: { value: Float32Array; size: 2 } } }
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
    this.data = { length: n, attributes: { getPosition: { value: this.positions, size: 2 } } }
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
    if (n > 0) this.#version++
    return n
  }

  #set(i: number, s: number): void {
    this.status[i] = s
    const palette: readonly RGBA[] = this.kind === 'devices' ? DEVICE_STATUS_COLORS : CAMERA_STATUS_COLORS
    this.colors.set(palette[s] ?? [0, 0, 0, 255], 4 * i)
  }
}
