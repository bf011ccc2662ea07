// Fault: a gateway worker killed (kill -9) under QoS 1 load. Its devices
// lose their connections; what it had stored but not acknowledged comes
// again as DUP, on whichever worker the device reaches. The demo city's
// 250 gas sensors send 2 msg/s each, the most mqtt.ratePerDevicePerS lets
// one send. Every message acknowledged before or after is stored, and
// stored once.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { gatewayWorkerPids } from '../../bench/proc.ts'
import { tempDir } from '../helpers.ts'
import { FaultFleet, sleep, until, type FleetCounts } from './devices.ts'
import { expectEachStoredOnce, ledgerOf, report } from './ledger.ts'
import { devicesOf, duplicatesJudged, freePort, LONG, SECRET, socketsOf, startSystem, stopSystem } from './system.ts'

describe('fault: kill -9 of a gateway worker', () => {
  it('stores every acknowledged message exactly once', async () => {
    const dataDir = join(tempDir('citytwin-fault-'), 'db')
    const port = await freePort()
    const system = await startSystem(dataDir, port)
    const primary = system.run.child.pid ?? 0
    let fleet: FaultFleet | undefined
    let counts: FleetCounts | undefined
    let judgedStored: number | undefined
    try {
      fleet = new FaultFleet(await devicesOf(dataDir, 'gas', 250), { port, secret: SECRET, ratePerS: 2 })
      await fleet.start()
      await until(() => (fleet?.counts().acknowledged ?? 0) >= 1_000, 60_000, '1,000 messages acknowledged')
      const before = gatewayWorkerPids(primary)
      expect(before).toHaveLength(2)
      // The kernel shares connections between the workers unevenly: the one holding more devices goes.
      const victim = [...before].sort((a, b) => socketsOf(b) - socketsOf(a))[0] as number
      // Stopped first for half a second, so its devices have messages in flight when it dies (some relayed and
      // stored, not acknowledged), as a hung worker killed by its supervisor would.
      process.kill(victim, 'SIGSTOP')
      await sleep(500)
      process.kill(victim, 'SIGKILL')
      // Its devices come back on the other worker, then on its replacement.
      await until(() => {
        const now = gatewayWorkerPids(primary)
        return now.length === 2 && !now.includes(victim)
      }, 60_000, 'the killed worker replaced')
      const ackedAtKill = fleet.ackedPerDevice()
      await sleep(LONG ? 30_000 : 3_000)
      // Every device is served again: each has had messages acknowledged since.
      await until(() => (fleet?.ackedPerDevice() ?? []).every((n, i) => n > (ackedAtKill[i] ?? 0)), 60_000, 'every device acknowledged again after the kill')
      judgedStored = await duplicatesJudged(system.api)
    } finally {
      counts = await fleet?.stop()
      await stopSystem(system)
    }
    if (!fleet || !counts) throw new Error('the fleet never started')
    const l = await ledgerOf(dataDir, fleet, counts)
    report('kill -9 of a gateway worker', l, { 'connections dropped': counts.dropped, 'retransmissions the gateway found stored already': judgedStored ?? '?' })
    // The worker held devices: they lost their connections, and came back.
    expect(counts.dropped).toBeGreaterThan(0)
    expect(l.resent).toBeGreaterThan(0)
    expectEachStoredOnce(l, counts)
  })
})
