// The city model: what the synthetic city generator produces and the store
// holds in its `grids`, `devices` and `cameras` tables. Coordinates are
// WGS-84 [longitude, latitude].
import type { DeviceType } from './device-types.ts'

export type LonLat = readonly [number, number]
/** A closed ring: first point repeated as the last, counter-clockwise. */
export type Ring = readonly LonLat[]

export const GRID_LEVELS = ['district', 'street', 'community', 'micro', 'special'] as const
export type GridLevel = (typeof GRID_LEVELS)[number]

export interface Grid {
  /** Unique across all levels. */
  readonly id: number
  readonly level: GridLevel
  /** Administrative code, e.g. "410102-003-017" for a community grid. */
  readonly code: string
  readonly name: string
  /** The grid this one subdivides: district for a street, street for a community, community for a micro-grid; 0 for districts and special grids. */
  readonly parentId: number
  readonly districtId: number
  /** 0 above street level and for special grids. */
  readonly streetId: number
  /** Community grid of a micro-grid (itself for a community grid); 0 otherwise. */
  readonly communityId: number
  /** For special grids: what the overlay covers (station, CBD...); '' otherwise. */
  readonly kind: string
  readonly ring: Ring
  readonly centroid: LonLat
  readonly areaKm2: number
}

export interface Device {
  /** "D" + 7 digits, stable for a given seed. */
  readonly id: string
  readonly type: DeviceType
  /** The micro-grid the device stands in, and its ancestors. */
  readonly microGridId: number
  readonly communityId: number
  readonly streetId: number
  readonly districtId: number
  readonly lon: number
  readonly lat: number
  readonly intervalS: number
  readonly installedAt: number
}

export const CAMERA_KINDS = ['road', 'community', 'public_space', 'river', 'market', 'school'] as const
export type CameraKind = (typeof CAMERA_KINDS)[number]

export interface StreamProfile {
  readonly codec: 'h264' | 'h265'
  readonly width: number
  readonly height: number
  readonly fps: number
  readonly bitrateKbps: number
  /** Frames between keyframes (GOP length). */
  readonly gop: number
}

export interface Camera {
  /** "C" + 6 digits. */
  readonly id: string
  readonly kind: CameraKind
  readonly microGridId: number
  readonly communityId: number
  readonly streetId: number
  readonly districtId: number
  readonly lon: number
  readonly lat: number
  readonly rtspUrl: string
  readonly profile: StreamProfile
}

export interface City {
  readonly seed: number
  readonly scale: number
  readonly grids: readonly Grid[]
  readonly devices: readonly Device[]
  readonly cameras: readonly Camera[]
}

/** Full-scale figures (Zhengzhou, see DESIGN.md). */
export const CITY_FIGURES = {
  community: 19_136,
  micro: 46_818,
  special: 4_774,
  devices: 219_300,
  cameras: 130_000,
} as const
