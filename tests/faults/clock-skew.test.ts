// Fault: devices whose clocks are wrong. What ingest/README.md promises
// ("Device clocks"): a reading is stored with the device's own time when
// that is at most mqtt.maxFutureMs ahead of the gateway (5 min) and at most
// mqtt.maxPastMs behind (a day); further ahead it is dead-lettered
// (INGEST_TS_FUTURE), still acknowledged, so the device does not send it
// for ever. Whether a device is alive is judged by the gateway's clock (when
// its readings arrived), never by the device's: a device a few minutes
// behind is online, not silent; one ahead goes offline when it disconnects;
// and how late the data is (the twin's lag) is measured by the gateway's
// clock too.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { metricSum } from '../../bench/metrics.ts'
import { tempDir } from '../helpers.ts'
import { FaultFleet, sleep, until, type FleetCounts } from './devices.ts'
import { ledgerOf, report } from './ledger.ts'
import { devicesOf, freePort, SECRET, startSystem, stopSystem } from './system.ts'

const MIN = 60_000

describe('fault: devices with skewed clocks', () => {
  it('stores what is within the limits with the device time, judges liveness by the gateway clock, and dead-letters the rest', async () => {
    const dataDir = join(tempDir('citytwin-fault-'), 'db')
    const port = await freePort()
    // A gas sensor (every 5 s) counts as silent after 3 of its intervals: 15 s.
    const system = await startSystem(dataDir, port, { CITYTWIN_TWIN_SILENT_AFTER_INTERVALS: '3' }, 1)
    const fleets: Record<'behind' | 'ahead' | 'tooFar', FaultFleet | undefined> = { behind: undefined, ahead: undefined, tooFar: undefined }
    const counts: Partial<Record<keyof typeof fleets, FleetCounts>> = {}
    const status = async (id: string): Promise<string> => ((await (await fetch(`${system.api}/api/devices/${id}`)).json()) as { status: string }).status
    try {
      const gas = await devicesOf(dataDir, 'gas', 30)
      fleets.behind = new FaultFleet(gas.slice(0, 10), { port, secret: SECRET, ratePerS: 1, clockSkewMs: -3 * MIN })
      fleets.ahead = new FaultFleet(gas.slice(10, 20), { port, secret: SECRET, ratePerS: 1, clockSkewMs: 4 * MIN })
      fleets.tooFar = new FaultFleet(gas.slice(20, 30), { port, secret: SECRET, ratePerS: 1, clockSkewMs: 10 * MIN })
      await Promise.all([fleets.behind.start(), fleets.ahead.start(), fleets.tooFar.start()])
      // Longer than the 15 s after which a device three minutes behind would look silent by its own clock.
      await sleep(20_000)
      for (const d of gas.slice(0, 20)) expect([d.id, await status(d.id)]).toEqual([d.id, 'online'])
      // Nor is the data late: readings arrive as they are sent, whatever time they carry. (Half the readings
      // three minutes "old" had set the twin's lag to three minutes: it judged no device in the city silent
      // until three minutes after its last reading, and the 'behind' devices passed above for that reason.)
      expect(metricSum(await (await fetch(`${system.api}/metrics`)).text(), 'citytwin_twin_lag_seconds')).toBeLessThan(10)
      expect(((await (await fetch(`${system.api}/api/ingest`)).json()) as { degraded: boolean }).degraded).toBe(false)
      // Devices ahead of the gateway end their connections: they are offline, not kept online by their clocks.
      counts.ahead = await fleets.ahead.stop()
      for (const d of gas.slice(10, 20)) await until(async () => (await status(d.id)) === 'offline', 10_000, `${d.id} (4 min ahead) offline once disconnected`)
      counts.behind = await fleets.behind.stop()
      counts.tooFar = await fleets.tooFar.stop()
    } finally {
      for (const [k, f] of Object.entries(fleets) as [keyof typeof fleets, FaultFleet | undefined][]) counts[k] ??= await f?.stop()
      await stopSystem(system)
    }
    for (const k of ['behind', 'ahead', 'tooFar'] as const) {
      const fleet = fleets[k]
      const c = counts[k]
      if (!fleet || !c) throw new Error('the case did not run to its end')
      const l = await ledgerOf(dataDir, fleet, c)
      report(`device clocks ${({ behind: '3 min behind', ahead: '4 min ahead', tooFar: '10 min ahead' })[k]}`, l)
      expect(c.unacknowledged).toBe(0)
      expect(l.acknowledged).toBe(l.sent)
      if (k === 'tooFar') {
        expect(l.stored).toBe(0)
        expect(l.deadLetters.map((d) => d.code)).toEqual(['INGEST_TS_FUTURE'])
        expect(l.deadLettered).toBe(l.sent)
      } else {
        expect(l.stored).toBe(l.sent)
        expect(l.deadLettered).toBe(0)
      }
    }
  })
})
