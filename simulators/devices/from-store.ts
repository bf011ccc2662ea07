// The devices a simulation drives, read from the city in the store: every
// device, or those of one type or district, in id order.
import type { ClickHouseClient } from '@clickhouse/client'
import type { DeviceType } from '../../registry/device-types.ts'
import { CURRENT_DEVICES } from '../../registry/city-store.ts'
import type { SimDevice } from './fleet.ts'

export interface DeviceFilter {
  type?: string | undefined
  /** A district's grid id. */
  district?: number | undefined
  limit?: number | undefined
}

export async function devicesFromStore(client: ClickHouseClient, f: DeviceFilter = {}): Promise<SimDevice[]> {
  const where = [f.type !== undefined ? 'type = {type:String}' : '', f.district !== undefined ? 'district_id = {district:UInt32}' : ''].filter((w) => w !== '')
  const rs = await client.query({
    query: `SELECT id, type, interval_s AS intervalS FROM ${CURRENT_DEVICES} ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id ${f.limit ? 'LIMIT {limit:UInt32}' : ''}`,
    query_params: { ...(f.type !== undefined ? { type: f.type } : {}), ...(f.district !== undefined ? { district: f.district } : {}), ...(f.limit ? { limit: f.limit } : {}) },
    format: 'JSONEachRow',
  })
  return (await rs.json<{ id: string; type: DeviceType; intervalS: number | string }>()).map((d) => ({ id: d.id, type: d.type, intervalS: Number(d.intervalS) }))
}
