// A ticket's life: created -> dispatched -> signed -> in progress ->
// resolved -> verified -> closed, plus returned (退单, with a reason, then
// re-dispatched), escalated (督办) and reopened. Every move is an action by
// an actor at a time; a move the table does not allow is refused as data,
// with a code, never applied.
import { DONE_TICKET_STATUSES, type Severity } from '../../lib/bus/elements.ts'
import type { Linkage } from '../catalogue/catalogue.ts'
import type { Mode, Place, Subject } from '../kinds/types.ts'

export const TICKET_STATUSES = ['created', 'dispatched', 'signed', 'in_progress', 'resolved', 'verified', 'closed', 'returned', 'escalated', 'reopened'] as const
export type TicketStatus = (typeof TICKET_STATUSES)[number]

export const TICKET_ACTIONS = ['dispatch', 'sign', 'start', 'resolve', 'verify', 'close', 'return', 'escalate', 'reopen', 'comment'] as const
export type TicketAction = (typeof TICKET_ACTIONS)[number]

/** Statuses in which a ticket still needs work: it counts as open on the map. */
export const OPEN_STATUSES: ReadonlySet<TicketStatus> = new Set(TICKET_STATUSES.filter((s) => !(DONE_TICKET_STATUSES as readonly string[]).includes(s)))

const TRANSITIONS: Record<TicketAction, { from: readonly TicketStatus[]; to: TicketStatus | undefined }> = {
  dispatch: { from: ['created', 'returned', 'escalated', 'reopened'], to: 'dispatched' },
  sign: { from: ['dispatched', 'escalated'], to: 'signed' },
  start: { from: ['signed'], to: 'in_progress' },
  resolve: { from: ['signed', 'in_progress', 'escalated'], to: 'resolved' },
  verify: { from: ['resolved'], to: 'verified' },
  close: { from: ['verified'], to: 'closed' },
  return: { from: ['dispatched', 'signed'], to: 'returned' },
  escalate: { from: ['dispatched', 'signed', 'in_progress', 'returned', 'reopened'], to: 'escalated' },
  reopen: { from: ['resolved', 'verified', 'closed'], to: 'reopened' },
  comment: { from: TICKET_STATUSES, to: undefined },
}

/** Actions that must say why. */
const NEEDS_NOTE: ReadonlySet<TicketAction> = new Set(['return', 'escalate', 'reopen', 'comment'])

export interface Ticket {
  /** T-<yyyymmdd>-<seq>: readable on the phone. */
  id: string
  /** Grows by one with every change; the store keeps the highest. */
  version: number
  origin: 'proactive' | 'complaint'
  status: TicketStatus
  /** Dispatch catalogue code. */
  type: string
  group: string
  title: string
  description: string
  severity: Severity
  place: Place
  subject: Subject | undefined
  ruleId: string
  /** (rule, place, subject): one open ticket per key. '' for complaints. */
  key: string
  unitId: string
  unitName: string
  /** The operating mode in force where the ticket stands, when it was raised. */
  mode: Mode
  createdAt: number
  updatedAt: number
  dispatchedAt: number | undefined
  signedAt: number | undefined
  resolvedAt: number | undefined
  closedAt: number | undefined
  signDueAt: number | undefined
  resolveDueAt: number | undefined
  /** Times the rule raised it while it was open (1 at creation). */
  occurrences: number
  /** Time of what raised it first (the reading or status change that completed the rule), and of the latest raise. */
  firstSeenAt: number
  lastSeenAt: number
  /** Whether the rule's signal is still on (undefined: no signal, e.g. a complaint). */
  signalActive: boolean | undefined
  /** Related tickets in the same grid and window. */
  linked: string[]
  linkage: Linkage[]
  evidence: Record<string, unknown>[]
  escalations: number
  /** 督办: an SLA was breached or it was closed on paper only. */
  supervised: boolean
  slaBreaches: ('sign' | 'resolve')[]
  /** Times it was resolved while its signal still said otherwise. */
  formalOnly: number
  returns: number
  /** Complaints (12345) matched to it. */
  complaints: number
}

export interface TicketEvent {
  ticketId: string
  ts: number
  version: number
  action: TicketAction | 'create' | 'occur' | 'link' | 'signal'
  actor: string
  from: TicketStatus | ''
  to: TicketStatus | ''
  note: string
  payload: Record<string, unknown>
}

export interface Refusal {
  code: 'TICKET_ILLEGAL_TRANSITION' | 'TICKET_NOTE_REQUIRED' | 'TICKET_NOT_FOUND' | 'TICKET_UNIT_REQUIRED'
  message: string
}

export type Moved = { ok: true; ticket: Ticket; event: TicketEvent } | { ok: false; error: Refusal }

export interface ActOptions {
  note?: string
  /** For dispatch: the unit to dispatch to (default: the ticket's unit). */
  unit?: { id: string; name: string }
  /** For dispatch: minutes the unit has to sign. */
  signMinutes?: number
  payload?: Record<string, unknown>
}

/** Whether `action` is allowed from `status`. */
export function allowed(status: TicketStatus, action: TicketAction): boolean {
  return TRANSITIONS[action].from.includes(status)
}

/** The actions an operator may take on a ticket in this status. */
export function actionsFrom(status: TicketStatus): TicketAction[] {
  return TICKET_ACTIONS.filter((a) => allowed(status, a))
}

/** Applies one action; the ticket given is not changed. */
export function transition(t: Ticket, action: TicketAction, actor: string, now: number, o: ActOptions = {}): Moved {
  const rule = TRANSITIONS[action]
  if (!rule.from.includes(t.status)) {
    return { ok: false, error: { code: 'TICKET_ILLEGAL_TRANSITION', message: `ticket ${t.id} is ${t.status}; it cannot be ${action === 'return' ? 'returned' : `${action}ed`.replace('eed', 'ed')} (allowed from ${t.status}: ${actionsFrom(t.status).join(', ')})` } }
  }
  const note = (o.note ?? '').trim()
  if (NEEDS_NOTE.has(action) && note === '') return { ok: false, error: { code: 'TICKET_NOTE_REQUIRED', message: `${action} needs a note saying why` } }
  const next: Ticket = { ...t, version: t.version + 1, updatedAt: now, status: rule.to ?? t.status }
  switch (action) {
    case 'dispatch':
      if (o.unit) {
        next.unitId = o.unit.id
        next.unitName = o.unit.name
      }
      next.dispatchedAt = now
      next.signedAt = undefined
      next.signDueAt = now + (o.signMinutes ?? 5) * 60_000
      break
    case 'sign':
      next.signedAt = now
      break
    case 'resolve':
      next.resolvedAt = now
      break
    case 'close':
      next.closedAt = now
      break
    case 'return':
      next.returns++
      break
    case 'escalate':
      next.escalations++
      next.supervised = true
      break
    case 'reopen':
      next.resolvedAt = undefined
      next.closedAt = undefined
      break
    default:
      break
  }
  return {
    ok: true,
    ticket: next,
    event: { ticketId: t.id, ts: now, version: next.version, action, actor, from: t.status, to: next.status, note, payload: { ...(o.unit ? { unit: o.unit.id } : {}), ...(o.payload ?? {}) } },
  }
}
