// Tickets on plain data: the lifecycle (and the moves it refuses), one
// open ticket per key, linking, SLA breaches on an injected clock, and
// closure checked against the signal that raised the ticket.
import { describe, expect, it } from 'vitest'
import { loadCatalogue } from '../../rules/catalogue/catalogue.ts'
import type { Mode, Raise } from '../../rules/kinds/types.ts'
import { TicketBook, type BookPolicy } from '../../rules/tickets/book.ts'
import { actionsFrom, transition, type Ticket } from '../../rules/tickets/lifecycle.ts'
import { place } from './fixtures.ts'

const catalogue = loadCatalogue()
const MIN = 60_000
const T0 = Date.UTC(2026, 10, 22, 2, 0, 0)
const factors = { sign: 1, resolve: 1 }
const policy: BookPolicy = {
  linkWindowMs: 30 * MIN, autoCloseAfterMs: 60 * MIN, maxEvidence: 5, maxLinks: 20,
  slaFactors: { normal: factors, holiday: factors, major_event: factors, emergency: { sign: 0.5, resolve: 0.5 } },
}

const raise = (key: string, ts: number, o: Partial<Raise> = {}): Raise => ({
  type: 'raise', ruleId: 'water', key, ticketType: 'waterlogging', severity: 'warning', subject: { deviceId: key }, place: place(1, 10), ts, title: 'water', evidence: { value: 40 }, ticket: true, ...o,
})

function open(book: TicketBook, key: string, now: number, mode: Mode = 'normal', o: Partial<Raise> = {}): Ticket {
  const changes = book.raise(raise(key, now, o), { now, mode, newId: () => book.newId(now, 480), route: (t) => catalogue.route(t.code, { districtId: 3, streetId: 31 }) ?? { unitId: '?', unitName: '?' } })
  const last = changes.at(-1)
  if (!last) throw new Error('nothing raised')
  return book.get(last.ticket.id) as Ticket
}

describe('ticket lifecycle', () => {
  it('goes created -> dispatched -> signed -> in progress -> resolved -> verified -> closed', () => {
    const book = new TicketBook(catalogue, policy)
    const t = open(book, 'k1', T0)
    expect(t).toMatchObject({ status: 'dispatched', unitId: 'drainage@d3', signDueAt: T0 + 5 * MIN, resolveDueAt: T0 + 240 * MIN, id: 'T-20261122-000001' })
    const steps: [Parameters<TicketBook['act']>[1], string][] = [['sign', 'signed'], ['start', 'in_progress']]
    for (const [a, s] of steps) {
      const r = book.act(t.id, a, 'op:li', T0 + MIN)
      expect(r.ok && r.changes[0]?.ticket.status).toBe(s)
    }
    book.clear({ type: 'clear', ruleId: 'water', key: 'k1', ts: T0 + 2 * MIN, place: t.place, ticket: true }, T0 + 2 * MIN)
    const resolved = book.act(t.id, 'resolve', 'op:li', T0 + 3 * MIN)
    expect(resolved.ok && resolved.changes.map((c) => c.ticket.status)).toEqual(['resolved', 'verified'])
    expect(book.sweep(T0 + 3 * MIN + policy.autoCloseAfterMs).map((c) => c.ticket.status)).toEqual(['closed'])
    expect(book.byKey('k1')).toBeUndefined()
  })

  it('refuses illegal moves as data, naming what is allowed', () => {
    const book = new TicketBook(catalogue, policy)
    const t = open(book, 'k1', T0)
    const r = book.act(t.id, 'close', 'op:li', T0)
    expect(r).toEqual({ ok: false, error: { code: 'TICKET_ILLEGAL_TRANSITION', message: expect.stringContaining('allowed from dispatched: sign, return, escalate, comment') as unknown } })
    expect(book.act(t.id, 'verify', 'op:li', T0).ok).toBe(false)
    expect(book.act('T-nope', 'sign', 'op:li', T0)).toMatchObject({ ok: false, error: { code: 'TICKET_NOT_FOUND' } })
    expect(book.get(t.id)?.status).toBe('dispatched')
    expect(actionsFrom('closed')).toEqual(['reopen', 'comment'])
  })

  it('a return needs a reason, and the ticket is re-dispatched to another unit', () => {
    const book = new TicketBook(catalogue, policy)
    const t = open(book, 'k1', T0)
    expect(book.act(t.id, 'return', 'unit:drainage', T0 + MIN)).toMatchObject({ ok: false, error: { code: 'TICKET_NOTE_REQUIRED' } })
    expect(book.act(t.id, 'return', 'unit:drainage', T0 + MIN, { note: '不属于本单位' }).ok).toBe(true)
    const again = book.act(t.id, 'dispatch', 'op:li', T0 + 2 * MIN, { unit: { id: 'road-maintenance@d3', name: '道路养护' } })
    expect(again.ok && again.changes[0]?.ticket).toMatchObject({ status: 'dispatched', unitId: 'road-maintenance@d3', returns: 1, signDueAt: T0 + 7 * MIN })
  })

  it('transition() leaves the ticket it was given unchanged', () => {
    const book = new TicketBook(catalogue, policy)
    const t = open(book, 'k1', T0)
    const copy = structuredClone(t)
    transition(t, 'sign', 'op', T0)
    expect(t).toEqual(copy)
  })
})

describe('de-duplication and linking', () => {
  it('repeated raises of one key are occurrences of one open ticket', () => {
    const book = new TicketBook(catalogue, policy)
    const t = open(book, 'k1', T0)
    for (let i = 1; i <= 9; i++) book.raise(raise('k1', T0 + i * MIN, { evidence: { value: 40 + i } }), { now: T0 + i * MIN, mode: 'normal', newId: () => { throw new Error('an occurrence takes no new id') }, route: () => ({ unitId: 'x', unitName: 'x' }) })
    expect(book.size).toBe(1)
    const now = book.get(t.id)
    expect(now).toMatchObject({ occurrences: 10, lastSeenAt: T0 + 9 * MIN })
    // Evidence keeps the first and the latest.
    expect(now?.evidence.map((e) => e.value)).toEqual([40, 46, 47, 48, 49])
  })

  it('two rules raising the same type about the same device make one ticket', () => {
    const book = new TicketBook(catalogue, policy)
    const t = open(book, 'gas-leak|d:G1', T0, 'normal', { ruleId: 'gas-leak', ticketType: 'gas_leak', subject: { deviceId: 'G1' } })
    book.raise(raise('gas-rising|d:G1', T0 + 1_000, { ruleId: 'gas-rising', ticketType: 'gas_leak', subject: { deviceId: 'G1' } }), { now: T0 + 1_000, mode: 'normal', newId: () => { throw new Error('an occurrence takes no new id') }, route: () => ({ unitId: 'x', unitName: 'x' }) })
    expect(book.size).toBe(1)
    expect(book.get(t.id)?.occurrences).toBe(2)
  })

  it('a closed ticket does not absorb a new raise: that is a new ticket', () => {
    const book = new TicketBook(catalogue, policy)
    const t = open(book, 'k1', T0)
    book.act(t.id, 'sign', 'op', T0)
    book.clear({ type: 'clear', ruleId: 'water', key: 'k1', ts: T0, place: t.place, ticket: true }, T0)
    book.act(t.id, 'resolve', 'op', T0)
    const second = open(book, 'k1', T0 + 10 * MIN)
    expect(second.id).not.toBe(t.id)
  })

  it('tickets in the same community grid and window are linked both ways; others are not', () => {
    const book = new TicketBook(catalogue, policy)
    const a = open(book, 'k1', T0)
    const b = open(book, 'k2', T0 + 10 * MIN, 'normal', { ruleId: 'bins', ticketType: 'bin_overflow' })
    const c = open(book, 'k3', T0 + 11 * MIN, 'normal', { place: place(9, 90) })
    const d = open(book, 'k4', T0 + 50 * MIN)
    expect(book.get(a.id)?.linked).toEqual([b.id])
    expect(book.get(b.id)?.linked).toEqual([a.id])
    expect(book.get(c.id)?.linked).toEqual([])
    expect(book.get(d.id)?.linked).toEqual([])
  })
})

describe('SLA timers', () => {
  it('not signed in time: escalated and flagged for supervision, once', () => {
    const book = new TicketBook(catalogue, policy)
    const t = open(book, 'k1', T0)
    expect(book.sweep(T0 + 5 * MIN)).toEqual([])
    const breached = book.sweep(T0 + 5 * MIN + 1)
    expect(breached.map((c) => [c.ticket.status, c.event.actor, c.ticket.supervised])).toEqual([['escalated', 'system:sla', true]])
    expect(book.sweep(T0 + 6 * MIN)).toEqual([])
    expect(book.get(t.id)?.slaBreaches).toEqual(['sign'])
  })

  it('past the handling deadline: escalated', () => {
    const book = new TicketBook(catalogue, policy)
    const t = open(book, 'k1', T0)
    book.act(t.id, 'sign', 'op', T0 + MIN)
    expect(book.sweep(T0 + 240 * MIN + 1).map((c) => c.ticket.status)).toEqual(['escalated'])
  })

  it('an emergency halves the SLAs', () => {
    const book = new TicketBook(catalogue, policy)
    const t = open(book, 'k1', T0, 'emergency')
    expect(t).toMatchObject({ signDueAt: T0 + 2.5 * MIN, resolveDueAt: T0 + 120 * MIN })
  })
})

describe('closure checked against the data', () => {
  it('resolved while the signal is still abnormal: formal-only, reopened and dispatched again', () => {
    const book = new TicketBook(catalogue, policy)
    const t = open(book, 'k1', T0)
    book.act(t.id, 'sign', 'op', T0 + MIN)
    const r = book.act(t.id, 'resolve', 'op', T0 + 2 * MIN)
    expect(r.ok && r.changes.map((c) => [c.ticket.status, c.event.actor])).toEqual([['resolved', 'op'], ['reopened', 'system:twin'], ['dispatched', 'system']])
    expect(book.get(t.id)).toMatchObject({ formalOnly: 1, supervised: true, status: 'dispatched' })
  })

  it('a signal that returns to normal after the resolve verifies the ticket', () => {
    const book = new TicketBook(catalogue, policy)
    const t = open(book, 'k1', T0, 'normal', { ruleId: 'complaint-like' })
    // No signal at all (e.g. set by hand): resolved waits for verification.
    book.act(t.id, 'sign', 'op', T0)
    const manual = { ...(book.get(t.id) as Ticket), signalActive: undefined }
    book.restore([manual])
    const r = book.act(t.id, 'resolve', 'op', T0 + MIN)
    expect(r.ok && r.changes.map((c) => c.ticket.status)).toEqual(['resolved'])
    expect(book.act(t.id, 'verify', 'op:follow-up', T0 + 2 * MIN).ok).toBe(true)
  })
})
