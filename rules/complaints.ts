// Complaints from the 12345 hotline, matched to the proactive tickets that
// were already handling them. This is the figure the whole system exists
// for: the share of complaints that arrived about something already in
// hand (未诉先办), and by how long the ticket came first.
import type { Catalogue } from './catalogue/catalogue.ts'
import type { Place } from './kinds/types.ts'
import { OPEN_STATUSES, type Ticket } from './tickets/lifecycle.ts'

export interface Complaint {
  id: string
  receivedAt: number
  serviceCode: string
  description: string
  address: string
  lon: number
  lat: number
  /** Where it stands; undefined when the point is outside the city's grids. */
  place: Place | undefined
  /** The proactive ticket it matched, and how long before the complaint that ticket was raised. */
  matchedTicket: string
  leadMs: number
  /** Its own ticket, when it matched none. */
  ticketId: string
  contact: Record<string, string>
}

export interface MatchPolicy {
  radiusM: number
  windowMs: number
}

/** Metres between two WGS-84 points (equirectangular: exact enough within a city). */
export function distanceM(lon1: number, lat1: number, lon2: number, lat2: number): number {
  const k = Math.PI / 180
  const x = (lon2 - lon1) * k * Math.cos(((lat1 + lat2) / 2) * k)
  const y = (lat2 - lat1) * k
  return Math.sqrt(x * x + y * y) * 6_371_000
}

/**
 * The proactive ticket a complaint is about: same type (or, failing that,
 * the same catalogue group), raised before the complaint within the window
 * and still open or done within it, in the same community grid or within
 * the radius. The best is the same type, then the nearest, then the oldest.
 */
export function matchComplaint(c: Pick<Complaint, 'serviceCode' | 'receivedAt' | 'lon' | 'lat' | 'place'>, tickets: Iterable<Ticket>, catalogue: Catalogue, p: MatchPolicy): { ticket: Ticket; leadMs: number } | undefined {
  const group = catalogue.type(c.serviceCode)?.group
  let best: { ticket: Ticket; score: [number, number, number] } | undefined
  for (const t of tickets) {
    if (t.origin !== 'proactive' || t.createdAt > c.receivedAt || c.receivedAt - t.createdAt > p.windowMs) continue
    if (!OPEN_STATUSES.has(t.status) && t.updatedAt < c.receivedAt - p.windowMs) continue
    const sameType = t.type === c.serviceCode
    if (!sameType && (group === undefined || t.group !== group)) continue
    const d = distanceM(c.lon, c.lat, t.place.lon, t.place.lat)
    const sameGrid = c.place !== undefined && c.place.communityId !== 0 && t.place.communityId === c.place.communityId
    if (!sameGrid && d > p.radiusM) continue
    const score: [number, number, number] = [sameType ? 0 : 1, d, t.createdAt]
    if (!best || score[0] < best.score[0] || (score[0] === best.score[0] && (score[1] < best.score[1] || (score[1] === best.score[1] && score[2] < best.score[2])))) best = { ticket: t, score }
  }
  return best ? { ticket: best.ticket, leadMs: c.receivedAt - best.ticket.createdAt } : undefined
}

export interface ComplaintStats {
  complaints: number
  matched: number
  /** Share of complaints already in hand when they arrived. */
  matchedShare: number
  leadMs: { p50: number; p90: number; max: number } | null
}
