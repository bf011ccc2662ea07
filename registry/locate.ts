// Where a device or camera stands: its point located in the micro-grid that
// holds it, or the micro-grid it is given (then at its centroid), or both,
// which must agree within a tolerance. One rule for the import of a city
// and for a device provisioned while the system runs.
import type { Grid, LonLat, Ring } from './city.ts'
import { distanceToRingKm, RingIndex } from './geometry.ts'

/** A micro-grid with its ancestors' ids, as the city model has them. */
export type MicroGrid = Pick<Grid, 'id' | 'communityId' | 'streetId' | 'districtId'> & { ring: Ring; centroid: LonLat }

export interface Place { microGridId: number; communityId: number; streetId: number; districtId: number; lon: number; lat: number }

export class MicroGrids {
  readonly #byId: Map<number, MicroGrid>
  readonly #index: RingIndex<MicroGrid>

  constructor(micros: readonly MicroGrid[], readonly toleranceKm: number) {
    this.#byId = new Map(micros.map((m) => [m.id, m]))
    this.#index = new RingIndex(micros.map((m) => ({ ring: m.ring, item: m })))
  }

  /** The place of a point and/or a micro-grid id, or why there is none. */
  place(at: { lon?: number | undefined; lat?: number | undefined; microGridId?: number | undefined }): Place | string {
    const grid = at.microGridId === undefined ? undefined : this.#byId.get(at.microGridId)
    if (at.microGridId !== undefined && !grid) return `micro_grid_id ${at.microGridId}: no micro-grid has that id`
    if (at.lon === undefined || at.lat === undefined) {
      if (!grid) return 'neither lon/lat nor micro_grid_id: give where it stands'
      return placeOf(grid, grid.centroid[0], grid.centroid[1])
    }
    const { lon, lat } = at
    if (!Number.isFinite(lon) || !Number.isFinite(lat) || Math.abs(lon) > 180 || Math.abs(lat) > 90) return `[${lon}, ${lat}] is not a longitude and latitude in degrees`
    const found = this.#index.find([lon, lat])
    if (grid) {
      // Both given: the grid is the operator's word; the point must agree with it (a misplaced point is a
      // typo), within the tolerance, as a device on a boundary may be rounded to the grid next door.
      if (found?.id !== grid.id) {
        const km = distanceToRingKm([lon, lat], grid.ring)
        if (km > this.toleranceKm) return `[${lon}, ${lat}] lies in ${found ? `micro-grid ${found.id}` : 'no micro-grid of the city'}, ${km.toFixed(3)} km from micro_grid_id ${grid.id} (tolerance ${this.toleranceKm} km)`
      }
      return placeOf(grid, lon, lat)
    }
    if (!found) return `[${lon}, ${lat}] lies in no micro-grid of the city`
    return placeOf(found, lon, lat)
  }
}

const placeOf = (g: MicroGrid, lon: number, lat: number): Place => ({ microGridId: g.id, communityId: g.communityId, streetId: g.streetId, districtId: g.districtId, lon, lat })
