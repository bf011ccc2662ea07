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
 * Tests many points against one ring whose edges may be many (a real
 * boundary has thousands): the edges bucketed by latitude band, so a test
 * scans the few that cross the point's band instead of all of them.
 */
export class RingTester {
  readonly #bands: number[][]
  readonly #ring: Ring
  readonly #minLat: number
  readonly #bandDeg: number
  readonly box: Box

  constructor(ring: Ring) {
    this.#ring = ring
    this.box = boxOf(ring)
    const n = Math.max(1, Math.min(4096, Math.ceil(ring.length / 4)))
    this.#minLat = this.box.minLat
    this.#bandDeg = Math.max((this.box.maxLat - this.box.minLat) / n, 1e-12)
    this.#bands = Array.from({ length: n }, () => [])
    for (let i = 1; i < ring.length; i++) {
      const a = (ring[i - 1] as LonLat)[1]
      const b = (ring[i] as LonLat)[1]
      for (let k = this.#band(Math.min(a, b)); k <= this.#band(Math.max(a, b)); k++) this.#bands[k]?.push(i)
    }
  }

  #band(lat: number): number {
    return Math.min(this.#bands.length - 1, Math.max(0, Math.floor((lat - this.#minLat) / this.#bandDeg)))
  }

  /** Whether `p` is inside the ring (ray casting over the edges of its band). */
  inside(p: LonLat): boolean {
    const [x, y] = p
    if (x < this.box.minLon || x > this.box.maxLon || y < this.box.minLat || y > this.box.maxLat) return false
    let inside = false
    for (const i of this.#bands[this.#band(y)] ?? []) {
      const [xi, yi] = this.#ring[i] as LonLat
      const [xj, yj] = this.#ring[i - 1] as LonLat
      if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside
    }
    return inside
  }

  /** Whether `p` lies within `km` of the boundary: the edges of the bands that reach that far in latitude only. */
  near(p: LonLat, km: number): boolean {
    const dLat = km / KM_PER_DEG_LAT
    const seen = new Set<number>()
    for (let k = this.#band(p[1] - dLat); k <= this.#band(p[1] + dLat); k++) {
      for (const i of this.#bands[k] ?? []) {
        if (seen.has(i)) continue
        seen.add(i)
        if (distanceToRingKm(p, [this.#ring[i - 1] as LonLat, this.#ring[i] as LonLat]) <= km) return true
      }
    }
    return false
  }

  /** Distance in km to the boundary (all edges: for the message about a point found outside). */
  distanceKm(p: LonLat): number {
    return distanceToRingKm(p, this.#ring)
  }
}

/**
 * Finds which of many rings holds a point: rings bucketed by their boxes
 * on a regular grid of cells, so a lookup tests the few rings whose boxes
 * cover the point's cell (the full city's 46,818 micro-grids: a handful).
 * A ring whose box would cover too many cells (a district drawn to the
 * other side of the globe by a bad corner) is kept aside and tested on
 * every lookup, rather than filling memory with cells.
 */
export class RingIndex<T> {
  readonly #cells = new Map<number, { ring: RingTester; item: T }[]>()
  readonly #oversize: { ring: RingTester; item: T }[] = []
  readonly #cell: number
  readonly #origin: LonLat

  constructor(entries: readonly { ring: Ring; item: T }[], cellDeg = 0.01, maxCellsPerRing = 10_000) {
    this.#cell = cellDeg
    const all = entries.map((e) => ({ ring: new RingTester(e.ring), item: e.item }))
    let minLon = 0
    let minLat = 0
    for (const e of all) {
      minLon = Math.min(minLon, e.ring.box.minLon)
      minLat = Math.min(minLat, e.ring.box.minLat)
    }
    this.#origin = [minLon, minLat]
    for (const e of all) {
      const { box } = e.ring
      const cols = this.#col(box.maxLon) - this.#col(box.minLon) + 1
      const rows = this.#row(box.maxLat) - this.#row(box.minLat) + 1
      if (cols * rows > maxCellsPerRing) {
        this.#oversize.push(e)
        continue
      }
      for (let cx = this.#col(box.minLon); cx <= this.#col(box.maxLon); cx++) {
        for (let cy = this.#row(box.minLat); cy <= this.#row(box.maxLat); cy++) {
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
    for (const e of list ?? []) if (e.ring.inside(p)) return e.item
    for (const e of this.#oversize) if (e.ring.inside(p)) return e.item
    return undefined
  }
}
