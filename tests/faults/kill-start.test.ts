// Fault: the whole `citytwin start` killed (kill -9 of the primary, which
// holds the store, the twin and the rules) and its workers under QoS 1
// load, then started again on the same data directory and ports. The
// devices come back to the new one and send again what was not
// acknowledged. Every message acknowledged before or after is stored once,
// and the twin picks the devices up again.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { gatewayWorkerPids } from '../../bench/proc.ts'
import { tempDir } from '../helpers.ts'
import { FaultFleet, sleep, until, type FleetCounts } from './devices.ts'
import { expectEachStoredOnce, ledgerOf, report } from './ledger.ts'
import { anyAlive, devicesOf, duplicatesJudged, freePort, LONG, SECRET, startSystem, stopSystem, type FaultSystem } from './system.ts'

describe('fault: kill -9 of the whole citytwin start', () => {
  it('stores every acknowledged message exactly once across the restart', async () => {
    const dataDir = join(tempDir('citytwin-fault-'), 'db')
    const port = await freePort()
    let system: FaultSystem | undefined = await startSystem(dataDir, port)
    let fleet: FaultFleet | undefined
    let counts: FleetCounts | undefined
    let judgedStored: number | undefined
    try {
      const devices = await devicesOf(dataDir, 'gas', 250)
      // One of them leaks (40% LEL, over the gas-leak rule's 20 for its 10 s): its ticket must be there after the
      // restart, the same one, once.
      const leak = devices[0]
      if (!leak) throw new Error('no gas sensors')
      devices[0] = { ...leak, value: 40 }
      fleet = new FaultFleet(devices, { port, secret: SECRET, ratePerS: 2 })
      await fleet.start()
      await until(() => (fleet?.counts().acknowledged ?? 0) >= 1_000, 60_000, '1,000 messages acknowledged')
      const leakTickets = async (s: FaultSystem): Promise<{ id: string; status: string; signalActive?: boolean }[]> =>
        ((await (await fetch(`${s.api}/api/tickets?type=gas_leak&limit=500`)).json()) as { items: { id: string; status: string; signalActive?: boolean; subject?: { deviceId?: string } }[] }).items.filter((t) => t.subject?.deviceId === leak.id)
      await until(async () => (await leakTickets(system as FaultSystem)).length === 1, 60_000, 'the leak\'s ticket raised')
      const raised = await leakTickets(system)
      const primary = system.run.child.pid ?? 0
      const workers = gatewayWorkerPids(primary)
      expect(workers).toHaveLength(2)
      // The workers stopped first for half a second: the primary stores what they relayed and cannot tell them,
      // so messages are stored and not acknowledged when everything dies, as a supervisor's kill -9 of the
      // whole process tree leaves them.
      for (const w of workers) process.kill(w, 'SIGSTOP')
      await sleep(500)
      process.kill(primary, 'SIGKILL')
      for (const w of workers) process.kill(w, 'SIGKILL')
      await system.run.exited
      system = undefined
      await until(() => !anyAlive(workers), 30_000, 'the gateway workers ended')
      const ackedAtKill = fleet.ackedPerDevice()
      expect(fleet.counts().unacknowledged).toBeGreaterThan(0)

      system = await startSystem(dataDir, port)
      await until(() => (fleet?.ackedPerDevice() ?? []).every((n, i) => n > (ackedAtKill[i] ?? 0)), 90_000, 'every device acknowledged again after the restart')
      await sleep(LONG ? 30_000 : 2_000)
      // The restarted twin has every device's latest reading (its state was rebuilt from the store).
      const gas = await (await fetch(`${system.api}/api/devices/${devices[0]?.id ?? ''}`)).json() as { status: string; values: Record<string, { value: number }> }
      expect(gas.status).toBe('online')
      expect(gas.values.ch4_pct_lel).toBeDefined()
      // The leak goes on through the restart: the ticket raised before it, still open and its signal on, and no second one.
      await sleep(12_000)
      expect((await leakTickets(system)).map((t) => [t.id, t.signalActive])).toEqual(raised.map((t) => [t.id, true]))
      expect((await (await fetch(`${system.api}/api/tickets?type=gas_leak&limit=500`)).json() as { items: unknown[] }).items).toHaveLength(1)
      judgedStored = await duplicatesJudged(system.api)
    } finally {
      counts = await fleet?.stop()
      if (system) await stopSystem(system)
    }
    if (!fleet || !counts) throw new Error('the fleet never started')
    const l = await ledgerOf(dataDir, fleet, counts)
    report('kill -9 of the whole citytwin start, then a restart', l, { 'connections dropped': counts.dropped, 'retransmissions the gateway found stored already': judgedStored ?? '?' })
    expect(counts.dropped).toBeGreaterThanOrEqual(fleet.devices.length)
    expect(l.resent).toBeGreaterThan(0)
    expectEachStoredOnce(l, counts)
  })
})
