// Writes the whole city's points for the GPU points page: every device and
// camera of generateCity({ seed, scale }) as binary attributes deck.gl can
// take without a per-object accessor, plus the district rings.
//
//   node --import tsx bench/gpu-points/make-data.ts [--seed 1] [--scale 1] [--out .gpu/data]
import { mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { generateCity } from '../../simulators/city/generate.ts'
import { DEVICE_TYPES } from '../../registry/device-types.ts'
import type { CityMeta } from './src/meta.ts'

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: '1' },
    scale: { type: 'string', default: '1' },
    out: { type: 'string', default: resolve(import.meta.dirname, '../../.gpu/data') },
  },
})

const city = generateCity({ seed: Number(values.seed), scale: Number(values.scale) })
const devices = city.devices.length
const cameras = city.cameras.length
const count = devices + cameras

// Devices first, then cameras: the page draws them as two layers over
// subarrays of the same buffers.
const positions = new Float32Array(count * 2)
const colors = new Uint8Array(count * 4)
const palette: ReadonlyMap<string, readonly [number, number, number]> = new Map(
  DEVICE_TYPES.map((t, i) => [t.type, hsl((i * 360) / DEVICE_TYPES.length)]),
)
let minLon = Infinity, minLat = Infinity, maxLon = -Infinity, maxLat = -Infinity
const put = (i: number, lon: number, lat: number, rgb: readonly [number, number, number]): void => {
  positions[2 * i] = lon
  positions[2 * i + 1] = lat
  colors.set([rgb[0], rgb[1], rgb[2], 220], 4 * i)
  minLon = Math.min(minLon, lon); maxLon = Math.max(maxLon, lon)
  minLat = Math.min(minLat, lat); maxLat = Math.max(maxLat, lat)
}
city.devices.forEach((d, i) => put(i, d.lon, d.lat, palette.get(d.type) ?? [200, 200, 200]))
city.cameras.forEach((c, i) => put(devices + i, c.lon, c.lat, [255, 255, 255]))

const districts = city.grids.filter((g) => g.level === 'district').map((g) => g.ring.map(([lon, lat]) => [lon, lat] as [number, number]))
const meta: CityMeta = { seed: city.seed, scale: city.scale, devices, cameras, bounds: [[minLon, minLat], [maxLon, maxLat]], districts }

mkdirSync(values.out, { recursive: true })
writeFileSync(join(values.out, 'positions.bin'), positions)
writeFileSync(join(values.out, 'colors.bin'), colors)
writeFileSync(join(values.out, 'meta.json'), JSON.stringify(meta))
console.log(`make-data: ${devices} devices + ${cameras} cameras = ${count} points, ${districts.length} districts -> ${values.out}`)

function hsl(h: number): [number, number, number] {
  // Saturation 0.8, lightness 0.55: distinct hues that read on a dark background.
  const s = 0.8, l = 0.55
  const k = (n: number): number => (n + h / 30) % 12
  const a = s * Math.min(l, 1 - l)
  const f = (n: number): number => Math.round(255 * (l - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)))))
  return [f(0), f(8), f(4)]
}
