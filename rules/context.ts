// The rules' view of the city, read from the live twin: where a device or
// camera stands, what is in a grid, and the operating mode in force. What
// the city model fixes (places, grid membership) is cached on first use.
import type { DeviceType } from '../registry/device-types.ts'
import { pointInRing, type Twin, type TwinGrid } from '../twin/state/twin.ts'
import type { AreaLevel, Mode, Place, RuleContext, SubjectInfo } from './kinds/types.ts'

export class TwinContext implements RuleContext {
  readonly utcOffsetMin: number
  readonly #twin: () => Twin
  readonly #mode: (districtId: number) => Mode
  #for: Twin | undefined
  #devices: (SubjectInfo | undefined)[] = []
  #cameras: (SubjectInfo | undefined)[] = []
  #counts = new Map<string, number>()
  #micro: { g: TwinGrid; box: readonly [number, number, number, number] }[] | undefined

  readonly #held: () => boolean

  /** `absenceHeld`: whether absence is not judged now (ingest degraded); default never. */
  constructor(twin: () => Twin, mode: (districtId: number) => Mode, utcOffsetMin: number, absenceHeld: () => boolean = () => false) {
    this.#twin = twin
    this.#mode = mode
    this.utcOffsetMin = utcOffsetMin
    this.#held = absenceHeld
  }

  absenceHeld(): boolean {
    return this.#held()
  }

  /** The twin, dropping the caches when it was rebuilt. */
  #current(): Twin {
    const t = this.#twin()
    if (t !== this.#for) {
      this.#for = t
      this.#devices = []
      this.#cameras = []
      this.#counts.clear()
      this.#micro = undefined
    }
    return t
  }

  device(id: string): SubjectInfo | undefined {
    const twin = this.#current()
    const i = twin.deviceIndex(id)
    if (i === undefined) return undefined
    let info = this.#devices[i]
    if (!info) {
      const d = twin.devices[i]
      if (!d) return undefined
      info = { ...placeOf(d), type: d.type, intervalS: d.intervalS, specialKinds: kindsOf(twin, twin.deviceSpecials(i)) }
      this.#devices[i] = info
    }
    return info
  }

  camera(id: string): SubjectInfo | undefined {
    const twin = this.#current()
    const i = twin.cameraIndex(id)
    if (i === undefined) return undefined
    let info = this.#cameras[i]
    if (!info) {
      const c = twin.cameras[i]
      if (!c) return undefined
      info = { ...placeOf(c), type: '', intervalS: 0, specialKinds: kindsOf(twin, twin.cameraSpecials(i)) }
      this.#cameras[i] = info
    }
    return info
  }

  devicesIn(_level: AreaLevel, gridId: number, types: readonly DeviceType[] = []): number {
    const twin = this.#current()
    const key = `${gridId}|${types.join(',')}`
    let n = this.#counts.get(key)
    if (n === undefined) {
      const members = twin.devicesIn(gridId)
      n = types.length === 0 ? members.length : members.filter((i) => types.includes(twin.devices[i]?.type as DeviceType)).length
      this.#counts.set(key, n)
    }
    return n
  }

  gridPlace(level: AreaLevel, gridId: number): Place | undefined {
    const g = this.#current().grid(gridId)
    if (!g) return undefined
    const own = (l: AreaLevel, id: number): number => (level === l ? g.id : id)
    return { microGridId: own('micro', 0), communityId: own('community', g.communityId), streetId: own('street', g.streetId), districtId: own('district', g.districtId), lon: g.centroid[0], lat: g.centroid[1] }
  }

  mode(districtId: number): Mode {
    return this.#mode(districtId)
  }

  /** The micro-grid a point stands in, as a place; undefined outside the city. */
  locate(lon: number, lat: number): Place | undefined {
    const twin = this.#current()
    if (!this.#micro) {
      this.#micro = twin.grids.filter((g) => g.level === 'micro').map((g) => {
        const xs = g.ring.map((p) => p[0])
        const ys = g.ring.map((p) => p[1])
        return { g, box: [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)] as const }
      })
    }
    for (const { g, box } of this.#micro) {
      if (lon < box[0] || lon > box[2] || lat < box[1] || lat > box[3] || !pointInRing(lon, lat, g.ring)) continue
      return { microGridId: g.id, communityId: g.communityId, streetId: g.streetId, districtId: g.districtId, lon, lat }
    }
    return undefined
  }
}

function placeOf(p: Place): Place {
  return { microGridId: p.microGridId, communityId: p.communityId, streetId: p.streetId, districtId: p.districtId, lon: p.lon, lat: p.lat }
}

const kindsOf = (twin: Twin, grids: readonly number[]): string[] => grids.map((g) => twin.grid(g)?.kind ?? '').filter((k) => k !== '')
