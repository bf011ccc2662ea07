// One-key linkage (一键转接) with 110 (police), 119 (fire and rescue) and
// 120 (ambulance): a ticket whose catalogue type names them is also pushed
// to them. Pushes go through an outbox in the store, so a push survives a
// restart and a receiver that is down gets it once it is back: pending ->
// sent, retried with backoff, `failed` after the attempts run out (still
// visible to operators). The sink is an interface: by default it logs;
// with rules.linkageWebhookUrl it POSTs JSON to the dispatch centre.
import type { ClickHouseClient } from '@clickhouse/client'
import { backoffDelayMs } from '../lib/backoff.ts'
import { messageOf } from '../lib/errors.ts'
import { logger } from '../lib/log.ts'
import { counter } from '../lib/metrics.ts'
import type { Linkage } from './catalogue/catalogue.ts'
import type { Ticket } from './tickets/lifecycle.ts'

const log = logger('linkage')
const pushes = counter('citytwin_rules_linkage_pushes_total', 'Pushes to 110/119/120, by target and outcome', ['target', 'outcome'])

export interface LinkageMessage {
  id: string
  target: Linkage
  ticketId: string
  type: string
  title: string
  severity: string
  lon: number
  lat: number
  districtId: number
  streetId: number
  communityId: number
  unit: string
  createdAt: number
}

export interface LinkageSink {
  readonly name: string
  send(m: LinkageMessage): Promise<void>
}

/** The default: says on the log what would be pushed. */
export class LoggingLinkage implements LinkageSink {
  readonly name = 'log'
  async send(m: LinkageMessage): Promise<void> {
    log.warn({ linkage: m }, `one-key linkage to ${m.target}: ${m.title}`)
  }
}

/** POSTs each message as JSON; any status but 2xx is a failure to retry. */
export class WebhookLinkage implements LinkageSink {
  readonly name = 'webhook'
  constructor(readonly url: string, readonly token: string, readonly timeoutMs: number) {}

  async send(m: LinkageMessage): Promise<void> {
    const res = await fetch(this.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) },
      body: JSON.stringify(m),
      signal: AbortSignal.timeout(this.timeoutMs),
    })
    if (!res.ok) throw new Error(`${this.url} answered ${res.status} ${(await res.text()).slice(0, 200)}`)
  }
}

export function linkageMessages(t: Ticket): LinkageMessage[] {
  return t.linkage.map((target) => ({
    id: `${t.id}:${target}`, target, ticketId: t.id, type: t.type, title: t.title, severity: t.severity,
    lon: t.place.lon, lat: t.place.lat, districtId: t.place.districtId, streetId: t.place.streetId, communityId: t.place.communityId,
    unit: t.unitId, createdAt: t.createdAt,
  }))
}

interface Pending {
  m: LinkageMessage
  attempts: number
  dueAt: number
  version: number
}

export interface OutboxStats {
  pending: number
  sent: number
  failed: number
}

export class LinkageOutbox {
  readonly #client: ClickHouseClient
  readonly #sink: LinkageSink
  readonly #maxAttempts: number
  readonly #pending = new Map<string, Pending>()
  #busy = false
  #stats = { sent: 0, failed: 0 }

  constructor(client: ClickHouseClient, sink: LinkageSink, maxAttempts: number) {
    this.#client = client
    this.#sink = sink
    this.#maxAttempts = maxAttempts
  }

  stats(): OutboxStats {
    return { pending: this.#pending.size, ...this.#stats }
  }

  /** Reads back what was still pending when the process stopped. */
  async load(): Promise<void> {
    const rs = await this.#client.query({ query: `SELECT payload, attempts, version FROM linkage_outbox FINAL WHERE status = 'pending'`, format: 'JSONCompactEachRow' })
    for (const [payload, attempts, version] of await rs.json<[string, number, number | string]>()) {
      const m = JSON.parse(payload) as LinkageMessage
      this.#pending.set(m.id, { m, attempts: Number(attempts), dueAt: 0, version: Number(version) })
    }
  }

  /** Stores the messages as pending; they go out on the next delivery round. */
  async enqueue(ms: readonly LinkageMessage[], now: number): Promise<void> {
    const fresh = ms.filter((m) => !this.#pending.has(m.id))
    if (fresh.length === 0) return
    await this.#write(fresh.map((m) => ({ m, attempts: 0, dueAt: now, version: 1 })), 'pending', '', now)
    for (const m of fresh) this.#pending.set(m.id, { m, attempts: 0, dueAt: now, version: 1 })
  }

  /** Sends what is due; one round at a time. */
  async deliver(now: number): Promise<void> {
    if (this.#busy) return
    this.#busy = true
    try {
      for (const p of [...this.#pending.values()]) {
        if (p.dueAt > now) continue
        p.attempts++
        p.version++
        let error = ''
        try {
          await this.#sink.send(p.m)
        } catch (e) {
          error = messageOf(e)
        }
        // Only the push is in question above; the bookkeeping below is the store's, and a failure
        // there must not turn a delivered push into one sent again after a restart.
        try {
          if (error === '') {
            this.#pending.delete(p.m.id)
            this.#stats.sent++
            pushes.inc({ target: p.m.target, outcome: 'sent' })
            await this.#write([p], 'sent', '', now)
          } else if (p.attempts >= this.#maxAttempts) {
            this.#pending.delete(p.m.id)
            this.#stats.failed++
            pushes.inc({ target: p.m.target, outcome: 'failed' })
            log.error({ linkage: p.m, attempts: p.attempts, err: error }, `linkage to ${p.m.target} failed for good`)
            await this.#write([p], 'failed', error, now)
          } else {
            p.dueAt = now + backoffDelayMs(p.attempts, { initialMs: 1_000, maxMs: 60_000 })
            pushes.inc({ target: p.m.target, outcome: 'retry' })
            log.warn({ linkage: p.m.id, attempts: p.attempts, err: error }, `linkage to ${p.m.target} failed; will retry`)
            await this.#write([p], 'pending', error, now)
          }
        } catch (e) {
          log.error({ linkage: p.m.id, err: messageOf(e) }, 'could not record a linkage push in the outbox table')
        }
      }
    } finally {
      this.#busy = false
    }
  }

  async #write(ps: readonly Pending[], status: string, error: string, now: number): Promise<void> {
    await this.#client.insert({
      table: 'linkage_outbox',
      values: ps.map((p) => ({ id: p.m.id, version: p.version, ticket_id: p.m.ticketId, target: p.m.target, status, attempts: p.attempts, last_error: error, created_at: Math.round(p.m.createdAt), updated_at: Math.round(now), payload: JSON.stringify(p.m) })),
      format: 'JSONEachRow',
    })
  }
}
