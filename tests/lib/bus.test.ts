// The in-process bus: publishing only queues; each subscriber takes its
// elements in order on its own turn, a slow one holds back only itself
// (and those that follow it), and one that falls too far behind loses its
// oldest elements and is told, instead of growing the heap.
import { describe, expect, it } from 'vitest'
import { ingestSources, MemoryBus } from '../../lib/bus/bus.ts'
import type { Element } from '../../lib/bus/elements.ts'

const reading = (k: number): Element => ({ kind: 'reading', deviceId: `D${k}`, ts: k, values: { v: k } })
const batch = (from: number, n: number): Element[] => Array.from({ length: n }, (_, i) => reading(from + i))
const ids = (b: readonly Element[]): number[] => b.map((e) => e.ts)

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => undefined
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

describe('memory bus', () => {
  it('returns from publish before any subscriber runs, then delivers every element in order, joining queued batches', async () => {
    const bus = new MemoryBus({ maxBatch: 100 })
    const calls: number[][] = []
    bus.subscribe('a', (b) => void calls.push(ids(b)))
    bus.publish(batch(0, 3))
    bus.publish(batch(3, 2))
    expect(calls).toEqual([])
    await bus.idle()
    expect(calls).toEqual([[0, 1, 2, 3, 4]])
    // Joined up to maxBatch, never split: 60 + 60 is over 100.
    bus.publish(batch(5, 60))
    bus.publish(batch(65, 60))
    await bus.idle()
    expect(calls.slice(1).map((c) => c.length)).toEqual([60, 60])
    expect(calls.flat()).toEqual(Array.from({ length: 125 }, (_, i) => i))
  })

  it("cuts a slow subscriber's deliveries to what fits in turnMs (whole batches, at least one), and lets timers run between them", async () => {
    // The bus reads costs from this clock, which only the slow handler moves:
    // what a handler costs is then the same on an idle and a loaded machine
    // (on a loaded one, a pause inside the cheap handler made it look costly).
    let now = 0
    const bus = new MemoryBus({ maxBatch: 10_000, turnMs: 5, clock: () => now })
    const slow: number[] = []
    const fast: number[] = []
    // 1 ms an element: a batch of ten is twice turnMs.
    bus.subscribe('slow', (b) => {
      now += b.length
      // And some real time, so that timers fall due while the deliveries last.
      const until = performance.now() + 2
      while (performance.now() < until) { /* busy, as a costly rule would be */ }
      slow.push(b.length)
    })
    bus.subscribe('fast', (b) => void fast.push(b.length))
    // The first delivery teaches the bus what each costs.
    bus.publish(batch(0, 10))
    await bus.idle()
    for (let k = 1; k <= 20; k++) bus.publish(batch(k * 10, 10))
    // What a timer saw each time it ran while the deliveries lasted.
    const seen: number[] = []
    let watching = true
    const watch = (): void => {
      seen.push(slow.length)
      if (watching) setTimeout(watch, 0)
    }
    setTimeout(watch, 0)
    await bus.idle()
    watching = false
    // Never split, never joined beyond what fits: one published batch a delivery.
    expect(slow).toEqual(Array.from({ length: 21 }, () => 10))
    // A cheap subscriber still takes what waits in one call.
    expect(fast).toEqual([10, 200])
    // A timer ran between two deliveries, not only before or after them all.
    expect(seen.some((n) => n > 0 && n < 21)).toBe(true)
  })

  it('lets a slow subscriber hold back only itself', async () => {
    const bus = new MemoryBus()
    const gate = deferred()
    const slow: number[] = []
    const fast: number[] = []
    bus.subscribe('slow', async (b) => {
      await gate.promise
      slow.push(...ids(b))
    })
    bus.subscribe('fast', (b) => void fast.push(...ids(b)))
    for (let k = 0; k < 10; k++) bus.publish(batch(k * 10, 10))
    await new Promise((r) => setTimeout(r, 50))
    expect(fast).toHaveLength(100)
    expect(slow).toEqual([])
    expect(bus.backlogMs(Date.now())).toBeGreaterThan(0)
    gate.resolve()
    await bus.idle()
    expect(slow).toEqual(fast)
    expect(bus.backlogMs(Date.now())).toBe(0)
  })

  it('gives a follower each batch only once its leader has taken it', async () => {
    const bus = new MemoryBus()
    const applied = new Set<number>()
    const seenBeforeApplied: number[] = []
    const gate = deferred()
    const twin = bus.subscribe('twin', async (b) => {
      await gate.promise
      for (const e of b) applied.add(e.ts)
    })
    bus.subscribe('rules', (b) => {
      for (const e of b) if (!applied.has(e.ts)) seenBeforeApplied.push(e.ts)
    }, { after: twin })
    bus.publish(batch(0, 5))
    await new Promise((r) => setTimeout(r, 20))
    expect(applied.size).toBe(0)
    gate.resolve()
    await bus.idle()
    expect(applied.size).toBe(5)
    expect(seenBeforeApplied).toEqual([])
  })

  it('drops the oldest elements of a subscriber that falls more than the capacity behind, tells it, and carries on', async () => {
    const bus = new MemoryBus({ capacity: 1_000 })
    const gate = deferred()
    const got: number[] = []
    const gaps: number[] = []
    let first = true
    const sub = bus.subscribe('behind', async (b) => {
      if (first) {
        first = false
        await gate.promise
      }
      got.push(...ids(b))
    }, { onGap: (lost) => void gaps.push(lost) })
    bus.publish(batch(0, 10))
    await new Promise((r) => setTimeout(r, 10))
    // The first batch is with the subscriber; 3,000 more arrive while it is stuck.
    let maxPending = 0
    for (let k = 0; k < 30; k++) {
      bus.publish(batch(10 + k * 100, 100))
      maxPending = Math.max(maxPending, sub.pending)
    }
    expect(maxPending).toBeLessThanOrEqual(1_000)
    gate.resolve()
    await bus.idle()
    expect(gaps).toEqual([2_000])
    // What it got: the first batch, then the newest 1,000, in order.
    expect(got).toEqual([...Array.from({ length: 10 }, (_, i) => i), ...Array.from({ length: 1_000 }, (_, i) => 2_010 + i)])
  })

  it('tells a follower of the elements its leader lost, so it can catch up from the store too', async () => {
    const bus = new MemoryBus({ capacity: 100 })
    const gate = deferred()
    let first = true
    const leaderGaps: number[] = []
    const followerGaps: number[] = []
    const followed: number[] = []
    const leader = bus.subscribe('twin', async () => {
      if (first) {
        first = false
        await gate.promise
      }
    }, { onGap: (lost) => void leaderGaps.push(lost) })
    bus.subscribe('rules', (b) => void followed.push(...ids(b)), { after: leader, onGap: (lost) => void followerGaps.push(lost) })
    bus.publish(batch(0, 10))
    await new Promise((r) => setTimeout(r, 10))
    for (let k = 0; k < 5; k++) bus.publish(batch(10 + k * 100, 100))
    // A follower with a loss not yet told is not idle.
    let idle = false
    void bus.idle().then(() => (idle = true))
    await new Promise((r) => setTimeout(r, 10))
    expect(idle).toBe(false)
    gate.resolve()
    await bus.idle()
    expect(leaderGaps).toEqual([400])
    expect(followerGaps).toEqual([400])
    expect(followed).toEqual([...Array.from({ length: 10 }, (_, i) => i), ...Array.from({ length: 100 }, (_, i) => 410 + i)])
  })

  it('gives up waiting for a stuck subscriber at the deadline, and lets a closed one be replaced under its name', async () => {
    const bus = new MemoryBus()
    const stuck = bus.subscribe('stuck', () => new Promise<void>(() => undefined))
    bus.publish(batch(0, 1))
    const t0 = Date.now()
    await bus.idle(Date.now() + 50)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(40)
    expect(stuck.backlogMs(Date.now())).toBeGreaterThan(0)
    stuck.close()
    const got: number[] = []
    bus.subscribe('stuck', (b) => void got.push(...ids(b)))
    bus.publish(batch(1, 1))
    await bus.idle()
    expect(got).toEqual([1])
    expect(bus.backlogMs(Date.now())).toBe(0)
  })

  it('knows the highest position published on each stream', () => {
    const bus = new MemoryBus()
    bus.publish([{ kind: 'reading', deviceId: 'D1', ts: 1, values: {}, pos: 5 }, { kind: 'reading', deviceId: 'D2', ts: 1, values: {}, pos: 7 }])
    bus.publish([{ kind: 'connectivity', deviceId: 'D1', ts: 2, state: 'connected', pos: 6 }])
    bus.publish([{ kind: 'ticket', ticketId: 'T1', ts: 3, open: true, severity: 'info' }])
    expect(bus.positions()).toEqual({ readings: 7, events: 6 })
  })

  it('keeps delivering to a subscriber whose handler threw, and to the others', async () => {
    const bus = new MemoryBus()
    const good: number[] = []
    const flaky: number[] = []
    bus.subscribe('flaky', (b) => {
      if (b.some((e) => e.ts === 1)) throw new Error('a bug in a subscriber')
      flaky.push(...ids(b))
    })
    bus.subscribe('good', (b) => void good.push(...ids(b)))
    bus.publish(batch(0, 2))
    await bus.idle()
    bus.publish(batch(2, 2))
    await bus.idle()
    expect(good).toEqual([0, 1, 2, 3])
    expect(flaky).toEqual([2, 3])
  })

  it('refuses a second subscriber of the same name, and stops delivery once closed', async () => {
    const bus = new MemoryBus()
    const got: number[] = []
    const sub = bus.subscribe('x', (b) => void got.push(...ids(b)))
    expect(() => bus.subscribe('x', () => undefined)).toThrow(/already has a subscriber named "x"/)
    bus.publish(batch(0, 1))
    await bus.idle()
    sub.close()
    bus.publish(batch(1, 1))
    await bus.idle()
    expect(got).toEqual([0])
  })

  it('counts in ingest backlog with the other sources', () => {
    const combined = ingestSources({ backlogMs: () => 5, shedding: () => false }, { backlogMs: () => 70, shedding: () => true })
    expect(combined.backlogMs(0)).toBe(70)
    expect(combined.shedding()).toBe(true)
  })
})
