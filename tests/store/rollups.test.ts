// The roll-ups (readings per community grid, metric and device type, per
// minute and per hour) are summed by the readings writer's process from
// what its writer stored, written every few seconds with the position they
// reach, and caught up from the store after a crash: each stored reading
// counts once.
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { READINGS_COLUMNS } from '../../ingest/mqtt/telemetry.ts'
import { PositionClock } from '../../lib/bus/position.ts'
import { loadConfig } from '../../lib/config.ts'
import { openMigratedStore, Rollups, RollupSums, StoreWriter, writerConfig, type Store } from '../../store/index.ts'
import { tempDir } from '../helpers.ts'

let store: Store
const cfg = { ...loadConfig(writerConfig, { env: {} }), flushIntervalMs: 20 }
const positions = new PositionClock()
// Recent data: the roll-ups' TTLs would drop old rows. Half past the last full hour.
const t = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000 + 30 * 60_000
const minute = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ')
const row = (s: number, v: number, community = 4) => [t + s * 1000, 'D1', 'smoke', 'temperature_c', v, s + 1_000, 5, community, 3, 2, t + s * 1000]

beforeAll(async () => {
  store = (await openMigratedStore({ env: {} }, { dataDir: join(tempDir(), 'db') })).store
})
afterAll(async () => store?.close())

/** A readings writer with its roll-ups, started in their order; `now` is the roll-ups' clock (ms). */
async function writerWithRollups(now?: () => number): Promise<{ rollups: Rollups; readings: StoreWriter }> {
  const rollups = new Rollups({ client: store.client, columns: READINGS_COLUMNS, intervalMs: 3_600_000, ...(now ? { now } : {}) })
  const readings = new StoreWriter({ client: store.client, table: 'readings', columns: READINGS_COLUMNS, config: cfg, positions, onStored: rollups.onStored })
  await rollups.start()
  await readings.start()
  return { rollups, readings }
}

async function perMinute(community: number) {
  const rs = await store.client.query({
    query: `SELECT toString(minute) AS m, toUInt32(sum(n)) AS count, sum(total) / sum(n) AS avg, min(lo) AS low, max(hi) AS high
            FROM readings_1m WHERE community_id = {c:UInt32} GROUP BY minute ORDER BY minute`, query_params: { c: community }, format: 'JSONEachRow' })
  return rs.json()
}

async function perHour(community: number) {
  const rs = await store.client.query({ query: 'SELECT toUInt32(sum(n)) AS count, max(hi) AS high, any(district_id) AS d FROM readings_1h WHERE community_id = {c:UInt32}', query_params: { c: community }, format: 'JSONEachRow' })
  return rs.json()
}

describe('roll-ups', () => {
  it('sum what the writer stored, per minute and per hour, when they flush', async () => {
    const { rollups, readings } = await writerWithRollups()
    await readings.write([row(0, 20), row(10, 22)])
    await readings.write([row(70, 30)])
    // Nothing is summed inside the insert any more.
    expect(await perMinute(4)).toEqual([])
    await rollups.flush()
    expect(await perMinute(4)).toEqual([
      { m: minute(t), count: 2, avg: 21, low: 20, high: 22 },
      { m: minute(t + 60_000), count: 1, avg: 30, low: 30, high: 30 },
    ])
    expect(await perHour(4)).toEqual([{ count: 3, high: 30, d: 2 }])
    // Stopping flushes what is held.
    await readings.write([row(80, 40)])
    await readings.stop(Date.now() + 2_000)
    await rollups.stop(Date.now() + 2_000)
    expect(await perHour(4)).toEqual([{ count: 4, high: 40, d: 2 }])
  })

  it('catch up after a crash with what was stored but not yet summed, counting nothing twice', async () => {
    const first = await writerWithRollups()
    await first.readings.write([row(0, 1, 7), row(1, 2, 7)])
    await first.rollups.flush()
    // Stored, then the process dies before the next flush.
    await first.readings.write([row(2, 3, 7)])
    await first.readings.stop(Date.now() + 2_000)
    expect(first.rollups.stats()).toMatchObject({ held: 1 })

    const second = await writerWithRollups()
    expect(second.rollups.stats()).toMatchObject({ caughtUp: 1 })
    expect(await perMinute(7)).toEqual([{ m: minute(t), count: 3, avg: 2, low: 1, high: 3 }])
    // And from there on as usual.
    await second.readings.write([row(3, 10, 7)])
    await second.readings.stop(Date.now() + 2_000)
    await second.rollups.stop(Date.now() + 2_000)
    expect(await perHour(7)).toEqual([{ count: 4, high: 10, d: 2 }])
  })

  it('write a minute once it has ended, and take back after a crash the minutes held, each reading counted once', async () => {
    // The clock 30 s into the minute of t (community 21): that minute is held, the one before has ended.
    let clock = t + 30_000
    const first = await writerWithRollups(() => clock)
    await first.readings.write([row(-30, 1, 21), row(0, 2, 21), row(20, 3, 21)])
    await first.rollups.flush()
    expect(await perMinute(21)).toEqual([{ m: minute(t - 60_000), count: 1, avg: 1, low: 1, high: 1 }])
    expect(first.rollups.stats()).toMatchObject({ held: 1 })
    // More for the held minute, and a late one for the minute written; then the process dies.
    await first.readings.write([row(25, 4, 21), row(-10, 5, 21)])
    await first.readings.stop(Date.now() + 2_000)

    // The next start takes back the held minute (three readings) and the late one, and writes the late one.
    const second = await writerWithRollups(() => clock)
    expect(second.rollups.stats()).toMatchObject({ caughtUp: 4, held: 1 })
    expect(await perMinute(21)).toEqual([{ m: minute(t - 60_000), count: 2, avg: 3, low: 1, high: 5 }])
    await second.readings.write([row(40, 6, 21)])
    // Dies again before the minute has ended: still nothing of it written, nothing lost.
    await second.readings.stop(Date.now() + 2_000)
    const third = await writerWithRollups(() => clock)
    expect(third.rollups.stats()).toMatchObject({ caughtUp: 4, held: 1 })
    // The minute has ended, but less than CLOSE_AFTER_MS (10 s) ago: still held.
    clock = t + 65_000
    await third.rollups.flush()
    expect(await perMinute(21)).toHaveLength(1)
    // And 10 s after its end the next flush writes it, once.
    clock = t + 71_000
    await third.rollups.flush()
    expect(await perMinute(21)).toEqual([
      { m: minute(t - 60_000), count: 2, avg: 3, low: 1, high: 5 },
      { m: minute(t), count: 4, avg: 3.75, low: 2, high: 6 },
    ])
    expect(await perHour(21)).toEqual([{ count: 6, high: 6, d: 2 }])
    await third.readings.stop(Date.now() + 2_000)
    await third.rollups.stop(Date.now() + 2_000)
  })

  it('write every minute held when they stop, and after a restart hold back only what came after', async () => {
    const clock = t + 30_000
    const first = await writerWithRollups(() => clock)
    await first.readings.write([row(0, 2, 22), row(10, 4, 22)])
    await first.readings.stop(Date.now() + 2_000)
    await first.rollups.stop(Date.now() + 2_000)
    // The minute had not ended; it is written all the same, as it stood.
    expect(await perMinute(22)).toEqual([{ m: minute(t), count: 2, avg: 3, low: 2, high: 4 }])

    const second = await writerWithRollups(() => clock)
    expect(second.rollups.stats()).toMatchObject({ caughtUp: 0, held: 0 })
    await second.readings.write([row(20, 6, 22)])
    await second.rollups.flush()
    // Held (the minute has not ended), and the process dies.
    await second.readings.stop(Date.now() + 2_000)
    const third = await writerWithRollups(() => clock)
    // Only the reading stored after the stop is taken back: the two written at the stop are not counted again.
    expect(third.rollups.stats()).toMatchObject({ caughtUp: 1, held: 1 })
    await third.readings.stop(Date.now() + 2_000)
    await third.rollups.stop(Date.now() + 2_000)
    expect(await perMinute(22)).toEqual([{ m: minute(t), count: 3, avg: 4, low: 2, high: 6 }])
  })

  it('record what a flush wrote when its record failed, with the next flush, also one with nothing to write', async () => {
    const first = await writerWithRollups()
    await first.readings.write([row(0, 1, 23), row(5, 3, 23)])
    // The record cannot be written: the sums are, and the flush fails after them.
    await store.client.command({ query: 'RENAME TABLE rollup_positions TO rollup_positions_away' })
    try {
      await first.rollups.flush()
    } finally {
      await store.client.command({ query: 'RENAME TABLE rollup_positions_away TO rollup_positions' })
    }
    expect(first.rollups.stats()).toMatchObject({ failures: 1, held: 0 })
    // Nothing more to write, but the record is still owed: a restart would otherwise take the two readings back.
    await first.rollups.flush()
    await first.readings.stop(Date.now() + 2_000)
    const second = await writerWithRollups()
    expect(second.rollups.stats()).toMatchObject({ caughtUp: 0 })
    await second.readings.stop(Date.now() + 2_000)
    await second.rollups.stop(Date.now() + 2_000)
    expect(await perMinute(23)).toEqual([{ m: minute(t), count: 2, avg: 2, low: 1, high: 3 }])
  })

  it('keep the sums of a flush that failed for the next one, and count none twice', () => {
    const sums = new RollupSums(READINGS_COLUMNS)
    const minuteOf = Math.floor(t / 60_000) * 60
    const hourOf = Math.floor(t / 3_600_000) * 3_600
    sums.add([row(0, 5), row(1, 7)], 10)
    const taken = sums.take()
    expect(taken.map((x) => [x.table, x.rows.length])).toEqual([['readings_1m', 1], ['readings_1h', 1]])
    // Nothing written: all of it goes into the next flush, with what came since.
    sums.add([row(2, 1)], 11)
    sums.giveBack(taken, 0)
    const again = sums.take()
    expect(again[0]?.rows).toEqual([[minuteOf, 4, 'temperature_c', 'smoke', 3, 2, 3, 13, 1, 7]])
    expect(again[1]?.rows).toEqual([[hourOf, 4, 'temperature_c', 'smoke', 3, 2, 3, 13, 1, 7]])
    // The minutes written, the hours not: only the hours go into the next flush.
    sums.add([row(3, 9)], 12)
    sums.giveBack(again, 1)
    const third = sums.take()
    expect(third[0]?.rows).toEqual([[minuteOf, 4, 'temperature_c', 'smoke', 3, 2, 1, 9, 9, 9]])
    expect(third[1]?.rows).toEqual([[hourOf, 4, 'temperature_c', 'smoke', 3, 2, 4, 22, 1, 9]])
    expect(sums.position).toBe(12)
  })

  it('sum every key as a plain model does: many communities (UInt32 ids among them) and kinds, over minutes and their hour', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            s: fc.integer({ min: 0, max: 179 }),
            community: fc.oneof(fc.integer({ min: 1, max: 400 }), fc.constantFrom(2 ** 31 + 7, 4_294_967_295)),
            kind: fc.integer({ min: 0, max: 40 }),
            v: fc.integer({ min: -500, max: 500 }),
          }),
          { maxLength: 400 },
        ),
        (readings) => {
          const sums = new RollupSums(READINGS_COLUMNS)
          const model = new Map<string, [number, number, string, string, number, number, number, number, number, number]>()
          const keep = (at: number, community: number, metric: string, n: number, v: number): void => {
            const k = `${at}|${community}|${metric}`
            const m = model.get(k)
            if (!m) model.set(k, [at, community, metric, 'smoke', 3, 2, n, v, v, v])
            else model.set(k, [at, community, metric, 'smoke', 3, 2, m[6] + n, m[7] + v, Math.min(m[8], v), Math.max(m[9], v)])
          }
          for (const { s, community, kind, v } of readings) {
            const metric = `m${kind}`
            sums.add([[t + s * 1000, 'D1', 'smoke', metric, v, s, 5, community, 3, 2, t]], 1)
            keep(Math.floor((t + s * 1000) / 60_000) * 60, community, metric, 1, v)
          }
          const minutes = [...model.values()]
          model.clear()
          for (const [, community, metric, , , , n, total, lo, hi] of minutes) {
            const k = `${Math.floor(t / 3_600_000) * 3_600}|${community}|${metric}`
            const m = model.get(k)
            model.set(k, m ? [m[0], community, metric, 'smoke', 3, 2, m[6] + n, m[7] + total, Math.min(m[8], lo), Math.max(m[9], hi)] : [Math.floor(t / 3_600_000) * 3_600, community, metric, 'smoke', 3, 2, n, total, lo, hi])
          }
          const order = (rows: unknown[][]) => [...rows].sort((a, b) => String(a.slice(0, 3)).localeCompare(String(b.slice(0, 3))))
          const [m, h] = sums.take()
          expect(order(m?.rows ?? [])).toEqual(order(minutes))
          expect(order(h?.rows ?? [])).toEqual(order([...model.values()]))
        },
      ),
      { numRuns: 200 },
    )
  })

  it('keep a bucket small when it holds few sums of high ordinals: a day of one device\'s late readings after a whole minute of the city', () => {
    const sums = new RollupSums(READINGS_COLUMNS)
    // 100,000 keys seen once, so that later keys have high ordinals.
    sums.add(Array.from({ length: 100_000 }, (_, c) => [t, 'D1', 'smoke', 'temperature_c', 1, 1, 5, c, 3, 2, t]), 1)
    sums.take()
    const before = process.memoryUsage().arrayBuffers
    // One device of the last community replays a day: 1,440 minutes, one sum each, in one flush.
    const day = t - 86_400_000
    sums.add(Array.from({ length: 1_440 }, (_, m) => [day + m * 60_000, 'D1', 'smoke', 'temperature_c', m, 2, 5, 99_999, 3, 2, day]), 2)
    const grown = process.memoryUsage().arrayBuffers - before
    // Each bucket's own sums: a few KB. An index by ordinal in each would be 1,440 arrays of 100,000 entries (over 500 MB).
    expect(grown).toBeLessThan(64 * 2 ** 20)
    const [m, h] = sums.take()
    expect(m?.rows).toHaveLength(1_440)
    expect(h?.rows).toHaveLength(25)
    expect((m?.rows ?? []).reduce((a, r) => a + (r[7] as number), 0)).toBe((1_439 * 1_440) / 2)
  })

  it('sum alike whichever way a bucket indexes its keys: dense, sparse again for a far key, dense again', () => {
    const sums = new RollupSums(READINGS_COLUMNS)
    // Ordinals 0 to 4,999 (communities 1 to 5,000), then taken away.
    sums.add(Array.from({ length: 5_000 }, (_, k) => [t, 'D1', 'smoke', 'temperature_c', 1, 1, 5, k + 1, 3, 2, t]), 1)
    sums.take()
    const model = new Map<number, [n: number, total: number, lo: number, hi: number]>()
    const at = t + 60_000
    const add = (communities: number[], v: number): void => {
      sums.add(communities.map((c) => [at, 'D1', 'smoke', 'temperature_c', v, 1, 5, c, 3, 2, at]), 2)
      for (const c of communities) {
        const m = model.get(c)
        model.set(c, m ? [m[0] + 1, m[1] + v, Math.min(m[2], v), Math.max(m[3], v)] : [1, v, v, v])
      }
    }
    const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, k) => from + k)
    add(range(1, 100), 3) // 100 sums of low ordinals: dense
    add([5_000], 7) // a far ordinal: sparse again
    add(range(101, 3_000), 5) // enough to be dense again
    add([...range(1, 100), 5_000, 2_999, 4_321], -2) // sums already held, and one more
    const [m] = sums.take()
    expect(m?.rows).toHaveLength(model.size)
    for (const r of m?.rows ?? []) {
      expect([r[6], r[7], r[8], r[9]], `community ${String(r[1])}`).toEqual(model.get(r[1] as number))
    }
  })

  it('take a large flush a slice at a time: the same rows as at once, a turn of the loop between, and what arrives meanwhile kept for the next', async () => {
    // 300 communities over two minutes: 600 minute sums, 300 hour sums.
    const rows = Array.from({ length: 300 }, (_, k) => [row(0, k, 100 + k), row(60, k + 1, 100 + k)]).flat()
    const atOnce = new RollupSums(READINGS_COLUMNS)
    const sliced = new RollupSums(READINGS_COLUMNS)
    atOnce.add(rows, 1)
    sliced.add(rows, 1)
    let turns = 0
    const count = (): void => {
      turns++
      if (turns < 1_000) setImmediate(count)
    }
    setImmediate(count)
    const taking = sliced.takeInSlices({ sliceKeys: 100 })
    // Swapped out before the first turn: this goes into the next flush.
    sliced.add([row(120, 50)], 2)
    const taken = await taking
    expect(taken).toEqual(atOnce.take())
    expect(taken.map((x) => x.rows.length)).toEqual([600, 300])
    // 900 sums in slices of 100: the loop turned between them.
    expect(turns).toBeGreaterThanOrEqual(8)
    expect((await sliced.takeInSlices({ sliceKeys: 100 })).map((x) => x.rows.length)).toEqual([1, 1])
  })
})
