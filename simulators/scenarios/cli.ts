// `citytwin sim scenario`: runs a scenario's incidents through the device
// simulator against a running system, then reads the tickets from its API
// and scores them against the ground truth: precision, recall, time to
// ticket, and tickets per incident.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Command } from '../../lib/command.ts'
import { numberOption, UsageError } from '../../lib/command.ts'
import { withStore } from '../../store/index.ts'
import type { DeviceType } from '../../registry/device-types.ts'
import { CURRENT_DEVICES } from '../../registry/city-store.ts'
import { fleetOptions, runSimulation, DEVICES_PER_PROCESS } from '../devices/cli.ts'
import type { FleetOptions, SimDevice } from '../devices/fleet.ts'
import { evaluateScenario, quantile, type ScenarioReport, type SeenTicket } from './evaluate.ts'
import { loadScenario, planScenario, SHIPPED_SCENARIOS_DIR, type PlaceDevice } from './scenario.ts'

/** Every ticket the API holds (open, and done in the last day), page by page. */
/**
 * The scenario drives the city's devices and scores every ticket the system
 * raises: a system running its demo fleet (citytwin start without
 * --no-demo) would have two clients per device id taking each other's
 * session, and its own incidents' tickets scored as false. Refused, with
 * what to do; an API that cannot be reached is said before the devices
 * connect, not after the scenario.
 */
async function refuseDemoSystem(api: string): Promise<void> {
  let body: { checks?: Record<string, unknown> }
  try {
    body = (await (await fetch(`${api}/healthz`)).json()) as { checks?: Record<string, unknown> }
  } catch (e) {
    throw new UsageError(`cannot reach the system's API at ${api} (${e instanceof Error ? e.message : String(e)}): start citytwin first, or give its address with --api`)
  }
  if (body.checks && 'demo' in body.checks) {
    throw new UsageError(`the system at ${api} runs its demo fleet, whose devices and incidents would mix with the scenario's: start it with citytwin start --no-demo`)
  }
}

export async function fetchTickets(api: string, token: string | undefined): Promise<SeenTicket[]> {
  const out: SeenTicket[] = []
  let cursor: string | null = null
  do {
    const res = await fetch(`${api}/api/tickets?limit=500&sort=created${cursor ? `&cursor=${cursor}` : ''}`, { headers: token ? { authorization: `Bearer ${token}` } : {} })
    if (!res.ok) throw new Error(`GET /api/tickets answered ${res.status}: ${await res.text()}`)
    const page = (await res.json()) as { items: SeenTicket[]; next: string | null }
    out.push(...page.items.map((t) => ({ id: t.id, type: t.type, createdAt: t.createdAt, ...(t.firstSeenAt === undefined ? {} : { firstSeenAt: t.firstSeenAt }), ...(t.subject ? { subject: t.subject } : {}) })))
    cursor = page.next
  } while (cursor !== null)
  return out
}

export function formatReport(name: string, r: ScenarioReport): string {
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`
  const s = (x: number | null): string => (x === null ? '-' : `${(x / 1000).toFixed(1)} s`)
  const ms = (x: number | null): string => (x === null ? '-' : `${Math.round(x)} ms`)
  const rows = r.incidents.map((i) => `  ${i.id.padEnd(22)} expected ${String(i.expected).padStart(3)}  detected ${String(i.detected).padStart(3)}  tickets ${String(i.tickets).padStart(3)} (wrong ${i.wrong})  precision ${pct(i.precision).padStart(6)}  recall ${pct(i.recall).padStart(6)}  time to ticket p50 ${s(quantile(i.latencyMs, 0.5))} (system ${ms(quantile(i.systemMs, 0.5))})`)
  return `scenario ${name}\n${rows.join('\n')}\n  tickets about no incident: ${r.unrelated}\n` +
    `  overall: precision ${pct(r.precision)}, recall ${pct(r.recall)}, time to ticket after the rule's own duration p50 ${s(r.latencyP50Ms)}, p99 ${s(r.latencyP99Ms)} (of which the system's own, from the deciding reading: p50 ${ms(r.systemP50Ms)}, p99 ${ms(r.systemP99Ms)}), tickets per incident ${r.ticketsPerIncident?.toFixed(2) ?? '-'}\n`
}

export const scenarioCommand: Command = {
  name: 'sim scenario',
  summary: 'Inject a scenario of incidents through the device simulator into a running system and score the tickets it raises against the ground truth',
  options: {
    file: { type: 'string', description: 'scenario file, YAML or JSON (default: the shipped city-incidents.yaml)', valueName: 'file' },
    limit: { type: 'string', description: 'simulate this many devices, whole community grids first (default: all in the city)', valueName: 'n' },
    processes: { type: 'string', description: `simulator processes (default: one per ${DEVICES_PER_PROCESS} devices)`, valueName: 'n' },
    'mqtt-port': { type: 'string', description: 'gateway port (default 1883)', valueName: 'port' },
    host: { type: 'string', description: 'gateway host (default 127.0.0.1)', valueName: 'host' },
    api: { type: 'string', description: 'the system API (default http://127.0.0.1:8080)', valueName: 'url' },
    token: { type: 'string', description: 'bearer token for reading tickets, when reads are not open (also CITYTWIN_API_TOKEN)', valueName: 'token' },
    'warmup-s': { type: 'string', description: 'seconds for the devices to connect before the scenario clock starts (default 30)', valueName: 's' },
    seed: { type: 'string', description: 'picks the devices of each incident (default 1)', valueName: 'n' },
    out: { type: 'string', description: 'also write the report as JSON to this file', valueName: 'file' },
    json: { type: 'boolean', description: 'print the report as JSON' },
  },
  async run({ values, configFile, stdout }) {
    const scenario = loadScenario(typeof values.file === 'string' ? values.file : join(SHIPPED_SCENARIOS_DIR, 'city-incidents.yaml'))
    const api = (typeof values.api === 'string' ? values.api : 'http://127.0.0.1:8080').replace(/\/$/, '')
    await refuseDemoSystem(api)
    const limit = numberOption(values, 'limit')
    const { devices, dataDir } = await withStore({ file: configFile }, async ({ store, storeCfg }) => {
      const rs = await store.client.query({
        query: `SELECT id, type, interval_s, micro_grid_id, community_id FROM ${CURRENT_DEVICES} ORDER BY community_id, id ${limit ? 'LIMIT {limit:UInt32}' : ''}`,
        query_params: limit ? { limit } : {}, format: 'JSONCompactEachRow',
      })
      const list = (await rs.json<[string, DeviceType, number, number, number]>()).map(([id, type, intervalS, micro, community]) => ({ id, type, intervalS: Number(intervalS), microGridId: Number(micro), communityId: Number(community) }))
      return { devices: list, dataDir: storeCfg.dataDir }
    })
    if (devices.length === 0) throw new UsageError('no devices: generate a city first (citytwin city generate)')
    const warmupS = numberOption(values, 'warmup-s') ?? 30
    const runStart = Date.now()
    const start = runStart + warmupS * 1000
    const plan = planScenario(scenario, devices satisfies PlaceDevice[], start, numberOption(values, 'seed') ?? 1)
    const token = typeof values.token === 'string' ? values.token : process.env.CITYTWIN_API_TOKEN
    const fleet: FleetOptions = { ...fleetOptions(values, configFile, dataDir), injections: plan.injections }
    const sims: SimDevice[] = devices.map((d) => ({ id: d.id, type: d.type, intervalS: d.intervalS }))
    process.stderr.write(`scenario ${scenario.name}: ${plan.incidents.length} incidents over ${devices.length} devices; ${warmupS} s to connect, then ${scenario.durationS} s\n`)
    let printedAt = 0
    const sim = await runSimulation({ devices: sims, processes: numberOption(values, 'processes') ?? Math.ceil(sims.length / DEVICES_PER_PROCESS), fleet, durationMs: (warmupS + scenario.durationS) * 1000 }, (s) => {
      if (performance.now() - printedAt < 10_000) return
      printedAt = performance.now()
      process.stderr.write(`  [${Math.round((Date.now() - start) / 1000)} s] ${s.connected}/${s.devices} connected, acked ${s.acked} (${s.ackedPerS}/s), p99 ${s.p99Ms} ms\n`)
    })
    await new Promise((r) => setTimeout(r, scenario.settleS * 1000))
    const report = evaluateScenario(plan.incidents, await fetchTickets(api, token), start)
    const result = { scenario: scenario.name, devices: devices.length, simulator: { connected: sim.peakConnected, ackedPerS: sim.ackedPerS, p99Ms: sim.p99Ms }, incidents: plan.incidents, report }
    if (typeof values.out === 'string') writeFileSync(values.out, JSON.stringify(result, null, 2))
    stdout.write(values.json ? JSON.stringify(result) + '\n' : formatReport(scenario.name, report))
    return 0
  },
}
