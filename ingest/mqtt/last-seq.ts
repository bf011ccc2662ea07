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

/**
 * Questions asked one at a time, answered many at a time: requests that
 * arrive within `windowMs` (or `maxBatch` of them) go to the store as one
 * query, and each caller gets its own answer.
 */
class Batcher<Q, A> {
  #waiting: { q: Q; resolve: (a: A) => void; reject: (e: unknown) => void }[] = []
  #timer: NodeJS.Timeout | undefined
  readonly #o: { windowMs: number; maxBatch: number; answer: (qs: readonly Q[]) => Promise<A[]>; what: string }

  constructor(o: { windowMs: number; maxBatch: number; answer: (qs: readonly Q[]) => Promise<A[]>; what: string }) {
    this.#o = o
  }

  ask(q: Q): Promise<A> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ q, resolve, reject })
      if (this.#waiting.length >= this.#o.maxBatch) this.#flush()
      else this.#timer ??= setTimeout(() => this.#flush(), this.#o.windowMs)
    })
  }

  #flush(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    const batch = this.#waiting
    this.#waiting = []
    if (batch.length === 0) return
    this.#o.answer(batch.map((w) => w.q)).then(
      (answers) => batch.forEach((w, i) => w.resolve(answers[i] as A)),
      (e: unknown) => {
        log.warn({ err: e, lookups: batch.length }, `${this.#o.what} failed`)
        for (const w of batch) w.reject(e)
      },
    )
  }
}

export class LastSeqLookup {
  readonly #o: Required<Omit<LastSeqOptions, 'client'>> & { client: ClickHouseClient }
  readonly #last: Batcher<DeviceInfo, number | undefined>
  readonly #stored: Batcher<{ device: DeviceInfo; seq: number }, boolean>

  constructor(opts: LastSeqOptions) {
    this.#o = { batchWindowMs: 20, maxBatch: 2_000, now: Date.now, ...opts }
    const batching = { windowMs: this.#o.batchWindowMs, maxBatch: this.#o.maxBatch }
    this.#last = new Batcher({ ...batching, answer: (ds) => this.#lastSeqs(ds), what: 'last-seq lookup' })
    this.#stored = new Batcher({ ...batching, answer: (cs) => this.#storedSeqs(cs), what: 'stored-seq check' })
  }

  /** The seq of the device's latest stored reading in the look-back window, or undefined when it has none. */
  lastStoredSeq(device: DeviceInfo): Promise<number | undefined> {
    return this.#last.ask(device)
  }

  /**
   * Whether the store holds the device's reading of this seq (in the
   * look-back window). A DUP retransmission at or below the highest seq
   * stored is asked about before it is acknowledged as a duplicate: when an
   * earlier message failed to store while a later one of the same read was
   * stored, the earlier one is not a duplicate, and taking it for one would
   * lose an acknowledged message. Batched too: a reconnect storm
   * retransmits many messages at once.
   */
  isStored(device: DeviceInfo, seq: number): Promise<boolean> {
    return this.#stored.ask({ device, seq })
  }

  // community_id leads the readings key, so naming the communities lets
  // ClickHouse skip most of the table; the time bound skips old partitions.
  async #lastSeqs(devices: readonly DeviceInfo[]): Promise<(number | undefined)[]> {
    const rs = await this.#o.client.query({
      query: `SELECT device_id, argMax(seq, ts) AS seq FROM readings
              WHERE community_id IN {communities:Array(UInt32)} AND device_id IN {ids:Array(String)}
                AND ts >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')
              GROUP BY device_id`,
      query_params: { communities: [...new Set(devices.map((d) => d.communityId))], ids: [...new Set(devices.map((d) => d.id))], since: this.#o.now() - this.#o.lookbackMs },
      format: 'JSONCompactEachRow',
    })
    const found = new Map((await rs.json<[string, number | string]>()).map(([id, seq]) => [id, Number(seq)]))
    return devices.map((d) => found.get(d.id))
  }

  async #storedSeqs(checks: readonly { device: DeviceInfo; seq: number }[]): Promise<boolean[]> {
    const key = (id: string, seq: number): string => `${id}\u0000${seq}`
    const rs = await this.#o.client.query({
      query: `SELECT DISTINCT device_id, seq FROM readings
              WHERE community_id IN {communities:Array(UInt32)} AND device_id IN {ids:Array(String)}
                AND concat(device_id, '\\0', toString(seq)) IN {wanted:Array(String)}
                AND ts >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')`,
      query_params: {
        communities: [...new Set(checks.map((c) => c.device.communityId))], ids: [...new Set(checks.map((c) => c.device.id))],
        wanted: checks.map((c) => key(c.device.id, c.seq)), since: this.#o.now() - this.#o.lookbackMs,
      },
      format: 'JSONCompactEachRow',
    })
    const found = new Set((await rs.json<[string, number | string]>()).map(([id, seq]) => key(id, Number(seq))))
    return checks.map((c) => found.has(key(c.device.id, c.seq)))
  }
}
