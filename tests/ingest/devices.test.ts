// The gateway's compact device registry gives back exactly the city model's records.
import { describe, expect, it } from 'vitest'
import { DeviceRegistry } from '../../ingest/mqtt/devices.ts'
import type { DeviceInfo } from '../../ingest/mqtt/telemetry.ts'
import { generateCity } from '../../simulators/city/generate.ts'

const info = (d: DeviceInfo): DeviceInfo => ({ id: d.id, type: d.type, microGridId: d.microGridId, communityId: d.communityId, streetId: d.streetId, districtId: d.districtId, lon: d.lon, lat: d.lat })

describe('device registry', () => {
  it('returns every device as the city model has it, past its initial capacity', () => {
    const city = generateCity({ seed: 3, scale: 0.01 })
    const reg = new DeviceRegistry()
    for (const d of city.devices) reg.add(info(d))
    expect(city.devices.length).toBeGreaterThan(1024)
    expect(reg.size).toBe(city.devices.length)
    for (const d of city.devices) expect(reg.get(d.id)).toEqual({ ...info(d), credentialVersion: 0 })
    expect([...reg.values()].map((d) => d.id)).toEqual(city.devices.map((d) => d.id))
    expect(reg.get('D9999999')).toBeUndefined()
  })

  it('replaces a device added twice, and refuses a type the city model does not know', () => {
    const reg = new DeviceRegistry()
    const d: DeviceInfo = { id: 'D1', type: 'smoke', microGridId: 1, communityId: 2, streetId: 3, districtId: 4, lon: 113.6, lat: 34.7 }
    reg.add(d)
    reg.add({ ...d, microGridId: 9 })
    expect(reg.size).toBe(1)
    expect(reg.get('D1')?.microGridId).toBe(9)
    expect(() => reg.add({ ...d, id: 'D2', type: 'toaster' as DeviceInfo['type'] })).toThrow(/unknown type toaster/)
  })

  it('keeps a device\'s credential version, and forgets a removed device without reusing its row', () => {
    const reg = new DeviceRegistry()
    const d: DeviceInfo = { id: 'D1', type: 'smoke', microGridId: 1, communityId: 2, streetId: 3, districtId: 4, lon: 113.6, lat: 34.7 }
    reg.add(d)
    reg.add({ ...d, id: 'D2', credentialVersion: 3 })
    expect(reg.get('D2')?.credentialVersion).toBe(3)
    expect(reg.remove('D1')).toBe(true)
    expect(reg.remove('D1')).toBe(false)
    expect([reg.size, reg.get('D1')]).toEqual([1, undefined])
    // A device added after the removal has a row of its own: D2 keeps its record.
    reg.add({ ...d, id: 'D3', microGridId: 7 })
    expect([reg.get('D2')?.microGridId, reg.get('D2')?.credentialVersion, reg.get('D3')?.microGridId]).toEqual([1, 3, 7])
  })
})
