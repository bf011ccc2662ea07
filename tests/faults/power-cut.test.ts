// Fault: an area power cut. Every device of one community grid loses its
// power at once: no DISCONNECT, no FIN, its connections simply fall quiet,
// and the gateway ends them when their keep-alive runs out. The city
// expects one "area outage" ticket for the grid, held while the power is
// off (the devices going from silent to disconnected is not a recovery),
// no ticket per device, nothing from the grid next door, and the ticket's
// signal back to normal once the devices are back.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { DEVICE_TYPE_BY_NAME, type DeviceType } from '../../registry/device-types.ts'
import { runCli, tempDir } from '../helpers.ts'
import { FaultFleet, sleep, until, type FaultDeviceSpec, type FleetCounts } from './devices.ts'
import { ledgerOf, report } from './ledger.ts'
import { freePort, SECRET, startSystem, stopSystem } from './system.ts'

// The shipped area-outage and device-silent rules, with times short enough for a test.
const RULES = `rules:
  - id: area-outage
    kind: area-silence
    title: area outage
    ticketType: power_outage
    level: community
    percent: 30
    windowS: 120
    minDevices: 5
    holdS: 3
  - id: device-silent
    kind: silence
    title: device silent
    ticketType: device_offline
    afterIntervals: 1
    minSilentS: 40
    suppressedBy: [area-outage]
`

interface Ticket { id: string; type: string; status: string; signalActive?: boolean; subject?: { gridLevel?: string; gridId?: number } }

describe('fault: an area power cut', () => {
  it('raises one outage for the grid, holds it while the power is off, and no ticket per device', async () => {
    const dir = tempDir('citytwin-fault-')
    const dataDir = join(dir, 'db')
    const rulesDir = join(dir, 'rules')
    mkdirSync(rulesDir)
    writeFileSync(join(rulesDir, 'outage.yaml'), RULES)
    const port = await freePort()
    // A device is silent after one of its reporting intervals without data (5 to 30 s here).
    const system = await startSystem(dataDir, port, { CITYTWIN_RULES_DIR: rulesDir, CITYTWIN_TWIN_SILENT_AFTER_INTERVALS: '1' }, 1)
    const tickets = async (type: string): Promise<Ticket[]> => {
      const res = await fetch(`${system.api}/api/tickets?type=${type}&limit=500`)
      if (res.status !== 200) throw new Error(`GET /api/tickets answered ${res.status}: ${await res.text()}`)
      return ((await res.json()) as { items: Ticket[] }).items
    }
    let cut: FaultFleet | undefined
    let nextDoor: FaultFleet | undefined
    const counts: { cut?: FleetCounts | undefined; nextDoor?: FleetCounts | undefined } = {}
    const grids = { cut: 0, nextDoor: 0 }
    try {
      // The two community grids with the most devices: one loses its power, the other is the grid next door.
      const q = await runCli(['store', 'query', "SELECT d.id AS id, d.community_id AS community, d.type AS type FROM devices d ORDER BY d.id", '--data-dir', dataDir])
      expect(q.code).toBe(0)
      const all = q.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: string; community: number; type: string })
      const byGrid = new Map<number, FaultDeviceSpec[]>()
      for (const d of all) {
        const list = byGrid.get(d.community) ?? []
        list.push({ id: d.id, topic: `devices/${d.id}/telemetry`, metric: 'battery_pct' })
        byGrid.set(d.community, list)
      }
      const [first, second] = [...byGrid].sort((a, b) => b[1].length - a[1].length)
      if (!first || !second) throw new Error('the demo city has fewer than two community grids')
      grids.cut = first[0]
      grids.nextDoor = second[0]
      // Every type has its own metrics; a message carries one the type reports.
      const typeOf = new Map(all.map((d) => [d.id, d.type]))
      const specs = (list: FaultDeviceSpec[]): FaultDeviceSpec[] => list.map((s) => ({ ...s, ...firstMetric(typeOf.get(s.id) ?? '') }))
      cut = new FaultFleet(specs(first[1]), { port, secret: SECRET, ratePerS: 1, keepaliveS: 6 })
      nextDoor = new FaultFleet(specs(second[1]), { port, secret: SECRET, ratePerS: 1, keepaliveS: 6 })
      await Promise.all([cut.start(), nextDoor.start()])
      await sleep(5_000)

      cut.powerOff()
      await until(async () => (await tickets('power_outage')).length > 0, 90_000, 'an area outage ticket')
      // Past the devices' keep-alive (9 s): the gateway has ended their connections, and they are offline,
      // which is no recovery: the outage holds.
      await until(async () => {
        const statuses = await Promise.all(first[1].map(async (d) => ((await (await fetch(`${system.api}/api/devices/${d.id}`)).json()) as { status: string }).status))
        return statuses.every((s) => s === 'offline')
      }, 60_000, 'the powerless devices disconnected by their keep-alive')
      await sleep(8_000)
      const during = await tickets('power_outage')
      expect(during.map((t) => [t.subject?.gridLevel, t.subject?.gridId, t.signalActive])).toEqual([['community', grids.cut, true]])
      expect(await tickets('device_offline')).toEqual([])

      cut.powerOn()
      await until(async () => (await tickets('power_outage'))[0]?.signalActive === false, 90_000, "the outage's signal back to normal")
      expect((await tickets('power_outage')).length).toBe(1)
      expect(await tickets('device_offline')).toEqual([])
      counts.cut = await cut.stop()
      counts.nextDoor = await nextDoor.stop()
    } finally {
      counts.cut ??= await cut?.stop()
      counts.nextDoor ??= await nextDoor?.stop()
      await stopSystem(system)
    }
    for (const [name, fleet, c] of [[`community ${grids.cut}, which lost its power`, cut, counts.cut], [`community ${grids.nextDoor}, next door`, nextDoor, counts.nextDoor]] as const) {
      if (!fleet || !c) throw new Error('the case did not run to its end')
      const l = await ledgerOf(dataDir, fleet, c)
      report(`area power cut: ${name} (${fleet.devices.length} devices)`, l)
      expect(l.lost).toBe(0)
      expect(l.duplicated).toBe(0)
      expect(l.deadLettered).toBe(0)
    }
  })
})

/** A metric every device of `type` reports (its first), at its typical value. */
function firstMetric(type: string): { metric: string; value: number } {
  const m = DEVICE_TYPE_BY_NAME.get(type as DeviceType)?.metrics[0]
  if (!m) throw new Error(`no device type ${type}`)
  return { metric: m.name, value: m.typical }
}
