// A city's own data in: grids from GeoJSON, devices and cameras from CSV,
// checked as a whole before anything is written. Pure: text in, a City or
// the list of what is wrong (file, line, reason) out; the CLI reads the
// files and writes the store (registry/cli.ts). The formats are in
// docs/city-import.md; `citytwin city export` writes them.
import { CAMERA_KINDS, GRID_LEVELS, type Camera, type CameraKind, type City, type Device, type Grid, type GridLevel, type LonLat, type Ring, type StreamProfile } from './city.ts'
import { DEVICE_TYPE_BY_NAME, type DeviceType } from './device-types.ts'
import { parseCsv } from './formats/csv.ts'
import { featureLines } from './formats/geojson.ts'
import { ringAreaCentroid, RingIndex, RingTester } from './geometry.ts'
import { MicroGrids, type Place } from './locate.ts'

export interface ImportIssue {
  file: string
  /** 1-based; 0 when the issue is about the whole file. */
  line: number
  reason: string
}

export interface CityFile {
  /** As the issues name it (the path given). */
  name: string
  text: string
}

export interface ImportOptions {
  /** How far (km) a grid's corner may lie outside its parent, for boundaries drawn at different precision. Default 0.05 (50 m). */
  toleranceKm?: number
  /** Issues reported at most; the rest are counted. Default 200. */
  maxIssues?: number
}

export type ImportResult = { ok: true; city: City } | { ok: false; issues: ImportIssue[]; more: number }

/** What a device's or camera's id may be: it is the MQTT client id and part of topics and URLs. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/

/** A grid's parent level, for the levels that have one. */
const PARENT_LEVEL: Partial<Record<GridLevel, GridLevel>> = { street: 'district', community: 'street', micro: 'community' }

/** A camera's stream profile where its data says nothing. */
export const DEFAULT_PROFILE: StreamProfile = { codec: 'h264', width: 1920, height: 1080, fps: 25, bitrateKbps: 4096, gop: 50 }

/** The largest value of each number of a stream profile (each is a whole number from 1). */
export const PROFILE_LIMITS = { width: 16_384, height: 16_384, fps: 240, bitrateKbps: 1_000_000, gop: 10_000 } as const

/** Why a camera's stream URL cannot be used, or undefined when it can: rtsp:// or rtsps:// with a host. */
export function rtspUrlProblem(url: string): string | undefined {
  const parsed = URL.canParse(url) ? new URL(url) : undefined
  return parsed && ['rtsp:', 'rtsps:'].includes(parsed.protocol) && parsed.hostname !== '' ? undefined : `rtsp_url ${JSON.stringify(url)} is not an rtsp:// or rtsps:// URL with a host`
}

/** Why a stream profile cannot be, or undefined when it can. */
export function profileProblem(p: StreamProfile): string | undefined {
  if (p.codec !== 'h264' && p.codec !== 'h265') return `codec ${JSON.stringify(p.codec)}, not h264 or h265`
  for (const [name, max] of Object.entries(PROFILE_LIMITS) as [keyof typeof PROFILE_LIMITS, number][]) {
    const v = p[name]
    if (!Number.isInteger(v) || v < 1 || v > max) return `${name} ${v}: a whole number from 1 to ${max}`
  }
  return undefined
}

class Issues {
  readonly list: ImportIssue[] = []
  more = 0
  constructor(readonly max: number) {}
  add(file: string, line: number, reason: string): void {
    if (this.list.length < this.max) this.list.push({ file, line, reason })
    else this.more++
  }
  get any(): boolean {
    return this.list.length > 0
  }
}

export function importCity(files: { grids: CityFile; devices: CityFile; cameras?: CityFile | undefined }, opts: ImportOptions = {}): ImportResult {
  const issues = new Issues(opts.maxIssues ?? 200)
  const grids = readGrids(files.grids, issues, opts.toleranceKm ?? 0.05)
  // Devices and cameras are located in the micro-grids: without sound grids there is nothing to check them against.
  if (grids === undefined || issues.any) return { ok: false, issues: issues.list, more: issues.more }
  const place = placer(grids, opts.toleranceKm ?? 0.05)
  const devices = readDevices(files.devices, place, issues)
  const cameras = files.cameras ? readCameras(files.cameras, place, issues) : []
  if (issues.any) return { ok: false, issues: issues.list, more: issues.more }
  return { ok: true, city: { seed: 0, scale: 1, grids, devices, cameras } }
}

// ---- grids ----------------------------------------------------------------

interface RawGrid {
  line: number
  id: number
  level: GridLevel
  name: string
  code: string
  parentId: number
  kind: string
  ring: Ring
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const isId = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 0xffffffff

function readRing(geometry: unknown): Ring | string {
  if (!isRecord(geometry)) return 'no geometry'
  if (geometry.type === 'MultiPolygon') return 'a MultiPolygon: a grid is one Polygon (split it into grids of its own)'
  if (geometry.type !== 'Polygon') return `geometry type ${JSON.stringify(geometry.type)}: a grid is a Polygon`
  const coords = geometry.coordinates
  if (!Array.isArray(coords) || coords.length === 0) return 'a Polygon without rings'
  if (coords.length > 1) return 'a Polygon with holes: grids have none (make the hole a grid of its own)'
  const outer: unknown = coords[0]
  if (!Array.isArray(outer)) return 'a ring that is not an array of positions'
  const ring: LonLat[] = []
  for (const p of outer as unknown[]) {
    if (!Array.isArray(p) || p.length < 2 || typeof p[0] !== 'number' || typeof p[1] !== 'number' || !Number.isFinite(p[0]) || !Number.isFinite(p[1])) {
      return `position ${ring.length + 1} of the ring is not [longitude, latitude]`
    }
    if (p[0] < -180 || p[0] > 180 || p[1] < -90 || p[1] > 90) return `position ${ring.length + 1} of the ring is off the globe: [${p[0]}, ${p[1]}]`
    ring.push([p[0], p[1]])
  }
  if (ring.length < 4) return `a ring of ${ring.length} positions: a closed ring needs at least 4 (the first repeated last)`
  const [first, last] = [ring[0] as LonLat, ring[ring.length - 1] as LonLat]
  if (first[0] !== last[0] || first[1] !== last[1]) return 'the ring is not closed: its last position must repeat its first'
  return ring
}

function readGrids(file: CityFile, issues: Issues, toleranceKm: number): Grid[] | undefined {
  let doc: unknown
  try {
    doc = JSON.parse(file.text.charCodeAt(0) === 0xfeff ? file.text.slice(1) : file.text)
  } catch (e) {
    issues.add(file.name, 0, `not JSON: ${e instanceof Error ? e.message : String(e)}`)
    return undefined
  }
  if (!isRecord(doc) || doc.type !== 'FeatureCollection' || !Array.isArray(doc.features)) {
    issues.add(file.name, 1, 'not a GeoJSON FeatureCollection with a "features" array')
    return undefined
  }
  const lines = featureLines(file.text)
  const raw: RawGrid[] = []
  const byId = new Map<number, RawGrid>()
  ;(doc.features as unknown[]).forEach((f, i) => {
    const line = lines[i] ?? 0
    const bad = (reason: string): void => issues.add(file.name, line, `feature ${i + 1}: ${reason}`)
    if (!isRecord(f) || f.type !== 'Feature') return bad('not a GeoJSON Feature')
    const p = f.properties
    if (!isRecord(p)) return bad('no properties')
    const id = p.id ?? f.id
    if (!isId(id)) return bad(`id ${JSON.stringify(id)}: a grid's id is a whole number from 1 to 4294967295, unique across levels`)
    const level = p.level
    if (typeof level !== 'string' || !(GRID_LEVELS as readonly string[]).includes(level)) return bad(`grid ${id}: level ${JSON.stringify(level)}, not one of ${GRID_LEVELS.join(', ')}`)
    if (typeof p.name !== 'string' || p.name.trim() === '' || p.name.length > 200) return bad(`grid ${id}: a name of 1 to 200 characters is needed`)
    if (p.code !== undefined && p.code !== null && typeof p.code !== 'string') return bad(`grid ${id}: code must be text`)
    if (p.kind !== undefined && p.kind !== null && typeof p.kind !== 'string') return bad(`grid ${id}: kind must be text`)
    const kind = typeof p.kind === 'string' ? p.kind : ''
    if (level === 'special' && kind.trim() === '') return bad(`grid ${id}: a special grid needs a kind (what it covers: station, CBD, ...)`)
    const parent = p.parent_id ?? null
    if (parent !== null && parent !== 0 && !isId(parent)) return bad(`grid ${id}: parent_id ${JSON.stringify(parent)} is not a grid id`)
    const ring = readRing(f.geometry)
    if (typeof ring === 'string') return bad(`grid ${id}: ${ring}`)
    const g: RawGrid = { line, id, level: level as GridLevel, name: p.name.trim(), code: typeof p.code === 'string' ? p.code : '', parentId: typeof parent === 'number' ? parent : 0, kind, ring }
    const twin = byId.get(id)
    if (twin) return bad(`grid id ${id} is also the id of the ${twin.level} grid on line ${twin.line}`)
    byId.set(id, g)
    raw.push(g)
  })
  if (issues.any) return undefined
  if (!raw.some((g) => g.level === 'district')) issues.add(file.name, 0, 'no district: a city needs at least one')
  if (!raw.some((g) => g.level === 'micro')) issues.add(file.name, 0, 'no micro-grid: devices and cameras stand in micro-grids')

  // The hierarchy: each level under the one above it, each grid inside its parent.
  const testers = new Map<number, RingTester>()
  for (const g of raw) {
    const wanted = PARENT_LEVEL[g.level]
    if (wanted === undefined) {
      if (g.parentId !== 0) issues.add(file.name, g.line, `grid ${g.id}: a ${g.level} grid has no parent (parent_id ${g.parentId} given)`)
      continue
    }
    const parent = byId.get(g.parentId)
    if (g.parentId === 0) issues.add(file.name, g.line, `grid ${g.id}: a ${g.level} grid needs the ${wanted} it belongs to as parent_id`)
    else if (!parent) issues.add(file.name, g.line, `grid ${g.id}: parent ${g.parentId} is not in the file`)
    else if (parent.level !== wanted) issues.add(file.name, g.line, `grid ${g.id}: its parent ${g.parentId} is a ${parent.level} grid; a ${g.level} grid's parent is a ${wanted}`)
    else {
      // A tester per parent: a real boundary has thousands of corners, and each child's corners are tested against it.
      let tester = testers.get(parent.id)
      if (!tester) testers.set(parent.id, (tester = new RingTester(parent.ring)))
      const t = tester
      const outside = g.ring.find((p) => !t.inside(p) && !t.near(p, toleranceKm))
      if (outside) {
        issues.add(file.name, g.line, `grid ${g.id} is not inside its parent ${parent.id}: its corner [${outside[0]}, ${outside[1]}] lies ${t.distanceKm(outside).toFixed(3)} km outside (tolerance ${toleranceKm} km)`)
      }
    }
  }
  if (issues.any) return undefined

  const districts = raw.filter((g) => g.level === 'district')
  const districtIndex = new RingIndex(districts.map((d) => ({ ring: d.ring, item: d.id })))
  const grids: Grid[] = []
  for (const g of raw) {
    const { areaKm2, centroid } = ringAreaCentroid(g.ring)
    // The ancestors' ids, as the generator and the twin have them: a street and a community grid name themselves too.
    let districtId = 0
    let streetId = 0
    let communityId = 0
    if (g.level === 'street') {
      districtId = g.parentId
      streetId = g.id
    } else if (g.level === 'community') {
      communityId = g.id
      streetId = g.parentId
      districtId = byId.get(streetId)?.parentId ?? 0
    } else if (g.level === 'micro') {
      communityId = g.parentId
      streetId = byId.get(communityId)?.parentId ?? 0
      districtId = byId.get(streetId)?.parentId ?? 0
    } else if (g.level === 'special') districtId = districtIndex.find(centroid) ?? 0
    grids.push({ id: g.id, level: g.level, code: g.code, name: g.name, parentId: g.parentId, districtId, streetId, communityId, kind: g.level === 'special' ? g.kind : '', ring: g.ring, centroid, areaKm2: Math.round(areaKm2 * 1e6) / 1e6 })
  }
  return grids
}

// ---- devices and cameras --------------------------------------------------

/** Where a row stands, from its lon, lat and micro_grid_id fields (registry/locate.ts); or why not. */
type Placer = (lonText: string | undefined, latText: string | undefined, gridText: string | undefined) => Place | string

function placer(grids: readonly Grid[], toleranceKm: number): Placer {
  const micros = new MicroGrids(grids.filter((g) => g.level === 'micro'), toleranceKm)
  return (lonText, latText, gridText) => {
    const hasPoint = (lonText ?? '') !== '' || (latText ?? '') !== ''
    const hasGrid = (gridText ?? '') !== ''
    const microGridId = hasGrid ? Number(gridText) : undefined
    if (microGridId !== undefined && !Number.isInteger(microGridId)) return `micro_grid_id ${gridText}: no micro-grid has that id`
    if (!hasPoint) return micros.place({ microGridId })
    const lon = Number(lonText)
    const lat = Number(latText)
    if (lonText === '' || latText === '' || !Number.isFinite(lon) || !Number.isFinite(lat)) {
      return `lon ${JSON.stringify(lonText ?? '')}, lat ${JSON.stringify(latText ?? '')}: not a longitude and latitude in degrees`
    }
    return micros.place({ lon, lat, microGridId })
  }
}

/** A CSV record: its line, and its fields by column (trimmed). */
interface Row { line: number; get: (c: string) => string | undefined }

/** The records of a CSV file as objects by column, each with its line; unknown or missing columns are the file's issues. */
function readTable(file: CityFile, columns: { required: readonly string[]; optional: readonly string[] }, issues: Issues): Row[] | undefined {
  const csv = parseCsv(file.text)
  if (!csv.ok) {
    issues.add(file.name, csv.line, csv.reason)
    return undefined
  }
  const known = new Set([...columns.required, ...columns.optional])
  const unknown = csv.header.filter((h) => !known.has(h))
  const missing = columns.required.filter((c) => !csv.header.includes(c))
  if (unknown.length > 0) issues.add(file.name, 1, `unknown column${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; the columns are ${[...known].join(', ')}`)
  if (missing.length > 0) issues.add(file.name, 1, `missing column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`)
  if (unknown.length > 0 || missing.length > 0) return undefined
  const at = new Map(csv.header.map((h, i) => [h, i]))
  const rows: Row[] = []
  for (const r of csv.records) {
    if (r.fields.length !== csv.header.length) {
      issues.add(file.name, r.line, `${r.fields.length} fields; the header has ${csv.header.length}`)
      continue
    }
    rows.push({ line: r.line, get: (c) => { const i = at.get(c); return i === undefined ? undefined : (r.fields[i] as string).trim() } })
  }
  return rows
}

/**
 * An install date: ISO 8601, a date (2024-03-01) or a date and time
 * (2024-03-01T08:00:00Z; without an offset it is UTC, whatever the
 * importing machine's zone), or epoch milliseconds (13 digits; epoch
 * seconds would land in 1970 and are refused). Empty is unknown (0). A
 * date that does not exist (2024-02-30) is refused, not rolled over.
 */
function parseInstalled(text: string | undefined): number | string {
  if (text === undefined || text === '') return 0
  if (/^\d+$/.test(text)) return text.length === 13 ? Number(text) : `installed_at ${text}: epoch milliseconds have 13 digits (epoch seconds are not taken: write the date)`
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.exec(text)
  if (!m) return `installed_at ${JSON.stringify(text)}: an ISO 8601 date (2024-03-01) or epoch milliseconds`
  const [, y, mo, d, h, mi, sec, frac, zone] = m
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h ?? 0), Number(mi ?? 0), Number(sec ?? 0), Math.round(Number(frac ?? 0) * 1000))
  const back = new Date(ms)
  if (back.getUTCFullYear() !== Number(y) || back.getUTCMonth() !== Number(mo) - 1 || back.getUTCDate() !== Number(d) || Number(h ?? 0) > 23 || Number(mi ?? 0) > 59 || Number(sec ?? 0) > 59) {
    return `installed_at ${JSON.stringify(text)} is not a real date and time`
  }
  if (zone === undefined || zone === 'Z') return ms
  const [, sign, zh, zm] = /^([+-])(\d{2}):?(\d{2})$/.exec(zone) ?? []
  return ms - (sign === '-' ? -1 : 1) * (Number(zh) * 60 + Number(zm)) * 60_000
}

function positiveInt(text: string | undefined, name: string, max: number): number | string | undefined {
  if (text === undefined || text === '') return undefined
  const n = Number(text)
  return Number.isInteger(n) && n >= 1 && n <= max ? n : `${name} ${JSON.stringify(text)}: a whole number from 1 to ${max}`
}

/** A row's id, checked and not seen before in its file; or why not. */
function idOf(r: Row, what: 'device' | 'camera', seen: Map<string, number>): string | { bad: string } {
  const id = r.get('id') ?? ''
  if (!ID_PATTERN.test(id)) return { bad: `id ${JSON.stringify(id)}: 1 to 64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit (it is the ${what}'s id in topics and URLs)` }
  const before = seen.get(id)
  if (before !== undefined) return { bad: `${what} ${id} is also on line ${before}` }
  seen.set(id, r.line)
  return id
}

function readDevices(file: CityFile, place: Placer, issues: Issues): Device[] {
  const rows = readTable(file, { required: ['id', 'type'], optional: ['lon', 'lat', 'micro_grid_id', 'interval_s', 'installed_at'] }, issues)
  if (!rows) return []
  const devices: Device[] = []
  const seen = new Map<string, number>()
  for (const r of rows) {
    const bad = (reason: string): void => issues.add(file.name, r.line, reason)
    const id = idOf(r, 'device', seen)
    if (typeof id !== 'string') { bad(id.bad); continue }
    const type = r.get('type') ?? ''
    const spec = DEVICE_TYPE_BY_NAME.get(type as DeviceType)
    if (!spec) { bad(`device ${id}: type ${JSON.stringify(type)} is not a device type (see registry/device-types.ts: ${[...DEVICE_TYPE_BY_NAME.keys()].join(', ')})`); continue }
    const where = place(r.get('lon'), r.get('lat'), r.get('micro_grid_id'))
    if (typeof where === 'string') { bad(`device ${id}: ${where}`); continue }
    const interval = positiveInt(r.get('interval_s'), 'interval_s', 86_400)
    if (typeof interval === 'string') { bad(`device ${id}: ${interval}`); continue }
    const installedAt = parseInstalled(r.get('installed_at'))
    if (typeof installedAt === 'string') { bad(`device ${id}: ${installedAt}`); continue }
    devices.push({ id, type: spec.type, ...where, intervalS: interval ?? spec.intervalS, installedAt })
  }
  return devices
}

function readCameras(file: CityFile, place: Placer, issues: Issues): Camera[] {
  const rows = readTable(file, { required: ['id', 'kind', 'rtsp_url'], optional: ['lon', 'lat', 'micro_grid_id', 'codec', 'width', 'height', 'fps', 'bitrate_kbps', 'gop'] }, issues)
  if (!rows) return []
  const cameras: Camera[] = []
  const seen = new Map<string, number>()
  for (const r of rows) {
    const bad = (reason: string): void => issues.add(file.name, r.line, reason)
    const id = idOf(r, 'camera', seen)
    if (typeof id !== 'string') { bad(id.bad); continue }
    const kind = r.get('kind') ?? ''
    if (!(CAMERA_KINDS as readonly string[]).includes(kind)) { bad(`camera ${id}: kind ${JSON.stringify(kind)}, not one of ${CAMERA_KINDS.join(', ')}`); continue }
    const url = r.get('rtsp_url') ?? ''
    const urlProblem = rtspUrlProblem(url)
    if (urlProblem) { bad(`camera ${id}: ${urlProblem}`); continue }
    const where = place(r.get('lon'), r.get('lat'), r.get('micro_grid_id'))
    if (typeof where === 'string') { bad(`camera ${id}: ${where}`); continue }
    const codec = r.get('codec') || DEFAULT_PROFILE.codec
    if (codec !== 'h264' && codec !== 'h265') { bad(`camera ${id}: codec ${JSON.stringify(codec)}, not h264 or h265`); continue }
    const L = PROFILE_LIMITS
    const numbers = { width: positiveInt(r.get('width'), 'width', L.width), height: positiveInt(r.get('height'), 'height', L.height), fps: positiveInt(r.get('fps'), 'fps', L.fps), bitrateKbps: positiveInt(r.get('bitrate_kbps'), 'bitrate_kbps', L.bitrateKbps), gop: positiveInt(r.get('gop'), 'gop', L.gop) }
    const wrong = Object.values(numbers).find((v) => typeof v === 'string')
    if (typeof wrong === 'string') { bad(`camera ${id}: ${wrong}`); continue }
    const n = numbers as Record<keyof typeof numbers, number | undefined>
    const profile: StreamProfile = { codec, width: n.width ?? DEFAULT_PROFILE.width, height: n.height ?? DEFAULT_PROFILE.height, fps: n.fps ?? DEFAULT_PROFILE.fps, bitrateKbps: n.bitrateKbps ?? DEFAULT_PROFILE.bitrateKbps, gop: n.gop ?? DEFAULT_PROFILE.gop }
    cameras.push({ id, kind: kind as CameraKind, ...where, rtspUrl: url, profile })
  }
  return cameras
}
