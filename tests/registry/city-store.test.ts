// A city replaces the one in the store whole or not at all: a write the
// store refuses part of leaves the old city as it was, and nothing aside.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { City, Device } from '../../registry/city.ts'
import { readCity, readCityFigures, writeCity } from '../../registry/city-store.ts'
import { generateCity } from '../../simulators/city/generate.ts'
import { openMigratedStore } from '../../store/index.ts'
import { tempDir } from '../helpers.ts'

describe('writeCity', () => {
  it('leaves the old city whole when the store refuses part of the new one', async () => {
    const { store, writerCfg } = await openMigratedStore({ env: {} }, { dataDir: join(tempDir(), 'db') })
    try {
      const old = generateCity({ seed: 4, scale: 0.001 })
      await writeCity(store.client, old, writerCfg, 'import: before')
      const before = await readCityFigures(store.client)
      expect(before).toMatchObject({ source: 'import: before', devices: old.devices.length })

      // Sound grids, then a device the store cannot take (its interval is not a number): the grids were written
      // aside already when the devices fail, and must not be swapped in alone.
      const other = generateCity({ seed: 5, scale: 0.002 })
      const broken: City = { ...other, devices: [...other.devices.slice(0, 5), { ...other.devices[5], intervalS: 'every ten seconds' } as unknown as Device, ...other.devices.slice(6)] }
      await expect(writeCity(store.client, broken, writerCfg, 'import: after')).rejects.toThrow(/the store refused the new city's devices \(.*interval_s.*\); the city was not replaced/)

      expect(await readCityFigures(store.client)).toEqual(before)
      const back = await readCity(store.client)
      expect(back.grids.map((g) => g.id)).toEqual(old.grids.map((g) => g.id))
      expect(back.devices.map((d) => d.id)).toEqual(old.devices.map((d) => d.id))
      const aside = await store.client.query({ query: "SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE '%_new'", format: 'JSONEachRow' })
      expect(await aside.json()).toEqual([])
    } finally {
      await store.close()
    }
  })
})
