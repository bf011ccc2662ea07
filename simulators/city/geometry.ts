// Planar geometry on convex polygons, in kilometres on a local tangent plane.
// Every polygon the generator makes is convex: a Voronoi cell clipped to a
// convex parent is convex, so Sutherland-Hodgman clipping is exact here.

import { boxOf } from '../../registry/geometry.ts'

export type Pt = [number, number]

/** Signed area (positive when counter-clockwise). Ring given without the closing point. */
export function signedArea(poly: readonly Pt[]): number {
  let s = 0
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const a = poly[j] as Pt
    const b = poly[i] as Pt
    s += a[0] * b[1] - b[0] * a[1]
  }
  return s / 2
}

export function area(poly: readonly Pt[]): number {
  return Math.abs(signedArea(poly))
}

export function centroid(poly: readonly Pt[]): Pt {
  let cx = 0
  let cy = 0
  let s = 0
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const a = poly[j] as Pt
    const b = poly[i] as Pt
    const f = a[0] * b[1] - b[0] * a[1]
    cx += (a[0] + b[0]) * f
    cy += (a[1] + b[1]) * f
    s += f
  }
  if (Math.abs(s) < 1e-18) return poly[0] ?? [0, 0]
  return [cx / (3 * s), cy / (3 * s)]
}

export function ccw(poly: Pt[]): Pt[] {
  return signedArea(poly) < 0 ? poly.reverse() : poly
}

/** Clips `subject` to the convex, counter-clockwise `clip` (Sutherland-Hodgman). */
export function clipConvex(subject: readonly Pt[], clip: readonly Pt[]): Pt[] {
  let out: Pt[] = subject.slice()
  for (let i = 0, j = clip.length - 1; i < clip.length && out.length > 0; j = i++) {
    const a = clip[j] as Pt
    const b = clip[i] as Pt
    const input = out
    out = []
    const side = (p: Pt): number => (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
    for (let k = 0, l = input.length - 1; k < input.length; l = k++) {
      const cur = input[k] as Pt
      const prev = input[l] as Pt
      const sc = side(cur)
      const sp = side(prev)
      if (sc >= 0) {
        if (sp < 0) out.push(intersect(prev, cur, sp, sc))
        out.push(cur)
      } else if (sp >= 0) {
        out.push(intersect(prev, cur, sp, sc))
      }
    }
  }
  return dedupe(out)
}

function intersect(p: Pt, q: Pt, sp: number, sq: number): Pt {
  const t = sp / (sp - sq)
  return [p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])]
}

function dedupe(poly: Pt[]): Pt[] {
  const out: Pt[] = []
  for (const p of poly) {
    const last = out[out.length - 1]
    if (!last || Math.abs(last[0] - p[0]) > 1e-12 || Math.abs(last[1] - p[1]) > 1e-12) out.push(p)
  }
  const first = out[0]
  const last = out[out.length - 1]
  if (out.length > 1 && first && last && Math.abs(first[0] - last[0]) < 1e-12 && Math.abs(first[1] - last[1]) < 1e-12) out.pop()
  return out
}

/** True when `p` is inside or on the convex, counter-clockwise polygon. */
export function insideConvex(p: readonly [number, number], poly: readonly (readonly [number, number])[], eps = 1e-9): boolean {
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const a = poly[j] as Pt
    const b = poly[i] as Pt
    if ((b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) < -eps) return false
  }
  return true
}

/** The bounding box [x0, y0, x1, y1] (the registry's boxOf, whose names are lon and lat). */
export function bbox(poly: readonly Pt[]): [number, number, number, number] {
  const b = boxOf(poly)
  return [b.minLon, b.minLat, b.maxLon, b.maxLat]
}

/** A uniformly random point inside a convex polygon: pick a fan triangle by area, then a point in it. */
export function randomPointIn(poly: readonly Pt[], rand: () => number): Pt {
  const o = poly[0] as Pt
  const areas: number[] = []
  let total = 0
  for (let i = 1; i + 1 < poly.length; i++) {
    const a = poly[i] as Pt
    const b = poly[i + 1] as Pt
    total += Math.abs((a[0] - o[0]) * (b[1] - o[1]) - (b[0] - o[0]) * (a[1] - o[1])) / 2
    areas.push(total)
  }
  const r = rand() * total
  let k = areas.findIndex((c) => c >= r)
  if (k < 0) k = areas.length - 1
  const a = poly[k + 1] as Pt
  const b = poly[k + 2] as Pt
  let u = rand()
  let v = rand()
  if (u + v > 1) { u = 1 - u; v = 1 - v }
  return [o[0] + u * (a[0] - o[0]) + v * (b[0] - o[0]), o[1] + u * (a[1] - o[1]) + v * (b[1] - o[1])]
}

/** Regular n-gon around a centre, counter-clockwise. */
export function regularPolygon(c: Pt, radius: number, n: number, rotation = 0): Pt[] {
  const out: Pt[] = []
  for (let i = 0; i < n; i++) {
    const t = rotation + (2 * Math.PI * i) / n
    out.push([c[0] + radius * Math.cos(t), c[1] + radius * Math.sin(t)])
  }
  return out
}
