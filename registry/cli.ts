// `citytwin city import|export|stats`: a city's own grids, devices and
// cameras in and out of the store, in open formats (docs/city-import.md).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import type { Command } from '../lib/command.ts'
import { UsageError, numberOption } from '../lib/command.ts'
import { CitytwinError, messageOf } from '../lib/errors.ts'
import { logger } from '../lib/log.ts'
import { withStore } from '../store/index.ts'
import { readCity, readCityFigures, writeCity } from './city-store.ts'
import { cityToFiles } from './export.ts'
import { importCity, type CityFile } from './import.ts'

const log = logger('city')

function readCityFile(path: string): CityFile {
  try {
    return { name: path, text: readFileSync(path, 'utf8') }
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${messageOf(e)}`)
  }
}

export const registryCommands: Command[] = [
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
