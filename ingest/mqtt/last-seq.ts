// The store's memory of each device's sequence numbers. A gateway process
// knows the seqs it has stored itself; a device that lost its connection may
// come back on another worker (or after a restart) and retransmit what the
// first one stored but could not acknowledge. MQTT 3.1.1 marks such a
// retransmission with DUP (MQTT-3.3.1-1), so only a DUP PUBLISH at the start
// of a session needs to ask the store. Lookups arriving together are batched
// into one query, so a reconnect storm costs a handful of queries, not one
// per device.
import type { ClickHouseClient } from '@clickhouse/client'
import { logger } from '../../lib/log.ts'
import type { DeviceInfo } from './telemetry.ts'

const log = logger('mqtt-last-seq')

export interface LastSeqOptions {
  client: ClickHouseClient
  /** How far back a retransmitted reading may be; older rows are not searched. */
  lookbackMs: number
  /** Wait this long to gather lookups into one query. */
  batchWindowMs?: number
  /** At most this many devices per query. */
  maxBatch?: number
  now?: () => number
}

interface Waiting {
  device: DeviceInfo
  resolve: (seq: number | undefined) => void
  reject: (e: unknown) => void
}

interface Check {
  device: DeviceInfo
  seq: number
  resolve: (stored: boolean) => void
  reject: (e: unknown) => void
}

export class LastSeqLookup {
  readonly #o: Required<Omit<LastSeqOptions, 'client'>> & { client: ClickHouseClient }
  #waiting: Waiting[] = []
  #timer: NodeJS.Timeout | undefined
  #checks: Check[] = []
  #checkTimer: NodeJS.Timeout | undefined

  constructor(opts: LastSeqOptions) {
    this.#o = { batchWindowMs: 20, maxBatch: 2_000, now: Date.now, ...opts }
  }

  /**
   * Whether the store holds the device's reading of this seq (in the
   * look-back window). A DUP retransmission at or below the highest seq
   * stored is asked about before it is acknowledged as a duplicate: when an
   * earlier message failed to store while a later one of the same read was
   * stored, the earlier one is not a duplicate, and taking it for one would
   * lose an acknowledged message. Rare (a retransmission after a failure),
   * so one query each.
   */
  isStored(device: DeviceInfo, seq: number): Promise<boolean> {
    return new Promise((resolve, reject) => {
      // Batched like lastStoredSeq: a reconnect storm retransmits many such messages at once.
      this.#checks.push({ device, seq, resolve, reject })
      if (this.#checks.length >= this.#o.maxBatch) this.#flushChecks()
      else this.#checkTimer ??= setTimeout(() => this.#flushChecks(), this.#o.batchWindowMs)
    })
  }

  #flushChecks(): void {
    clearTimeout(this.#checkTimer)
    this.#checkTimer = undefined
    const batch = this.#checks
    this.#checks = []
    if (batch.length > 0) void this.#queryChecks(batch)
  }

  async #queryChecks(batch: Check[]): Promise<void> {
    const ids = [...new Set(batch.map((c) => c.device.id))]
    const communities = [...new Set(batch.map((c) => c.device.communityId))]
    const wanted = batch.map((c) => `${c.device.id}\u0000${c.seq}`)
    try {
      const rs = await this.#o.client.query({
        query: `SELECT DISTINCT device_id, seq FROM readings
                WHERE community_id IN {communities:Array(UInt32)} AND device_id IN {ids:Array(String)}
                  AND concat(device_id, '\\0', toString(seq)) IN {wanted:Array(String)}
                  AND ts >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')`,
        query_params: { communities, ids, wanted, since: this.#o.now() - this.#o.lookbackMs },
        format: 'JSONCompactEachRow',
      })
      const found = new Set((await rs.json<[string, number | string]>()).map(([id, seq]) => `${id}\u0000${Number(seq)}`))
      for (const c of batch) c.resolve(found.has(`${c.device.id}\u0000${c.seq}`))
    } catch (e) {
      log.warn({ err: e, checks: batch.length }, 'stored-seq check failed')
      for (const c of batch) c.reject(e)
    }
  }

  /** The seq of the device's latest stored reading in the look-back window, or undefined when it has none. */
  lastStoredSeq(device: DeviceInfo): Promise<number | undefined> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ device, resolve, reject })
      if (this.#waiting.length >= this.#o.maxBatch) this.#flush()
      else this.#timer ??= setTimeout(() => this.#flush(), this.#o.batchWindowMs)
    })
  }

  #flush(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    const batch = this.#waiting
    this.#waiting = []
    if (batch.length > 0) void this.#query(batch)
  }

  async #query(batch: Waiting[]): Promise<void> {
    const ids = [...new Set(batch.map((w) => w.device.id))]
    const communities = [...new Set(batch.map((w) => w.device.communityId))]
    try {
      // community_id leads the readings key, so naming the communities lets
      // ClickHouse skip most of the table; the time bound skips old partitions.
      const rs = await this.#o.client.query({
        query: `SELECT device_id, argMax(seq, ts) AS seq FROM readings
                WHERE community_id IN {communities:Array(UInt32)} AND device_id IN {ids:Array(String)}
                  AND ts >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')
                GROUP BY device_id`,
        query_params: { communities, ids, since: this.#o.now() - this.#o.lookbackMs },
        format: 'JSONCompactEachRow',
      })
      const found = new Map((await rs.json<[string, number | string]>()).map(([id, seq]) => [id, Number(seq)]))
      for (const w of batch) w.resolve(found.get(w.device.id))
    } catch (e) {
      log.warn({ err: e, devices: ids.length }, 'last-seq lookup failed')
      for (const w of batch) w.reject(e)
    }
  }
}
