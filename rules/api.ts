// The tickets, modes and rules over HTTP: operators list and act on
// tickets (sign, return, resolve, escalate, comment...), switch operating
// modes, and see the rules that run. Reads follow the deployment's
// open-reads setting; every change needs an operator token.
import type { ClickHouseClient } from '@clickhouse/client'
import { z } from 'zod'
import { SEVERITIES } from '../lib/bus/elements.ts'
import { HttpError, route, type Route } from '../lib/http/router.ts'
import { page } from '../lib/http/page.ts'
import { MODES } from './kinds/types.ts'
import { CITY } from './modes.ts'
import type { RulesService } from './service.ts'
import { actionsFrom, OPEN_STATUSES, TICKET_ACTIONS, TICKET_STATUSES, type Ticket } from './tickets/lifecycle.ts'
import { ticketHistory } from './tickets/store.ts'

const paging = {
  limit: z.coerce.number().int().min(1).max(500).default(100).describe('Items per page (at most 500).'),
  cursor: z.string().regex(/^\d+$/, 'a cursor from a previous page').optional().describe('The "next" of the previous page.'),
}

/** A ticket as the API shows it: the record, what may be done next, and the time left. */
export function ticketView(t: Ticket, now: number) {
  const due = t.status === 'dispatched' ? t.signDueAt : OPEN_STATUSES.has(t.status) && t.status !== 'resolved' ? t.resolveDueAt : undefined
  return { ...t, open: OPEN_STATUSES.has(t.status), actions: actionsFrom(t.status), slaDueAt: due ?? null, slaLeftMs: due === undefined ? null : due - now }
}

export function ruleRoutes(rules: RulesService, client: ClickHouseClient): Route[] {
  return [
    route({
      method: 'GET', path: '/api/tickets', tag: 'tickets', summary: 'Tickets in memory (every open one and those done in the last day), filtered and sorted (by SLA time left by default)',
      query: z.strictObject({
        status: z.enum(TICKET_STATUSES).optional(),
        open: z.enum(['true', 'false']).optional().describe('Only open (true) or only done (false) tickets.'),
        type: z.string().optional().describe('Dispatch catalogue code.'),
        severity: z.enum(SEVERITIES).optional(),
        unit: z.string().optional().describe('Unit id, e.g. drainage@d3, or a catalogue unit (drainage) for all its instances.'),
        grid: z.coerce.number().int().min(1).optional().describe('A grid id at any level.'),
        origin: z.enum(['proactive', 'complaint']).optional(),
        supervised: z.enum(['true', 'false']).optional(),
        sort: z.enum(['sla', 'created', 'updated', 'severity']).default('sla'),
        ...paging,
      }),
      handler: ({ query }) => {
        const now = rules.now()
        const items = [...rules.book.tickets].filter((t) => (query.status === undefined || t.status === query.status)
          && (query.open === undefined || OPEN_STATUSES.has(t.status) === (query.open === 'true'))
          && (query.type === undefined || t.type === query.type)
          && (query.severity === undefined || t.severity === query.severity)
          && (query.origin === undefined || t.origin === query.origin)
          && (query.supervised === undefined || t.supervised === (query.supervised === 'true'))
          && (query.unit === undefined || t.unitId === query.unit || t.unitId.split('@')[0] === query.unit)
          && (query.grid === undefined || [t.place.microGridId, t.place.communityId, t.place.streetId, t.place.districtId].includes(query.grid)
            || (t.subject !== undefined && 'gridId' in t.subject && t.subject.gridId === query.grid)))
          .map((t) => ticketView(t, now))
        const sev = (s: string): number => SEVERITIES.indexOf(s as (typeof SEVERITIES)[number])
        items.sort((a, b) => {
          switch (query.sort) {
            case 'sla': return (a.slaLeftMs ?? Infinity) - (b.slaLeftMs ?? Infinity) || b.createdAt - a.createdAt
            case 'created': return b.createdAt - a.createdAt
            case 'updated': return b.updatedAt - a.updatedAt
            case 'severity': return sev(b.severity) - sev(a.severity) || b.createdAt - a.createdAt
          }
        })
        return { status: 200, body: { ...page(items, query.limit, query.cursor), counts: rules.book.openCounts() } }
      },
    }),
    route({
      method: 'GET', path: '/api/map/incidents', tag: 'map',
      summary: 'Where tickets were raised: every ticket in memory (each open one and those done in the last day) as parallel columns, for the incident heatmap',
      query: z.strictObject({ severity: z.enum(SEVERITIES).optional() }),
      handler: ({ query }) => {
        const out = { lon: [] as number[], lat: [] as number[], severity: [] as number[], open: [] as number[] }
        for (const t of rules.book.tickets) {
          if (query.severity !== undefined && t.severity !== query.severity) continue
          out.lon.push(t.place.lon)
          out.lat.push(t.place.lat)
          out.severity.push(SEVERITIES.indexOf(t.severity))
          out.open.push(OPEN_STATUSES.has(t.status) ? 1 : 0)
        }
        return { status: 200, body: { severities: SEVERITIES, ...out } }
      },
    }),
    route({
      method: 'GET', path: '/api/tickets/{id}', tag: 'tickets', summary: 'A ticket with its audit history',
      handler: async ({ params }) => {
        const id = params.id ?? ''
        const t = rules.book.get(id)
        const history = await ticketHistory(client, id)
        if (!t && history.length === 0) throw new HttpError(404, 'TICKET_NOT_FOUND', `no ticket ${id}`)
        return { status: 200, body: { ticket: t ? ticketView(t, rules.now()) : null, history } }
      },
    }),
    route({
      method: 'POST', path: '/api/tickets/{id}/actions', tag: 'tickets', role: 'operator',
      summary: 'Acts on a ticket: sign, start, resolve, return (with a reason), escalate, reopen, comment, dispatch (optionally to another unit), verify, close',
      body: z.strictObject({
        action: z.enum(TICKET_ACTIONS),
        note: z.string().max(2000).optional().describe('Why: required to return, escalate, reopen or comment.'),
        unit: z.string().optional().describe('For dispatch: a catalogue unit id (e.g. road-maintenance), routed to the ticket place.'),
      }),
      handler: async ({ params, body, caller }) => {
        const r = await rules.act(params.id ?? '', body.action, caller?.name ?? 'anonymous', { ...(body.note === undefined ? {} : { note: body.note }), ...(body.unit === undefined ? {} : { unitKind: body.unit }) })
        if (!r.ok) throw new HttpError(r.status, r.code, r.message)
        return { status: 200, body: { ticket: ticketView(r.ticket, rules.now()) } }
      },
    }),
    route({
      method: 'GET', path: '/api/modes', tag: 'modes', summary: 'The operating mode in force city-wide and in each district, and the scheduled entries',
      handler: () => {
        const districts = [...new Set([...rules.modes.entries].map((e) => e.districtId).filter((d) => d !== CITY))]
        return {
          status: 200,
          body: { city: rules.modeAt(CITY), districts: districts.map((id) => ({ id, mode: rules.modeAt(id) })), entries: rules.modes.entries, modes: MODES },
        }
      },
    }),
    route({
      method: 'POST', path: '/api/modes', tag: 'modes', role: 'operator',
      summary: 'Switches the city or a district to a mode, now or for a period',
      body: z.strictObject({
        mode: z.enum(MODES),
        districtId: z.number().int().min(0).default(CITY).describe('A district grid id; 0: the whole city.'),
        startsAt: z.number().int().min(0).optional().describe('Epoch ms; default now.'),
        endsAt: z.number().int().min(0).optional().describe('Epoch ms; default: until switched again.'),
        note: z.string().max(500).default(''),
      }),
      handler: async ({ body, caller }) => {
        const startsAt = body.startsAt ?? rules.now()
        if (body.endsAt !== undefined && body.endsAt <= startsAt) throw new HttpError(400, 'BAD_REQUEST', 'endsAt must be after startsAt')
        const entry = await rules.modes.set({ districtId: body.districtId, mode: body.mode, startsAt, endsAt: body.endsAt, actor: caller?.name ?? 'anonymous', note: body.note })
        return { status: 200, body: { entry, inForce: rules.modeAt(body.districtId) } }
      },
    }),
    route({
      method: 'POST', path: '/api/modes/{id}/cancel', tag: 'modes', role: 'operator', summary: 'Cancels a mode entry',
      handler: async ({ params }) => {
        const e = await rules.modes.cancel(params.id ?? '')
        if (!e) throw new HttpError(404, 'NOT_FOUND', `no mode entry ${params.id ?? ''}`)
        return { status: 200, body: { cancelled: e } }
      },
    }),
    route({
      method: 'GET', path: '/api/rules', tag: 'rules', summary: 'The rules that run, the engine counters and the last reload',
      handler: () => ({ status: 200, body: { rules: rules.engine.rules, stats: rules.engine.stats(), lastReload: rules.lastReload } }),
    }),
    route({
      method: 'POST', path: '/api/admin/rules/reload', tag: 'rules', role: 'admin', summary: 'Reloads the rule files now; a bad set is refused and the running rules stay',
      handler: () => {
        const ok = rules.reload()
        if (!ok) throw new HttpError(400, 'RULES_BAD_FILE', rules.lastReload.error)
        return { status: 200, body: { rules: rules.engine.rules.length } }
      },
    }),
    route({
      method: 'GET', path: '/api/catalogue', tag: 'tickets', summary: 'The dispatch catalogue: ticket types and units',
      handler: () => ({ status: 200, body: { types: rules.catalogue.types, units: rules.catalogue.units } }),
    }),
  ]
}
