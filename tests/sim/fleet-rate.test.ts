// The device fleet's rate can be changed while it runs (the overload
// benchmark raises it, then lowers it): a device reports as often as the new
// rate says from then on, in both directions. Against a real aedes broker.
import { createServer } from 'node:net'
import { Aedes } from 'aedes'
import { describe, expect, it } from 'vitest'
import { DeviceFleet } from '../../simulators/devices/fleet.ts'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

describe('device fleet rate', () => {
  it('follows a new rate scale while it runs, up and back down', async () => {
    const broker = await Aedes.createBroker()
    const published = new Map<string, number>()
    broker.on('publish', (p, client) => {
      if (client) published.set(client.id, (published.get(client.id) ?? 0) + 1)
    })
    const server = createServer((s) => broker.handle(s))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as { port: number }).port
    // Smoke sensors report every 60 s: at the normal rate one report in the first seconds.
    const fleet = new DeviceFleet([{ id: 'DSMOKE1', type: 'smoke', intervalS: 60 }, { id: 'DSMOKE2', type: 'smoke', intervalS: 60 }], {
      host: '127.0.0.1', port, sources: [], portOffset: 0, secret: 's', qos: 1, rateScale: 1, connectConcurrency: 2,
      keepaliveS: 60, reconnect: false, reconnectSpreadMs: 1_000,
    })
    try {
      await fleet.start()
      await sleep(1_500)
      const atNormal = fleet.stats().sent
      expect(atNormal).toBeLessThanOrEqual(2)
      expect(() => fleet.setRateScale(0)).toThrow(/positive/)
      // 300 times as often: every 0.2 s each.
      fleet.setRateScale(300)
      await sleep(2_000)
      const atHigh = fleet.stats().sent
      expect(atHigh - atNormal).toBeGreaterThanOrEqual(8)
      // Back to normal: at most one more report each (the next falls anywhere in the minute).
      fleet.setRateScale(1)
      await sleep(1_500)
      expect(fleet.stats().sent - atHigh).toBeLessThanOrEqual(2)
      expect(fleet.stats()).toMatchObject({ connected: 2, disconnects: 0 })
      expect((published.get('DSMOKE1') ?? 0) + (published.get('DSMOKE2') ?? 0)).toBe(fleet.stats().sent)
    } finally {
      await fleet.stop(1_000)
      await new Promise<void>((r) => broker.close(() => r()))
      server.close()
    }
  })
})
