// The shared first-in first-out list: order kept across its compactions.
import { describe, expect, it } from 'vitest'
import { Fifo } from '../../lib/fifo.ts'

describe('Fifo', () => {
  it('gives items back in the order they came, one or many at a time, across many compactions', () => {
    const f = new Fifo<number>()
    let next = 0
    let expected = 0
    for (let round = 0; round < 50; round++) {
      for (let k = 0; k < 3_000; k++) f.push(next++)
      expect(f.peek()).toBe(expected)
      for (let k = 0; k < 1_000; k++) expect(f.shift()).toBe(expected++)
      const many = f.take(1_500)
      expect(many).toEqual(Array.from({ length: 1_500 }, (_, k) => expected + k))
      expected += 1_500
    }
    expect(f.size).toBe(next - expected)
    expect(f.take(1e9)).toHaveLength(next - expected)
    expect(f.shift()).toBeUndefined()
    expect(f.size).toBe(0)
  })
})
