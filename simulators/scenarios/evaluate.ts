// Scoring a scenario run: which incidents became the tickets they should
// have, how fast, and how many tickets each took (an area outage should be
// one ticket, not one per device). Pure: the plan and the tickets in, the
// figures out.
import type { PlannedIncident } from './scenario.ts'

/** What the evaluation needs of a ticket (as GET /api/tickets shows it). */
export interface SeenTicket {
  id: string
  type: string
  createdAt: number
  /** When what raised it happened (the reading that completed the rule). */
  firstSeenAt?: number
  subject?: { deviceId?: string; cameraId?: string; gridLevel?: string; gridId?: number }
}

export interface IncidentResult {
  id: string
  expected: number
  detected: number
  /** Tickets that concern the incident's devices or grid, of any type. */
  tickets: number
  /** Of those, tickets of a type the incident does not call for. */
  wrong: number
  precision: number
  recall: number
  ticketsPerIncident: number
  /** Time from the incident start plus the rule's own duration to the ticket, ms (includes up to a reporting interval or two of the devices). */
  latencyMs: number[]
  /** Time from the reading (or status change) that completed the rule to the ticket, ms: the system's own delay. */
  systemMs: number[]
}

export interface ScenarioReport {
  incidents: IncidentResult[]
  /** Tickets raised during the run that concern no incident at all. */
  unrelated: number
  precision: number
  recall: number
  latencyP50Ms: number | null
  latencyP99Ms: number | null
  systemP50Ms: number | null
  systemP99Ms: number | null
  ticketsPerIncident: number | null
}

/** The q-quantile of a sample (the value at rank q); null when empty. */
export const quantile = (xs: readonly number[], q: number): number | null => {
  if (xs.length === 0) return null
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? null
}

export function evaluateScenario(incidents: readonly PlannedIncident[], tickets: readonly SeenTicket[], runStartMs: number): ScenarioReport {
  const owner = new Map<string, PlannedIncident>()
  for (const i of incidents) for (const d of i.deviceIds) owner.set(d, i)
  const byGrid = new Map<number, PlannedIncident>()
  for (const i of incidents) if (i.gridId !== undefined) byGrid.set(i.gridId, i)
  const related = new Map<string, SeenTicket[]>()
  let unrelated = 0
  for (const t of tickets) {
    if (t.createdAt < runStartMs) continue
    const i = (t.subject?.deviceId !== undefined ? owner.get(t.subject.deviceId) : undefined) ?? (t.subject?.gridId !== undefined ? byGrid.get(t.subject.gridId) : undefined)
    if (!i) {
      unrelated++
      continue
    }
    related.set(i.id, [...(related.get(i.id) ?? []), t])
  }
  const results = incidents.map((i): IncidentResult => {
    const ts = related.get(i.id) ?? []
    const right = ts.filter((t) => i.expect.per !== 'none' && t.type === i.expect.ticketType && t.createdAt >= i.startMs)
    const expected = i.expect.per === 'device' ? i.deviceIds.length : i.expect.per === 'area' ? 1 : 0
    const detectedSubjects = new Set(right.map((t) => t.subject?.deviceId ?? `grid:${String(t.subject?.gridId)}`))
    const firstBySubject = new Map<string, SeenTicket>()
    for (const t of right) {
      const k = t.subject?.deviceId ?? `grid:${String(t.subject?.gridId)}`
      const seen = firstBySubject.get(k)
      if (!seen || t.createdAt < seen.createdAt) firstBySubject.set(k, t)
    }
    const detected = Math.min(expected, detectedSubjects.size)
    return {
      id: i.id, expected, detected, tickets: ts.length, wrong: ts.length - right.length,
      precision: ts.length === 0 ? 1 : right.length / ts.length,
      recall: expected === 0 ? 1 : detected / expected,
      ticketsPerIncident: expected === 0 ? ts.length : ts.length / expected,
      latencyMs: [...firstBySubject.values()].map((t) => t.createdAt - (i.startMs + i.detectAfterMs)),
      systemMs: [...firstBySubject.values()].flatMap((t) => (t.firstSeenAt === undefined ? [] : [t.createdAt - t.firstSeenAt])),
    }
  })
  const all = results.flatMap((r) => r.latencyMs)
  const system = results.flatMap((r) => r.systemMs)
  const expected = results.reduce((n, r) => n + r.expected, 0)
  const raised = results.reduce((n, r) => n + r.tickets, 0) + unrelated
  const right = results.reduce((n, r) => n + (r.tickets - r.wrong), 0)
  return {
    incidents: results, unrelated,
    precision: raised === 0 ? 1 : right / raised,
    recall: expected === 0 ? 1 : results.reduce((n, r) => n + r.detected, 0) / expected,
    latencyP50Ms: quantile(all, 0.5), latencyP99Ms: quantile(all, 0.99), systemP50Ms: quantile(system, 0.5), systemP99Ms: quantile(system, 0.99),
    ticketsPerIncident: expected === 0 ? null : results.filter((r) => r.expected > 0).reduce((n, r) => n + r.tickets, 0) / expected,
  }
}
