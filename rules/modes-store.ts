// Operating-mode entries in the store, so a restart keeps the mode in force.
import type { ClickHouseClient } from '@clickhouse/client'
import type { Mode } from './kinds/types.ts'
import type { ModeEntry } from './modes.ts'

export async function storeModes(client: ClickHouseClient, entries: readonly ModeEntry[], deleted: boolean): Promise<void> {
  await client.insert({
    table: 'operating_modes',
    values: entries.map((e) => ({
      id: e.id, version: deleted ? e.createdAt + 1 : e.createdAt, deleted: deleted ? 1 : 0, district_id: e.districtId, mode: e.mode,
      starts_at: Math.round(e.startsAt), ends_at: e.endsAt === undefined ? null : Math.round(e.endsAt), actor: e.actor, note: e.note, created_at: Math.round(e.createdAt),
    })),
    format: 'JSONEachRow',
  })
}

export async function loadModes(client: ClickHouseClient): Promise<ModeEntry[]> {
  const rs = await client.query({
    query: `SELECT id, district_id, mode, toUnixTimestamp64Milli(starts_at), if(isNull(ends_at), -1, toUnixTimestamp64Milli(assumeNotNull(ends_at))), actor, note, toUnixTimestamp64Milli(created_at)
            FROM operating_modes FINAL ORDER BY created_at`,
    format: 'JSONCompactEachRow',
  })
  const rows = await rs.json<[string, number, string, number | string, number | string, string, string, number | string]>()
  return rows.map(([id, d, mode, s, e, actor, note, c]) => ({ id, districtId: Number(d), mode: mode as Mode, startsAt: Number(s), endsAt: Number(e) < 0 ? undefined : Number(e), actor, note, createdAt: Number(c) }))
}
