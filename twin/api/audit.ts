// The audit trail: every change made through the API (any route that is
// not a read), who made it (the token's name and role, or "api_key" for an
// Open311 integrator), from which address, on what, what it asked and how
// it was answered, kept in the store's `audit_log` for five years. Reads
// are not audited. Refusals are, where the caller showed a token (a wrong
// role, an unknown token: those are throttled per address); anonymous
// refusals and throttled requests are only counted, or anyone could fill
// the store with one row per request.
//
// Written after the answer, off the request's path, in batches of a second
// (bounded: a flood drops rows and counts them): a failed write is logged
// and counted, and never fails the change it records.
import type { ClickHouseClient } from '@clickhouse/client'
import { logger } from '../../lib/log.ts'
import { counter } from '../../lib/metrics.ts'
import type { Caller } from '../../lib/http/router.ts'

const log = logger('audit')
const auditTotal = counter('citytwin_api_audit_total', 'Changes through the API recorded in the audit trail, and records that could not be written', ['outcome'])

/** What is kept of a request's body: enough to say what was asked, bounded. */
const DETAIL_MAX = 2_000

export interface AuditEntry {
  ts: number
  caller: Caller | undefined
  /** Who, where no token names the caller (an Open311 integrator's api_key). */
  actor?: string
  address: string
  method: string
  /** The route's template, e.g. "POST /api/tickets/{id}/actions". */
  route: string
  /** Its path parameters, e.g. the ticket id. */
  params: Record<string, string>
  status: number
  /** The validated body, where the route takes one; undefined where it may carry personal data (Open311). */
  body: unknown
}

/** The row of an entry. Pure. */
export function auditRow(e: AuditEntry): Record<string, unknown> {
  const detail = e.body === undefined ? '' : JSON.stringify(e.body)
  return {
    ts: e.ts, actor: e.caller?.name ?? e.actor ?? 'anonymous', role: e.caller?.role ?? '', address: e.address, method: e.method, route: e.route,
    target: Object.entries(e.params).map(([k, v]) => `${k}=${v}`).join('&').slice(0, 500), status: e.status,
    detail: detail.length > DETAIL_MAX ? `${detail.slice(0, DETAIL_MAX)}…` : detail,
  }
}

/** Rows gathered before one insert: each insert is a part in the store, so rows go in batches. */
const FLUSH_MS = 1_000
/** Rows waiting at most; past it new ones are dropped and counted (a flood must not grow memory). */
const QUEUE_MAX = 10_000

export class AuditTrail {
  #queue: Record<string, unknown>[] = []
  #timer: NodeJS.Timeout | undefined
  #flushing: Promise<void> | undefined

  constructor(private readonly client: ClickHouseClient) {}

  record(e: AuditEntry): void {
    if (this.#queue.length >= QUEUE_MAX) {
      auditTotal.inc({ outcome: 'dropped' })
      return
    }
    this.#queue.push(auditRow(e))
    this.#timer ??= setTimeout(() => void this.flush(), FLUSH_MS)
  }

  /** Inserts what waits; resolves when it is stored (or its failure logged). */
  async flush(): Promise<void> {
    clearTimeout(this.#timer)
    this.#timer = undefined
    await this.#flushing
    const rows = this.#queue
    if (rows.length === 0) return
    this.#queue = []
    this.#flushing = this.client.insert({ table: 'audit_log', values: rows, format: 'JSONEachRow' }).then(
      () => void auditTotal.inc({ outcome: 'recorded' }, rows.length),
      (err: unknown) => {
        auditTotal.inc({ outcome: 'failed' }, rows.length)
        log.error({ err, rows: rows.length }, 'could not record changes in the audit trail')
      },
    )
    await this.#flushing
  }

  /** The latest entries, newest first, optionally of one actor. */
  async list(o: { from: number; to: number; actor?: string | undefined; limit: number }): Promise<Record<string, unknown>[]> {
    const rs = await this.client.query({
      // Not "AS ts": ClickHouse would read the WHERE's ts as the alias (milliseconds), not the column.
      query: `SELECT toUnixTimestamp64Milli(ts) AS at_ms, actor, role, address, method, route, target, status, detail FROM audit_log
              WHERE ts >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') AND ts < fromUnixTimestamp64Milli({to:Int64}, 'UTC') ${o.actor === undefined ? '' : 'AND actor = {actor:String}'}
              ORDER BY ts DESC LIMIT {limit:UInt32}`,
      query_params: { from: o.from, to: o.to, limit: o.limit, ...(o.actor === undefined ? {} : { actor: o.actor }) },
      format: 'JSONEachRow',
    })
    return (await rs.json<Record<string, unknown>>()).map(({ at_ms: at, ...r }) => ({ ts: Number(at), ...r, status: Number(r.status) }))
  }
}
