// The synthetic city: a deterministic function of (seed, scale). Pure: no
// I/O, no clock. Districts, streets, community grids and micro-grids are
// nested Voronoi partitions (each level's cells clipped to its parent), so
// every child lies inside exactly one parent and a level has neither gaps nor
// overlaps. Special grids are an overlay of disjoint areas around places
// such as stations and campuses. Devices and cameras stand inside their
// micro-grid.
import { Delaunay } from 'd3-delaunay'
import { CAMERA_KINDS, CITY_FIGURES, type Camera, type CameraKind, type City, type Device, type Grid, type GridLevel, type LonLat, type StreamProfile } from '../../registry/city.ts'
import { DEVICE_TYPES } from '../../registry/device-types.ts'
import { area, bbox, ccw, centroid, clipConvex, insideConvex, randomPointIn, regularPolygon, type Pt } from './geometry.ts'
import { allocate, createRng, type Rng } from './random.ts'

/** Zhengzhou, Erqi Square area. */
export const CITY_CENTER: LonLat = [113.62, 34.75]
const KM_PER_DEG_LAT = 110.574
const KM_PER_DEG_LON = 111.32 * Math.cos((CITY_CENTER[1] * Math.PI) / 180)
/** Target urban area in km^2. */
const CITY_AREA_KM2 = 1000
/** Streets (街道) in the full city; at least one per district at any scale. */
const FULL_STREETS = 206

const DISTRICTS = [
  { code: '410102', name: '中原区' }, { code: '410103', name: '二七区' }, { code: '410104', name: '管城回族区' },
  { code: '410105', name: '金水区' }, { code: '410106', name: '上街区' }, { code: '410108', name: '惠济区' },
  { code: '410171', name: '郑东新区' }, { code: '410172', name: '高新区' }, { code: '410173', name: '经开区' },
  { code: '410174', name: '航空港区' },
] as const

const NAME_STEMS = ['经八', '纬五', '建设', '文化', '农业', '黄河', '金水', '嵩山', '桐柏', '伏牛', '陇海', '航海', '中原', '大学',
  '人民', '解放', '福华', '淮河', '长江', '京广', '紫荆', '绿城', '商都', '东风', '丰产', '杜岭', '北林', '未来', '郑汴', '花园',
  '南阳', '丰庆', '兴华', '须水', '石佛', '祭城', '龙湖', '如意', '博学', '明理', '康宁', '五龙', '秦岭', '华山', '工人', '互助']
const NAME_SUFFIXES = ['路', '街', '里', '苑', '园', '湖', '桥', '庄']

/** Named special grids placed at their real locations; the rest are drawn at random. */
const LANDMARKS: readonly { name: string; kind: string; at: LonLat; radiusKm: number }[] = [
  { name: '郑州站片区', kind: 'train_station', at: [113.658, 34.745], radiusKm: 0.8 },
  { name: '郑州东站片区', kind: 'train_station', at: [113.773, 34.757], radiusKm: 0.9 },
  { name: '二七广场商圈', kind: 'square', at: [113.667, 34.753], radiusKm: 0.6 },
  { name: '郑东新区CBD', kind: 'cbd', at: [113.725, 34.770], radiusKm: 1.0 },
  { name: '郑州大学主校区', kind: 'campus', at: [113.535, 34.817], radiusKm: 0.9 },
  { name: '紫荆山公园', kind: 'scenic_area', at: [113.676, 34.766], radiusKm: 0.5 },
  { name: '郑州动物园', kind: 'scenic_area', at: [113.682, 34.788], radiusKm: 0.5 },
]
const SPECIAL_KINDS = ['campus', 'hospital', 'market', 'scenic_area', 'transport_hub', 'industrial_park', 'stadium', 'school', 'construction_site', 'square'] as const
const SPECIAL_KIND_ZH: Record<string, string> = {
  train_station: '车站', square: '广场', cbd: '商务区', campus: '校园', scenic_area: '景区', hospital: '医院', market: '市场',
  transport_hub: '交通枢纽', industrial_park: '产业园', stadium: '体育场馆', school: '学校', construction_site: '工地',
}

export interface GenerateOptions {
  seed: number
  /** 1 = the full city (19,136 community grids...); 0.01 = the same proportions at one hundredth. */
  scale?: number
}

export function toLonLat([x, y]: readonly [number, number]): LonLat {
  return [round6(CITY_CENTER[0] + x / KM_PER_DEG_LON), round6(CITY_CENTER[1] + y / KM_PER_DEG_LAT)]
}

export function toKm([lon, lat]: LonLat): Pt {
  return [(lon - CITY_CENTER[0]) * KM_PER_DEG_LON, (lat - CITY_CENTER[1]) * KM_PER_DEG_LAT]
}

function round6(v: number): number {
  return Math.round(v * 1e6) / 1e6
}

/** Counts of each level and of the fleet for a scale; at scale 1 exactly the figures in DESIGN.md. */
export function cityCounts(scale: number): { districts: number; streets: number; community: number; micro: number; special: number; devices: number; cameras: number } {
  const community = Math.max(DISTRICTS.length, Math.round(CITY_FIGURES.community * scale))
  const devices = DEVICE_TYPES.reduce((s, t) => s + Math.max(1, Math.round(t.count * scale)), 0)
  return {
    districts: DISTRICTS.length,
    streets: Math.min(community, Math.max(DISTRICTS.length, Math.round(FULL_STREETS * scale))),
    community,
    micro: Math.max(community, Math.round(CITY_FIGURES.micro * scale)),
    special: Math.max(1, Math.round(CITY_FIGURES.special * scale)),
    devices,
    cameras: Math.max(1, Math.round(CITY_FIGURES.cameras * scale)),
  }
}

export function generateCity({ seed, scale = 1 }: GenerateOptions): City {
  if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`)
  if (!(scale > 0 && scale <= 1)) throw new RangeError(`scale must be in (0, 1], got ${scale}`)
  const rng = createRng(seed)
  const counts = cityCounts(scale)
  const outline = cityOutline(rng)
  const grids: Grid[] = []
  let nextId = 1
  const add = (g: Omit<Grid, 'id' | 'centroid' | 'areaKm2' | 'ring'> & { poly: Pt[] }): Grid => {
    const { poly, ...rest } = g
    const ring = poly.map(toLonLat)
    const first = ring[0]
    if (first) ring.push(first)
    const grid: Grid = { ...rest, id: nextId++, ring, centroid: toLonLat(centroid(poly)), areaKm2: Math.round(area(poly) * 1e6) / 1e6 }
    grids.push(grid)
    return grid
  }

  // Districts: Lloyd-relaxed Voronoi cells of the outline.
  const districtPolys = partition(outline, DISTRICTS.length, rng, 3)
  const districts = districtPolys.map((poly, i) => {
    const d = DISTRICTS[i] ?? DISTRICTS[0]
    return add({ level: 'district', code: d.code, name: d.name, parentId: 0, districtId: 0, streetId: 0, communityId: 0, kind: '', poly })
  })
  const districtPolyOf = new Map(districts.map((d, i) => [d.id, districtPolys[i] as Pt[]]))

  // Streets, then communities, then micro-grids: each level partitions its parents.
  // Denser (smaller) cells toward the centre, as in a real city.
  const streetCounts = allocate(counts.streets, districts.map((d) => d.areaKm2 * densityWeight(districtPolyOf.get(d.id) ?? [])))
  const streets: { grid: Grid; poly: Pt[] }[] = []
  districts.forEach((d, i) => {
    partition(districtPolyOf.get(d.id) ?? [], streetCounts[i] ?? 1, rng, 1).forEach((poly, k) => {
      const name = `${rng.pick(NAME_STEMS)}${rng.pick(NAME_SUFFIXES)}街道`
      streets.push({ grid: add({ level: 'street', code: `${d.code}-${pad(k + 1, 3)}`, name, parentId: d.id, districtId: d.id, streetId: 0, communityId: 0, kind: '', poly }), poly })
    })
  })
  streets.forEach((s) => Object.assign(s.grid, { streetId: s.grid.id }))

  const communityCounts = allocate(counts.community, streets.map((s) => s.grid.areaKm2 * densityWeight(s.poly)))
  const communities: { grid: Grid; poly: Pt[] }[] = []
  streets.forEach((s, i) => {
    partition(s.poly, communityCounts[i] ?? 1, rng, 1).forEach((poly, k) => {
      const name = `${rng.pick(NAME_STEMS)}${rng.pick(NAME_SUFFIXES)}社区`
      const grid = add({ level: 'community', code: `${s.grid.code}-${pad(k + 1, 3)}`, name, parentId: s.grid.id, districtId: s.grid.districtId, streetId: s.grid.id, communityId: 0, kind: '', poly })
      Object.assign(grid, { communityId: grid.id })
      communities.push({ grid, poly })
    })
  })

  // Micro-grids: 2-3 per community at full scale (46,818 / 19,136).
  const microCounts = allocate(counts.micro, communities.map(() => 1))
  const micros: { grid: Grid; poly: Pt[] }[] = []
  communities.forEach((c, i) => {
    partition(c.poly, microCounts[i] ?? 1, rng, 1).forEach((poly, k) => {
      micros.push({
        grid: add({ level: 'micro', code: `${c.grid.code}-${k + 1}`, name: `${c.grid.name}第${k + 1}微网格`, parentId: c.grid.id, districtId: c.grid.districtId, streetId: c.grid.streetId, communityId: c.grid.id, kind: '', poly }),
        poly,
      })
    })
  })

  specialGrids(outline, counts.special, rng).forEach((sp, k) =>
    add({ level: 'special', code: `SP-${pad(k + 1, 5)}`, name: sp.name, parentId: 0, districtId: districtOf(sp.poly, districts, districtPolyOf), streetId: 0, communityId: 0, kind: sp.kind, poly: sp.poly }),
  )

  const devices = placeDevices(micros, scale, rng)
  const cameras = placeCameras(micros, counts.cameras, rng)
  return { seed, scale, grids, devices, cameras }
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0')
}

/** A convex, slightly irregular outline of about CITY_AREA_KM2, centred on the origin. */
function cityOutline(rng: Rng): Pt[] {
  const n = 28
  const angles = Array.from({ length: n }, (_, i) => (2 * Math.PI * (i + rng.range(-0.3, 0.3))) / n).sort((a, b) => a - b)
  const rx = 1.15
  const ry = 0.87
  const poly = angles.map((t): Pt => [rx * Math.cos(t), ry * Math.sin(t)])
  const k = Math.sqrt(CITY_AREA_KM2 / area(poly))
  return ccw(poly.map(([x, y]): Pt => [x * k, y * k]))
}

/** Relative density of seeds: higher near the centre. */
function densityAt([x, y]: Pt): number {
  return 0.25 + Math.exp(-(x * x + y * y) / (2 * 9 * 9))
}

function densityWeight(poly: Pt[]): number {
  return poly.length > 0 ? densityAt(centroid(poly)) : 1
}

/**
 * Splits a convex polygon into `n` convex cells: Voronoi cells of `n` seeds
 * drawn inside it (denser toward the centre), each clipped to the polygon,
 * improved by `relax` rounds of Lloyd relaxation.
 */
function partition(parent: Pt[], n: number, rng: Rng, relax: number): Pt[][] {
  if (n <= 1) return [parent]
  const box = bbox(parent)
  const seeds: Pt[] = []
  let guard = 0
  while (seeds.length < n) {
    if (++guard > n * 10_000) throw new Error(`could not place ${n} seeds in a polygon of area ${area(parent)}`)
    const p: Pt = [rng.range(box[0], box[2]), rng.range(box[1], box[3])]
    if (!insideConvex(p, parent)) continue
    if (rng.next() > densityAt(p) / 1.25) continue
    seeds.push(p)
  }
  let cells = voronoiCells(seeds, parent, box)
  for (let r = 0; r < relax; r++) {
    const moved = cells.map((c, i) => (c.length >= 3 ? centroid(c) : (seeds[i] as Pt)))
    cells = voronoiCells(moved, parent, box)
  }
  return cells.map((c, i) => (c.length >= 3 && area(c) > 0 ? c : repairEmpty(seeds[i] as Pt, parent)))
}

function voronoiCells(seeds: Pt[], parent: Pt[], box: [number, number, number, number]): Pt[][] {
  const pad = 1e-3
  const voronoi = Delaunay.from(seeds).voronoi([box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad])
  return seeds.map((_, i) => {
    const cell = voronoi.cellPolygon(i) as Pt[] | null
    if (!cell) return []
    const open = cell.slice(0, -1) // d3 closes the ring
    return clipConvex(ccw(open), parent)
  })
}

// A degenerate cell can only come from two seeds landing on the same point,
// which the sampler makes vanishingly rare; fail loudly rather than emit a
// grid with no area.
function repairEmpty(seed: Pt, parent: Pt[]): Pt[] {
  throw new Error(`empty Voronoi cell for seed ${seed.join(',')} in a parent of area ${area(parent)}`)
}

function specialGrids(outline: Pt[], n: number, rng: Rng): { name: string; kind: string; poly: Pt[] }[] {
  const box = bbox(outline)
  const sites: { at: Pt; name: string; kind: string; radiusKm: number }[] = []
  for (const l of LANDMARKS.slice(0, n)) sites.push({ at: toKm(l.at), name: l.name, kind: l.kind, radiusKm: l.radiusKm })
  const counters = new Map<string, number>()
  while (sites.length < n) {
    const p: Pt = [rng.range(box[0], box[2]), rng.range(box[1], box[3])]
    if (!insideConvex(p, outline) || rng.next() > densityAt(p) / 1.25) continue
    const kind = rng.pick(SPECIAL_KINDS)
    const k = (counters.get(kind) ?? 0) + 1
    counters.set(kind, k)
    sites.push({ at: p, name: `${rng.pick(NAME_STEMS)}${SPECIAL_KIND_ZH[kind] ?? kind}${k}号专属网格`, kind, radiusKm: rng.range(0.06, 0.22) })
  }
  // Voronoi cells of the sites do not overlap, so neither do their
  // intersections with a disc-like polygon around each site.
  const cells = voronoiCells(sites.map((s) => s.at), outline, box)
  return sites.map((s, i) => {
    const disc = regularPolygon(s.at, s.radiusKm, 10, rng.range(0, Math.PI))
    const poly = clipConvex(clipConvex(cells[i] ?? [], disc), outline)
    if (poly.length < 3 || area(poly) <= 0) throw new Error(`special grid ${s.name} has no area`)
    return { name: s.name, kind: s.kind, poly }
  })
}

function districtOf(poly: Pt[], districts: Grid[], polyOf: Map<number, Pt[]>): number {
  const c = centroid(poly)
  for (const d of districts) if (insideConvex(c, polyOf.get(d.id) ?? [])) return d.id
  return districts[0]?.id ?? 0
}

function placeDevices(micros: { grid: Grid; poly: Pt[] }[], scale: number, rng: Rng): Device[] {
  const devices: Device[] = []
  const epoch2020 = Date.UTC(2020, 0, 1)
  const span = Date.UTC(2026, 0, 1) - epoch2020
  for (const spec of DEVICE_TYPES) {
    const count = Math.max(1, Math.round(spec.count * scale))
    for (let i = 0; i < count; i++) {
      const m = rng.pick(micros)
      const [lon, lat] = toLonLat(randomPointIn(m.poly, rng.next))
      devices.push({
        id: `D${pad(devices.length + 1, 7)}`, type: spec.type,
        microGridId: m.grid.id, communityId: m.grid.communityId, streetId: m.grid.streetId, districtId: m.grid.districtId,
        lon, lat, intervalS: spec.intervalS, installedAt: epoch2020 + Math.floor(rng.next() * span / 1000) * 1000,
      })
    }
  }
  return devices
}

const CAMERA_KIND_SHARE: Record<CameraKind, number> = { road: 0.4, community: 0.3, public_space: 0.12, river: 0.06, market: 0.06, school: 0.06 }
const PROFILES: readonly { p: StreamProfile; share: number }[] = [
  { p: { codec: 'h264', width: 1920, height: 1080, fps: 25, bitrateKbps: 4096, gop: 50 }, share: 0.5 },
  { p: { codec: 'h265', width: 2560, height: 1440, fps: 25, bitrateKbps: 3072, gop: 50 }, share: 0.25 },
  { p: { codec: 'h264', width: 1280, height: 720, fps: 15, bitrateKbps: 1536, gop: 30 }, share: 0.2 },
  { p: { codec: 'h265', width: 3840, height: 2160, fps: 20, bitrateKbps: 8192, gop: 40 }, share: 0.05 },
]

function weighted<T>(items: readonly { v: T; w: number }[], r: number): T {
  let acc = 0
  for (const it of items) {
    acc += it.w
    if (r < acc) return it.v
  }
  const last = items[items.length - 1]
  if (!last) throw new RangeError('no items')
  return last.v
}

function placeCameras(micros: { grid: Grid; poly: Pt[] }[], count: number, rng: Rng): Camera[] {
  const kinds = CAMERA_KINDS.map((k) => ({ v: k, w: CAMERA_KIND_SHARE[k] }))
  const profiles = PROFILES.map((x) => ({ v: x.p, w: x.share }))
  const cameras: Camera[] = []
  for (let i = 0; i < count; i++) {
    const m = rng.pick(micros)
    const [lon, lat] = toLonLat(randomPointIn(m.poly, rng.next))
    const id = `C${pad(i + 1, 6)}`
    // Cameras are recorded through NVRs of 64 channels each, per district.
    const nvr = Math.floor(i / 64) + 1
    cameras.push({
      id, kind: weighted(kinds, rng.next()),
      microGridId: m.grid.id, communityId: m.grid.communityId, streetId: m.grid.streetId, districtId: m.grid.districtId,
      lon, lat, rtspUrl: `rtsp://nvr-${pad(nvr, 4)}.video.citytwin.internal:554/live/${id}`, profile: weighted(profiles, rng.next()),
    })
  }
  return cameras
}

export function countByLevel(grids: readonly Grid[]): Record<GridLevel, number> {
  const out: Record<GridLevel, number> = { district: 0, street: 0, community: 0, micro: 0, special: 0 }
  for (const g of grids) out[g.level]++
  return out
}
