// Complaints in the store, and the figures of how many were already in hand.
import type { ClickHouseClient } from '@clickhouse/client'
import type { Complaint, ComplaintStats } from './complaints.ts'

export async function storeComplaint(client: ClickHouseClient, c: Complaint): Promise<void> {
  await client.insert({
    table: 'complaints',
    values: [{
      id: c.id, received_at: Math.round(c.receivedAt), service_code: c.serviceCode, description: c.description, address: c.address, lon: c.lon, lat: c.lat,
      micro_grid_id: c.place?.microGridId ?? 0, community_id: c.place?.communityId ?? 0, district_id: c.place?.districtId ?? 0,
      matched_ticket: c.matchedTicket, lead_ms: Math.round(c.leadMs), ticket_id: c.ticketId, doc: JSON.stringify(c),
    }],
    format: 'JSONEachRow',
  })
}

/** The highest sequence number of the day's complaint ids (C-<day>-<seq>); 0 when none. */
export async function lastComplaintSeq(client: ClickHouseClient, day: string): Promise<number> {
  const rs = await client.query({ query: `SELECT max(toUInt32OrZero(substring(id, 12))) FROM complaints WHERE startsWith(id, {prefix:String})`, query_params: { prefix: `C-${day}-` }, format: 'JSONCompactEachRow' })
  const [[n] = [0]] = await rs.json<[number | string]>()
  return Number(n)
}

/** Complaints received in [from, to), at most `limit`, newest first. */
export async function loadComplaints(client: ClickHouseClient, from: number, to: number, limit: number, ids?: readonly string[], codes?: readonly string[]): Promise<Complaint[]> {
  const rs = await client.query({
    query: `SELECT doc FROM complaints FINAL
            WHERE received_at >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') AND received_at < fromUnixTimestamp64Milli({to:Int64}, 'UTC')
            ${ids ? 'AND id IN {ids:Array(String)}' : ''} ${codes ? 'AND service_code IN {codes:Array(String)}' : ''}
            ORDER BY received_at DESC LIMIT {limit:UInt32}`,
    query_params: { from: Math.round(from), to: Math.round(to), limit, ...(ids ? { ids } : {}), ...(codes ? { codes } : {}) },
    format: 'JSONCompactEachRow',
  })
  return (await rs.json<[string]>()).map(([doc]) => JSON.parse(doc) as Complaint)
}

export async function complaintFigures(client: ClickHouseClient, from: number, to: number): Promise<ComplaintStats> {
  const rs = await client.query({
    query: `SELECT toUInt64(count()), toUInt64(countIf(matched_ticket != '')),
                   quantileExactIf(0.5)(lead_ms, matched_ticket != ''), quantileExactIf(0.9)(lead_ms, matched_ticket != ''), maxIf(lead_ms, matched_ticket != '')
            FROM complaints FINAL
            WHERE received_at >= fromUnixTimestamp64Milli({from:Int64}, 'UTC') AND received_at < fromUnixTimestamp64Milli({to:Int64}, 'UTC')`,
    query_params: { from: Math.round(from), to: Math.round(to) },
    format: 'JSONCompactEachRow',
  })
  const [row] = await rs.json<[number | string, number | string, number, number, number]>()
  const [n, matched, p50, p90, max] = row ?? [0, 0, 0, 0, 0]
  const total = Number(n)
  const m = Number(matched)
  return { complaints: total, matched: m, matchedShare: total === 0 ? 0 : m / total, leadMs: m === 0 ? null : { p50: Number(p50), p90: Number(p90), max: Number(max) } }
}
