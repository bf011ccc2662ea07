// Plane geometry on [longitude, latitude] pairs, for locating a point in a
// grid and checking that a grid lies inside its parent. At a city's size
// (tens of kilometres) degrees are treated as a plane, with a longitude
// degree shortened by the cosine of the latitude for distances.
import type { LonLat, Ring } from './city.ts'

const KM_PER_DEG_LAT = 111.32

/** Whether `p` is inside the closed ring (ray casting; a point on an edge may go either way). */
export function insideRing(p: LonLat, ring: Ring): boolean {
  const [x, y] = p
  let inside = false
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i] as LonLat
    const [xj, yj] = ring[j] as LonLat
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside
  }
  return inside
}

/** Distance in km from `p` to the ring's boundary. */
export function distanceToRingKm(p: LonLat, ring: Ring): number {
  const kx = KM_PER_DEG_LAT * Math.cos((p[1] * Math.PI) / 180)
  const ky = KM_PER_DEG_LAT
  let best = Infinity
  for (let i = 1; i < ring.length; i++) {
    const a = ring[i - 1] as LonLat
    const b = ring[i] as LonLat
    const ax = (a[0] - p[0]) * kx
    const ay = (a[1] - p[1]) * ky
    const bx = (b[0] - p[0]) * kx
    const by = (b[1] - p[1]) * ky
    const dx = bx - ax
    const dy = by - ay
    const len2 = dx * dx + dy * dy
    const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, -(ax * dx + ay * dy) / len2))
    best = Math.min(best, Math.hypot(ax + t * dx, ay + t * dy))
  }
  return best
}

/** Area in km² and centroid of a closed ring (shoelace). */
export function ringAreaCentroid(ring: Ring): { areaKm2: number; centroid: LonLat } {
  const lat0 = ring.reduce((s, p) => s + p[1], 0) / Math.max(1, ring.length)
  const kx = KM_PER_DEG_LAT * Math.cos((lat0 * Math.PI) / 180)
  let a2 = 0
  let cx = 0
  let cy = 0
  for (let i = 1; i < ring.length; i++) {
    const [x0, y0] = ring[i - 1] as LonLat
    const [x1, y1] = ring[i] as LonLat
    const cross = x0 * y1 - x1 * y0
    a2 += cross
    cx += (x0 + x1) * cross
    cy += (y0 + y1) * cross
  }
  if (a2 === 0) {
    const [x, y] = ring[0] ?? [0, 0]
    return { areaKm2: 0, centroid: [x, y] }
  }
  return { areaKm2: Math.abs(a2 / 2) * kx * KM_PER_DEG_LAT, centroid: [cx / (3 * a2), cy / (3 * a2)] }
}

export interface Box { minLon: number; minLat: number; maxLon: number; maxLat: number }

export function boxOf(ring: Ring): Box {
  const b = { minLon: Infinity, minLat: Infinity, maxLon: -Infinity, maxLat: -Infinity }
  for (const [lon, lat] of ring) {
    b.minLon = Math.min(b.minLon, lon)
    b.minLat = Math.min(b.minLat, lat)
    b.maxLon = Math.max(b.maxLon, lon)
    b.maxLat = Math.max(b.maxLat, lat)
  }
  return b
}

/**
 * Finds which of many rings holds a point: rings bucketed by their boxes
 * on a regular grid of cells, so a lookup tests the few rings whose boxes
 * cover the point's cell (the full city's 46,818 micro-grids: a handful).
 */
export class RingIndex<T> {
  readonly #cells = new Map<number, { ring: Ring; box: Box; item: T }[]>()
  readonly #cell: number
  readonly #origin: LonLat

  constructor(entries: readonly { ring: Ring; item: T }[], cellDeg = 0.01) {
    this.#cell = cellDeg
    const all = entries.map((e) => ({ ...e, box: boxOf(e.ring) }))
    this.#origin = [Math.min(...all.map((e) => e.box.minLon), 0), Math.min(...all.map((e) => e.box.minLat), 0)]
    for (const e of all) {
      for (let cx = this.#col(e.box.minLon); cx <= this.#col(e.box.maxLon); cx++) {
        for (let cy = this.#row(e.box.minLat); cy <= this.#row(e.box.maxLat); cy++) {
          const k = cx * 1_000_003 + cy
          const list = this.#cells.get(k)
          if (list) list.push(e)
          else this.#cells.set(k, [e])
        }
      }
    }
  }

  #col(lon: number): number {
    return Math.floor((lon - this.#origin[0]) / this.#cell)
  }

  #row(lat: number): number {
    return Math.floor((lat - this.#origin[1]) / this.#cell)
  }

  /** The item whose ring holds `p`, or undefined. */
  find(p: LonLat): T | undefined {
    const list = this.#cells.get(this.#col(p[0]) * 1_000_003 + this.#row(p[1]))
    for (const e of list ?? []) {
      if (p[0] < e.box.minLon || p[0] > e.box.maxLon || p[1] < e.box.minLat || p[1] > e.box.maxLat) continue
      if (insideRing(p, e.ring)) return e.item
    }
    return undefined
  }
}
