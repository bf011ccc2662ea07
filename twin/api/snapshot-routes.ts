// Camera snapshots over the API: the JPEG a camera event was seen in, as a
// ticket's evidence links it (ingest/rtsp/snapshots.ts). A read: it needs a
// viewer token unless the deployment opens reads.
import { z } from 'zod'
import { HttpError, route, type Route } from '../../lib/http/router.ts'
import { snapshotPath, type SnapshotStore } from '../../ingest/rtsp/snapshots.ts'

export function snapshotRoutes(snapshots: SnapshotStore): Route[] {
  return [
    route({
      method: 'GET', path: '/api/cameras/{id}/snapshots', tag: 'twin',
      summary: "A camera's snapshots kept, the latest first: when each was taken and where to get it",
      query: z.strictObject({ limit: z.coerce.number().int().min(1).max(100).default(20) }),
      response: { type: 'object', properties: { items: { type: 'array', items: { type: 'object', properties: { ts: { type: 'integer' }, url: { type: 'string' } } } } } },
      handler: async ({ params, query }) => {
        const times = await snapshots.list(params.id ?? '', query.limit)
        return { status: 200, body: { items: times.map((ts) => ({ ts, url: snapshotPath(params.id ?? '', ts) })) } }
      },
    }),
    route({
      method: 'GET', path: '/api/cameras/{id}/snapshots/{ts}', tag: 'twin',
      summary: "A camera's snapshot (JPEG) taken at ts (epoch ms), as a ticket's evidence links it; 404 when never taken or removed by retention",
      handler: async ({ params }) => {
        const ts = z.coerce.number().int().min(0).safeParse(params.ts)
        if (!ts.success) throw new HttpError(400, 'BAD_REQUEST', `ts must be a time in epoch milliseconds, not ${JSON.stringify(params.ts)}`)
        const found = await snapshots.read(params.id ?? '', ts.data)
        if ('missing' in found) throw new HttpError(404, 'NOT_FOUND', found.missing)
        return { status: 200, body: found.jpeg, contentType: 'image/jpeg' }
      },
    }),
  ]
}
