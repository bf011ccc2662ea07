import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { SEVERITIES } from '../../lib/bus/elements.ts'
import { CitytwinError } from '../../lib/errors.ts'
import { DEVICE_TYPES_LIST } from '../../registry/device-types.ts'
import { loadCatalogue, parseCatalogue, UNIT_SCOPES } from '../../rules/catalogue/catalogue.ts'
import { tempDir } from '../helpers.ts'

type Raw = { units: Record<string, unknown>[]; types: Record<string, unknown>[] }

const SHIPPED_TEXT = readFileSync(new URL('../../rules/catalogue/catalogue.json', import.meta.url), 'utf8')
const shippedRaw = (): Raw => JSON.parse(SHIPPED_TEXT) as Raw
const catalogue = loadCatalogue()

// The types the operations desk asked for by name.
const REQUIRED = [
  'waterlogging', 'manhole_cover_open', 'fire_lane_blocked', 'bin_overflow', 'streetlight_out', 'gas_leak',
  'smoke_alarm', 'dangerous_tree', 'elevator_entrapment', 'missing_guardrail_base', 'street_vending',
  'noise_nuisance', 'blocked_sewer', 'hydrant_low_pressure', 'air_quality_exceeded', 'device_offline',
  'power_outage', 'network_outage', 'camera_offline', 'camera_obstructed', 'road_pothole', 'illegal_parking',
  'construction_dust', 'construction_noise_night', 'illegal_advertising', 'littering', 'abandoned_vehicle',
  'broken_public_facility', 'dangerous_building', 'water_main_burst', 'road_icing', 'fallen_tree',
  'underpass_flooding', 'medical_emergency', 'traffic_accident', 'crowd_gathering', 'fire',
]

describe('shipped dispatch catalogue', () => {
  it('loads with at least 48 types and about 20 units at every scope', () => {
    expect(catalogue.types.length).toBeGreaterThanOrEqual(48)
    expect(catalogue.units.length).toBeGreaterThanOrEqual(20)
    expect(new Set(catalogue.units.map((u) => u.scope))).toEqual(new Set(UNIT_SCOPES))
    expect(catalogue.type('waterlogging')).toMatchObject({ nameZh: '道路积水', group: 'drainage', unit: 'drainage', severity: 'warning' })
    expect(catalogue.type('no_such_type')).toBeUndefined()
    expect(catalogue.unit('gas-company')).toMatchObject({ scope: 'city', nameZh: '燃气集团' })
    expect(catalogue.unit('no-such-unit')).toBeUndefined()
  })

  it('has every type asked for', () => {
    expect(REQUIRED.filter((code) => catalogue.type(code) === undefined)).toEqual([])
  })

  it('has a type for the alarm of every device type, raised by the sensor source', () => {
    for (const device of DEVICE_TYPES_LIST) {
      const types = catalogue.forDevice(device)
      expect(types.length, device).toBeGreaterThan(0)
      for (const t of types) expect(t.sources, t.code).toContain('sensor')
    }
    expect(catalogue.forDevice('gas').map((t) => t.code)).toEqual(['gas_leak'])
    expect(catalogue.forDevice('smoke').map((t) => t.code)).toEqual(['smoke_alarm'])
  })

  it('uses the bus severities and keeps short signing times for life-safety types only', () => {
    for (const t of catalogue.types) {
      expect(SEVERITIES, t.code).toContain(t.severity)
      expect(t.signMinutes, t.code).toBeLessThanOrEqual(t.resolveMinutes)
      if (t.severity !== 'critical' && t.linkage.length === 0) expect(t.signMinutes, t.code).toBe(5)
      if (t.linkage.length > 0) expect(t.signMinutes, t.code).toBeLessThanOrEqual(3)
    }
    expect(catalogue.type('gas_leak')).toMatchObject({ signMinutes: 2, resolveMinutes: 60 })
    expect(catalogue.type('streetlight_out')).toMatchObject({ signMinutes: 5, resolveMinutes: 2880 })
    expect(catalogue.type('bin_overflow')).toMatchObject({ signMinutes: 5, resolveMinutes: 240 })
  })

  it('links fire, gas, medical and police emergencies to 110/119/120', () => {
    const linkage = (code: string) => [...(catalogue.type(code)?.linkage ?? [])].sort()
    expect(linkage('fire')).toEqual(['119', '120'])
    expect(linkage('smoke_alarm')).toEqual(['119'])
    expect(linkage('gas_leak')).toEqual(['119'])
    expect(linkage('medical_emergency')).toEqual(['120'])
    expect(linkage('traffic_accident')).toEqual(['110', '120'])
    expect(linkage('underpass_flooding')).toEqual(['110', '119'])
    expect(linkage('crowd_gathering')).toEqual(['110'])
    expect(linkage('elevator_entrapment')).toEqual(['119'])
    expect(linkage('bin_overflow')).toEqual([])
    // Linkage is the exception: most tickets stay with the unit alone.
    expect(catalogue.types.filter((t) => t.linkage.length === 0).length).toBeGreaterThan(catalogue.types.length / 2)
  })
})

describe('routing', () => {
  const place = { districtId: 3, streetId: 27 }
  const named = { ...place, districtName: '金水区', streetName: '文化路街道' }

  it('sends city-scope types to the one city unit', () => {
    expect(catalogue.route('gas_leak', place)).toEqual({ unitId: 'gas-company', unitName: '燃气集团' })
    expect(catalogue.route('gas_leak', named)).toEqual({ unitId: 'gas-company', unitName: '燃气集团' })
    expect(catalogue.route('device_offline', place)?.unitId).toBe('iot-operations')
  })

  it('sends district-scope types to that unit of the ticket district', () => {
    expect(catalogue.route('waterlogging', place)).toEqual({ unitId: 'drainage@d3', unitName: '排水管理所（第3区）' })
    expect(catalogue.route('waterlogging', named)).toEqual({ unitId: 'drainage@d3', unitName: '排水管理所（金水区）' })
    expect(catalogue.route('illegal_parking', { districtId: 8, streetId: 90 })?.unitId).toBe('traffic-police@d8')
  })

  it('sends street-scope types to that unit of the ticket street', () => {
    expect(catalogue.route('crowd_gathering', place)).toEqual({ unitId: 'police-station@s27', unitName: '派出所（第27街道）' })
    expect(catalogue.route('crowd_gathering', named)).toEqual({ unitId: 'police-station@s27', unitName: '派出所（金水区文化路街道）' })
    expect(catalogue.route('fire_lane_blocked', place)?.unitId).toBe('street-office@s27')
  })

  it('routes every shipped type, and nothing for an unknown code', () => {
    for (const t of catalogue.types) expect(catalogue.route(t.code, place), t.code).toBeDefined()
    expect(catalogue.route('no_such_type', place)).toBeUndefined()
  })
})

describe('catalogue validation', () => {
  const dir = tempDir('citytwin-catalogue-')
  let n = 0

  function write(text: string): string {
    const file = join(dir, `catalogue-${n++}.json`)
    writeFileSync(file, text)
    return file
  }

  /** Loads the shipped catalogue after `change`, expecting it to be refused. */
  function refusal(change: (raw: Raw) => void): CitytwinError {
    const raw = shippedRaw()
    change(raw)
    return refusalOf(write(JSON.stringify(raw)))
  }

  function refusalOf(file: string): CitytwinError {
    try {
      loadCatalogue(file)
    } catch (e) {
      if (e instanceof CitytwinError) return e
      throw e
    }
    throw new Error(`${file} was accepted`)
  }

  const at = (i: number) => (raw: Raw): Record<string, unknown> => {
    const t = raw.types[i]
    if (!t) throw new Error(`the shipped catalogue has no types[${i}]`)
    return t
  }

  it('accepts an unchanged copy', () => {
    expect(loadCatalogue(write(SHIPPED_TEXT)).types.length).toBe(catalogue.types.length)
  })

  it('names an unknown unit', () => {
    const e = refusal((raw) => (at(3)(raw).unit = 'drainge'))
    expect(e.code).toBe('RULES_BAD_CATALOGUE')
    expect(e.retryable).toBe(false)
    expect(e.message).toContain('types[3].unit: unknown unit "drainge"')
  })

  it('names a duplicate code and a duplicate unit id', () => {
    const e = refusal((raw) => {
      at(5)(raw).code = 'waterlogging'
      raw.units.push({ ...raw.units[0] })
    })
    expect(e.message).toContain('types[5].code: duplicate code "waterlogging" (first at types[0])')
    expect(e.message).toMatch(/units\[\d+\]\.id: duplicate unit id "fire-brigade" \(first at units\[0\]\)/)
  })

  it('names a bad severity', () => {
    const e = refusal((raw) => (at(2)(raw).severity = 'urgent'))
    expect(e.code).toBe('RULES_BAD_CATALOGUE')
    expect(e.message).toContain('types[2].severity:')
  })

  it('refuses a signing time longer than the deadline', () => {
    const e = refusal((raw) => Object.assign(at(0)(raw), { signMinutes: 300, resolveMinutes: 240 }))
    expect(e.message).toContain('types[0].signMinutes: 300 is more than resolveMinutes (240)')
  })

  it('refuses bad shapes: unknown fields, linkage, device types and codes', () => {
    expect(refusal((raw) => (at(1)(raw).priority = 1)).message).toContain('types[1]: Unrecognized key')
    expect(refusal((raw) => (at(1)(raw).linkage = ['911'])).message).toContain('types[1].linkage[0]:')
    expect(refusal((raw) => (at(1)(raw).linkage = ['110', '110'])).message).toContain('types[1].linkage: has duplicate entries')
    expect(refusal((raw) => (at(1)(raw).devices = ['water_meter'])).message).toContain('types[1].devices[0]:')
    expect(refusal((raw) => (at(1)(raw).code = 'Underpass-Flooding')).message).toContain('types[1].code: must be lowercase snake_case')
    expect(refusal((raw) => (at(0)(raw).sources = ['complaint'])).message).toContain('types[0].sources: lists devices but not "sensor"')
  })

  it('reports every problem at once', () => {
    const e = refusal((raw) => {
      at(0)(raw).unit = 'nowhere'
      at(4)(raw).unit = 'elsewhere'
    })
    expect(e.message).toContain('types[0].unit: unknown unit "nowhere"')
    expect(e.message).toContain('types[4].unit: unknown unit "elsewhere"')
    expect(e.details.issues).toHaveLength(2)
  })

  it('refuses a missing file and text that is not JSON', () => {
    expect(refusalOf(join(dir, 'absent.json')).message).toMatch(/^cannot read dispatch catalogue .*absent\.json/)
    expect(refusalOf(write('{ "units": [')).message).toMatch(/is not valid JSON/)
  })

  it('validates parsed data without a file', () => {
    expect(() => parseCatalogue({ units: [], types: [] }, 'inline')).toThrow(/invalid dispatch catalogue inline:\n {2}units: /)
  })
})
