// Every simulated device gets its own (source address, port), within the
// ports the simulator may bind.
import { describe, expect, it } from 'vitest'
import { LOCAL_PORT_COUNT, LOCAL_PORT_FIRST, localEndpoint, slotsFor } from '../../simulators/devices/fleet.ts'
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
