// The device fleet pings as real clients do: a device that publishes within
// its keep-alive sends no PINGREQ; a quiet one (a scenario's silence) does,
// so the broker keeps it connected. Against a real aedes broker.
import { createServer } from 'node:net'
import { Aedes } from 'aedes'
import { describe, expect, it } from 'vitest'
import { DeviceFleet } from '../../simulators/devices/fleet.ts'

describe('device fleet keep-alive', () => {
  it('sends PINGREQ only from devices that have been quiet for half their keep-alive', async () => {
    const broker = await Aedes.createBroker()
    const pings = new Map<string, number>()
    broker.on('ping', (_p, client) => pings.set(client.id, (pings.get(client.id) ?? 0) + 1))
    const server = createServer((s) => broker.handle(s))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as { port: number }).port
    const now = Date.now()
    // Smoke sensors report every 60 s; at 200 times that, every 0.3 s.
    const fleet = new DeviceFleet([{ id: 'DBUSY', type: 'smoke', intervalS: 60 }, { id: 'DQUIET', type: 'smoke', intervalS: 60 }], {
      host: '127.0.0.1', port, sources: [], portOffset: 0, secret: 's', qos: 0, rateScale: 200, connectConcurrency: 2,
      keepaliveS: 1, reconnect: false, reconnectSpreadMs: 1_000,
      injections: [{ deviceIds: ['DQUIET'], fromMs: now - 1_000, toMs: now + 60_000, silence: true }],
    })
    try {
      await fleet.start()
      await new Promise((r) => setTimeout(r, 2_500))
      expect(fleet.stats()).toMatchObject({ connected: 2, disconnects: 0 })
      expect(fleet.stats().sent).toBeGreaterThan(3)
      expect(pings.get('DBUSY') ?? 0).toBe(0)
      expect(pings.get('DQUIET') ?? 0).toBeGreaterThanOrEqual(2)
    } finally {
      await fleet.stop(0)
      await new Promise<void>((r) => broker.close(() => r()))
      server.close()
    }
  })
})
