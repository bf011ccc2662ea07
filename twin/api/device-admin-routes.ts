// Revoking a device's access at runtime, through the API: what `citytwin
// devices deny` and `allow` do from the command line. Every gateway process
// reads the list within mqtt.denyListRefreshMs (ingest/mqtt/deny-list.ts);
// each change is kept in the audit trail like any other (server.ts).
import type { ClickHouseClient } from '@clickhouse/client'
import { z } from 'zod'
import { listDenials, setDenial } from '../../ingest/mqtt/deny-list.ts'
import type { LiveTwin } from '../state/live-twin.ts'
import { HttpError, route, type Route } from '../../lib/http/router.ts'

export function deviceAdminRoutes(live: LiveTwin, client: ClickHouseClient): Route[] {
  const known = (id: string): string => {
    if (live.twin.deviceIndex(id) === undefined) throw new HttpError(404, 'DEVICE_NOT_FOUND', `no device ${id}`)
    return id
  }
  return [
    route({
      method: 'POST', path: '/api/admin/devices/{id}/deny', tag: 'admin', role: 'admin',
      summary: 'Revokes a device\'s access: every gateway refuses its CONNECT (not authorized) and ends its connections within mqtt.denyListRefreshMs',
      body: z.strictObject({ reason: z.string().max(500).default('').describe('Why (stolen, cloned, floods, out of service...).') }),
      handler: async ({ params, body, caller }) => {
        const deviceId = known(params.id ?? '')
        await setDenial(client, { deviceId, denied: true, reason: body.reason, actor: caller?.name ?? 'anonymous' })
        return { status: 200, body: { deviceId, denied: true, reason: body.reason } }
      },
    }),
    route({
      method: 'POST', path: '/api/admin/devices/{id}/allow', tag: 'admin', role: 'admin',
      summary: 'Gives a denied device its access back; it connects again at its next try',
      handler: async ({ params, caller }) => {
        const deviceId = known(params.id ?? '')
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
