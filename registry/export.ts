// A city out, in the formats `citytwin city import` reads (docs/city-import.md):
// grids as GeoJSON, devices and cameras as CSV. Pure: the CLI reads the city
// from the store and writes the files (registry/cli.ts).
import type { City } from './city.ts'
import { csvLine } from './formats/csv.ts'
import { gridsToGeoJson } from './formats/geojson.ts'

export const DEVICE_COLUMNS = ['id', 'type', 'lon', 'lat', 'micro_grid_id', 'interval_s', 'installed_at'] as const
export const CAMERA_COLUMNS = ['id', 'kind', 'lon', 'lat', 'micro_grid_id', 'rtsp_url', 'codec', 'width', 'height', 'fps', 'bitrate_kbps', 'gop'] as const

/** An install time as the importer reads it back: the date alone at midnight UTC, else the full instant; '' when unknown. */
function isoOf(ms: number): string {
  if (ms <= 0) return ''
  const iso = new Date(ms).toISOString()
  return iso.endsWith('T00:00:00.000Z') ? iso.slice(0, 10) : iso
}

export function cityToFiles(city: City): { grids: string; devices: string; cameras: string } {
  const devices = [csvLine(DEVICE_COLUMNS), ...city.devices.map((d) => csvLine([d.id, d.type, d.lon, d.lat, d.microGridId, d.intervalS, isoOf(d.installedAt)]))]
  const cameras = [csvLine(CAMERA_COLUMNS), ...city.cameras.map((c) => csvLine([c.id, c.kind, c.lon, c.lat, c.microGridId, c.rtspUrl, c.profile.codec, c.profile.width, c.profile.height, c.profile.fps, c.profile.bitrateKbps, c.profile.gop]))]
  return { grids: gridsToGeoJson(city.grids), devices: devices.join('\n') + '\n', cameras: cameras.join('\n') + '\n' }
}
