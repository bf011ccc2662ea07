// `citytwin tickets ...` and `citytwin mode ...`: the operator actions from
// a terminal, through the running system's API (the embedded store belongs
// to that process), authenticated with the operator's token.
import type { Command, CommandContext } from '../lib/command.ts'
import { numberOption, UsageError } from '../lib/command.ts'
import { MODES } from './kinds/types.ts'
import { TICKET_ACTIONS } from './tickets/lifecycle.ts'

const apiOptions = {
  api: { type: 'string', description: 'the system API (default http://127.0.0.1:8080; also CITYTWIN_API_URL)', valueName: 'url' },
  token: { type: 'string', description: 'bearer token (also CITYTWIN_API_TOKEN); changes need the operator role', valueName: 'token' },
  json: { type: 'boolean', description: 'print the answer as JSON' },
} as const

async function call(values: CommandContext['values'], method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
  const base = (typeof values.api === 'string' ? values.api : process.env.CITYTWIN_API_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, '')
  const token = typeof values.token === 'string' ? values.token : process.env.CITYTWIN_API_TOKEN
  let res: Response
  try {
    res = await fetch(`${base}${path}`, {
      method, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
  } catch (e) {
    throw new UsageError(`cannot reach the citytwin API at ${base} (is citytwin start running? --api sets the address): ${e instanceof Error ? e.message : String(e)}`)
  }
  const answer = (await res.json()) as { error?: { code: string; message: string } }
  if (!res.ok) throw new UsageError(`${method} ${path}: ${res.status} ${answer.error?.code ?? ''} ${answer.error?.message ?? JSON.stringify(answer)}`)
  return answer
}

interface TicketLine {
  id: string
  status: string
  severity: string
  type: string
  title: string
  unitName: string
  slaLeftMs: number | null
  occurrences: number
  supervised: boolean
}

const minutes = (ms: number | null): string => (ms === null ? '' : ms < 0 ? `${Math.round(-ms / 60_000)} min over` : `${Math.round(ms / 60_000)} min left`)

export const ticketCommands: Command[] = [
  {
    name: 'tickets list',
    summary: 'List tickets of the running system (open ones first by SLA time left)',
    options: {
      ...apiOptions,
      status: { type: 'string', description: 'only this status', valueName: 'status' },
      type: { type: 'string', description: 'only this catalogue type', valueName: 'code' },
      severity: { type: 'string', description: 'info, warning or critical', valueName: 's' },
      unit: { type: 'string', description: 'only this unit (e.g. drainage@d3, or drainage)', valueName: 'unit' },
      all: { type: 'boolean', description: 'done tickets too' },
      limit: { type: 'string', description: 'at most this many (default 50, at most 500)', valueName: 'n' },
    },
    async run({ values, stdout }) {
      const q = new URLSearchParams({ limit: String(numberOption(values, 'limit') ?? 50), ...(values.all ? {} : { open: 'true' }) })
      for (const k of ['status', 'type', 'severity', 'unit'] as const) if (typeof values[k] === 'string') q.set(k, values[k])
      const page = (await call(values, 'GET', `/api/tickets?${q.toString()}`)) as { items: TicketLine[]; total: number }
      if (values.json) {
        for (const t of page.items) stdout.write(JSON.stringify(t) + '\n')
        return
      }
      for (const t of page.items) {
        stdout.write(`${t.id}  ${t.status.padEnd(11)} ${t.severity.padEnd(8)} ${t.type.padEnd(22)} ${minutes(t.slaLeftMs).padEnd(14)} ${t.supervised ? '督办 ' : ''}${t.title} -> ${t.unitName}${t.occurrences > 1 ? ` (x${t.occurrences})` : ''}\n`)
      }
      stdout.write(`${page.items.length} of ${page.total}\n`)
    },
  },
  {
    name: 'tickets show',
    summary: 'A ticket with its audit history',
    args: '<id>',
    options: apiOptions,
    async run({ values, positionals, stdout }) {
      const id = positionals[0]
      if (!id) throw new UsageError('give a ticket id: citytwin tickets show T-20261122-000001')
      const r = (await call(values, 'GET', `/api/tickets/${encodeURIComponent(id)}`)) as { ticket: TicketLine | null; history: { ts: number; action: string; actor: string; from: string; to: string; note: string }[] }
      if (values.json) {
        stdout.write(JSON.stringify(r) + '\n')
        return
      }
      if (r.ticket) stdout.write(`${r.ticket.id}  ${r.ticket.status}  ${r.ticket.severity}  ${r.ticket.type}  ${r.ticket.title} -> ${r.ticket.unitName}  ${minutes(r.ticket.slaLeftMs)}\n`)
      for (const h of r.history) stdout.write(`  ${new Date(h.ts).toISOString()}  ${h.action.padEnd(9)} ${h.actor.padEnd(20)} ${h.from ? `${h.from} -> ${h.to}` : h.to}${h.note ? `  ${h.note}` : ''}\n`)
    },
  },
  {
    name: 'tickets act',
    summary: `Act on a ticket: ${TICKET_ACTIONS.join(', ')}`,
    args: '<id> <action>',
    options: {
      ...apiOptions,
      note: { type: 'string', description: 'why (needed to return, escalate, reopen or comment)', valueName: 'text' },
      unit: { type: 'string', description: 'with dispatch: the catalogue unit to dispatch to', valueName: 'unit' },
    },
    async run({ values, positionals, stdout }) {
      const [id, action] = positionals
      if (!id || !action) throw new UsageError('give a ticket id and an action: citytwin tickets act T-20261122-000001 sign')
      if (!(TICKET_ACTIONS as readonly string[]).includes(action)) throw new UsageError(`unknown action ${action}; one of ${TICKET_ACTIONS.join(', ')}`)
      const r = (await call(values, 'POST', `/api/tickets/${encodeURIComponent(id)}/actions`, {
        action, ...(typeof values.note === 'string' ? { note: values.note } : {}), ...(typeof values.unit === 'string' ? { unit: values.unit } : {}),
      })) as { ticket: TicketLine }
      stdout.write(values.json ? JSON.stringify(r.ticket) + '\n' : `${r.ticket.id} is ${r.ticket.status}\n`)
    },
  },
  {
    name: 'mode show',
    summary: 'The operating mode in force city-wide and per district',
    options: apiOptions,
    async run({ values, stdout }) {
      const r = (await call(values, 'GET', '/api/modes')) as { city: string; districts: { id: number; mode: string }[] }
      stdout.write(values.json ? JSON.stringify(r) + '\n' : `city: ${r.city}\n${r.districts.map((d) => `district ${d.id}: ${d.mode}\n`).join('')}`)
    },
  },
  {
    name: 'mode set',
    summary: `Switch the city or a district to a mode (${MODES.join(', ')}), now or for a period`,
    args: '<mode>',
    options: {
      ...apiOptions,
      district: { type: 'string', description: 'a district grid id (default: the whole city)', valueName: 'id' },
      'for-min': { type: 'string', description: 'only for this many minutes', valueName: 'min' },
      note: { type: 'string', description: 'why', valueName: 'text' },
    },
    async run({ values, positionals, stdout }) {
      const mode = positionals[0]
      if (!mode || !(MODES as readonly string[]).includes(mode)) throw new UsageError(`give a mode: one of ${MODES.join(', ')}`)
      const forMin = numberOption(values, 'for-min')
      const now = Date.now()
      const r = (await call(values, 'POST', '/api/modes', {
        mode, districtId: numberOption(values, 'district') ?? 0, ...(forMin ? { startsAt: now, endsAt: now + forMin * 60_000 } : {}), ...(typeof values.note === 'string' ? { note: values.note } : {}),
      })) as { entry: { id: string }; inForce: string }
      stdout.write(values.json ? JSON.stringify(r) + '\n' : `${r.inForce} in force (entry ${r.entry.id})\n`)
    },
  },
]
