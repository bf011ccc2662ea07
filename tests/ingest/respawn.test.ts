// When a dead gateway worker is replaced: soon after one that ran a while,
// later and later while replacements keep dying young.
import { describe, expect, it } from 'vitest'
import { QUICK_DEATH_MS, respawn } from '../../ingest/mqtt/cluster.ts'
import { workerExecArgv } from '../../lib/bundle.ts'
import { WORKER_SLOT_ENV, workerSlot } from '../../ingest/mqtt/worker-slot.ts'

describe('replacing a dead gateway worker', () => {
  it('backs off while replacements die young, up to 30 s, and starts over after one that lived', () => {
    const top = (): number => 1 - Number.EPSILON // the largest delay jitter allows
    let quick = 0
    const delays: number[] = []
    for (let i = 0; i < 10; i++) {
      const r = respawn(5_000, quick, top)
      quick = r.quickDeaths
      delays.push(r.delayMs)
    }
    expect(delays.slice(0, 4)).toEqual([500, 1_000, 2_000, 4_000])
    expect(Math.max(...delays)).toBe(30_000)
    expect(delays.every((d, i) => i === 0 || d >= (delays[i - 1] ?? 0))).toBe(true)
    const after = respawn(QUICK_DEATH_MS + 1, quick, top)
    expect(after).toEqual({ delayMs: 250, quickDeaths: 0 })
  })

  it('spreads the delay with jitter between half and all of its ceiling', () => {
    expect(respawn(1_000, 3, () => 0).delayMs).toBe(2_000)
    expect(respawn(1_000, 3, () => 0.999).delayMs).toBeLessThanOrEqual(4_000)
  })
})

describe('a gateway worker\'s Node flags', () => {
  it('keeps the primary\'s flags but not those that load tsx (the worker runs plain JavaScript)', () => {
    expect(workerExecArgv(['--import', 'tsx', '--cpu-prof', '--import=tsx/esm', '-r', 'tsx/cjs', '--max-semi-space-size=32', '--import', './other.mjs']))
      .toEqual(['--cpu-prof', '--max-semi-space-size=32', '--import', './other.mjs'])
  })

  it('reads a worker\'s slot from its environment, and nothing that is not one', () => {
    expect(workerSlot({ [WORKER_SLOT_ENV]: '3' })).toBe(3)
    expect(workerSlot({ [WORKER_SLOT_ENV]: '0' })).toBe(0)
    for (const raw of [undefined, '', 'x', '-1', '1.5']) expect(workerSlot({ [WORKER_SLOT_ENV]: raw })).toBeUndefined()
  })
})
