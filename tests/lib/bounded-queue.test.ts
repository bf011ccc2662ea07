import { describe, expect, it } from 'vitest'
import { backoffDelayMs } from '../../lib/backoff.ts'
import { BoundedQueue } from '../../lib/bounded-queue.ts'

describe('BoundedQueue', () => {
  it('keeps order and hands out batches', () => {
    const q = new BoundedQueue<number>(10)
    for (let i = 0; i < 7; i++) expect(q.tryPush(i)).toBe(true)
    expect(q.take(3)).toEqual([0, 1, 2])
    expect(q.take(10)).toEqual([3, 4, 5, 6])
    expect(q.take(1)).toEqual([])
  })

  it('makes producers wait while full and lets them in as room appears', async () => {
    const q = new BoundedQueue<number>(2)
    await q.push(1)
    await q.push(2)
    expect(q.tryPush(3)).toBe(false)
    let admitted = false
    const waiting = q.push(3).then(() => (admitted = true))
    await Promise.resolve()
    expect(admitted).toBe(false)
    expect(q.take(1)).toEqual([1])
    await waiting
    expect(admitted).toBe(true)
    expect(q.take(5)).toEqual([2, 3])
    expect(q.highWater).toBe(2)
  })

  it('rejects waiting producers when closed, and keeps what was queued', async () => {
    const q = new BoundedQueue<string>(1)
    q.tryPush('a')
    const waiting = q.push('b')
    q.close()
    await expect(waiting).rejects.toMatchObject({ code: 'QUEUE_CLOSED' })
    expect(() => q.tryPush('c')).toThrow(/closed/)
    expect(q.take(5)).toEqual(['a'])
  })

  it('wakes a consumer waiting for data', async () => {
    const q = new BoundedQueue<number>(4)
    const woke = q.waitForData()
    q.tryPush(9)
    await woke
    expect(q.size).toBe(1)
  })
})

describe('backoff', () => {
  it('grows exponentially within the cap, with jitter in the upper half', () => {
    const opts = { initialMs: 100, maxMs: 1000 }
    expect(backoffDelayMs(0, { ...opts, random: () => 0 })).toBe(50)
    expect(backoffDelayMs(0, { ...opts, random: () => 0.999999 })).toBe(100)
    expect(backoffDelayMs(3, { ...opts, random: () => 0.999999 })).toBe(800)
    expect(backoffDelayMs(10, { ...opts, random: () => 0.999999 })).toBe(1000)
  })
})
