// Fault: the store away under load. With gateway workers, the store (and
// the relay the workers hand their rows to) lives in the primary; stopping
// it (SIGSTOP) for 15 s (60 s in the long profile) stalls every write while
// the devices keep publishing without waiting for PUBACKs. The workers
// must push back on the sockets instead of holding what arrives: their
// memory stays flat, nothing is acknowledged meanwhile, and once the store
// is back everything is stored and acknowledged, once.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { gatewayWorkerPids, memoryOf } from '../../bench/proc.ts'
import { tempDir } from '../helpers.ts'
import { FaultFleet, sleep, until, type FleetCounts } from './devices.ts'
import { expectEachStoredOnce, ledgerOf, report } from './ledger.ts'
import { devicesOf, freePort, LONG, SECRET, startSystem, stopSystem } from './system.ts'

const STALL_MS = LONG ? 60_000 : 15_000
const MIB = 1024 * 1024

describe('fault: the store away for a while under load', () => {
  it('pushes back on the devices, keeps memory flat, and stores everything once it is back', async () => {
    const dataDir = join(tempDir('citytwin-fault-'), 'db')
    const port = await freePort()
    const system = await startSystem(dataDir, port)
    const primary = system.run.child.pid ?? 0
    let fleet: FaultFleet | undefined
    let counts: FleetCounts | undefined
    let stall: { ackedDuring: number; sentDuring: number; offeredMiB: number; rssGrowthMiB: number; rssBeforeMiB: number; unackedPeak: number } | undefined
    try {
      // Devices at the most the gateway lets one send (mqtt.ratePerDevicePerS), that do not wait for their PUBACKs
      // (a window far above the gateway's per-connection limit): what they send during the stall comes in one burst.
      fleet = new FaultFleet(await devicesOf(dataDir, 'gas', 250), { port, secret: SECRET, ratePerS: 2, window: 1_000_000 })
      await fleet.start()
      await until(() => (fleet?.counts().acknowledged ?? 0) >= 2_000, 60_000, '2,000 messages acknowledged')
      const workers = gatewayWorkerPids(primary)
      expect(workers).toHaveLength(2)
      const rss = (): number => workers.reduce((s, pid) => s + memoryOf(pid).rss, 0)
      const rssBefore = rss()
      process.kill(primary, 'SIGSTOP')
      let peak = rssBefore
      try {
        // PUBACKs of what was stored just before may still come; after a second, none can.
        await sleep(1_000)
        const acked0 = fleet.counts().acknowledged
        const bytes0 = fleet.counts().bytesWritten
        const sent0 = fleet.counts().sent
        for (let t = 1_000; t < STALL_MS; t += 500) {
          await sleep(500)
          peak = Math.max(peak, rss())
        }
        const c = fleet.counts()
        stall = { ackedDuring: c.acknowledged - acked0, sentDuring: c.sent - sent0, offeredMiB: Math.round((c.bytesWritten - bytes0) / MIB * 10) / 10, rssGrowthMiB: Math.round((peak - rssBefore) / MIB), rssBeforeMiB: Math.round(rssBefore / MIB), unackedPeak: c.unacknowledged }
      } finally {
        process.kill(primary, 'SIGCONT')
      }
      // Back: the backlog drains, and the devices go on.
      await until(() => (fleet?.counts().unacknowledged ?? 1) < 2_000, 180_000, 'the backlog acknowledged')
    } finally {
      counts = await fleet?.stop(180_000)
      await stopSystem(system)
    }
    if (!fleet || !counts || !stall) throw new Error('the case did not run to its end')
    const l = await ledgerOf(dataDir, fleet, counts)
    report(`the store away for ${STALL_MS / 1000} s under load`, l, {
      'acknowledged while away': stall.ackedDuring, 'sent while away': stall.sentDuring, 'MiB the devices wrote meanwhile': stall.offeredMiB, 'unacknowledged at the end of the stall': stall.unackedPeak,
      'workers RSS before (MiB)': stall.rssBeforeMiB, 'grew by at most (MiB)': stall.rssGrowthMiB,
    })
    // Nothing is acknowledged that is not stored.
    expect(stall.ackedDuring).toBe(0)
    // The devices kept offering, more than the gateway may hold in flight (mqtt.maxInFlightPerConnection, 8 a
    // connection): it held its share and left the rest in TCP, its memory flat.
    expect(stall.sentDuring).toBeGreaterThan(250 * 8)
    expect(stall.unackedPeak).toBeGreaterThanOrEqual(stall.sentDuring)
    expect(stall.rssGrowthMiB).toBeLessThan(64)
    expectEachStoredOnce(l, counts)
  })
})
