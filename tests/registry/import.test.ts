// A city's own data in (issue 15): the shipped sample city imports whole, a
// point lands in the right grid at every level, each class of bad input is
// refused with its file and line, the synthetic city makes the trip out and
// back unchanged.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { City, Grid, GridLevel } from '../../registry/city.ts'
import { cityToFiles } from '../../registry/export.ts'
import { parseCsv } from '../../registry/formats/csv.ts'
import { featureLines } from '../../registry/formats/geojson.ts'
import { insideRing } from '../../registry/geometry.ts'
import { importCity, type CityFile, type ImportResult } from '../../registry/import.ts'
import { generateCity } from '../../simulators/city/generate.ts'
import { REPO } from '../helpers.ts'

const SAMPLE = join(REPO, 'registry', 'sample-city')
const sample = (name: string): string => readFileSync(join(SAMPLE, name), 'utf8')
const GRIDS = sample('grids.geojson')
const DEVICES = sample('devices.csv')
const CAMERAS = sample('cameras.csv')

function run(files: { grids?: string; devices?: string; cameras?: string } = {}): ImportResult {
  const f = (name: string, text: string): CityFile => ({ name, text })
  return importCity({ grids: f('grids.geojson', files.grids ?? GRIDS), devices: f('devices.csv', files.devices ?? DEVICES), cameras: f('cameras.csv', files.cameras ?? CAMERAS) })
}

function city(files: Parameters<typeof run>[0] = {}): City {
  const r = run(files)
  if (!r.ok) throw new Error(`import failed: ${JSON.stringify(r.issues)}`)
  return r.city
}

/** The issues of an import expected to fail. */
function issues(files: Parameters<typeof run>[0]): { file: string; line: number; reason: string }[] {
  const r = run(files)
  if (r.ok) throw new Error('the import was expected to fail')
  return r.issues
}

/** The sample's text with line `n` (1-based) replaced by `f(line)`. */
function editLine(text: string, n: number, f: (line: string) => string): string {
  const lines = text.split('\n')
  lines[n - 1] = f(lines[n - 1] as string)
  return lines.join('\n')
}

/** The line of the grids file holding grid `id`. */
function lineOfGrid(id: number): number {
  return GRIDS.split('\n').findIndex((l) => l.includes(`"properties":{"id":${id},`)) + 1
}

describe('city import: the sample city', () => {
  it('imports whole, with every level and the hierarchy', () => {
    const c = city()
    const count = (l: GridLevel): number => c.grids.filter((g) => g.level === l).length
    expect({ district: count('district'), street: count('street'), community: count('community'), micro: count('micro'), special: count('special') })
      .toEqual({ district: 10, street: 10, community: 10, micro: 23, special: 2 })
    expect({ devices: c.devices.length, cameras: c.cameras.length }).toEqual({ devices: 113, cameras: 65 })
    const byId = new Map(c.grids.map((g) => [g.id, g]))
    for (const m of c.grids.filter((g) => g.level === 'micro')) {
      const community = byId.get(m.parentId) as Grid
      const street = byId.get(community.parentId) as Grid
      expect([community.level, street.level, byId.get(street.parentId)?.level]).toEqual(['community', 'street', 'district'])
      expect({ c: m.communityId, s: m.streetId, d: m.districtId }).toEqual({ c: community.id, s: street.id, d: street.parentId })
    }
    for (const s of c.grids.filter((g) => g.level === 'special')) expect(s.kind).not.toBe('')
  })

  it('locates a device given by its coordinates alone in the grid that holds it at every level', () => {
    const c = city()
    const micro = c.grids.find((g) => g.level === 'micro') as Grid
    const [lon, lat] = micro.centroid
    const added = `${DEVICES.trimEnd()}\nX-LOCATED,gas,${lon},${lat},,,\n`
    const device = city({ devices: added }).devices.find((d) => d.id === 'X-LOCATED')
    expect(device).toMatchObject({ microGridId: micro.id, communityId: micro.communityId, streetId: micro.streetId, districtId: micro.districtId, intervalS: 5, installedAt: 0 })
    // ... and each of those grids does hold the point.
    const byId = new Map(c.grids.map((g) => [g.id, g]))
    for (const id of [device?.microGridId, device?.communityId, device?.streetId, device?.districtId]) {
      expect(insideRing([lon, lat], (byId.get(id ?? 0) as Grid).ring), `grid ${id}`).toBe(true)
    }
  })

  it('places a device given by its micro-grid alone at the grid\'s centroid', () => {
    const micro = city().grids.find((g) => g.level === 'micro') as Grid
    const device = city({ devices: `${DEVICES.trimEnd()}\nX-GRID,smoke,,,${micro.id},,2024-03-01\n` }).devices.find((d) => d.id === 'X-GRID')
    expect(device).toMatchObject({ microGridId: micro.id, lon: micro.centroid[0], lat: micro.centroid[1], installedAt: Date.UTC(2024, 2, 1) })
  })
})

describe('city import: bad input, refused with its file and line', () => {
  const cases: { name: string; files: () => Parameters<typeof run>[0]; file: string; line: () => number; reason: RegExp }[] = [
    { name: 'grids that are not JSON', files: () => ({ grids: GRIDS.slice(0, 100) }), file: 'grids.geojson', line: () => 0, reason: /not JSON/ },
    { name: 'grids that are not a FeatureCollection', files: () => ({ grids: '{"type":"Feature"}' }), file: 'grids.geojson', line: () => 1, reason: /not a GeoJSON FeatureCollection/ },
    { name: 'a ring that is not closed', files: () => ({ grids: editLine(GRIDS, lineOfGrid(12), (l) => l.replace(/\[([\d.]+),([\d.]+)\]\]\]/, '[$1,34.5]]]')) }), file: 'grids.geojson', line: () => lineOfGrid(12), reason: /grid 12: the ring is not closed: its last position must repeat its first/ },
    { name: 'a parent that does not exist', files: () => ({ grids: editLine(GRIDS, lineOfGrid(12), (l) => l.replace(/"parent_id":\d+/, '"parent_id":99999')) }), file: 'grids.geojson', line: () => lineOfGrid(12), reason: /grid 12: parent 99999 is not in the file/ },
    { name: 'a parent of the wrong level', files: () => ({ grids: editLine(GRIDS, lineOfGrid(12), (l) => l.replace(/"parent_id":\d+/, '"parent_id":11')) }), file: 'grids.geojson', line: () => lineOfGrid(12), reason: /grid 12: its parent 11 is a street grid; a street grid's parent is a district/ },
    { name: 'a grid outside its parent', files: () => ({ grids: editLine(GRIDS, lineOfGrid(12), (l) => l.replace(/"parent_id":(\d+)/, (_m, p: string) => `"parent_id":${otherOfLevel(Number(p), 'district')}`)) }), file: 'grids.geojson', line: () => lineOfGrid(12), reason: /grid 12 is not inside its parent \d+: its corner .* km outside/ },
    { name: 'an id used twice', files: () => ({ grids: editLine(GRIDS, lineOfGrid(12), (l) => l.replace('"id":12,', '"id":3,')) }), file: 'grids.geojson', line: () => lineOfGrid(12), reason: /grid id 3 is also the id of the district grid on line 4/ },
    { name: 'an unknown level', files: () => ({ grids: editLine(GRIDS, lineOfGrid(12), (l) => l.replace(/"level":"\w+"/, '"level":"ward"')) }), file: 'grids.geojson', line: () => lineOfGrid(12), reason: /grid 12: level "ward", not one of district, street, community, micro, special/ },
    { name: 'a MultiPolygon', files: () => ({ grids: editLine(GRIDS, lineOfGrid(12), (l) => l.replace('"type":"Polygon"', '"type":"MultiPolygon"')) }), file: 'grids.geojson', line: () => lineOfGrid(12), reason: /grid 12: a MultiPolygon/ },
    { name: 'a devices file with an unknown column', files: () => ({ devices: editLine(DEVICES, 1, (l) => l.replace('installed_at', 'installed')) }), file: 'devices.csv', line: () => 1, reason: /unknown column installed; the columns are/ },
    { name: 'a devices file without a type column', files: () => ({ devices: DEVICES.replace(/^([^,\n]+),[^,\n]+/gm, '$1') }), file: 'devices.csv', line: () => 1, reason: /missing column type/ },
    { name: 'a row with a field too many', files: () => ({ devices: editLine(DEVICES, 5, (l) => `${l},x`) }), file: 'devices.csv', line: () => 5, reason: /8 fields; the header has 7/ },
    { name: 'a device id that cannot be an MQTT client id', files: () => ({ devices: editLine(DEVICES, 5, (l) => l.replace(/^[^,]+/, 'bad/id')) }), file: 'devices.csv', line: () => 5, reason: /id "bad\/id": 1 to 64 letters/ },
    { name: 'a device listed twice', files: () => ({ devices: editLine(DEVICES, 6, (l) => l.replace(/^[^,]+/, 'D0000004')) }), file: 'devices.csv', line: () => 6, reason: /device D0000004 is also on line 5/ },
    { name: 'an unknown device type', files: () => ({ devices: editLine(DEVICES, 5, (l) => l.replace(/^([^,]+),[^,]+/, '$1,toaster')) }), file: 'devices.csv', line: () => 5, reason: /type "toaster" is not a device type/ },
    { name: 'coordinates that are not numbers', files: () => ({ devices: editLine(DEVICES, 5, (l) => l.replace(/^([^,]+,[^,]+),[^,]+/, '$1,east')) }), file: 'devices.csv', line: () => 5, reason: /lon "east", lat .* not a longitude and latitude/ },
    { name: 'a device outside the city', files: () => ({ devices: editLine(DEVICES, 5, (l) => l.replace(/^([^,]+,[^,]+),[^,]+,[^,]+,[^,]*/, '$1,100,30,')) }), file: 'devices.csv', line: () => 5, reason: /\[100, 30\] lies in no micro-grid of the city/ },
    { name: 'a micro-grid that does not exist', files: () => ({ devices: editLine(DEVICES, 5, (l) => l.replace(/^([^,]+,[^,]+),[^,]+,[^,]+,[^,]*/, '$1,,,99999')) }), file: 'devices.csv', line: () => 5, reason: /micro_grid_id 99999: no micro-grid has that id/ },
    { name: 'a point far from the micro-grid given with it', files: () => ({ devices: editLine(DEVICES, 5, (l) => l.replace(/^([^,]+,[^,]+,[^,]+,[^,]+),[^,]*/, (_m, head: string) => `${head},${farMicro(head)}`)) }), file: 'devices.csv', line: () => 5, reason: /lies in micro-grid \d+, [\d.]+ km from micro_grid_id \d+/ },
    { name: 'a point outside the city given with a micro-grid', files: () => ({ devices: editLine(DEVICES, 5, (l) => l.replace(/^([^,]+,[^,]+),[^,]+,[^,]+/, '$1,10,10')) }), file: 'devices.csv', line: () => 5, reason: /\[10, 10\] lies in no micro-grid of the city, [\d.]+ km from micro_grid_id \d+/ },
    { name: 'an install time in epoch seconds', files: () => ({ devices: editLine(DEVICES, 5, (l) => l.replace(/,[^,]*$/, ',1709251200')) }), file: 'devices.csv', line: () => 5, reason: /installed_at 1709251200: epoch milliseconds have 13 digits/ },
    { name: 'an install date that does not exist', files: () => ({ devices: editLine(DEVICES, 5, (l) => l.replace(/,[^,]*$/, ',2024-02-30')) }), file: 'devices.csv', line: () => 5, reason: /installed_at "2024-02-30" is not a real date and time/ },
    { name: 'an interval that is not a whole number of seconds', files: () => ({ devices: editLine(DEVICES, 5, (l) => l.replace(/,\d+,([^,]*)$/, ',0.5,$1')) }), file: 'devices.csv', line: () => 5, reason: /interval_s "0.5": a whole number from 1 to 86400/ },
    { name: 'an install date that is not a date', files: () => ({ devices: editLine(DEVICES, 5, (l) => l.replace(/,[^,]*$/, ',last spring')) }), file: 'devices.csv', line: () => 5, reason: /installed_at "last spring": an ISO 8601 date/ },
    { name: 'an unclosed quote', files: () => ({ devices: editLine(DEVICES, 5, (l) => l.replace(/^[^,]+/, '"D9')) }), file: 'devices.csv', line: () => 5, reason: /a quoted field is not closed/ },
    { name: 'an unknown camera kind', files: () => ({ cameras: editLine(CAMERAS, 3, (l) => l.replace(/^([^,]+),[^,]+/, '$1,zoo')) }), file: 'cameras.csv', line: () => 3, reason: /kind "zoo", not one of road/ },
    { name: 'a camera URL that is not RTSP', files: () => ({ cameras: editLine(CAMERAS, 3, (l) => l.replace(/rtsp:\/\/[^,]+/, 'http://nvr/live')) }), file: 'cameras.csv', line: () => 3, reason: /rtsp_url "http:\/\/nvr\/live" is not an rtsp:\/\/ or rtsps:\/\/ URL/ },
    { name: 'a camera codec we do not sample', files: () => ({ cameras: editLine(CAMERAS, 3, (l) => l.replace(',h264,', ',mjpeg,')) }), file: 'cameras.csv', line: () => 3, reason: /codec "mjpeg", not h264 or h265/ },
    { name: 'a camera width of zero', files: () => ({ cameras: editLine(CAMERAS, 3, (l) => l.replace(/,h26(4|5),\d+,/, ',h26$1,0,')) }), file: 'cameras.csv', line: () => 3, reason: /width "0": a whole number from 1 to 16384/ },
  ]

  it.each(cases)('$name', (c) => {
    const found = issues(c.files())
    expect(found).toHaveLength(1)
    expect(found[0]).toMatchObject({ file: c.file, line: c.line() })
    expect(found[0]?.reason).toMatch(c.reason)
  })

  it('reads an install time without an offset as UTC, and one with an offset at its instant', () => {
    const added = `${DEVICES.trimEnd()}\nX-T1,gas,,,${city().grids.find((g) => g.level === 'micro')?.id},,2024-03-01T08:00\nX-T2,gas,,,${city().grids.find((g) => g.level === 'micro')?.id},,2024-03-01T16:00+08:00\n`
    const byId = new Map(city({ devices: added }).devices.map((d) => [d.id, d.installedAt]))
    expect([byId.get('X-T1'), byId.get('X-T2')]).toEqual([Date.UTC(2024, 2, 1, 8), Date.UTC(2024, 2, 1, 8)])
  })

  it('reports every bad row, not only the first, up to a limit', () => {
    let devices = DEVICES
    for (const n of [3, 7, 11]) devices = editLine(devices, n, (l) => l.replace(/^([^,]+),[^,]+/, '$1,toaster'))
    expect(issues({ devices }).map((i) => i.line)).toEqual([3, 7, 11])
    const r = importCity({ grids: { name: 'g', text: GRIDS }, devices: { name: 'd', text: devices } }, { maxIssues: 2 })
    expect(r.ok ? null : { shown: r.issues.length, more: r.more }).toEqual({ shown: 2, more: 1 })
  })
})

/** A grid id of `level` other than `id`, far from it (to put a grid under the wrong parent). */
function otherOfLevel(id: number, level: GridLevel): number {
  const grids = city().grids.filter((g) => g.level === level && g.id !== id)
  return (grids[grids.length - 1] as Grid).id
}

/** For a devices row's head (id,type,lon,lat), a micro-grid far from that point. */
function farMicro(head: string): number {
  const [, , lon, lat] = head.split(',').map(Number)
  const micros = city().grids.filter((g) => g.level === 'micro')
  micros.sort((a, b) => Math.hypot(b.centroid[0] - (lon ?? 0), b.centroid[1] - (lat ?? 0)) - Math.hypot(a.centroid[0] - (lon ?? 0), a.centroid[1] - (lat ?? 0)))
  return (micros[0] as Grid).id
}

describe('city export and import', () => {
  it('carry the synthetic city out and back unchanged', () => {
    const generated = generateCity({ seed: 3, scale: 0.002 })
    const files = cityToFiles(generated)
    const back = city({ grids: files.grids, devices: files.devices, cameras: files.cameras })
    const shape = (g: Grid): unknown => ({ id: g.id, level: g.level, code: g.code, name: g.name, parentId: g.parentId, districtId: g.districtId, streetId: g.streetId, communityId: g.communityId, kind: g.kind, ring: g.ring })
    expect(back.grids.map(shape)).toEqual(generated.grids.map(shape))
    expect(back.devices).toEqual(generated.devices)
    expect(back.cameras).toEqual(generated.cameras)
    // ... and the files written again are the same bytes.
    expect(cityToFiles(back)).toEqual(files)
  })

  it('reads CSV as RFC 4180 has it, and finds each feature\'s line', () => {
    const csv = parseCsv('\ufeffa,b\r\n"x, ""quoted""",2\n"two\nlines",3\n\n')
    expect(csv).toEqual({ ok: true, header: ['a', 'b'], records: [{ line: 2, fields: ['x, "quoted"', '2'] }, { line: 3, fields: ['two\nlines', '3'] }] })
    expect(featureLines('{"type":"FeatureCollection","bbox":[1,2],\n"features":[\n{"a":"[{"},\n\n{"b":{"c":[{}]}}]}')).toEqual([3, 5])
    // Any element counts, so a stray null does not shift the lines of those after it.
    expect(featureLines('{"features":[\nnull,\n{},\n{"k":[1,2]}\n]}')).toEqual([2, 3, 4])
  })
})
