// Scenario planning and scoring on plain data: the same devices for the
// same seed, whole grids for area incidents, no device in two incidents,
// and the figures (precision, recall, time to ticket, tickets per incident)
// from a set of tickets.
import { describe, expect, it } from 'vitest'
import { evaluateScenario, type SeenTicket } from '../../simulators/scenarios/evaluate.ts'
import { loadScenario, planScenario, scenarioSchema, SHIPPED_SCENARIOS_DIR, type PlaceDevice } from '../../simulators/scenarios/scenario.ts'
import { matchComplaint } from '../../rules/complaints.ts'
import { loadCatalogue } from '../../rules/catalogue/catalogue.ts'
import type { Ticket } from '../../rules/tickets/lifecycle.ts'

const devices: PlaceDevice[] = []
for (let c = 1; c <= 20; c++) {
  for (let k = 0; k < 12; k++) devices.push({ id: `D${c}-${k}`, type: k % 3 === 0 ? 'water_level' : k % 3 === 1 ? 'gas' : 'streetlight', microGridId: c * 10 + (k % 2), communityId: c })
}

const scenario = scenarioSchema.parse({
  name: 't', durationS: 600,
  incidents: [
    { id: 'cut', kind: 'silence', area: 'community', minDevices: 10, atS: 10, forS: 100, expect: { ticketType: 'power_outage', per: 'area' }, detectAfterS: 20 },
    { id: 'water', kind: 'values', deviceType: 'water_level', count: 5, atS: 0, forS: 400, values: { level_cm: 45 }, expect: { ticketType: 'waterlogging', per: 'device' }, detectAfterS: 300 },
    { id: 'noise', kind: 'values', deviceType: 'water_level', count: 5, atS: 0, forS: 400, values: { level_cm: 22 }, noise: { level_cm: 6 }, expect: { ticketType: 'none', per: 'none' } },
  ],
})
const T0 = 1_800_000_000_000

describe('planning a scenario', () => {
  it('is the same for a seed, takes whole grids for areas, and never gives a device two incidents', () => {
    const a = planScenario(scenario, devices, T0, 7)
    expect(planScenario(scenario, devices, T0, 7)).toEqual(a)
    expect(planScenario(scenario, devices, T0, 8).incidents.map((i) => i.deviceIds)).not.toEqual(a.incidents.map((i) => i.deviceIds))
    const [cut, water, noise] = a.incidents
    expect(cut?.deviceIds).toHaveLength(12)
    expect(new Set(cut?.deviceIds.map((id) => devices.find((d) => d.id === id)?.communityId))).toEqual(new Set([cut?.gridId]))
    const all = a.incidents.flatMap((i) => i.deviceIds)
    expect(new Set(all).size).toBe(all.length)
    expect(water).toMatchObject({ startMs: T0, endMs: T0 + 400_000, detectAfterMs: 300_000 })
    expect(a.injections[0]).toMatchObject({ silence: true, fromMs: T0 + 10_000, toMs: T0 + 110_000 })
    expect(a.injections[2]).toMatchObject({ values: { level_cm: 22 }, noise: { level_cm: 6 } })
    expect(noise?.deviceIds.every((id) => id.endsWith('-0') || id.endsWith('-3') || id.endsWith('-6') || id.endsWith('-9'))).toBe(true)
  })

  it('says clearly when the devices cannot carry an incident', () => {
    const few = devices.slice(0, 5)
    expect(() => planScenario(scenario, few, T0)).toThrow(/incident cut: no community grid with at least 10 free devices/)
  })

  it('the shipped scenario file is valid', () => {
    expect(loadScenario(`${SHIPPED_SCENARIOS_DIR}city-incidents.yaml`).incidents.length).toBeGreaterThanOrEqual(6)
  })
})

describe('scoring a run', () => {
  const plan = planScenario(scenario, devices, T0, 7)
  const [cut, water, noise] = plan.incidents
  const w = water?.deviceIds ?? []

  it('counts detections, wrong and unrelated tickets, latency and tickets per incident', () => {
    const tickets: SeenTicket[] = [
      { id: 'a', type: 'power_outage', createdAt: T0 + 35_000, subject: { gridLevel: 'community', gridId: cut?.gridId ?? 0 } },
      ...w.slice(0, 4).map((d, i) => ({ id: `w${i}`, type: 'waterlogging', createdAt: T0 + 300_000 + 500 + i * 100, firstSeenAt: T0 + 300_000 + i * 100, subject: { deviceId: d } })),
      { id: 'dup', type: 'device_offline', createdAt: T0 + 90_000, subject: { deviceId: cut?.deviceIds[0] ?? '' } },
      { id: 'fp', type: 'waterlogging', createdAt: T0 + 200_000, subject: { deviceId: noise?.deviceIds[0] ?? '' } },
      { id: 'other', type: 'bin_overflow', createdAt: T0 + 1_000, subject: { deviceId: 'elsewhere' } },
      { id: 'old', type: 'bin_overflow', createdAt: T0 - 60_000, subject: { deviceId: 'elsewhere' } },
    ]
    const r = evaluateScenario(plan.incidents, tickets, T0)
    expect(r.incidents.find((i) => i.id === 'cut')).toMatchObject({ expected: 1, detected: 1, tickets: 2, wrong: 1, recall: 1, precision: 0.5, ticketsPerIncident: 2, latencyMs: [5_000] })
    expect(r.incidents.find((i) => i.id === 'water')).toMatchObject({ expected: 5, detected: 4, recall: 0.8, precision: 1, latencyMs: [500, 600, 700, 800], systemMs: [500, 500, 500, 500] })
    expect(r).toMatchObject({ systemP50Ms: 500, systemP99Ms: 500 })
    expect(r.incidents.find((i) => i.id === 'noise')).toMatchObject({ expected: 0, tickets: 1, wrong: 1, precision: 0 })
    expect(r.unrelated).toBe(1)
    // 5 right of 8 raised during the run; 5 of 6 expected found.
    expect(r.precision).toBeCloseTo(5 / 8)
    expect(r.recall).toBeCloseTo(5 / 6)
    expect(r.ticketsPerIncident).toBeCloseTo(6 / 6)
  })
})

describe('complaint matching', () => {
  const catalogue = loadCatalogue()
  const ticket = (o: Partial<Ticket>): Ticket => ({
    id: 'T-1', version: 1, origin: 'proactive', status: 'dispatched', type: 'waterlogging', group: 'drainage', title: '', description: '', severity: 'warning',
    place: { microGridId: 11, communityId: 1, streetId: 100, districtId: 1000, lon: 113.6, lat: 34.7 }, subject: undefined, ruleId: 'r', key: 'k', unitId: 'u', unitName: 'u', mode: 'normal',
    createdAt: T0, updatedAt: T0, dispatchedAt: T0, signedAt: undefined, resolvedAt: undefined, closedAt: undefined, signDueAt: undefined, resolveDueAt: undefined,
    occurrences: 1, firstSeenAt: T0, lastSeenAt: T0, signalActive: true, linked: [], linkage: [], evidence: [], escalations: 0, supervised: false, slaBreaches: [], formalOnly: 0, returns: 0, complaints: 0, ...o,
  })
  const policy = { radiusM: 500, windowMs: 86_400_000 }
  const at = { serviceCode: 'waterlogging', receivedAt: T0 + 20 * 60_000, lon: 113.6, lat: 34.7 + 0.003, place: { microGridId: 12, communityId: 1, streetId: 100, districtId: 1000, lon: 113.6, lat: 34.703 } }

  it('matches the same type in the same community grid, and gives the lead time', () => {
    expect(matchComplaint(at, [ticket({})], catalogue, policy)).toMatchObject({ ticket: { id: 'T-1' }, leadMs: 20 * 60_000 })
  })

  it('matches a neighbouring grid within the radius, and prefers the same type over the same group', () => {
    const near = ticket({ id: 'T-near', type: 'blocked_sewer', place: { ...ticket({}).place, communityId: 2, lat: 34.7025 } })
    const same = ticket({ id: 'T-same', place: { ...ticket({}).place, communityId: 2, lat: 34.7 } })
    expect(matchComplaint({ ...at, place: { ...at.place, communityId: 3 } }, [near, same], catalogue, policy)?.ticket.id).toBe('T-same')
    expect(matchComplaint({ ...at, place: { ...at.place, communityId: 3 } }, [near], catalogue, policy)?.ticket.id).toBe('T-near')
  })

  it('does not match another group, a ticket raised after the complaint, one far away, or a complaint ticket', () => {
    expect(matchComplaint(at, [ticket({ type: 'bin_overflow', group: 'sanitation' })], catalogue, policy)).toBeUndefined()
    expect(matchComplaint(at, [ticket({ createdAt: at.receivedAt + 1 })], catalogue, policy)).toBeUndefined()
    expect(matchComplaint({ ...at, place: { ...at.place, communityId: 9 }, lat: 34.8 }, [ticket({})], catalogue, policy)).toBeUndefined()
    expect(matchComplaint(at, [ticket({ origin: 'complaint' })], catalogue, policy)).toBeUndefined()
    expect(matchComplaint(at, [ticket({ createdAt: at.receivedAt - 2 * 86_400_000 })], catalogue, policy)).toBeUndefined()
  })
})
