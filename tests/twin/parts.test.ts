// The twin's three parts on their own: the city index (where each device
// counts), the grid roll-ups (counts moved by one, changes told once) and
// the live state (an element through the pure reducer, a status change into
// the roll-ups of exactly the device's grids).
import { describe, expect, it } from 'vitest'
import { generateCity } from '../../simulators/city/generate.ts'
import { CityIndex, CITY_ID, pointInRing, type TwinCity } from '../../twin/state/city-index.ts'
import { DEVICE_STATUSES } from '../../twin/state/device.ts'
import { GridRollups } from '../../twin/state/grid-rollups.ts'
import { LiveState } from '../../twin/state/live-state.ts'
import { Twin } from '../../twin/state/twin.ts'

const T0 = 1_790_000_000_000
const policy = { silentAfterIntervals: 3 }

function city(): TwinCity {
  const c = generateCity({ seed: 11, scale: 0.01 })
  return {
    grids: c.grids,
    devices: c.devices.map((d) => ({ id: d.id, type: d.type, microGridId: d.microGridId, communityId: d.communityId, streetId: d.streetId, districtId: d.districtId, lon: d.lon, lat: d.lat, intervalS: d.intervalS })),
    cameras: c.cameras.map((k) => ({ id: k.id, kind: k.kind, microGridId: k.microGridId, communityId: k.communityId, streetId: k.streetId, districtId: k.districtId, lon: k.lon, lat: k.lat })),
  }
}

describe('the city index', () => {
  const c = city()
  const index = new CityIndex(c)

  it('counts each device in its grids at every level, the special grids it stands in, and the city', () => {
    for (let i = 0; i < c.devices.length; i += 37) {
      const d = c.devices[i]
      if (!d) continue
      const ids = [...(index.deviceRows(i) ?? [])].map((r) => index.gridIdOfRow(r))
      const specials = c.grids.filter((g) => g.level === 'special' && pointInRing(d.lon, d.lat, g.ring)).map((g) => g.id)
      expect(new Set(ids)).toEqual(new Set([d.microGridId, d.communityId, d.streetId, d.districtId, ...specials, CITY_ID]))
      expect(index.deviceSpecials(i).sort()).toEqual(specials.sort())
      expect(index.devicesIn(d.microGridId)).toContain(i)
      expect(index.devicesIn(d.districtId)).toContain(i)
    }
  })

  it('chains a grid up to the city, and knows no grid it was not given', () => {
    const micro = c.grids.find((g) => g.level === 'micro')
    if (!micro) throw new Error('no micro-grid')
    const chain = [...index.gridChain(micro.id)].map((r) => index.gridIdOfRow(r))
    expect(chain).toEqual([micro.id, micro.communityId, micro.streetId, micro.districtId, CITY_ID])
    expect(index.hasGrid(CITY_ID)).toBe(true)
    expect(index.grid(99_999_999)).toBeUndefined()
    expect(index.gridRow(99_999_999)).toBeUndefined()
  })
})

describe('the grid roll-ups', () => {
  it('move by one per change, in the given rows only, and tell each changed row once', () => {
    const r = new GridRollups(4)
    const rows = Int32Array.from([0, 3])
    r.moveDevice(rows, -1, 0)
    r.moveDevice(rows, 0, 1)
    r.countTicket(rows, 2, 1)
    expect(r.counts(0).devices).toMatchObject({ unknown: 0, online: 1, total: 1 })
    expect(r.counts(3).tickets).toMatchObject({ critical: 1, total: 1 })
    expect(r.counts(1).devices.total).toBe(0)
    expect(r.drainChanged().sort()).toEqual([0, 3])
    expect(r.drainChanged()).toEqual([])
    r.moveDevice(rows, 1, 1) // no move, no change
    expect(r.drainChanged()).toEqual([])
  })
})

describe('the live state', () => {
  it('puts an element through the reducer and moves the roll-ups of exactly the device\'s grids', () => {
    const c = city()
    const index = new CityIndex(c)
    const rollups = new GridRollups(index.rows)
    const live = new LiveState(index, rollups, policy)
    const cityRow = index.gridRow(CITY_ID) ?? -1
    expect(rollups.counts(cityRow).devices).toMatchObject({ unknown: c.devices.length, total: c.devices.length })
    rollups.drainChanged()

    const heard: string[] = []
    live.onStatusChange((i, from, to) => heard.push(`${i} ${from}->${to}`))
    const i = 5
    const d = c.devices[i]
    if (!d) throw new Error('no device 5')
    const metric = index.deviceMetrics(i)[0] ?? 'x'
    live.applyDevice(i, { kind: 'reading', deviceId: d.id, ts: T0, values: { [metric]: 42 } }, T0)
    expect(live.deviceStatus(i)).toBe('online')
    expect(live.deviceLive(i).values[0]).toBe(42)
    expect(heard).toEqual([`${i} unknown->online`])
    const moved = new Set(rollups.drainChanged())
    expect(moved).toEqual(new Set(index.deviceRows(i)))
    expect(rollups.counts(cityRow).devices).toMatchObject({ online: 1, unknown: c.devices.length - 1 })
    expect(live.drainChanged().devices).toEqual([i])

    // Silent after three intervals without a word, found by one scan and moved by silence().
    const later = T0 + 3 * index.deviceIntervalMs(i) + 1
    const scan = live.scanSilence(later, -1, T0)
    expect(scan.due).toEqual([i])
    live.silence(scan.due)
    expect(live.deviceStatus(i)).toBe(DEVICE_STATUSES[2])
    expect(rollups.counts(index.gridRow(d.microGridId) ?? -1).devices).toMatchObject({ silent: 1, online: 0 })
  })
})

describe('a reader of a twin in another thread', () => {
  it('places every device and camera as the twin did, sees each change as it is made, and refuses a share of another city', () => {
    const c = city()
    const writer = new Twin(c, policy)
    // What postMessage does: the city copied, the shared memory not.
    const share = structuredClone(writer.share())
    const reader = new Twin(share.city, share.policy, share)
    for (let i = 0; i < c.devices.length; i++) expect([...(reader.index.deviceRows(i) ?? [])]).toEqual([...(writer.index.deviceRows(i) ?? [])])
    for (let i = 0; i < c.cameras.length; i++) expect(reader.index.cameraSpecials(i)).toEqual(writer.index.cameraSpecials(i))
    const d = c.devices[5]
    if (!d) throw new Error('no device')
    writer.apply([{ kind: 'connectivity', deviceId: d.id, ts: T0, state: 'connected' }], T0)
    expect(reader.deviceStatus(5)).toBe('online')
    expect(reader.counts(CITY_ID)?.devices.online).toBe(1)
    expect(reader.counts(d.microGridId)).toEqual(writer.counts(d.microGridId))
    const smaller = { ...c, devices: c.devices.slice(1) }
    expect(() => new Twin(smaller, policy, share)).toThrow(RangeError)
  })
})
