// Cameras provisioned while the system runs (registry/provision.ts, the
// camera log, the twin's rebuild), with no restart: a camera added through
// the API shows in the twin in its grids, an update from the command line
// changes its stream, a move puts it in its new grids, a decommission takes
// it off the map; bad requests are refused with their reason and change
// nothing; each change is logged with who made it and why, and the API's
// in the audit trail.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runCli, storeQuery, tempDir } from '../helpers.ts'
import { until } from '../faults/devices.ts'
import { freePort, startSystem, stopSystem } from '../faults/system.ts'

const ADMIN = 'camera-provision-test-admin-token'
const ID = 'X-CAM-GATE-1'

const query = storeQuery

describe('camera provisioning', () => {
  it('adds, updates, moves and decommissions a camera while the system runs', async () => {
    const dataDir = join(tempDir(), 'db')
    const system = await startSystem(dataDir, await freePort(), {
      CITYTWIN_TWIN_REGISTRY_REFRESH_MS: '300',
      CITYTWIN_API_TOKENS: JSON.stringify([{ name: 'ops-admin', role: 'admin', token: ADMIN }]),
    }, 1)
    const api = (path: string, body: unknown): Promise<Response> =>
      fetch(`${system.api}${path}`, { method: 'POST', body: JSON.stringify(body), headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' } })
    const twinView = async (): Promise<{ status: number; body: { kind?: string; grids?: { micro: number; community: number } } }> => {
      const r = await fetch(`${system.api}/api/cameras/${ID}`)
      return { status: r.status, body: (await r.json()) as { kind?: string; grids?: { micro: number; community: number } } }
    }
    const cameras = async (): Promise<number> => {
      const r = await runCli(['city', 'stats', '--json', '--data-dir', dataDir])
      if (r.code !== 0) throw new Error(`city stats failed: ${r.stderr}`)
      return (JSON.parse(r.stdout) as { cameras: number }).cameras
    }
    try {
      const micros = await query<{ id: number; community_id: number }>(dataDir, "SELECT id, community_id FROM grids WHERE level = 'micro' ORDER BY id")
      const here = micros[0] as { id: number; community_id: number }
      const there = micros.find((m) => m.community_id !== here.community_id) as { id: number; community_id: number }
      const before = await cameras()
      const openApi = (await (await fetch(`${system.api}/openapi.json`)).json()) as { paths: Record<string, unknown> }
      expect(Object.keys(openApi.paths)).toEqual(expect.arrayContaining(['/api/admin/cameras', '/api/admin/cameras/{id}/update', '/api/admin/cameras/{id}/move', '/api/admin/cameras/{id}/decommission']))

      expect((await twinView()).status).toBe(404)
      const added = await api('/api/admin/cameras', { id: ID, kind: 'road', rtspUrl: 'rtsp://10.20.0.7:554/live', microGridId: here.id, reason: 'new junction camera' })
      expect(added.status).toBe(201)
      expect(await added.json()).toMatchObject({ op: 'add', camera: { id: ID, kind: 'road', microGridId: here.id, communityId: here.community_id, rtspUrl: 'rtsp://10.20.0.7:554/live', profile: { codec: 'h264', width: 1920, fps: 25 } } })
      await until(async () => (await twinView()).status === 200, 30_000, 'the twin knows the added camera')
      expect((await twinView()).body).toMatchObject({ kind: 'road', grids: { micro: here.id, community: here.community_id } })
      expect(await cameras()).toBe(before + 1)

      // Refusals, each with its reason, and nothing changed by them.
      expect(await (await api('/api/admin/cameras', { id: ID, kind: 'road', rtspUrl: 'rtsp://10.20.0.7/live', microGridId: here.id })).json()).toMatchObject({ error: { code: 'CAMERA_EXISTS' } })
      expect(await (await api('/api/admin/cameras', { id: 'X-CAM-2', kind: 'road', rtspUrl: 'http://10.20.0.7/live', microGridId: here.id })).json()).toMatchObject({ error: { code: 'BAD_REQUEST', message: expect.stringContaining('rtsp://') as unknown } })
      expect((await api('/api/admin/cameras', { id: 'X-CAM-3', kind: 'drone', rtspUrl: 'rtsp://10.20.0.7/live', microGridId: here.id })).status).toBe(400)
      expect((await api('/api/admin/cameras', { id: 'X-CAM-4', kind: 'road', rtspUrl: 'rtsp://10.20.0.7/live', lon: 100, lat: 30 })).status).toBe(400)
      expect(await (await api('/api/admin/cameras/X-CAM-NONE/move', { microGridId: here.id })).json()).toMatchObject({ error: { code: 'CAMERA_NOT_FOUND' } })
      expect(await cameras()).toBe(before + 1)

      // Updated from the command line: a new stream, the rest of its profile as it was.
      const updated = await runCli(['cameras', 'update', ID, '--rtsp-url', 'rtsps://10.20.0.8/main', '--fps', '15', '--reason', 'new encoder', '--data-dir', dataDir])
      expect(updated.code, updated.stderr).toBe(0)
      expect(updated.stdout).toContain('rtsps://10.20.0.8/main (h264 1920x1080 15 fps)')
      const bad = await runCli(['cameras', 'update', ID, '--codec', 'mjpeg', '--data-dir', dataDir])
      expect(bad.code).not.toBe(0)
      expect(bad.stderr).toContain('h264 or h265')

      // Moved through the API: the twin has it in its new grids.
      expect((await api(`/api/admin/cameras/${ID}/move`, { microGridId: there.id, reason: 'moved to the market gate' })).status).toBe(200)
      await until(async () => (await twinView()).body.grids?.micro === there.id, 30_000, 'the twin has the camera in its new grid')
      const stored = await query<{ rtsp_url: string; fps: number; micro_grid_id: number }>(dataDir, `SELECT rtsp_url, fps, micro_grid_id FROM cameras WHERE id = '${ID}'`)
      expect(stored).toEqual([{ rtsp_url: 'rtsps://10.20.0.8/main', fps: 15, micro_grid_id: there.id }])

      // Decommissioned from the command line: off the map, out of the registry.
      const gone = await runCli(['cameras', 'decommission', ID, '--reason', 'replaced', '--data-dir', dataDir])
      expect(gone.code, gone.stderr).toBe(0)
      await until(async () => (await twinView()).status === 404, 30_000, 'the twin forgot the decommissioned camera')
      expect(await cameras()).toBe(before)
      expect((await runCli(['cameras', 'move', ID, '--micro-grid', String(here.id), '--data-dir', dataDir])).code).not.toBe(0)

      // The log of changes, in order, with who made each and why; the API's in the audit trail too.
      const log = await query<{ op: string; actor: string; reason: string }>(dataDir, `SELECT op, actor, reason FROM camera_changes WHERE camera_id = '${ID}' ORDER BY at`)
      expect(log.map((l) => [l.op, l.actor.startsWith('cli:') ? 'cli' : l.actor, l.reason])).toEqual([
        ['add', 'ops-admin', 'new junction camera'], ['update', 'cli', 'new encoder'], ['move', 'ops-admin', 'moved to the market gate'], ['decommission', 'cli', 'replaced'],
      ])
      await until(async () => {
        const audit = (await (await fetch(`${system.api}/api/audit`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { items: { actor: string; route: string; status: number }[] }
        return ['/api/admin/cameras', '/move'].every((r) => audit.items.some((a) => a.actor === 'ops-admin' && a.route.endsWith(r) && a.route.includes('cameras') && a.status < 300))
      }, 10_000, 'the changes in the audit trail')
    } finally {
      await stopSystem(system)
    }
  }, 180_000)
})
