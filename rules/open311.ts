// Open311 GeoReport v2 (JSON): the 12345 platform reads the catalogue as
// services and the proactive tickets as service requests, and posts the
// citizens' complaints, which are matched to the tickets already handling
// them. Field names and error bodies are the specification's
// (https://wiki.open311.org/GeoReport_v2): errors are [{ code, description }].
import type { ClickHouseClient } from '@clickhouse/client'
import { z } from 'zod'
import { readJsonBody, route, type Caller, type Reply, type Route } from '../lib/http/router.ts'
import { hashToken, secretMatches } from '../lib/http/tokens.ts'
import { complaintFigures, loadComplaints } from './complaints-store.ts'
import type { Complaint } from './complaints.ts'
import type { RulesService } from './service.ts'
import { OPEN_STATUSES, type Ticket } from './tickets/lifecycle.ts'

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString())

function error(status: number, description: string): Reply {
  return { status, body: [{ code: status, description }] }
}

/**
 * A ticket as a GeoReport v2 service request. A ticket raised for a
 * complaint sits at the complainant's point: its place is personal like
 * the complaint's own (complaintRequest), shown only with `personal`.
 */
export function serviceRequest(t: Ticket, rules: RulesService, personal = true): Record<string, unknown> {
  const place = personal || t.origin !== 'complaint'
  const type = rules.catalogue.type(t.type)
  const done = !OPEN_STATUSES.has(t.status)
  return {
    service_request_id: t.id,
    status: done ? 'closed' : 'open',
    status_notes: `${t.status}${t.origin === 'proactive' ? ' (proactive: raised from sensor data before any complaint)' : ''}`,
    service_name: type?.nameZh ?? t.type,
    service_code: t.type,
    description: t.title,
    agency_responsible: t.unitName,
    service_notice: t.linked.length > 0 ? `related: ${t.linked.join(', ')}` : '',
    requested_datetime: iso(t.createdAt),
    updated_datetime: iso(t.updatedAt),
    expected_datetime: iso(t.resolveDueAt),
    address: '',
    address_id: '',
    zipcode: '',
    lat: place ? t.place.lat : null,
    long: place ? t.place.lon : null,
    media_url: '',
  }
}

/** A complaint as a service request: its own ticket, or the proactive ticket it was matched to. */
/**
 * A complaint as a GeoReport v2 request. What the complainant wrote and
 * where (description, address, coordinates) is personal data: it goes only
 * to a caller with a bearer token or an api_key; anyone else sees that the
 * request exists, its service, status and dates (what a public 12345 board
 * shows), with those fields empty. The contact details are never served.
 */
function complaintRequest(c: Complaint, rules: RulesService, personal: boolean): Record<string, unknown> {
  const t = rules.book.get(c.matchedTicket || c.ticketId)
  return {
    service_request_id: c.id,
    status: t && !OPEN_STATUSES.has(t.status) ? 'closed' : 'open',
    status_notes: c.matchedTicket ? `already in hand: proactive ticket ${c.matchedTicket}, raised ${Math.round(c.leadMs / 60_000)} min before this request` : `ticket ${c.ticketId}`,
    service_name: rules.catalogue.type(c.serviceCode)?.nameZh ?? c.serviceCode,
    service_code: c.serviceCode,
    description: personal ? c.description : '',
    agency_responsible: t?.unitName ?? '',
    service_notice: '',
    requested_datetime: iso(c.receivedAt),
    updated_datetime: iso(t?.updatedAt ?? c.receivedAt),
    expected_datetime: iso(t?.resolveDueAt),
    address: personal ? c.address : '',
    address_id: '',
    zipcode: '',
    lat: personal ? c.lat : null,
    long: personal ? c.lon : null,
    media_url: '',
  }
}

const postSchema = z.object({
  api_key: z.string().optional(),
  service_code: z.string().min(1, 'service_code is required'),
  lat: z.coerce.number().min(-90).max(90).optional(),
  long: z.coerce.number().min(-180).max(180).optional(),
  address_string: z.string().max(500).optional(),
  address_id: z.string().optional(),
  description: z.string().max(4000).default(''),
  email: z.string().max(200).optional(),
  device_id: z.string().max(200).optional(),
  account_id: z.string().max(200).optional(),
  first_name: z.string().max(100).optional(),
  last_name: z.string().max(100).optional(),
  phone: z.string().max(50).optional(),
  media_url: z.string().max(2000).optional(),
})

const listSchema = z.object({
  service_request_id: z.string().optional(),
  service_code: z.string().optional(),
  start_date: z.iso.datetime({ offset: true }).optional(),
  end_date: z.iso.datetime({ offset: true }).optional(),
  status: z.enum(['open', 'closed']).optional(),
  api_key: z.string().optional(),
})

/** Whether `given` is one of `keys`, each compared in constant time (lib/http/tokens.ts). */
const keyMatches = (given: string, keys: readonly string[]): boolean => {
  let found = false
  for (const k of keys) if (secretMatches(given, hashToken(k))) found = true
  return found
}

const DAY = 86_400_000

export function open311Routes(rules: RulesService, client: ClickHouseClient): Route[] {
  const apiKeys = (): string[] => rules.config.open311ApiKeys.split(',').map((k) => k.trim()).filter((k) => k !== '')
  /** Whether the caller may read complainants' words and places: any bearer token, or a valid api_key. */
  const mayReadPersonal = (caller: Caller | undefined, apiKey: string | null | undefined): boolean =>
    caller !== undefined || (typeof apiKey === 'string' && keyMatches(apiKey, apiKeys()))
  // Only the JSON format is served; an .xml path is a 404 of the router.
  const jsonOnly = (format: string | undefined): Reply | undefined => (format === 'json' ? undefined : error(400, 'only the JSON format is served: use .json'))
  return [
    route({
      method: 'GET', path: '/open311/v2/services.json', tag: 'open311', ownAuth: true, summary: 'GeoReport v2 service list: the dispatch catalogue',
      handler: () => ({
        status: 200,
        body: rules.catalogue.types.map((t) => ({ service_code: t.code, service_name: t.nameZh, description: `${t.nameEn}. ${rules.catalogue.unit(t.unit)?.nameZh ?? ''}`, metadata: false, type: 'realtime', keywords: t.keywords.join(','), group: t.group })),
      }),
    }),
    route({
      method: 'GET', path: '/open311/v2/services/{code}', tag: 'open311', ownAuth: true, summary: 'GeoReport v2 service definition (no extra attributes)',
      handler: ({ params }) => {
        const [code, format] = (params.code ?? '').split('.')
        const bad = jsonOnly(format)
        if (bad) return bad
        if (!rules.catalogue.type(code ?? '')) return error(404, `no service ${code ?? ''}`)
        return { status: 200, body: { service_code: code, attributes: [] } }
      },
    }),
    route({
      method: 'POST', path: '/open311/v2/requests.json', tag: 'open311', ownAuth: true,
      summary: 'GeoReport v2: a complaint from the 12345 platform (api_key, or an operator bearer token). Matched to the proactive ticket already handling it, or dispatched as a new ticket',
      handler: async ({ req, caller }) => {
        let body: unknown
        try {
          body = (await readJsonBody(req, 64 * 1024)) ?? {}
        } catch (e) {
          return error(400, e instanceof Error ? e.message : String(e))
        }
        const parsed = postSchema.safeParse(body)
        if (!parsed.success) return error(400, parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '))
        const p = parsed.data
        const keys = apiKeys()
        const operator = caller !== undefined && caller.role !== 'viewer'
        if (!operator && !(p.api_key !== undefined && keyMatches(p.api_key, keys))) return error(403, keys.length === 0 ? 'posting requests needs an operator bearer token (no api keys are configured)' : 'invalid api_key')
        if (!rules.catalogue.type(p.service_code)) return error(404, `no service ${p.service_code}; see services.json`)
        if (p.lat === undefined || p.long === undefined) return error(400, 'lat and long are required: this deployment has no geocoder for address_string')
        const contact: Record<string, string> = {}
        for (const k of ['email', 'first_name', 'last_name', 'phone', 'device_id', 'account_id', 'media_url'] as const) if (p[k] !== undefined) contact[k] = p[k]
        const c = await rules.complain({ serviceCode: p.service_code, description: p.description, address: p.address_string ?? '', lon: p.long, lat: p.lat, contact })
        const notice = c.matchedTicket ? `already being handled: proactive ticket ${c.matchedTicket}` : `dispatched as ticket ${c.ticketId}`
        return { status: 201, body: [{ service_request_id: c.id, service_notice: notice, account_id: p.account_id ?? null }] }
      },
    }),
    route({
      method: 'GET', path: '/open311/v2/requests.json', tag: 'open311', ownAuth: true,
      summary: 'GeoReport v2 service requests: proactive tickets and complaints (default: the last 90 days, at most 1000). A complaint\'s description, address and coordinates only with a bearer token or api_key',
      handler: async ({ req, caller }) => {
        const parsed = listSchema.safeParse(Object.fromEntries(new URL(req.url ?? '/', 'http://x').searchParams))
        if (!parsed.success) return error(400, parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '))
        const q = parsed.data
        const to = q.end_date ? Date.parse(q.end_date) : rules.now() + 1
        const from = q.start_date ? Date.parse(q.start_date) : to - 90 * DAY
        const ids = q.service_request_id?.split(',').map((s) => s.trim()).filter((s) => s !== '')
        const codes = q.service_code?.split(',').map((s) => s.trim())
        // The service codes are filtered in the store, so the 1,000 returned are 1,000 of that kind.
        const tickets = await loadTicketDocs(client, from, to, 1000, ids, codes)
        const complaints = await loadComplaints(client, from, to, 1000, ids, codes)
        const personal = mayReadPersonal(caller, q.api_key)
        const out = [...tickets.map((t) => serviceRequest(rules.book.get(t.id) ?? t, rules, personal)), ...complaints.map((c) => complaintRequest(c, rules, personal))]
          .filter((r) => (!codes || codes.includes(r.service_code as string)) && (!q.status || r.status === q.status))
          .sort((a, b) => String(b.requested_datetime).localeCompare(String(a.requested_datetime)))
          .slice(0, 1000)
        return { status: 200, body: out }
      },
    }),
    route({
      method: 'GET', path: '/open311/v2/requests/{id}', tag: 'open311', ownAuth: true, summary: 'GeoReport v2: one service request (a complaint\'s personal fields as in the list)',
      handler: async ({ params, req, caller }) => {
        const [id, format] = (params.id ?? '').split('.')
        const bad = jsonOnly(format)
        if (bad) return bad
        const personal = mayReadPersonal(caller, new URL(req.url ?? '/', 'http://x').searchParams.get('api_key'))
        const t = rules.book.get(id ?? '') ?? (await loadTicketDocs(client, 0, rules.now() + 1, 1, [id ?? '']))[0]
        if (t) return { status: 200, body: [serviceRequest(t, rules, personal)] }
        const [c] = await loadComplaints(client, 0, rules.now() + 1, 1, [id ?? ''])
        if (c) return { status: 200, body: [complaintRequest(c, rules, personal)] }
        return error(404, `no service request ${id ?? ''}`)
      },
    }),
    route({
      method: 'GET', path: '/api/complaints/stats', tag: 'tickets', summary: 'Complaints in a period and the share already in hand when they arrived (未诉先办), with the lead time',
      query: z.strictObject({ from: z.coerce.number().int().min(0).optional(), to: z.coerce.number().int().min(0).optional() }),
      handler: async ({ query }) => {
        const to = query.to ?? rules.now() + 1
        const from = query.from ?? to - 30 * DAY
        return { status: 200, body: { from, to, ...(await complaintFigures(client, from, to)) } }
      },
    }),
  ]
}

async function loadTicketDocs(client: ClickHouseClient, from: number, to: number, limit: number, ids?: readonly string[], codes?: readonly string[]): Promise<Ticket[]> {
  const rs = await client.query({
    query: `SELECT doc FROM tickets FINAL
            WHERE doc != '' AND created_at >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') AND created_at < fromUnixTimestamp64Milli({to:Int64}, 'UTC')
            ${ids ? 'AND id IN {ids:Array(String)}' : ''} ${codes ? 'AND catalogue_code IN {codes:Array(String)}' : ''}
            ORDER BY created_at DESC LIMIT {limit:UInt32}`,
    query_params: { from: Math.round(from), to: Math.round(to), limit, ...(ids ? { ids } : {}), ...(codes ? { codes } : {}) },
    format: 'JSONCompactEachRow',
  })
  return (await rs.json<[string]>()).map(([doc]) => JSON.parse(doc) as Ticket)
}
