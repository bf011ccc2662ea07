// The fault suite's account: what the devices sent and saw acknowledged,
// against what the store holds, message by message. Every case prints one
// line of it, so a run shows what each fault cost, not only pass or fail.
import { expect } from 'vitest'
import { openMigratedStore } from '../../store/index.ts'
import type { FaultFleet, FleetCounts } from './devices.ts'

export interface Ledger {
  sent: number
  acknowledged: number
  /** Messages the store holds (each once, however many rows). */
  stored: number
  /** Rows beyond the first of a message: the same message stored twice. */
  duplicated: number
  /** Acknowledged, and neither stored nor dead-lettered (with its reason). */
  lost: number
  /** Dead-lettered rows of these devices. */
  deadLettered: number
  /** By code, with one of the reasons given. */
  deadLetters: { code: string; n: number; example: string }[]
  /** Sent again after a reconnect. */
  resent: number
  /** Sent, never acknowledged (the device would still hold them). */
  unacknowledged: number
  /** Of those, stored all the same (stored, then the connection died before the PUBACK). */
  storedUnacknowledged: number
}

/** Reads the store in `dataDir` (the system stopped) and accounts for every message of `fleet`. */
export async function ledgerOf(dataDir: string, fleet: FaultFleet, counts: FleetCounts): Promise<Ledger> {
  const { store } = await openMigratedStore({ env: {} }, { dataDir })
  try {
    const ids = fleet.devices.map((d) => d.spec.id)
    const rs = await store.client.query({
      query: 'SELECT device_id, seq, count() FROM readings WHERE device_id IN {ids:Array(String)} GROUP BY device_id, seq',
      query_params: { ids }, format: 'JSONCompactEachRow',
    })
    const stored = new Map<string, Map<number, number>>()
    for (const [id, seq, n] of await rs.json<[string, number, number | string]>()) {
      let m = stored.get(id)
      if (!m) stored.set(id, (m = new Map<number, number>()))
      m.set(Number(seq), Number(n))
    }
    const dl = await store.client.query({ query: 'SELECT code, toUInt64(count()), any(reason) FROM dead_letters WHERE device_id IN {ids:Array(String)} GROUP BY code', query_params: { ids }, format: 'JSONCompactEachRow' })
    const deadLetters = (await dl.json<[string, number | string, string]>()).map(([code, n, example]) => ({ code, n: Number(n), example }))
    const deadLettered = deadLetters.reduce((s, d) => s + d.n, 0)
    // A dead letter keeps the payload as sent: its seq says which message it was.
    const dlSeqs = await store.client.query({ query: "SELECT device_id, JSONExtractUInt(raw, 'seq') FROM dead_letters WHERE device_id IN {ids:Array(String)}", query_params: { ids }, format: 'JSONCompactEachRow' })
    const refused = new Set((await dlSeqs.json<[string, number | string]>()).map(([id, seq]) => `${id}/${Number(seq)}`))
    const l: Ledger = { sent: counts.sent, acknowledged: counts.acknowledged, stored: 0, duplicated: 0, lost: 0, deadLettered, deadLetters, resent: counts.resent, unacknowledged: 0, storedUnacknowledged: 0 }
    for (const d of fleet.devices) {
      const have: ReadonlyMap<number, number> = stored.get(d.spec.id) ?? new Map<number, number>()
      for (const [, n] of have) {
        l.stored++
        l.duplicated += n - 1
      }
      for (const seq of d.acked) if (!have.has(seq) && !refused.has(`${d.spec.id}/${seq}`)) l.lost++
      for (const seq of d.sent) {
        if (d.acked.has(seq)) continue
        l.unacknowledged++
        if (have.has(seq)) l.storedUnacknowledged++
      }
    }
    return l
  } finally {
    await store.close()
  }
}

/** One line for the run's output: the case and its account. */
export function report(name: string, l: Ledger, extra: Record<string, unknown> = {}): void {
  const more = Object.entries(extra).map(([k, v]) => `, ${k} ${String(v)}`).join('')
  console.log(`[faults] ${name}: sent ${l.sent}, acknowledged ${l.acknowledged}, stored ${l.stored}, duplicated ${l.duplicated}, lost ${l.lost}` +
    ` (resent after reconnect ${l.resent}; never acknowledged ${l.unacknowledged}, of which stored ${l.storedUnacknowledged}; dead-lettered ${l.deadLettered}${l.deadLetters.map((d) => ` ${d.code} ${d.n}: ${d.example}`).join(';')}${more})`)
}

/** Every message the devices sent acknowledged and stored, once; none lost, none refused. */
export function expectEachStoredOnce(l: Ledger, counts: FleetCounts): void {
  expect(counts.unacknowledged).toBe(0)
  expect(l.lost).toBe(0)
  expect(l.duplicated).toBe(0)
  expect(l.deadLettered).toBe(0)
  expect(l.acknowledged).toBe(l.sent)
  expect(l.stored).toBe(l.sent)
}
