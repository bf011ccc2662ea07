// Every acknowledged message, device by device, against the store: an
// acknowledged message is either stored or dead-lettered (with its reason);
// anything else is lost. Run once the system has stopped, on its data dir.
import { openMigratedStore } from '../store/index.ts'

export interface LossCheck {
  storedMessages: number
  deadLettered: number
  deadLetterCodes: Record<string, number>
  lostAcknowledged: number
  devicesWithLoss: number
}

export async function checkAcknowledged(dataDir: string, ackedByDevice: Record<string, number>): Promise<LossCheck> {
  const { store } = await openMigratedStore({ env: {} }, { dataDir })
  try {
    const count = async (query: string): Promise<Map<string, number>> => {
      const rs = await store.client.query({ query, format: 'JSONCompactEachRow' })
      return new Map((await rs.json<[string, number | string]>()).map(([k, n]) => [k, Number(n)]))
    }
    const stored = await count('SELECT device_id, uniqExact(seq) AS n FROM readings GROUP BY device_id')
    const dead = await count("SELECT device_id, count() AS n FROM dead_letters WHERE source = 'mqtt' GROUP BY device_id")
    const codes = await count("SELECT code, count() AS n FROM dead_letters WHERE source = 'mqtt' GROUP BY code")
    const r: LossCheck = { storedMessages: 0, deadLettered: 0, deadLetterCodes: Object.fromEntries(codes), lostAcknowledged: 0, devicesWithLoss: 0 }
    for (const [id, acked] of Object.entries(ackedByDevice)) {
      const have = stored.get(id) ?? 0
      const refused = dead.get(id) ?? 0
      r.storedMessages += have
      r.deadLettered += refused
      if (acked > have + refused) {
        r.lostAcknowledged += acked - have - refused
        r.devicesWithLoss++
      }
    }
    return r
  } finally {
    await store.close()
  }
}
