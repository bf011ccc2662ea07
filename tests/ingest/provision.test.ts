// Devices provisioned while the system runs (registry/provision.ts,
// ingest/mqtt/registry-watch.ts, the twin's rebuild), with two gateway
// workers and no restart:
// a device added through the API connects through every worker, a moved
// device's readings belong to its new grids from its reconnect on, whichever
// worker it comes back to (its roll-ups too), a rotated
// device's old token is refused, a decommissioned device is disconnected
// and refused; each change is logged, and audited when made through the API.
import { join } from 'node:path'
import mqtt from 'mqtt'
import { describe, expect, it } from 'vitest'
import { deviceToken } from '../../ingest/mqtt/tokens.ts'
import { runCli, storeQuery, tempDir } from '../helpers.ts'
import { connackOf, until } from '../faults/devices.ts'
import { freePort, SECRET, startSystem, stopSystem } from '../faults/system.ts'

const ADMIN = 'provision-test-admin-token'
const ID = 'X-NEW-GAS-1'


/**
 * Six CONNACK codes in a row (the kernel hands each CONNECT to either
 * worker), once six in a row are `code`: each worker follows the change
 * within its own refresh.
 */
async function everyWorkerAnswers(port: number, id: string, token: string, code: number): Promise<number[]> {
  let codes: number[] = []
  await until(async () => {
    codes = []
    for (let i = 0; i < 6; i++) codes.push(await connackOf(port, id, token))
    return codes.every((c) => c === code)
  }, 30_000, `${id} answered ${code} six times in a row`)
  return codes
}

const query = storeQuery

describe('device provisioning', () => {
  it('adds, moves, rotates and decommissions a device in every worker without a restart', async () => {
    const dataDir = join(tempDir(), 'db')
    const port = await freePort()
    const system = await startSystem(dataDir, port, {
      CITYTWIN_MQTT_DENY_LIST_REFRESH_MS: '300',
      CITYTWIN_WRITER_ROLLUP_INTERVAL_MS: '500',
      CITYTWIN_TWIN_REGISTRY_REFRESH_MS: '300',
      CITYTWIN_API_TOKENS: JSON.stringify([{ name: 'ops-admin', role: 'admin', token: ADMIN }]),
    })
    const api = (path: string, body: unknown): Promise<Response> =>
      fetch(`${system.api}${path}`, { method: 'POST', body: JSON.stringify(body), headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' } })
    let device: mqtt.MqttClient | undefined
    try {
      // Two micro-grids of different communities.
      const micros = await query<{ id: number; community_id: number }>(dataDir, "SELECT id, community_id FROM grids WHERE level = 'micro' ORDER BY id")
      const here = micros[0] as { id: number; community_id: number }
      const there = micros.find((m) => m.community_id !== here.community_id) as { id: number; community_id: number }

      // Unknown to every worker before it is added.
      expect(await connackOf(port, ID, deviceToken(SECRET, ID))).toBe(4)
      const added = await api('/api/admin/devices', { id: ID, type: 'gas', microGridId: here.id, reason: 'new kitchen detector' })
      expect(added.status).toBe(201)
      expect(await added.json()).toMatchObject({ op: 'add', device: { id: ID, type: 'gas', microGridId: here.id, communityId: here.community_id, intervalS: 5, credentialVersion: 0 } })
      expect(await everyWorkerAnswers(port, ID, deviceToken(SECRET, ID), 0)).toEqual([0, 0, 0, 0, 0, 0])
      // The live twin follows too: the device is on the map, in its grid.
      const twinView = async (): Promise<{ status: number; body: { grids?: { micro: number; community: number } } }> => {
        const r = await fetch(`${system.api}/api/devices/${ID}`)
        return { status: r.status, body: (await r.json()) as { grids?: { micro: number; community: number } } }
      }
      await until(async () => (await twinView()).status === 200, 30_000, 'the twin knows the added device')
      expect((await twinView()).body.grids).toMatchObject({ micro: here.id, community: here.community_id })
      // Refusals, each with its reason, and nothing changed by them.
      expect((await api('/api/admin/devices', { id: ID, type: 'gas', microGridId: here.id })).status).toBe(409)
      expect(await (await api('/api/admin/devices', { id: 'X-NOWHERE', type: 'gas', lon: 100, lat: 30 })).json()).toMatchObject({ error: { code: 'BAD_REQUEST', message: expect.stringContaining('lies in no micro-grid') as unknown } })
      expect((await api('/api/admin/devices/X-NONE/move', { microGridId: here.id })).status).toBe(404)
      expect((await api('/api/admin/devices', { id: 'X-2', type: 'gas', lon: 113.6 })).status).toBe(400)

      // Its readings carry its grids; after a move its connection ends and what it sends belongs to the new ones.
      let closes = 0
      let seq = 0
      const publish = async (): Promise<void> => {
        seq++
        // Two minutes old: the roll-ups write a minute once it has ended (store/rollups.ts), and this test waits for its row.
        await device?.publishAsync(`devices/${ID}/telemetry`, JSON.stringify({ ts: Date.now() - 120_000, seq, values: { ch4_pct_lel: 0.5 } }), { qos: 1 })
      }
      device = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: ID, username: ID, password: deviceToken(SECRET, ID), reconnectPeriod: 200 })
      device.on('close', () => closes++)
      await publish()
      expect((await api(`/api/admin/devices/${ID}/move`, { microGridId: there.id, reason: 'moved to the market' })).status).toBe(200)
      await until(() => closes > 0 && device?.connected === true, 30_000, 'the moved device reconnected')
      // Every worker had the move before any ended the connection (ingest/mqtt/registry-sync.ts): whichever the
      // device came back to takes it in its new grids, and none ends it again on reading the move later.
      const firstAfter = seq + 1
      for (let i = 0; i < 3; i++) await publish()
      type Stored = { seq: number; community_id: number; micro_grid_id: number }
      const storedRows = (): Promise<Stored[]> => query<Stored>(dataDir, `SELECT seq, community_id, micro_grid_id FROM readings WHERE device_id = '${ID}' ORDER BY seq`)
      await until(async () => (await storedRows()).some((r) => r.seq === seq), 30_000, 'the readings after the move stored')
      const rows = await storedRows()
      expect(rows[0]).toEqual({ seq: 1, community_id: here.community_id, micro_grid_id: here.id })
      expect(rows.filter((r) => r.seq >= firstAfter)).toEqual([0, 1, 2].map((i) => ({ seq: firstAfter + i, community_id: there.community_id, micro_grid_id: there.id })))
      expect(closes).toBe(1)
      await until(async () => (await query(dataDir, `SELECT 1 FROM readings_1m WHERE community_id = ${there.community_id} AND device_type = 'gas' AND metric = 'ch4_pct_lel'`)).length > 0, 30_000, 'the new community\'s roll-up')
      await until(async () => (await twinView()).body.grids?.micro === there.id, 30_000, 'the twin has the device in its new grid')

      // Rotated: the answer gives the new token, the old one is refused in every worker, the connection ends.
      const closesBefore = closes
      const rotated = await api(`/api/admin/devices/${ID}/credentials/rotate`, { reason: 'token leaked' })
      const { token } = (await rotated.json()) as { token: string }
      expect(token).toBe(deviceToken(SECRET, ID, 1))
      expect((await runCli(['device-token', ID, '--data-dir', dataDir], { CITYTWIN_DEVICE_SECRET: SECRET })).stdout.trim()).toBe(token)
      await until(() => closes > closesBefore, 30_000, 'the rotated device\'s connection ended')
      device.end(true)
      expect(await everyWorkerAnswers(port, ID, deviceToken(SECRET, ID), 4)).toEqual([4, 4, 4, 4, 4, 4])
      expect(await everyWorkerAnswers(port, ID, token, 0)).toEqual([0, 0, 0, 0, 0, 0])

      // Decommissioned from the command line: refused as unknown in every worker.
      const gone = await runCli(['devices', 'decommission', ID, '--reason', 'replaced', '--data-dir', dataDir])
      expect(gone.code, gone.stderr).toBe(0)
      expect(await everyWorkerAnswers(port, ID, token, 4)).toEqual([4, 4, 4, 4, 4, 4])
      expect((await runCli(['device-token', ID, '--data-dir', dataDir])).code).toBe(1)
      await until(async () => (await twinView()).status === 404, 30_000, 'the twin forgot the decommissioned device')

      // The log of changes, in order, with who made each and why; the API's in the audit trail too.
      const log = await query<{ op: string; actor: string; reason: string }>(dataDir, `SELECT op, actor, reason FROM device_changes WHERE device_id = '${ID}' ORDER BY at`)
      expect(log.map((l) => [l.op, l.actor.startsWith('cli:') ? 'cli' : l.actor, l.reason])).toEqual([
        ['add', 'ops-admin', 'new kitchen detector'], ['move', 'ops-admin', 'moved to the market'], ['rotate', 'ops-admin', 'token leaked'], ['decommission', 'cli', 'replaced'],
      ])
      await until(async () => {
        const audit = (await (await fetch(`${system.api}/api/audit`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { items: { actor: string; route: string; status: number }[] }
        return ['/api/admin/devices', '/move', '/credentials/rotate'].every((r) => audit.items.some((a) => a.actor === 'ops-admin' && a.route.endsWith(r) && a.status < 300))
      }, 10_000, 'the changes in the audit trail')
    } finally {
      device?.end(true)
      await stopSystem(system)
    }
  }, 180_000)
})
