// Tickets and rule state in the store: each ticket change is a new row of
// `tickets` (ReplacingMergeTree by version: the latest row is the ticket)
// and an audit row of `ticket_history`; rule state is a row per key in
// `rule_state`, with `deleted` once the subject is back to normal.
import type { ClickHouseClient } from '@clickhouse/client'
import { DONE_TICKET_STATUSES } from '../../lib/bus/elements.ts'
import type { Positions } from '../../lib/bus/position.ts'
import type { RuleStateRow } from '../engine.ts'
import type { Ticket, TicketEvent } from './lifecycle.ts'

/** Timestamps for DateTime64(3) columns: integer epoch milliseconds. */
const ms = (t: number | undefined): number | null => (t === undefined ? null : Math.round(t))

/** The grid a ticket counts in on the map: its subject's grid, or the micro-grid it stands in. */
export function ticketGrid(t: Pick<Ticket, 'subject' | 'place'>): number {
  return t.subject && 'gridId' in t.subject ? t.subject.gridId : t.place.microGridId
}

export function ticketRow(t: Ticket): Record<string, unknown> {
  return {
    id: t.id, version: t.version, created_at: ms(t.createdAt), updated_at: ms(t.updatedAt), origin: t.origin, status: t.status,
    category: t.group, catalogue_code: t.type, title: t.title, description: t.description, severity: t.severity,
    micro_grid_id: t.place.microGridId, community_id: t.place.communityId, street_id: t.place.streetId, district_id: t.place.districtId,
    lon: t.place.lon, lat: t.place.lat, unit: t.unitId, rule_id: t.ruleId,
    device_id: t.subject && 'deviceId' in t.subject ? t.subject.deviceId : '',
    camera_id: t.subject && 'cameraId' in t.subject ? t.subject.cameraId : '',
    dedup_key: t.key, sign_due_at: ms(t.signDueAt), resolve_due_at: ms(t.resolveDueAt), linkage: t.linkage,
    evidence: t.evidence.map((e) => JSON.stringify(e)), doc: JSON.stringify(t), occurrences: t.occurrences, supervised: t.supervised ? 1 : 0,
    grid_id: ticketGrid(t),
  }
}

export function historyRow(e: TicketEvent): Record<string, unknown> {
  return { ticket_id: e.ticketId, ts: ms(e.ts), version: e.version, action: e.action, actor: e.actor, from_status: e.from, to_status: e.to, note: e.note, payload: JSON.stringify(e.payload) }
}

/** Stores ticket changes: the ticket rows first, then their audit events. */
export async function storeTicketChanges(client: ClickHouseClient, changes: readonly { ticket: Ticket; event: TicketEvent }[]): Promise<void> {
  if (changes.length === 0) return
  // Only the latest version of each ticket needs a row; every event is kept.
  const latest = new Map<string, Ticket>()
  for (const c of changes) if ((latest.get(c.ticket.id)?.version ?? 0) < c.ticket.version) latest.set(c.ticket.id, c.ticket)
  await client.insert({ table: 'tickets', values: [...latest.values()].map(ticketRow), format: 'JSONEachRow' })
  await client.insert({ table: 'ticket_history', values: changes.map((c) => historyRow(c.event)), format: 'JSONEachRow' })
}

/** Tickets not done, and those done since `doneSince` (for complaint matching), as they were last stored. */
export async function loadTickets(client: ClickHouseClient, doneSince: number): Promise<Ticket[]> {
  const rs = await client.query({
    query: `SELECT doc FROM tickets FINAL
            WHERE doc != '' AND (status NOT IN {done:Array(String)} OR updated_at >= fromUnixTimestamp64Milli({since:Int64}, 'UTC'))`,
    query_params: { since: Math.round(doneSince), done: DONE_TICKET_STATUSES },
    format: 'JSONCompactEachRow',
  })
  const out: Ticket[] = []
  for await (const batch of rs.stream<[string]>()) for (const r of batch) out.push(JSON.parse(r.json()[0]) as Ticket)
  return out
}

/** A ticket's audit trail, oldest first. */
export async function ticketHistory(client: ClickHouseClient, id: string, limit = 500): Promise<TicketEvent[]> {
  const rs = await client.query({
    // The newest `limit` events, returned oldest first.
    query: `SELECT * FROM (SELECT toUnixTimestamp64Milli(ts) AS t, version, action, actor, from_status, to_status, note, payload FROM ticket_history
            WHERE ticket_id = {id:String} ORDER BY ts DESC, version DESC LIMIT {limit:UInt32}) ORDER BY t, version`,
    query_params: { id, limit },
    format: 'JSONCompactEachRow',
  })
  const rows = await rs.json<[number | string, number | string, string, string, string, string, string, string]>()
  return rows.map(([ts, version, action, actor, from, to, note, payload]) => ({
    ticketId: id, ts: Number(ts), version: Number(version), action: action as TicketEvent['action'], actor,
    from: from as TicketEvent['from'], to: to as TicketEvent['to'], note, payload: JSON.parse(payload) as Record<string, unknown>,
  }))
}

/** The rule_state row that holds the bus position the stored state has judged up to. */
const POSITION_KEY = '@bus-position'

/**
 * Stores rule state rows and, with them in the same insert (so one is never
 * stored without the other), the bus positions they have judged up to.
 */
export async function storeRuleState(client: ClickHouseClient, rows: readonly RuleStateRow[], version: number, positions?: Positions): Promise<void> {
  const values = rows.map((r) => ({ key: r.key, rule_id: r.ruleId, version, deleted: r.state ? 0 : 1, state: JSON.stringify(r.state ?? null), place: JSON.stringify(r.place), subject: JSON.stringify(r.subject) }))
  if (positions) values.push({ key: POSITION_KEY, rule_id: '', version, deleted: 0, state: JSON.stringify(positions), place: '{}', subject: '{}' })
  if (values.length === 0) return
  await client.insert({ table: 'rule_state', values, format: 'JSONEachRow' })
}

/** The stored rule state, and the bus positions it has judged up to (undefined before any was saved). */
export async function loadRuleState(client: ClickHouseClient): Promise<{ rows: RuleStateRow[]; positions: Positions | undefined }> {
  const rs = await client.query({ query: 'SELECT key, rule_id, state, place, subject FROM rule_state FINAL', format: 'JSONCompactEachRow' })
  const out: RuleStateRow[] = []
  let positions: Positions | undefined
  for await (const batch of rs.stream<[string, string, string, string, string]>()) {
    for (const r of batch) {
      const [key, ruleId, state, place, subject] = r.json()
      if (key === POSITION_KEY) {
        const p = JSON.parse(state) as Partial<Positions>
        positions = { readings: Number(p.readings ?? 0), events: Number(p.events ?? 0) }
        continue
      }
      out.push({ key, ruleId, state: JSON.parse(state) as RuleStateRow['state'], place: JSON.parse(place) as RuleStateRow['place'], subject: JSON.parse(subject) as RuleStateRow['subject'] })
    }
  }
  return { rows: out, positions }
}
