// `citytwin city import|export|stats`: a city's own grids, devices and
// cameras in and out of the store, in open formats (docs/city-import.md).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import type { Command } from '../lib/command.ts'
import { cliActor, UsageError, numberOption } from '../lib/command.ts'
import { CitytwinError, messageOf } from '../lib/errors.ts'
import { logger } from '../lib/log.ts'
import { withStore } from '../store/index.ts'
import { readCity, readCityFigures, writeCity } from './city-store.ts'
import { cityToFiles } from './export.ts'
import { importCity, type CityFile } from './import.ts'
import { Provisioner, type DeviceChange, type Location } from './provision.ts'

const log = logger('city')

function readCityFile(path: string): CityFile {
  try {
    return { name: path, text: readFileSync(path, 'utf8') }
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${messageOf(e)}`)
  }
}

const PLACE_OPTIONS = {
  lon: { type: 'string', description: 'where it stands: longitude (with --lat); located in the micro-grid that holds it', valueName: 'deg' },
  lat: { type: 'string', description: 'latitude (with --lon)', valueName: 'deg' },
  'micro-grid': { type: 'string', description: 'or the micro-grid it stands in (then at its centroid)', valueName: 'id' },
} as const
const REASON_OPTION = { reason: { type: 'string', description: 'why (kept with the change in the device log)', valueName: 'text' } } as const

function placeOf(values: Record<string, string | boolean | undefined>): Location {
  const lon = numberOption(values, 'lon')
  const lat = numberOption(values, 'lat')
  const micro = numberOption(values, 'micro-grid')
  if ((lon === undefined) !== (lat === undefined)) throw new UsageError('give --lon and --lat together')
  if (lon !== undefined && lat !== undefined) return { lon, lat, microGridId: micro }
  if (micro === undefined) throw new UsageError('give --lon and --lat, or --micro-grid')
  return { microGridId: micro }
}

/** A provisioning command: one device id, a change built from the options, applied and printed. */
function provisionCommand(verb: DeviceChange['op'], summary: string, options: Command['options'], build: (id: string, values: Record<string, string | boolean | undefined>) => DeviceChange): Command {
  return {
    name: `devices ${verb}`, summary, args: '<deviceId>', options: { ...options, ...REASON_OPTION },
    async run({ positionals, values, configFile, stdout }) {
      const id = positionals[0]
      if (!id || positionals.length > 1) throw new UsageError(`give one device id, e.g. citytwin devices ${verb} D0000001`)
      const change = build(id, values)
      return withStore({ file: configFile }, async ({ store }) => {
        const r = await new Provisioner({ client: store.client }).apply(change, cliActor(), typeof values.reason === 'string' ? values.reason : '')
        if (!r.ok) throw new CitytwinError(r.code === 'BAD_REQUEST' ? 'CLI_USAGE' : r.code === 'DEVICE_EXISTS' ? 'CLI_USAGE' : 'DEVICE_NOT_FOUND', r.message)
        const d = r.device
        stdout.write(`${d.id} ${verb === 'decommission' ? 'decommissioned' : verb === 'rotate' ? `credentials rotated (version ${d.credentialVersion}; its token: citytwin device-token ${d.id})` : `${verb === 'add' ? 'added' : verb === 'move' ? 'moved' : 'updated'}: ${d.type}, micro-grid ${d.microGridId} (community ${d.communityId}), [${d.lon}, ${d.lat}], every ${d.intervalS} s`}; ` +
          'every gateway follows within mqtt.denyListRefreshMs\n')
      })
    },
  }
}

export const registryCommands: Command[] = [
  provisionCommand('add', 'Add a device to the registry while the system runs: every gateway lets it connect within mqtt.denyListRefreshMs',
    { type: { type: 'string', description: 'its device type (e.g. smoke)', valueName: 'type' }, ...PLACE_OPTIONS, 'interval-s': { type: 'string', description: 'how often it reports (default: its type\'s interval)', valueName: 's' } },
    (id, v) => {
      if (typeof v.type !== 'string') throw new UsageError('--type is needed')
      return { op: 'add', id, type: v.type, at: placeOf(v), intervalS: numberOption(v, 'interval-s') }
    }),
  provisionCommand('update', 'Change a device\'s type or reporting interval; its connection ends and it comes back as it is now',
    { type: { type: 'string', description: 'its new device type', valueName: 'type' }, 'interval-s': { type: 'string', description: 'how often it reports', valueName: 's' } },
    (id, v) => ({ op: 'update', id, type: typeof v.type === 'string' ? v.type : undefined, intervalS: numberOption(v, 'interval-s') })),
  provisionCommand('move', 'Move a device: its readings from then on belong to the grids of its new place', PLACE_OPTIONS, (id, v) => ({ op: 'move', id, at: placeOf(v) })),
  provisionCommand('decommission', 'Take a device out of the registry: its connections end and every gateway refuses it; its stored data stays', {}, (id) => ({ op: 'decommission', id })),
  provisionCommand('rotate', 'Rotate a device\'s credentials: its old token stops working and its connections end (citytwin device-token gives the new one)', {}, (id) => ({ op: 'rotate', id })),
  {
    name: 'city import',
    summary: 'Replace the city in the store with one of your own: grids from GeoJSON, devices and cameras from CSV, all checked before anything is written',
    options: {
      grids: { type: 'string', description: 'grids as a GeoJSON FeatureCollection (docs/city-import.md)', valueName: 'file' },
      devices: { type: 'string', description: 'devices as CSV: id, type, lon and lat or micro_grid_id, and optionally interval_s, installed_at', valueName: 'file' },
      cameras: { type: 'string', description: 'cameras as CSV: id, kind, rtsp_url, lon and lat or micro_grid_id, and the stream profile (default: no cameras)', valueName: 'file' },
      name: { type: 'string', description: 'what to call this city (default: the grids file\'s name)', valueName: 'name' },
      'tolerance-m': { type: 'string', description: 'how far a grid\'s corner may lie outside its parent, in metres (default 50)', valueName: 'm' },
      check: { type: 'boolean', description: 'only check the files; write nothing' },
    },
    async run({ values, configFile, stdout }) {
      if (typeof values.grids !== 'string' || typeof values.devices !== 'string') throw new UsageError('--grids and --devices are needed')
      const toleranceM = numberOption(values, 'tolerance-m') ?? 50
      if (!(toleranceM >= 0)) throw new UsageError('--tolerance-m must be 0 or more')
      const files = { grids: readCityFile(values.grids), devices: readCityFile(values.devices), cameras: typeof values.cameras === 'string' ? readCityFile(values.cameras) : undefined }
      const t0 = performance.now()
      const result = importCity(files, { toleranceKm: toleranceM / 1000 })
      if (!result.ok) {
        for (const i of result.issues) process.stderr.write(`${i.file}${i.line > 0 ? `:${i.line}` : ''}: ${i.reason}\n`)
        const total = result.issues.length + result.more
        throw new CitytwinError('CITY_IMPORT_INVALID', `${total} error${total === 1 ? '' : 's'} in the city files${result.more > 0 ? ` (the first ${result.issues.length} shown)` : ''}; nothing was imported`)
      }
      const { city } = result
      const levels = (l: string): number => city.grids.filter((g) => g.level === l).length
      const summary = `districts ${levels('district')}, streets ${levels('street')}, community grids ${levels('community')}, micro-grids ${levels('micro')}, special grids ${levels('special')}; devices ${city.devices.length}, cameras ${city.cameras.length}`
      if (values.check) {
        stdout.write(`the city files are sound: ${summary}\n`)
        return
      }
      const name = typeof values.name === 'string' && values.name.trim() !== '' ? values.name.trim() : basename(values.grids).replace(/\.(geo)?json$/i, '')
      return withStore({ file: configFile }, async ({ store, writerCfg }) => {
        if (store.mode === 'owner') {
          // Its twin, gateways and rules hold the city in memory and would go on with the old one.
          throw new CitytwinError('CITY_IN_USE', `citytwin is running on the store in ${store.dataDir}: stop it, import, then start it again`)
        }
        await writeCity(store.client, city, writerCfg, `import: ${name}`)
        log.info({ name, grids: city.grids.length, devices: city.devices.length, cameras: city.cameras.length, ms: Math.round(performance.now() - t0) }, 'city imported')
        stdout.write(`city "${name}" imported (${store.mode} store): ${summary}\n`)
      })
    },
  },
  {
    name: 'city export',
    summary: 'Write the city in the store as grids.geojson, devices.csv and cameras.csv, the formats city import reads',
    options: { out: { type: 'string', description: 'directory to write the three files into (made if missing)', valueName: 'dir' } },
    async run({ values, configFile, stdout }) {
      if (typeof values.out !== 'string') throw new UsageError('--out is needed')
      const out = values.out
      return withStore({ file: configFile }, async ({ store }) => {
        const city = await readCity(store.client)
        if (city.grids.length === 0) throw new UsageError('there is no city in the store to export: run citytwin city generate or city import first')
        const files = cityToFiles(city)
        mkdirSync(out, { recursive: true })
        for (const [name, text] of [['grids.geojson', files.grids], ['devices.csv', files.devices], ['cameras.csv', files.cameras]] as const) writeFileSync(join(out, name), text)
        stdout.write(`exported to ${out}: grids.geojson (${city.grids.length} grids), devices.csv (${city.devices.length}), cameras.csv (${city.cameras.length})\n`)
      })
    },
  },
  {
    name: 'city stats',
    summary: 'Print the figures of the city in the store (grids per level, devices per type, cameras)',
    options: { json: { type: 'boolean', description: 'print JSON' } },
    async run({ values, configFile, stdout }) {
      return withStore({ file: configFile }, async ({ store }) => {
        const f = await readCityFigures(store.client)
        if (values.json) {
          stdout.write(JSON.stringify(f, null, 2) + '\n')
          return
        }
        if (f.seed === null) {
          stdout.write('no city in the store yet: run `citytwin city generate --seed 1`, or import your own (`citytwin city import`)\n')
          return 1
        }
        stdout.write(`${f.source === '' ? `city seed ${f.seed}` : `city ${f.source}`}\n  grids: ${Object.entries(f.grids).map(([k, v]) => `${k} ${v}`).join(', ')}\n`)
        stdout.write(`  devices ${f.devices}: ${Object.entries(f.devicesByType).map(([k, v]) => `${k} ${v}`).join(', ')}\n  cameras ${f.cameras}\n`)
      })
    },
  },
]
