// The dispatch catalogue (派单目录): for every ticket type, the unit that
// handles it, how soon that unit must sign for it (签收) and resolve it, and
// which of 110/119/120 are alerted alongside. It is data, not code, so that
// the operations desk can grow it towards the full 12345 catalogue without a
// release; it is validated once at load and then only read.
//
// A catalogue unit is a kind of unit at one administrative level (the
// drainage office exists once per district). route() picks the instance at
// the ticket's place and dispatches straight to it, with no relay down
// through district and street dispatch desks.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import type { Severity } from '../../lib/bus/elements.ts'
import { CitytwinError, issuePath, messageOf } from '../../lib/errors.ts'
import { DEVICE_TYPES_LIST, type DeviceType } from '../../registry/device-types.ts'

export const UNIT_SCOPES = ['city', 'district', 'street'] as const
export type UnitScope = (typeof UNIT_SCOPES)[number]

export const LINKAGES = ['110', '119', '120'] as const
/** 110 police, 119 fire and rescue, 120 ambulance. */
export type Linkage = (typeof LINKAGES)[number]

export const SIGNAL_SOURCES = ['sensor', 'camera', 'complaint'] as const
export type SignalSource = (typeof SIGNAL_SOURCES)[number]

// A closed list, unlike Open311 where groups are free text: a typo in the
// data would otherwise create a group of one that no viewer filter shows.
export const TICKET_GROUPS = [
  'drainage', 'roads', 'street_furniture', 'sanitation', 'greenery', 'fire_safety', 'gas', 'public_safety',
  'traffic', 'environment', 'building_safety', 'market_order', 'city_appearance', 'utilities', 'iot',
] as const
export type TicketGroup = (typeof TICKET_GROUPS)[number]

const SEVERITY_VALUES = ['info', 'warning', 'critical'] as const satisfies readonly Severity[]

export interface CatalogueUnit {
  /** Kebab-case; a routed unit is `<id>@d<district>` or `<id>@s<street>`, so no `@` inside. */
  readonly id: string
  readonly scope: UnitScope
  readonly nameZh: string
  readonly nameEn: string
}

export interface CatalogueType {
  /** Snake_case; also the Open311 service_code. */
  readonly code: string
  readonly nameZh: string
  readonly nameEn: string
  /** The Open311 group. */
  readonly group: TicketGroup
  /** Words a complaint text is matched on, Chinese and English. */
  readonly keywords: readonly string[]
  readonly severity: Severity
  /** Id of a catalogue unit. */
  readonly unit: string
  readonly signMinutes: number
  readonly resolveMinutes: number
  readonly linkage: readonly Linkage[]
  readonly sources: readonly SignalSource[]
  /** Device types whose alarm raises this type; empty when no single device alarm does. */
  readonly devices: readonly DeviceType[]
}

/** Where a ticket is: grid ids from the twin, names when the caller has them. */
export interface Place {
  districtId: number
  streetId: number
  districtName?: string
  streetName?: string
}

export interface Route {
  /** `gas-company`, `drainage@d3`, `police-station@s27`. */
  unitId: string
  /** As on a dispatch sheet: `排水管理所（金水区）`. */
  unitName: string
}

const unique = <T extends z.ZodType>(item: T) =>
  z.array(item).refine((a) => new Set(a).size === a.length, { message: 'has duplicate entries' })

const unitSchema = z.strictObject({
  id: z.string().regex(/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/, 'must be lowercase kebab-case').describe('Stable unit id, lowercase kebab-case. Routing appends @d<district> or @s<street> for units below city level.'),
  scope: z.enum(UNIT_SCOPES).describe('Administrative level the unit exists at: one for the whole city, one per district, or one per street.'),
  nameZh: z.string().min(1).describe('Chinese name as printed on a dispatch sheet, without the place.'),
  nameEn: z.string().min(1).describe('English name, for logs and the viewer.'),
})

const typeSchema = z.strictObject({
  code: z.string().regex(/^[a-z][a-z0-9]*(_[a-z0-9]+)*$/, 'must be lowercase snake_case').describe('Stable ticket type code, lowercase snake_case; also the Open311 service_code.'),
  nameZh: z.string().min(1).describe('Chinese name as used in the 12345 catalogue.'),
  nameEn: z.string().min(1).describe('English name, for logs and the viewer.'),
  group: z.enum(TICKET_GROUPS).describe('Open311 group the type is listed under.'),
  keywords: unique(z.string().min(1)).min(1).describe('Words a hotline complaint is matched on, Chinese and English.'),
  severity: z.enum(SEVERITY_VALUES).describe('Severity of a ticket of this type: info, warning or critical.'),
  unit: z.string().min(1).describe('Id of the unit that handles the type, from the units list.'),
  signMinutes: z.number().int().positive().describe('Minutes the unit has to sign for a dispatched ticket.'),
  resolveMinutes: z.number().int().positive().describe('Minutes from dispatch to the handling deadline.'),
  linkage: unique(z.enum(LINKAGES)).describe('Emergency services alerted alongside the unit: 110 police, 119 fire and rescue, 120 ambulance.'),
  sources: unique(z.enum(SIGNAL_SOURCES)).min(1).describe('Signals that can raise the type: sensor (a device rule), camera, complaint (the 12345 hotline).'),
  devices: unique(z.enum(DEVICE_TYPES_LIST)).default([]).describe('Device types whose alarm raises this type. Empty when no single device alarm does, as for fleet-wide signals like an area outage.'),
})

const catalogueSchema = z.strictObject({
  units: z.array(unitSchema).min(1).describe('Units tickets are dispatched to.'),
  types: z.array(typeSchema).min(1).describe('Ticket types and where each goes.'),
})

interface CatalogueData {
  readonly units: readonly CatalogueUnit[]
  readonly types: readonly CatalogueType[]
}

export class Catalogue {
  readonly units: readonly CatalogueUnit[]
  readonly types: readonly CatalogueType[]
  readonly #units: ReadonlyMap<string, CatalogueUnit>
  readonly #types: ReadonlyMap<string, CatalogueType>
  readonly #byDevice: ReadonlyMap<DeviceType, readonly CatalogueType[]>

  /** Takes data that parseCatalogue() has checked; use that or loadCatalogue(). */
  constructor(data: CatalogueData) {
    this.units = data.units
    this.types = data.types
    this.#units = new Map(data.units.map((u) => [u.id, u]))
    this.#types = new Map(data.types.map((t) => [t.code, t]))
    const byDevice = new Map<DeviceType, CatalogueType[]>()
    for (const t of data.types) for (const d of t.devices) byDevice.set(d, [...(byDevice.get(d) ?? []), t])
    this.#byDevice = byDevice
  }

  type(code: string): CatalogueType | undefined {
    return this.#types.get(code)
  }

  unit(id: string): CatalogueUnit | undefined {
    return this.#units.get(id)
  }

  /** The types a device of this kind can raise; the rule picks among them. */
  forDevice(deviceType: DeviceType): readonly CatalogueType[] {
    return this.#byDevice.get(deviceType) ?? []
  }

  /** The unit instance that handles `code` at `place`; undefined for an unknown code. */
  route(code: string, place: Place): Route | undefined {
    const t = this.#types.get(code)
    const u = t && this.#units.get(t.unit)
    return u && routeToUnit(u, place)
  }
}

/** The instance of `unit` responsible for `place`. */
export function routeToUnit(unit: CatalogueUnit, place: Place): Route {
  switch (unit.scope) {
    case 'city':
      return { unitId: unit.id, unitName: unit.nameZh }
    case 'district':
      return { unitId: `${unit.id}@d${place.districtId}`, unitName: `${unit.nameZh}（${place.districtName ?? `第${place.districtId}区`}）` }
    case 'street': {
      // Street names repeat across districts, so the district goes first when known.
      const where = `${place.districtName ?? ''}${place.streetName ?? `第${place.streetId}街道`}`
      return { unitId: `${unit.id}@s${place.streetId}`, unitName: `${unit.nameZh}（${where}）` }
    }
  }
}

interface Issue {
  path: string
  message: string
}

/** `['types', 3, 'unit']` -> `types[3].unit`. */
// What the schema cannot see: references between entries and between fields.
function crossCheck(data: CatalogueData): Issue[] {
  const issues: Issue[] = []
  const unitAt = new Map<string, number>()
  data.units.forEach((u, i) => {
    const first = unitAt.get(u.id)
    if (first === undefined) unitAt.set(u.id, i)
    else issues.push({ path: `units[${i}].id`, message: `duplicate unit id "${u.id}" (first at units[${first}])` })
  })
  const codeAt = new Map<string, number>()
  data.types.forEach((t, i) => {
    const at = `types[${i}]`
    const first = codeAt.get(t.code)
    if (first === undefined) codeAt.set(t.code, i)
    else issues.push({ path: `${at}.code`, message: `duplicate code "${t.code}" (first at types[${first}])` })
    if (!unitAt.has(t.unit)) issues.push({ path: `${at}.unit`, message: `unknown unit "${t.unit}"` })
    if (t.signMinutes > t.resolveMinutes) {
      issues.push({ path: `${at}.signMinutes`, message: `${t.signMinutes} is more than resolveMinutes (${t.resolveMinutes}): the deadline would pass before signing` })
    }
    if (t.devices.length > 0 && !t.sources.includes('sensor')) {
      issues.push({ path: `${at}.sources`, message: `lists devices but not "sensor"` })
    }
  })
  return issues
}

function rejected(source: string, issues: readonly Issue[]): CitytwinError {
  const lines = issues.map((i) => `${i.path}: ${i.message}`)
  return new CitytwinError('RULES_BAD_CATALOGUE', `invalid dispatch catalogue ${source}:\n  ${lines.join('\n  ')}`, {
    details: { source, issues },
  })
}

/** Validates parsed JSON; `source` names it in the error. */
export function parseCatalogue(value: unknown, source = 'catalogue'): Catalogue {
  const parsed = catalogueSchema.safeParse(value)
  if (!parsed.success) throw rejected(source, parsed.error.issues.map((i) => ({ path: issuePath(i.path), message: i.message })))
  const data: CatalogueData = parsed.data
  const issues = crossCheck(data)
  if (issues.length > 0) throw rejected(source, issues)
  return new Catalogue(data)
}

const SHIPPED = new URL('./catalogue.json', import.meta.url)

/** Reads and validates a catalogue file, by default the one shipped next to this module. */
export function loadCatalogue(path?: string): Catalogue {
  const file = path ?? fileURLToPath(SHIPPED)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    throw new CitytwinError('RULES_BAD_CATALOGUE', `cannot read dispatch catalogue ${file}: ${messageOf(e)}`, { cause: e, details: { source: file } })
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    throw new CitytwinError('RULES_BAD_CATALOGUE', `dispatch catalogue ${file} is not valid JSON: ${messageOf(e)}`, { cause: e, details: { source: file } })
  }
  return parseCatalogue(value, file)
}
