// The city index: where everything stands, fixed once the city is loaded.
//
// Grids by id and level, each device and camera by id, the grids each one
// counts in (its micro-grid, community, street, district, the special grids
// it stands in, and the city), and who is in which grid. Nothing here
// changes while elements flow: the live state (live-state.ts) and the grid
// roll-ups (grid-rollups.ts) change, and look up here where a change goes.
// A city changed by provisioning is a new index (the live twin rebuilds).
import { DEVICE_TYPE_BY_NAME, type DeviceType } from '../../registry/device-types.ts'
import type { GridLevel } from '../../registry/city.ts'
import { boxOf, insideRing } from '../../registry/geometry.ts'
import type { Place } from '../../registry/locate.ts'

export interface TwinGrid {
  id: number
  level: GridLevel
  code: string
  name: string
  parentId: number
  districtId: number
  streetId: number
  communityId: number
  kind: string
  centroid: readonly [number, number]
  ring: readonly (readonly [number, number])[]
}

/** Where a device or camera stands: its grids at every level and its position (the registry's record). */
export type Placed = Place

export interface TwinDevice extends Placed {
  id: string
  type: DeviceType
  intervalS: number
}

export interface TwinCamera extends Placed {
  id: string
  kind: string
}

export interface TwinCity {
  grids: readonly TwinGrid[]
  devices: readonly TwinDevice[]
  cameras: readonly TwinCamera[]
}

export type BBox = readonly [number, number, number, number]

/**
 * The rows of the grids each device and camera counts in, packed: device
 * i's are `deviceRows[deviceStart[i]]` to `deviceRows[deviceStart[i + 1] - 1]`,
 * the city's row last. Found once (the special grids by a ring test, the
 * costliest part of loading a city) on shared memory, so another thread's
 * index of the same city (the API's: twin/api/front) takes them as they are.
 * One array per device was 349,300 small objects at full city.
 */
export interface Placement {
  deviceRows: Int32Array
  deviceStart: Uint32Array
  cameraRows: Int32Array
  cameraStart: Uint32Array
}

/** Packs lists of rows into one shared array and their starts (Placement). */
function pack(lists: readonly (readonly number[])[]): { rows: Int32Array; start: Uint32Array } {
  const start = new Uint32Array(new SharedArrayBuffer(4 * (lists.length + 1)))
  let n = 0
  lists.forEach((l, i) => {
    start[i] = n
    n += l.length
  })
  start[lists.length] = n
  const rows = new Int32Array(new SharedArrayBuffer(4 * n))
  lists.forEach((l, i) => rows.set(l, start[i]))
  return { rows, start }
}

/** Whether a point lies in a [minLon, minLat, maxLon, maxLat] box. */
export const inBox = (lon: number, lat: number, b: BBox): boolean => lon >= b[0] && lon <= b[2] && lat >= b[1] && lat <= b[3]

/** Whether two boxes share any point. */
export const boxesOverlap = (a: BBox, b: BBox): boolean => a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3]

/** The bounding box of a ring, as the map's API gives boxes (the registry's boxOf). */
export function ringBounds(ring: readonly (readonly [number, number])[]): BBox {
  const b = boxOf(ring)
  return [b.minLon, b.minLat, b.maxLon, b.maxLat]
}

/** Ray casting; rings are closed (first point repeated). The registry's test, in the twin's argument order. */
export function pointInRing(lon: number, lat: number, ring: readonly (readonly [number, number])[]): boolean {
  return insideRing([lon, lat], ring)
}

/** The id of the whole city among grid ids (grid ids start at 1). */
export const CITY_ID = 0

/** Cell of the coarse index of special grids' boxes, in degrees (about 2 km). */
const SPECIAL_CELL = 0.02

export class CityIndex {
  readonly grids: readonly TwinGrid[]
  readonly devices: readonly TwinDevice[]
  readonly cameras: readonly TwinCamera[]
  /**
   * Every grid has a row (its place in `grids`); the city is the row after
   * the last grid. The roll-ups count per row.
   */
  readonly cityRow: number
  readonly #gridRow = new Map<number, number>()
  readonly #children = new Map<number, number[]>()
  readonly #deviceIndex = new Map<string, number>()
  readonly #cameraIndex = new Map<string, number>()
  /** Per device and camera: the rows of the grids it counts in, the city's last (Placement). */
  readonly #placement: Placement
  readonly #devicesByMicro = new Map<number, number[]>()
  readonly #camerasByMicro = new Map<number, number[]>()
  /** Members of each special grid (by location), listed once: finding them means a scan of every device. */
  readonly #devicesBySpecial = new Map<number, number[]>()
  readonly #camerasBySpecial = new Map<number, number[]>()
  /**
   * Each grid's member lists once found (#memberLists): a district's are
   * 3,400 micro-grids' lists, walked twice (devices, cameras) on every GET
   * /api/grids/{id} until kept. At most one entry per grid, the lists shared.
   */
  readonly #deviceListsOf = new Map<number, readonly (readonly number[])[]>()
  readonly #cameraListsOf = new Map<number, readonly (readonly number[])[]>()
  readonly #metrics: (readonly string[])[] = []
  readonly #intervalMs: Float64Array
  /** Where each device's metrics start among all devices' value slots; one more entry closes the last. */
  readonly valueOffsets: Uint32Array

  /** With `placement` (another index's of the same city), the devices and cameras are not placed again. */
  constructor(city: TwinCity, placement?: Placement) {
    this.grids = city.grids
    this.devices = city.devices
    this.cameras = city.cameras
    city.grids.forEach((g, i) => {
      this.#gridRow.set(g.id, i)
      if (g.level !== 'special' && g.parentId !== 0) {
        const list = this.#children.get(g.parentId) ?? []
        list.push(g.id)
        this.#children.set(g.parentId, list)
      }
    })
    this.cityRow = city.grids.length
    this.#children.set(CITY_ID, city.grids.filter((g) => g.level === 'district').map((g) => g.id))

    const rowsOf = placement ? undefined : this.#placer()
    const deviceLists: number[][] = []
    const cameraLists: number[][] = []
    const n = city.devices.length
    this.#intervalMs = new Float64Array(n)
    this.valueOffsets = new Uint32Array(n + 1)
    let offset = 0
    city.devices.forEach((d, i) => {
      this.#deviceIndex.set(d.id, i)
      this.#intervalMs[i] = d.intervalS * 1000
      const metrics = DEVICE_TYPE_BY_NAME.get(d.type)?.metrics.map((m) => m.name) ?? []
      this.#metrics.push(metrics)
      this.valueOffsets[i] = offset
      offset += metrics.length
      if (rowsOf) deviceLists.push(rowsOf(d))
      pushTo(this.#devicesByMicro, d.microGridId, i)
    })
    this.valueOffsets[n] = offset
    city.cameras.forEach((cam, i) => {
      this.#cameraIndex.set(cam.id, i)
      if (rowsOf) cameraLists.push(rowsOf(cam))
      pushTo(this.#camerasByMicro, cam.microGridId, i)
    })
    if (placement) {
      if (placement.deviceStart.length !== n + 1 || placement.cameraStart.length !== city.cameras.length + 1) {
        throw new RangeError(`a placement of ${placement.deviceStart.length - 1} devices and ${placement.cameraStart.length - 1} cameras does not fit a city of ${n} and ${city.cameras.length}`)
      }
      this.#placement = placement
    } else {
      const d = pack(deviceLists)
      const c = pack(cameraLists)
      this.#placement = { deviceRows: d.rows, deviceStart: d.start, cameraRows: c.rows, cameraStart: c.start }
    }
    this.#listSpecials(this.#devicesByMicro, (i) => this.deviceRows(i), this.#devicesBySpecial)
    this.#listSpecials(this.#camerasByMicro, (i) => this.cameraRows(i), this.#camerasBySpecial)
  }

  /** Where each device and camera counts (Placement), for another thread's index of this city. */
  get placement(): Placement {
    return this.#placement
  }

  /** Each special grid's members, in the order of the micro-grids' lists (the order devicesIn gives). */
  #listSpecials(byMicro: Map<number, number[]>, rows: (i: number) => Int32Array | undefined, bySpecial: Map<number, number[]>): void {
    for (const members of byMicro.values()) {
      for (const i of members) {
        for (const r of rows(i) ?? []) {
          const g = this.grids[r]
          if (g?.level === 'special') pushTo(bySpecial, g.id, i)
        }
      }
    }
  }

  /**
   * The rows a point counts in. Special grids are found through a coarse
   * cell index of their bounding boxes, then the ring test.
   */
  #placer(): (p: Placed) => number[] {
    const cellKey = (lon: number, lat: number): number => Math.floor(lon / SPECIAL_CELL) * 100_000 + Math.floor(lat / SPECIAL_CELL)
    const cells = new Map<number, { g: TwinGrid; box: BBox }[]>()
    for (const g of this.grids) {
      if (g.level !== 'special') continue
      const box = ringBounds(g.ring)
      const [w, s, e, n] = box
      for (let x = Math.floor(w / SPECIAL_CELL); x <= Math.floor(e / SPECIAL_CELL); x++) {
        for (let y = Math.floor(s / SPECIAL_CELL); y <= Math.floor(n / SPECIAL_CELL); y++) pushTo(cells, x * 100_000 + y, { g, box })
      }
    }
    return (p) => {
      // The box first: a cell holds tens of special grids, and the ring test of each was most of a
      // full city's load (3.4 of 7.4 s for 349,300 devices and cameras).
      const specials = (cells.get(cellKey(p.lon, p.lat)) ?? []).filter(({ g, box }) => inBox(p.lon, p.lat, box) && pointInRing(p.lon, p.lat, g.ring)).map(({ g }) => g)
      const rows = [p.microGridId, p.communityId, p.streetId, p.districtId, ...specials.map((g) => g.id)]
        .map((id) => this.#gridRow.get(id))
        .filter((r): r is number => r !== undefined)
      rows.push(this.cityRow)
      return [...new Set(rows)]
    }
  }

  /** How many rows the roll-ups need: every grid and the city. */
  get rows(): number {
    return this.cityRow + 1
  }

  deviceIndex(id: string): number | undefined {
    return this.#deviceIndex.get(id)
  }

  cameraIndex(id: string): number | undefined {
    return this.#cameraIndex.get(id)
  }

  hasGrid(id: number): boolean {
    return id === CITY_ID || this.#gridRow.has(id)
  }

  grid(id: number): TwinGrid | undefined {
    const r = this.#gridRow.get(id)
    return r === undefined ? undefined : this.grids[r]
  }

  /** A grid's row (the city's for CITY_ID); undefined for an unknown id. */
  gridRow(id: number): number | undefined {
    return id === CITY_ID ? this.cityRow : this.#gridRow.get(id)
  }

  /** The grid id of a row (CITY_ID for the city's). */
  gridIdOfRow(row: number): number {
    return row === this.cityRow ? CITY_ID : (this.grids[row]?.id ?? -1)
  }

  /** The rows a device's state counts in (a view over the packed rows, not a copy). */
  deviceRows(i: number): Int32Array | undefined {
    const p = this.#placement
    return i >= 0 && i < this.devices.length ? p.deviceRows.subarray(p.deviceStart[i], p.deviceStart[i + 1]) : undefined
  }

  /** The rows a camera's state counts in (a view, not a copy). */
  cameraRows(i: number): Int32Array | undefined {
    const p = this.#placement
    return i >= 0 && i < this.cameras.length ? p.cameraRows.subarray(p.cameraStart[i], p.cameraStart[i + 1]) : undefined
  }

  deviceMetrics(i: number): readonly string[] {
    return this.#metrics[i] ?? []
  }

  /** A device's reporting interval, in ms. */
  deviceIntervalMs(i: number): number {
    return this.#intervalMs[i] ?? 0
  }

  /** The special grids a device stands in. */
  deviceSpecials(i: number): number[] {
    return this.#specials(this.deviceRows(i))
  }

  /** The special grids a camera stands in. */
  cameraSpecials(i: number): number[] {
    return this.#specials(this.cameraRows(i))
  }

  #specials(rows: Int32Array | undefined): number[] {
    const out: number[] = []
    for (const r of rows ?? []) {
      const g = this.grids[r]
      if (g?.level === 'special') out.push(g.id)
    }
    return out
  }

  /** Child grid ids (districts for the city; specials have none). */
  children(id: number): readonly number[] {
    return this.#children.get(id) ?? []
  }

  /** Device indexes in a grid at any level (specials by location), in a stable order. */
  devicesIn(id: number): number[] {
    return this.#memberLists(id, this.#devicesByMicro, this.#devicesBySpecial, this.#deviceListsOf).flat()
  }

  camerasIn(id: number): number[] {
    return this.#memberLists(id, this.#camerasByMicro, this.#camerasBySpecial, this.#cameraListsOf).flat()
  }

  /**
   * The first `limit` devices of devicesIn from `from`, and how many it has,
   * without listing them all: a district's page of one device was a list of
   * 16,000 made and dropped (16 ms) on every GET /api/grids/{id}.
   */
  devicesPage(id: number, from: number, limit: number): { items: number[]; total: number } {
    return slicePage(this.#memberLists(id, this.#devicesByMicro, this.#devicesBySpecial, this.#deviceListsOf), from, limit)
  }

  camerasPage(id: number, from: number, limit: number): { items: number[]; total: number } {
    return slicePage(this.#memberLists(id, this.#camerasByMicro, this.#camerasBySpecial, this.#cameraListsOf), from, limit)
  }

  /** The member lists that make up a grid: its micro-grids' (a special grid: its own), in a stable order; found once per grid. */
  #memberLists(id: number, byMicro: Map<number, number[]>, bySpecial: Map<number, number[]>, known: Map<number, readonly (readonly number[])[]>): readonly (readonly number[])[] {
    const had = known.get(id)
    if (had) return had
    const out: number[][] = []
    const walk = (gid: number): void => {
      const g = this.grid(gid)
      if (!g) return
      const own = g.level === 'micro' ? byMicro.get(gid) : g.level === 'special' ? bySpecial.get(gid) : undefined
      if (own) out.push(own)
      else if (g.level !== 'micro' && g.level !== 'special') for (const c of this.children(gid)) walk(c)
    }
    if (id === CITY_ID) out.push(...byMicro.values())
    else walk(id)
    // An unknown id is not kept: the map holds at most one entry per grid of the city.
    if (this.hasGrid(id)) known.set(id, out)
    return out
  }

  /** A grid's row and those of the grids above it, up to the city. */
  gridChain(id: number): Int32Array {
    const rows: number[] = []
    let g = this.grid(id)
    while (g) {
      const r = this.#gridRow.get(g.id)
      if (r !== undefined) rows.push(r)
      g = g.level === 'special' || g.parentId === 0 ? undefined : this.grid(g.parentId)
    }
    rows.push(this.cityRow)
    return Int32Array.from(rows)
  }

  stats(): { grids: number; devices: number; cameras: number } {
    return { grids: this.grids.length, devices: this.devices.length, cameras: this.cameras.length }
  }
}

function pushTo<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k)
  if (list) list.push(v)
  else m.set(k, [v])
}

/** Items `from` to `from + limit` of lists taken end to end, and their total. */
function slicePage(lists: readonly (readonly number[])[], from: number, limit: number): { items: number[]; total: number } {
  const items: number[] = []
  let total = 0
  for (const list of lists) {
    for (let k = Math.max(0, from - total); k < list.length && items.length < limit; k++) items.push(list[k] ?? 0)
    total += list.length
  }
  return { items, total }
}
