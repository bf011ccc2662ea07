// Scenarios: incidents injected into the device simulator, with the ground
// truth of what the rules should make of them. A scenario file names each
// incident's kind (values on some devices, or their silence), which devices
// (a number of a type, or every device of a type in one grid), when and for
// how long, and what is expected: a ticket per device, one per area, or none
// at all (noisy-but-normal sensors). planScenario() turns it into concrete
// devices and times, the same for a given seed.
import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { CitytwinError, messageOf } from '../../lib/errors.ts'
import { DEVICE_TYPES_LIST, type DeviceType } from '../../registry/device-types.ts'
import type { Injection } from '../devices/fleet.ts'

const incidentSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/).describe('Names the incident in the report.'),
  kind: z.enum(['values', 'silence']).describe('values: readings take the given values; silence: the devices send nothing (connected).'),
  deviceType: z.enum(DEVICE_TYPES_LIST).optional().describe('Devices of this type (default: any).'),
  count: z.number().int().min(1).optional().describe('How many devices, picked at random.'),
  area: z.enum(['micro', 'community']).optional().describe('Instead of a count: every device (of the type) in one grid of this level.'),
  minDevices: z.number().int().min(1).default(1).describe('With area: the grid picked has at least this many devices.'),
  atS: z.number().min(0).describe('Seconds after the start.'),
  forS: z.number().positive().describe('How long it lasts, in seconds.'),
  values: z.record(z.string(), z.number()).default({}),
  noise: z.record(z.string(), z.number().min(0)).default({}).describe('Plus or minus this much around each value.'),
  expect: z.strictObject({
    ticketType: z.string().describe('The catalogue type expected; none: no ticket at all.'),
    per: z.enum(['device', 'area', 'none']).describe('One ticket per device, one for the area, or none.'),
  }),
  detectAfterS: z.number().min(0).default(0).describe('The rule own duration: the time to ticket is counted from the incident start plus this.'),
}).refine((i) => (i.count === undefined) !== (i.area === undefined), 'give exactly one of count and area')

export const scenarioSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().default(''),
  durationS: z.number().positive().describe('How long the run lasts after the devices are connected.'),
  settleS: z.number().min(0).default(30).describe('Seconds after the end before tickets are counted.'),
  incidents: z.array(incidentSchema).min(1),
})

export type Scenario = z.infer<typeof scenarioSchema>
export type IncidentSpec = Scenario['incidents'][number]

export const SHIPPED_SCENARIOS_DIR = new URL('./files/', import.meta.url).pathname

export function loadScenario(path: string): Scenario {
  let raw: unknown
  try {
    const text = readFileSync(path, 'utf8')
    raw = /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text)
  } catch (e) {
    throw new CitytwinError('CLI_USAGE', `cannot read the scenario ${path}: ${messageOf(e)}`)
  }
  const r = scenarioSchema.safeParse(raw)
  if (!r.success) throw new CitytwinError('CLI_USAGE', `${path}: ${r.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`).join('; ')}`)
  return r.data
}

export interface PlaceDevice {
  id: string
  type: DeviceType
  microGridId: number
  communityId: number
}

export interface PlannedIncident {
  id: string
  kind: 'values' | 'silence'
  deviceIds: string[]
  /** With area: the grid. */
  gridId: number | undefined
  startMs: number
  endMs: number
  expect: IncidentSpec['expect']
  detectAfterMs: number
}

/** A small seeded generator (mulberry32): the same plan for the same seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Concrete incidents over the simulated devices: each picks devices no
 * other incident took, so the ground truth of every device is one incident
 * at most.
 */
export function planScenario(s: Scenario, devices: readonly PlaceDevice[], startMs: number, seed = 1): { incidents: PlannedIncident[]; injections: Injection[] } {
  const random = rng(seed)
  const taken = new Set<string>()
  const incidents: PlannedIncident[] = []
  for (const spec of s.incidents) {
    const pool = devices.filter((d) => !taken.has(d.id) && (spec.deviceType === undefined || d.type === spec.deviceType))
    let picked: PlaceDevice[]
    let gridId: number | undefined
    if (spec.area) {
      const byGrid = new Map<number, PlaceDevice[]>()
      for (const d of pool) {
        const g = spec.area === 'micro' ? d.microGridId : d.communityId
        byGrid.set(g, [...(byGrid.get(g) ?? []), d])
      }
      // Whole grids only: a grid some of whose devices another incident took is no candidate.
      const whole = [...byGrid].filter(([g, ds]) => ds.length >= spec.minDevices && !devices.some((d) => taken.has(d.id) && (spec.area === 'micro' ? d.microGridId : d.communityId) === g))
      whole.sort((a, b) => a[0] - b[0])
      const choice = whole[Math.floor(random() * whole.length)]
      if (!choice) throw new CitytwinError('CLI_USAGE', `incident ${spec.id}: no ${spec.area} grid with at least ${spec.minDevices} free devices${spec.deviceType ? ` of type ${spec.deviceType}` : ''} among the simulated devices`)
      gridId = choice[0]
      picked = choice[1]
    } else {
      const n = spec.count ?? 1
      if (pool.length < n) throw new CitytwinError('CLI_USAGE', `incident ${spec.id}: wants ${n} devices${spec.deviceType ? ` of type ${spec.deviceType}` : ''}, ${pool.length} free among the simulated devices`)
      const copy = [...pool]
      picked = []
      for (let k = 0; k < n; k++) picked.push(...copy.splice(Math.floor(random() * copy.length), 1))
    }
    for (const d of picked) taken.add(d.id)
    incidents.push({
      id: spec.id, kind: spec.kind, deviceIds: picked.map((d) => d.id), gridId,
      startMs: startMs + spec.atS * 1000, endMs: startMs + (spec.atS + spec.forS) * 1000, expect: spec.expect, detectAfterMs: spec.detectAfterS * 1000,
    })
  }
  const injections: Injection[] = incidents.map((p, k) => {
    const spec = s.incidents[k] as IncidentSpec
    return { deviceIds: p.deviceIds, fromMs: p.startMs, toMs: p.endMs, ...(p.kind === 'silence' ? { silence: true } : { values: spec.values, noise: spec.noise }) }
  })
  return { incidents, injections }
}
