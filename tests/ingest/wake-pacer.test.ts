// Wake pacing (wake-pacer.ts): a turn of the event loop with few socket
// reads ends in a pause; a busy turn does not; no read, no pause. The
// pause itself is a timed futex wait, told here through its sleep.
import { describe, expect, it } from 'vitest'
import { FEW_READS, WakePacer } from '../../ingest/mqtt/wake-pacer.ts'

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

describe('wake pacer', () => {
  it('pauses once after a turn of few reads, for its pause', async () => {
    const slept: number[] = []
    const pacer = new WakePacer(2, { sleep: (ms) => void slept.push(ms) })
    pacer.noteRead()
    pacer.noteRead()
    await nextTurn()
    await nextTurn()
    expect(slept).toEqual([2])
    expect(pacer.pauses).toBe(1)
  })

  it('does not pause after a busy turn, and counts the reads of each turn afresh', async () => {
    const slept: number[] = []
    const pacer = new WakePacer(3, { sleep: (ms) => void slept.push(ms) })
    for (let i = 0; i < FEW_READS; i++) pacer.noteRead()
    await nextTurn()
    await nextTurn()
    expect(slept).toEqual([])
    pacer.noteRead()
    await nextTurn()
    await nextTurn()
    expect(slept).toEqual([3])
  })

  it('does nothing while nothing is read', async () => {
    const slept: number[] = []
    const pacer = new WakePacer(2, { sleep: (ms) => void slept.push(ms) })
    await nextTurn()
    await nextTurn()
    expect(slept).toEqual([])
    expect(pacer.pauses).toBe(0)
  })

  it('refuses a pause of 0 or less', () => {
    expect(() => new WakePacer(0)).toThrow(RangeError)
    expect(() => new WakePacer(-1)).toThrow(RangeError)
  })
})
