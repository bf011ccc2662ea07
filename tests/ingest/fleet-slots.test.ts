// Every simulated device gets its own (source address, port), within the
// ports the simulator may bind.
import { describe, expect, it } from 'vitest'
import { LOCAL_PORT_COUNT, LOCAL_PORT_FIRST, localEndpoint, slotsDue, slotsFor } from '../../simulators/devices/fleet.ts'
import { defaultSources } from '../../simulators/devices/cli.ts'

describe('simulator local endpoints', () => {
  it('gives the whole city distinct endpoints from the default sources, whatever the offset', () => {
    const sources = defaultSources()
    expect(slotsFor(sources.length)).toBeGreaterThanOrEqual(219_300)
    for (const offset of [0, 12_345, LOCAL_PORT_COUNT - 1]) {
      const seen = new Set<string>()
      const outside: number[] = []
      for (let slot = 0; slot < 219_300; slot++) {
        const e = localEndpoint(slot, sources, offset)
        if (!e) throw new Error(`no endpoint for slot ${slot}`)
        if (e.localPort < LOCAL_PORT_FIRST || e.localPort >= LOCAL_PORT_FIRST + LOCAL_PORT_COUNT) outside.push(slot)
        seen.add(`${e.localAddress}:${e.localPort}`)
      }
      expect(outside).toEqual([])
      expect(seen.size).toBe(219_300)
    }
  })

  it('has no endpoint for a slot past what the sources carry', () => {
    expect(localEndpoint(2 * LOCAL_PORT_COUNT, ['127.0.0.2', '127.0.0.3'], 0)).toBeUndefined()
    expect(localEndpoint(2 * LOCAL_PORT_COUNT - 1, ['127.0.0.2', '127.0.0.3'], 0)).toEqual({ localAddress: '127.0.0.3', localPort: LOCAL_PORT_FIRST + LOCAL_PORT_COUNT - 1 })
  })
})

describe('simulator clock', () => {
  // A wheel of 50 slots of 100 ms started at 0.
  const due = (nowMs: number, done: number) => slotsDue(0, nowMs, 100, done, 50)

  it('runs the slots whose time has come, however late the timer fired', () => {
    expect(due(0, 0)).toEqual({ skip: 0, run: 1 })
    expect(due(150, 2)).toEqual({ skip: 0, run: 0 }) // the timer came early
    expect(due(250, 1)).toEqual({ skip: 0, run: 2 })
    expect(due(2_050, 3)).toEqual({ skip: 0, run: 18 }) // starved for two seconds: the readings due are sent now
  })

  it('skips whole turns missed, so a device reports at most once a turn', () => {
    expect(due(4_950, 0)).toEqual({ skip: 0, run: 50 })
    expect(due(5_000, 0)).toEqual({ skip: 50, run: 1 })
    expect(due(12_050, 10)).toEqual({ skip: 100, run: 11 })
  })
})
