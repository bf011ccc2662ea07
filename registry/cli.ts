// `citytwin city import|export|stats`: a city's own grids, devices and
// cameras in and out of the store, in open formats (docs/city-import.md).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import type { Command } from '../lib/command.ts'
import { cliActor, UsageError, numberOption } from '../lib/command.ts'
import { CitytwinError, messageOf } from '../lib/errors.ts'
import { logger } from '../lib/log.ts'
import { withStore } from '../store/index.ts'
import { readCity, readCityFigures, refuseWhileCityHeld, writeCity } from './city-store.ts'
import { cityToFiles } from './export.ts'
import { importCity, type CityFile } from './import.ts'
import { Provisioner, type CameraChange, type CameraProvisionResult, type DeviceChange, type Location, type ProvisionResult, type Refusal } from './provision.ts'
import { CAMERA_KINDS, type StreamProfile } from './city.ts'

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
const REASON_OPTION = { reason: { type: 'string', description: 'why (kept with the change in the registry\'s log)', valueName: 'text' } } as const

function placeOf(values: Record<string, string | boolean | undefined>): Location {
  const lon = numberOption(values, 'lon')
  const lat = numberOption(values, 'lat')
  const micro = numberOption(values, 'micro-grid')
  if ((lon === undefined) !== (lat === undefined)) throw new UsageError('give --lon and --lat together')
  if (lon !== undefined && lat !== undefined) return { lon, lat, microGridId: micro }
  if (micro === undefined) throw new UsageError('give --lon and --lat, or --micro-grid')
  return { microGridId: micro }
}

type Values = Record<string, string | boolean | undefined>

/**
 * A provisioning command: one id, a change built from the options, applied
 * (`apply`, with who and why) and said in one line (`done`).
 */
function provisionCommand<C, R extends { ok: true }>(subject: 'devices' | 'cameras', verb: string, summary: string, options: Command['options'],
  build: (id: string, values: Values) => C, apply: (p: Provisioner, change: C, actor: string, reason: string) => Promise<R | Refusal>, done: (r: R) => string): Command {
  const one = subject === 'devices' ? 'device' : 'camera'
  return {
    name: `${subject} ${verb}`, summary, args: `<${one}Id>`, options: { ...options, ...REASON_OPTION },
    async run({ positionals, values, configFile, stdout }) {
      const id = positionals[0]
      if (!id || positionals.length > 1) throw new UsageError(`give one ${one} id, e.g. citytwin ${subject} ${verb} ${subject === 'devices' ? 'D0000001' : 'C000001'}`)
      const change = build(id, values)
      return withStore({ file: configFile }, async ({ store }) => {
        const r = await apply(new Provisioner({ client: store.client }), change, cliActor(), typeof values.reason === 'string' ? values.reason : '')
        if (!r.ok) throw new CitytwinError(r.code === 'DEVICE_NOT_FOUND' || r.code === 'CAMERA_NOT_FOUND' ? r.code : 'CLI_USAGE', r.message)
        stdout.write(`${done(r)}\n`)
      })
    },
  }
}

const deviceCommand = (verb: DeviceChange['op'], summary: string, options: Command['options'], build: (id: string, values: Values) => DeviceChange): Command =>
  provisionCommand('devices', verb, summary, options, build, (p, c, actor, why) => p.apply(c, actor, why), (r: Extract<ProvisionResult, { ok: true }>) => {
    const d = r.device
    const what = verb === 'decommission' ? 'decommissioned'
      : verb === 'rotate' ? `credentials rotated (version ${d.credentialVersion}; its token: citytwin device-token ${d.id})`
        : `${verb === 'add' ? 'added' : verb === 'move' ? 'moved' : 'updated'}: ${d.type}, micro-grid ${d.microGridId} (community ${d.communityId}), [${d.lon}, ${d.lat}], every ${d.intervalS} s`
    return `${d.id} ${what}; every gateway follows within mqtt.denyListRefreshMs`
  })

const cameraCommand = (verb: CameraChange['op'], summary: string, options: Command['options'], build: (id: string, values: Values) => CameraChange): Command =>
  provisionCommand('cameras', verb, summary, options, build, (p, c, actor, why) => p.applyCamera(c, actor, why), (r: Extract<CameraProvisionResult, { ok: true }>) => {
    const c = r.camera
    const what = verb === 'decommission' ? 'decommissioned'
      : `${verb === 'add' ? 'added' : verb === 'move' ? 'moved' : 'updated'}: ${c.kind}, micro-grid ${c.microGridId} (community ${c.communityId}), [${c.lon}, ${c.lat}], ${c.rtspUrl} (${c.profile.codec} ${c.profile.width}x${c.profile.height} ${c.profile.fps} fps)`
    return `${c.id} ${what}; the twin follows within twin.registryRefreshMs`
  })

/** The stream profile given by the options; only what is given. */
function profileOf(v: Values): Partial<StreamProfile> | undefined {
  const p: { -readonly [K in keyof StreamProfile]?: StreamProfile[K] } = {}
  if (typeof v.codec === 'string') {
    if (v.codec !== 'h264' && v.codec !== 'h265') throw new UsageError('--codec is h264 or h265')
    p.codec = v.codec
  }
  for (const [option, key] of [['width', 'width'], ['height', 'height'], ['fps', 'fps'], ['bitrate-kbps', 'bitrateKbps'], ['gop', 'gop']] as const) {
    const n = numberOption(v, option)
    if (n !== undefined) p[key] = n
  }
  return Object.keys(p).length > 0 ? p : undefined
}

const STREAM_OPTIONS = {
  'rtsp-url': { type: 'string', description: 'where its stream is pulled from (rtsp:// or rtsps://)', valueName: 'url' },
  codec: { type: 'string', description: 'h264 or h265 (default h264)', valueName: 'codec' },
  width: { type: 'string', description: 'frame width (default 1920)', valueName: 'px' },
  height: { type: 'string', description: 'frame height (default 1080)', valueName: 'px' },
  fps: { type: 'string', description: 'frames a second (default 25)', valueName: 'n' },
  'bitrate-kbps': { type: 'string', description: 'bit rate (default 4096)', valueName: 'kbps' },
  gop: { type: 'string', description: 'frames between key frames (default 50)', valueName: 'n' },
} as const

export const registryCommands: Command[] = [
  deviceCommand('add', 'Add a device to the registry while the system runs: every gateway lets it connect within mqtt.denyListRefreshMs',
    { type: { type: 'string', description: 'its device type (e.g. smoke)', valueName: 'type' }, ...PLACE_OPTIONS, 'interval-s': { type: 'string', description: 'how often it reports (default: its type\'s interval)', valueName: 's' } },
    (id, v) => {
      if (typeof v.type !== 'string') throw new UsageError('--type is needed')
      return { op: 'add', id, type: v.type, at: placeOf(v), intervalS: numberOption(v, 'interval-s') }
    }),
  deviceCommand('update', 'Change a device\'s type or reporting interval; its connection ends and it comes back as it is now',
    { type: { type: 'string', description: 'its new device type', valueName: 'type' }, 'interval-s': { type: 'string', description: 'how often it reports', valueName: 's' } },
    (id, v) => ({ op: 'update', id, type: typeof v.type === 'string' ? v.type : undefined, intervalS: numberOption(v, 'interval-s') })),
  deviceCommand('move', 'Move a device: its readings from then on belong to the grids of its new place', PLACE_OPTIONS, (id, v) => ({ op: 'move', id, at: placeOf(v) })),
  deviceCommand('decommission', 'Take a device out of the registry: its connections end and every gateway refuses it; its stored data stays', {}, (id) => ({ op: 'decommission', id })),
  deviceCommand('rotate', 'Rotate a device\'s credentials: its old token stops working and its connections end (citytwin device-token gives the new one)', {}, (id) => ({ op: 'rotate', id })),
  cameraCommand('add', 'Add a camera to the registry while the system runs: the twin shows it in its grids within twin.registryRefreshMs',
    { kind: { type: 'string', description: `its kind (${CAMERA_KINDS.join(', ')})`, valueName: 'kind' }, ...PLACE_OPTIONS, ...STREAM_OPTIONS },
    (id, v) => {
      if (typeof v.kind !== 'string') throw new UsageError('--kind is needed')
      if (typeof v['rtsp-url'] !== 'string') throw new UsageError('--rtsp-url is needed')
      return { op: 'add', id, kind: v.kind, at: placeOf(v), rtspUrl: v['rtsp-url'], profile: profileOf(v) }
    }),
  cameraCommand('update', 'Change a camera\'s kind, stream URL or stream profile',
    { kind: { type: 'string', description: 'its new kind', valueName: 'kind' }, ...STREAM_OPTIONS },
    (id, v) => ({ op: 'update', id, kind: typeof v.kind === 'string' ? v.kind : undefined, rtspUrl: typeof v['rtsp-url'] === 'string' ? v['rtsp-url'] : undefined, profile: profileOf(v) })),
  cameraCommand('move', 'Move a camera: from then on it counts in the grids of its new place', PLACE_OPTIONS, (id, v) => ({ op: 'move', id, at: placeOf(v) })),
  cameraCommand('decommission', 'Take a camera out of the registry: it leaves the map; its stored events stay', {}, (id) => ({ op: 'decommission', id })),
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
        refuseWhileCityHeld(store, 'import')
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
