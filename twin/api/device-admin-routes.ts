// Devices managed while the system runs, through the API: what `citytwin
// devices deny|allow|add|update|move|decommission|rotate` do from the
// command line. Access is revoked through the deny list
// (ingest/mqtt/deny-list.ts); devices are provisioned through the registry
// (registry/provision.ts); every gateway process follows both within
// mqtt.denyListRefreshMs. Each change is kept in the audit trail like any
// other (server.ts).
import type { ClickHouseClient } from '@clickhouse/client'
import { z } from 'zod'
import { listDenials, setDenial } from '../../ingest/mqtt/deny-list.ts'
import { deviceToken } from '../../ingest/mqtt/tokens.ts'
import type { DeviceChange, Location, Provisioner, ProvisionResult } from '../../registry/provision.ts'
import { DEVICE_TYPES_LIST } from '../../registry/device-types.ts'
import type { LiveTwin } from '../state/live-twin.ts'
import { HttpError, route, type Reply, type Route } from '../../lib/http/router.ts'

/** Why a change is made, in a provisioning request's body. */
export const reason = z.string().max(500).default('').describe('Why: kept with the change in the registry\'s log and the audit trail.')
/** Where a device or camera stands, in a provisioning request's body. */
export const location = {
  lon: z.number().min(-180).max(180).optional().describe('Where it stands (degrees); located in the micro-grid that holds it.'),
  lat: z.number().min(-90).max(90).optional(),
  microGridId: z.number().int().min(1).optional().describe('Or the micro-grid it stands in (then at its centroid); with lon and lat, the point must lie in it.'),
}
type Located = { lon?: number | undefined; lat?: number | undefined; microGridId?: number | undefined }
/** Whether a body places its subject: lon and lat together, or a micro-grid, or both. */
export const placed = (b: Located): boolean => (b.lon === undefined) === (b.lat === undefined) && (b.lon !== undefined || b.microGridId !== undefined)
export const PLACED = 'give lon and lat, or microGridId, or all three'
/** The place a checked body gives (placed() held). */
export const locationOf = (b: Located): Location => (b.lon !== undefined && b.lat !== undefined ? { lon: b.lon, lat: b.lat, microGridId: b.microGridId } : { microGridId: b.microGridId ?? 0 })

export function deviceAdminRoutes(live: LiveTwin, client: ClickHouseClient, provisioner: Provisioner, deviceSecret?: string): Route[] {
  const known = async (id: string): Promise<string> => {
    if (live.twin.deviceIndex(id) === undefined && !(await provisioner.get(id))) throw new HttpError(404, 'DEVICE_NOT_FOUND', `no device ${id}`)
    return id
  }
  const answer = (r: ProvisionResult, created = false): Reply => {
    if (!r.ok) throw new HttpError(r.status, r.code, r.message)
    return { status: created ? 201 : 200, body: { op: r.op, device: r.device, at: r.at } }
  }
  const change = async (c: DeviceChange, actor: string | undefined, why: string, created = false): Promise<Reply> => answer(await provisioner.apply(c, actor ?? 'anonymous', why), created)
  return [
    route({
      method: 'POST', path: '/api/admin/devices', tag: 'admin', role: 'admin',
      summary: 'Adds a device to the registry: every gateway lets it connect within mqtt.denyListRefreshMs; its token is citytwin device-token <id>',
      body: z.strictObject({
        id: z.string().min(1).max(64).describe('Its MQTT client id: letters, digits, ., _, : or -.'),
        type: z.enum(DEVICE_TYPES_LIST), ...location,
        intervalS: z.number().int().min(1).max(86_400).optional().describe('How often it reports; default its type\'s interval.'),
        installedAt: z.number().int().min(0).optional().describe('Epoch milliseconds.'), reason,
      }).refine(placed, PLACED),
      handler: async ({ body, caller }) => change({ op: 'add', id: body.id, type: body.type, at: locationOf(body), intervalS: body.intervalS, installedAt: body.installedAt }, caller?.name, body.reason, true),
    }),
    route({
      method: 'POST', path: '/api/admin/devices/{id}/update', tag: 'admin', role: 'admin',
      summary: 'Changes a device\'s type or reporting interval; its connection ends and it comes back as it is now',
      body: z.strictObject({ type: z.enum(DEVICE_TYPES_LIST).optional(), intervalS: z.number().int().min(1).max(86_400).optional(), reason }),
      handler: async ({ params, body, caller }) => change({ op: 'update', id: params.id ?? '', type: body.type, intervalS: body.intervalS }, caller?.name, body.reason),
    }),
    route({
      method: 'POST', path: '/api/admin/devices/{id}/move', tag: 'admin', role: 'admin',
      summary: 'Moves a device: its readings from then on belong to the grids of its new place',
      body: z.strictObject({ ...location, reason }).refine(placed, PLACED),
      handler: async ({ params, body, caller }) => change({ op: 'move', id: params.id ?? '', at: locationOf(body) }, caller?.name, body.reason),
    }),
    route({
      method: 'POST', path: '/api/admin/devices/{id}/decommission', tag: 'admin', role: 'admin',
      summary: 'Takes a device out of the registry: its connections end and every gateway refuses it as unknown; its stored data stays',
      body: z.strictObject({ reason }),
      handler: async ({ params, body, caller }) => change({ op: 'decommission', id: params.id ?? '' }, caller?.name, body.reason),
    }),
    route({
      method: 'POST', path: '/api/admin/devices/{id}/credentials/rotate', tag: 'admin', role: 'admin',
      summary: 'Rotates a device\'s credentials: its old token stops working, its connections end, and the answer carries the new token',
      body: z.strictObject({ reason }),
      handler: async ({ params, body, caller }) => {
        const r = await provisioner.apply({ op: 'rotate', id: params.id ?? '' }, caller?.name ?? 'anonymous', body.reason)
        const reply = answer(r)
        if (r.ok && deviceSecret !== undefined) return { status: 200, body: { ...(reply.body as object), token: deviceToken(deviceSecret, r.device.id, r.device.credentialVersion) } }
        return reply
      },
    }),
    route({
      method: 'POST', path: '/api/admin/devices/{id}/deny', tag: 'admin', role: 'admin',
      summary: 'Revokes a device\'s access: every gateway refuses its CONNECT (not authorized) and ends its connections within mqtt.denyListRefreshMs',
      body: z.strictObject({ reason: z.string().max(500).default('').describe('Why (stolen, cloned, floods, out of service...).') }),
      handler: async ({ params, body, caller }) => {
        const deviceId = await known(params.id ?? '')
        await setDenial(client, { deviceId, denied: true, reason: body.reason, actor: caller?.name ?? 'anonymous' })
        return { status: 200, body: { deviceId, denied: true, reason: body.reason } }
      },
    }),
    route({
      method: 'POST', path: '/api/admin/devices/{id}/allow', tag: 'admin', role: 'admin',
      summary: 'Gives a denied device its access back; it connects again at its next try',
      handler: async ({ params, caller }) => {
        const deviceId = await known(params.id ?? '')
        await setDenial(client, { deviceId, denied: false, reason: '', actor: caller?.name ?? 'anonymous' })
        return { status: 200, body: { deviceId, denied: false } }
      },
    }),
    route({
      method: 'GET', path: '/api/admin/devices/denied', tag: 'admin', role: 'admin',
      summary: 'The devices whose access is revoked, with who did it, when and why',
      handler: async () => ({ status: 200, body: { items: await listDenials(client) } }),
    }),
  ]
}
