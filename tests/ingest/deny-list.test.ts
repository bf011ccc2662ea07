// A device's access revoked at runtime (ingest/mqtt/deny-list.ts): through
// the API and the CLI, with gateway workers, no restart. A denied device's
// connection ends, its CONNECT is refused (not authorized), other devices
// are not touched, the change is in the audit trail, and given back it
// connects again.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { deviceToken } from '../../ingest/mqtt/tokens.ts'
import { runCli, tempDir } from '../helpers.ts'
import { connackOf as connackWith, FaultFleet, until } from '../faults/devices.ts'
import { devicesOf, freePort, SECRET, startSystem, stopSystem } from '../faults/system.ts'

const ADMIN = 'deny-list-test-admin-token'


/** The CONNACK code a device gets with its own token. */
const connackOf = (port: number, id: string): Promise<number> => connackWith(port, id, deviceToken(SECRET, id))

describe('device deny list', () => {
  it('ends a denied device\'s connection and refuses it in every worker, without a restart, until it is given back', async () => {
    const dataDir = join(tempDir(), 'db')
    const port = await freePort()
    const system = await startSystem(dataDir, port, {
      CITYTWIN_MQTT_DENY_LIST_REFRESH_MS: '300',
      CITYTWIN_API_TOKENS: JSON.stringify([{ name: 'ops-admin', role: 'admin', token: ADMIN }]),
    })
    const api = (path: string, init: RequestInit = {}): Promise<Response> => fetch(`${system.api}${path}`, { ...init, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' } })
    let fleet: FaultFleet | undefined
    try {
      const [bad, ...good] = await devicesOf(dataDir, 'gas', 6)
      if (!bad) throw new Error('no devices')
      fleet = new FaultFleet([bad, ...good], { port, secret: SECRET, ratePerS: 1 })
      await fleet.start()
      const acked = (): number[] => fleet?.ackedPerDevice() ?? []
      await until(() => acked().every((n) => n > 0), 30_000, 'every device acknowledged')

      // Denied through the API: its connection ends, it cannot come back, the others go on.
      const denied = await api(`/api/admin/devices/${bad.id}/deny`, { method: 'POST', body: JSON.stringify({ reason: 'cloned token' }) })
      expect(denied.status).toBe(200)
      await until(() => fleet?.counts().dropped === 1, 30_000, 'the denied device\'s connection ended')
      const before = acked()
      await until(() => acked().slice(1).every((n, i) => n > (before[i + 1] ?? 0)), 30_000, 'the other devices still served')
      expect(acked()[0]).toBe(before[0])
      // Both workers refuse it (the kernel hands each CONNECT to either).
      for (let i = 0; i < 6; i++) expect(await connackOf(port, bad.id)).toBe(5)
      // (A second connection of a device takes over its session: a device of its own here, not one of the fleet.)
      const other = (await devicesOf(dataDir, 'noise', 1))[0]
      expect(await connackOf(port, other?.id ?? '')).toBe(0)
      const list = (await (await api('/api/admin/devices/denied')).json()) as { items: { deviceId: string; reason: string; actor: string }[] }
      expect(list.items).toMatchObject([{ deviceId: bad.id, reason: 'cloned token', actor: 'ops-admin' }])
      expect((await api('/api/admin/devices/D9999999/deny', { method: 'POST', body: '{}' })).status).toBe(404)
      // Not without the admin role.
      expect((await fetch(`${system.api}/api/admin/devices/${bad.id}/allow`, { method: 'POST' })).status).toBe(401)

      // Given back from the command line: it connects again by itself.
      const allow = await runCli(['devices', 'allow', bad.id, '--data-dir', dataDir])
      expect(allow.code).toBe(0)
      const ackedAtAllow = acked()[0] ?? 0
      await until(() => (acked()[0] ?? 0) > ackedAtAllow, 30_000, 'the device served again once allowed')
      // And denied from it too.
      const droppedBefore = fleet.counts().dropped
      expect((await runCli(['devices', 'deny', bad.id, '--reason', 'floods', '--data-dir', dataDir])).code).toBe(0)
      const shown = await runCli(['devices', 'denied', '--json', '--data-dir', dataDir])
      expect(shown.stdout.trim().split('\n').map((l) => JSON.parse(l) as { deviceId: string; reason: string })).toMatchObject([{ deviceId: bad.id, reason: 'floods' }])
      await until(() => (fleet?.counts().dropped ?? 0) > droppedBefore, 30_000, 'its connection ended again')

      // Every change is in the audit trail, with who made it.
      await until(async () => {
        const audit = (await (await api('/api/audit')).json()) as { items: { actor: string; route: string; status: number }[] }
        return audit.items.some((a) => a.actor === 'ops-admin' && a.route.includes('/deny') && a.status === 200)
      }, 10_000, 'the denial in the audit trail')
    } finally {
      await fleet?.stop(5_000)
      await stopSystem(system)
    }
  })
})
