// A small city for the pure rule tests: two community grids of micro-grids
// with devices and cameras, described as plain data, and the RuleContext
// the engine reads it through.
import type { DeviceType } from '../../registry/device-types.ts'
import { gridOf, type AreaLevel, type Mode, type Place, type RuleContext, type SubjectInfo } from '../../rules/kinds/types.ts'
import { parseRuleFile } from '../../rules/loader.ts'
import type { Rule } from '../../rules/schema.ts'

export const place = (micro: number, community: number, street = 100, district = 1000): Place => ({ microGridId: micro, communityId: community, streetId: street, districtId: district, lon: 113.6 + micro / 1000, lat: 34.7 })

export interface FixtureCity {
  devices: Map<string, SubjectInfo>
  cameras: Map<string, SubjectInfo>
  modes: Map<number, Mode>
}

/** n devices of a type in micro-grid `micro` of community `community`: ids prefix-0..n-1. */
export function addDevices(city: FixtureCity, prefix: string, n: number, type: DeviceType, micro: number, community: number, intervalS = 10, specialKinds: string[] = []): string[] {
  const ids: string[] = []
  for (let i = 0; i < n; i++) {
    const id = `${prefix}${i}`
    city.devices.set(id, { ...place(micro, community), type, intervalS, specialKinds })
    ids.push(id)
  }
  return ids
}

export function newCity(): FixtureCity {
  return { devices: new Map(), cameras: new Map(), modes: new Map() }
}

export function contextOf(city: FixtureCity): RuleContext {
  return {
    device: (id) => city.devices.get(id),
    camera: (id) => city.cameras.get(id),
    devicesIn: (level: AreaLevel, gridId: number, types?: readonly DeviceType[]) => {
      let n = 0
      for (const d of city.devices.values()) if (gridOf(d, level) === gridId && (!types || types.length === 0 || (d.type !== '' && types.includes(d.type)))) n++
      return n
    },
    gridPlace: (level, gridId) => {
      for (const d of city.devices.values()) if (gridOf(d, level) === gridId) return { ...d }
      return undefined
    },
    mode: (districtId) => city.modes.get(districtId) ?? 'normal',
    utcOffsetMin: 480,
  }
}

/** Rules from YAML text, as a rule file would give them. */
export const rulesOf = (yaml: string): Rule[] => parseRuleFile('test.yaml', yaml)
