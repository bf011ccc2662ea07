// A large batch taken in turns (lib/bus/turns.ts): every item once, in
// order, in slices; the event loop gets a turn whenever a slice ends past
// turnMs; a batch that fits in one turn is taken at once.
import { describe, expect, it } from 'vitest'
import { inTurns } from '../../lib/bus/turns.ts'

describe('inTurns', () => {
  it('takes a batch of one slice at once, without a promise', () => {
    const seen: number[][] = []
    expect(inTurns([1, 2, 3], 5, (s) => void seen.push([...s]), 4)).toBeUndefined()
    expect(seen).toEqual([[1, 2, 3]])
  })

  it('takes everything in order, and gives the loop a turn once a slice ends past turnMs', async () => {
    // A clock that only the slices move: each slice costs 2 ms of it.
    let now = 0
    const items = Array.from({ length: 100 }, (_, i) => i)
    const slices: number[][] = []
    const seenByTimer: number[] = []
    let watching = true
    const watch = (): void => {
      seenByTimer.push(slices.length)
      if (watching) setImmediate(watch)
    }
    setImmediate(watch)
    const rest = inTurns(items, 5, (s) => {
      slices.push([...s])
      now += 2
    }, 10, () => now)
    // 5 ms a turn at 2 ms a slice: three slices a turn (the third ends past it).
    expect(slices).toHaveLength(3)
    expect(rest).toBeInstanceOf(Promise)
    await rest
    watching = false
    expect(slices.flat()).toEqual(items)
    expect(slices.every((s) => s.length === 10)).toBe(true)
    // The loop turned between the turns: something else saw each stage of it.
    expect(seenByTimer.filter((n) => n > 0 && n < 10)).toEqual([3, 6, 9])
  })

  it('takes all of it in the first turn when it is cheap, without a promise', () => {
    const items = Array.from({ length: 1_000 }, (_, i) => i)
    let taken = 0
    expect(inTurns(items, 5, (s) => void (taken += s.length), 10, () => 0)).toBeUndefined()
    expect(taken).toBe(1_000)
  })
})
