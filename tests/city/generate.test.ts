// The synthetic city: deterministic, the right counts, and grids that nest
// without gaps or overlaps. Geometry is checked in lon/lat, where the
// generator's convex cells stay convex (the projection is linear).
import { describe, expect, it } from 'vitest'
import { countByLevel, cityCounts, generateCity } from '../../simulators/city/generate.ts'
import { allocate, createRng } from '../../simulators/city/random.ts'
import { insideConvex } from '../../simulators/city/geometry.ts'
import type { City, Grid } from '../../registry/city.ts'
import { DEVICE_TYPES } from '../../registry/device-types.ts'

// Coordinates are rounded to 1e-6 degrees (about 0.1 m), so containment is
// checked with a tolerance of the same order.
const EPS = 1e-9

const small = generateCity({ seed: 7, scale: 0.01 })
const full = generateCity({ seed: 1, scale: 1 })

function byId(city: City): Map<number, Grid> {
  return new Map(city.grids.map((g) => [g.id, g]))
}

function ringOpen(g: Grid): (readonly [number, number])[] {
  return g.ring.slice(0, -1)
}

function containsPoint(g: Grid, p: readonly [number, number], eps = EPS): boolean {
  return insideConvex(p, ringOpen(g), eps)
}

/**
 * True when `p` is at least `margin` degrees inside every edge of a convex
 * ring (a negative margin tolerates points that far outside). Edges shorter
 * than rounding (1e-5 degrees) have no reliable direction and are skipped.
 */
function insideBy(p: readonly [number, number], ring: readonly (readonly [number, number])[], margin: number): boolean {
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const a = ring[j] as readonly [number, number]
    const b = ring[i] as readonly [number, number]
    const len = Math.hypot(b[0] - a[0], b[1] - a[1])
    if (len < 1e-5) continue
    if (((b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])) / len < margin) return false
  }
  return true
}

describe('random helpers', () => {
  it('allocate splits exactly, proportionally, with a minimum', () => {
    expect(allocate(10, [1, 1, 1, 1])).toEqual([3, 3, 2, 2])
    expect(allocate(5, [100, 0, 0], 1)).toEqual([3, 1, 1])
    expect(allocate(46_818, Array(19_136).fill(1)).reduce((a, b) => a + b, 0)).toBe(46_818)
    expect(() => allocate(2, [1, 1, 1])).toThrow(/at least/)
  })

  it('the PRNG is a pure function of its seed', () => {
    const a = createRng(42)
    const b = createRng(42)
    const c = createRng(43)
    const xs = Array.from({ length: 5 }, () => a.next())
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(xs)
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(xs)
  })
})

describe('city generator', () => {
  it('is deterministic for a seed and differs between seeds', () => {
    const again = generateCity({ seed: 7, scale: 0.01 })
    expect(again).toEqual(small)
    const other = generateCity({ seed: 8, scale: 0.01 })
    expect(other.devices.map((d) => [d.lon, d.lat])).not.toEqual(small.devices.map((d) => [d.lon, d.lat]))
  })

  it('has the full city figures at scale 1', () => {
    expect(countByLevel(full.grids)).toMatchObject({ community: 19_136, micro: 46_818, special: 4_774 })
    expect(full.devices).toHaveLength(219_300)
    expect(full.cameras).toHaveLength(130_000)
    const types = new Map<string, number>()
    for (const d of full.devices) types.set(d.type, (types.get(d.type) ?? 0) + 1)
    expect(types.size).toBeGreaterThanOrEqual(10)
    for (const t of DEVICE_TYPES) expect(types.get(t.type)).toBe(t.count)
  })

  it('keeps the proportions at scale 0.01', () => {
    const c = countByLevel(small.grids)
    expect(c).toMatchObject({ community: 191, micro: 468, special: 48 })
    expect(small.devices.length).toBe(cityCounts(0.01).devices)
    expect(Math.abs(small.devices.length - 2193)).toBeLessThanOrEqual(DEVICE_TYPES.length)
    expect(small.cameras).toHaveLength(1300)
  })

  it('gives unique ids and codes', () => {
    for (const city of [small, full]) {
      expect(new Set(city.grids.map((g) => g.id)).size).toBe(city.grids.length)
      expect(new Set(city.grids.map((g) => g.code)).size).toBe(city.grids.length)
      expect(new Set(city.devices.map((d) => d.id)).size).toBe(city.devices.length)
      expect(new Set(city.cameras.map((c) => c.id)).size).toBe(city.cameras.length)
    }
  })

  it('sits around Zhengzhou and covers about 1,000 km² at every level', () => {
    for (const level of ['district', 'street', 'community', 'micro'] as const) {
      const total = full.grids.filter((g) => g.level === level).reduce((s, g) => s + g.areaKm2, 0)
      expect(total).toBeGreaterThan(995)
      expect(total).toBeLessThan(1005)
    }
    for (const g of full.grids) {
      expect(g.centroid[0]).toBeGreaterThan(113.3)
      expect(g.centroid[0]).toBeLessThan(113.95)
      expect(g.centroid[1]).toBeGreaterThan(34.5)
      expect(g.centroid[1]).toBeLessThan(35.0)
    }
  })

  it('nests every grid inside exactly its parent, with closed rings', () => {
    const grids = byId(full)
    for (const g of full.grids) {
      expect(g.ring.length).toBeGreaterThanOrEqual(4)
      expect(g.ring[0]).toEqual(g.ring[g.ring.length - 1])
      expect(g.areaKm2).toBeGreaterThan(0)
      if (g.level === 'district' || g.level === 'special') continue
      const parent = grids.get(g.parentId)
      expect(parent, `parent of ${g.code}`).toBeDefined()
      if (!parent) continue
      const expectedParent = { street: 'district', community: 'street', micro: 'community' }[g.level]
      expect(parent.level).toBe(expectedParent)
      for (const p of ringOpen(g)) expect(containsPoint(parent, p, 1e-6), `${g.code} vertex outside ${parent.code}`).toBe(true)
    }
  })

  it('partitions each parent: children areas add up and every sampled point lies in exactly one child', () => {
    const rng = createRng(99)
    const grids = byId(full)
    const children = new Map<number, Grid[]>()
    for (const g of full.grids) {
      if (g.level === 'district' || g.level === 'special') continue
      const list = children.get(g.parentId) ?? []
      list.push(g)
      children.set(g.parentId, list)
    }
    let checkedParents = 0
    for (const [parentId, kids] of children) {
      const parent = grids.get(parentId)
      if (!parent) throw new Error(`missing parent ${parentId}`)
      const sum = kids.reduce((s, k) => s + k.areaKm2, 0)
      expect(Math.abs(sum - parent.areaKm2) / parent.areaKm2, `areas under ${parent.code}`).toBeLessThan(1e-3)
      // Sample a few hundred parents for the point test.
      if (rng.next() > 0.02 && parent.level !== 'district') continue
      checkedParents++
      const ring = ringOpen(parent)
      const xs = ring.map((p) => p[0])
      const ys = ring.map((p) => p[1])
      let tested = 0
      for (let attempt = 0; tested < 20 && attempt < 10_000; attempt++) {
        const p: [number, number] = [rng.range(Math.min(...xs), Math.max(...xs)), rng.range(Math.min(...ys), Math.max(...ys))]
        // Stay clear of edges, where rounding to 1e-6 degrees decides.
        if (!insideBy(p, ring, 3e-6)) continue
        tested++
        const holders = kids.filter((k) => insideBy(p, ringOpen(k), 3e-6))
        const nearly = kids.filter((k) => insideBy(p, ringOpen(k), -3e-6))
        expect(holders.length, `point ${p.join(',')} under ${parent.code}`).toBeLessThanOrEqual(1)
        expect(nearly.length, `point ${p.join(',')} under ${parent.code}`).toBeGreaterThanOrEqual(1)
      }
      expect(tested, `sampled points under ${parent.code}`).toBe(20)
    }
    expect(checkedParents).toBeGreaterThan(100)
  })

  it('keeps special grids apart from each other', () => {
    const specials = full.grids.filter((g) => g.level === 'special')
    // Any two special grids overlap only if one's interior holds a point of the other's:
    // test each one's centroid and interior samples against its neighbours.
    const near = (a: Grid, b: Grid) => Math.abs(a.centroid[0] - b.centroid[0]) < 0.02 && Math.abs(a.centroid[1] - b.centroid[1]) < 0.02
    const sorted = [...specials].sort((a, b) => a.centroid[0] - b.centroid[0])
    for (let i = 0; i < sorted.length; i++) {
      const a = sorted[i] as Grid
      const samples = [a.centroid, ...ringOpen(a).map((v) => [(v[0] * 3 + a.centroid[0]) / 4, (v[1] * 3 + a.centroid[1]) / 4] as const)]
      for (let j = i + 1; j < sorted.length && (sorted[j] as Grid).centroid[0] - a.centroid[0] < 0.02; j++) {
        const b = sorted[j] as Grid
        if (!near(a, b)) continue
        for (const p of samples) expect(insideBy(p, ringOpen(b), 3e-6), `${a.code} overlaps ${b.code}`).toBe(false)
      }
    }
  })

  it('places every device and camera inside its micro-grid, with its ancestors', () => {
    const grids = byId(full)
    for (const d of [...full.devices, ...full.cameras]) {
      const m = grids.get(d.microGridId)
      expect(m?.level).toBe('micro')
      if (!m) continue
      expect(containsPoint(m, [d.lon, d.lat], 1e-6), `${d.id} outside ${m.code}`).toBe(true)
      expect(d.communityId).toBe(m.communityId)
      expect(d.streetId).toBe(m.streetId)
      expect(d.districtId).toBe(m.districtId)
    }
  })

  it('refuses a bad seed or scale', () => {
    expect(() => generateCity({ seed: 1.5 })).toThrow(/seed/)
    expect(() => generateCity({ seed: 1, scale: 0 })).toThrow(/scale/)
    expect(() => generateCity({ seed: 1, scale: 2 })).toThrow(/scale/)
  })
})
