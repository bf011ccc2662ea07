// `citytwin city import|export` against a real embedded store, and what
// `citytwin start` makes of an imported city: kept, run without the demo
// fleet, never replaced by a generated one behind the operator's back.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { REPO, runCli, spawnCli, tempDir } from '../helpers.ts'

const SAMPLE = join(REPO, 'registry', 'sample-city')
const files = ['--grids', join(SAMPLE, 'grids.geojson'), '--devices', join(SAMPLE, 'devices.csv'), '--cameras', join(SAMPLE, 'cameras.csv')]

async function stats(dataDir: string): Promise<{ source: string; devices: number; cameras: number; grids: Record<string, number> }> {
  const r = await runCli(['city', 'stats', '--json', '--data-dir', dataDir])
  expect(r.code, r.stderr).toBe(0)
  return JSON.parse(r.stdout) as { source: string; devices: number; cameras: number; grids: Record<string, number> }
}

describe('citytwin city import and export', () => {
  it('imports the sample city, exports the same files, and refuses a bad city without touching the one there', async () => {
    const dir = tempDir()
    const dataDir = join(dir, 'db')
    const checked = await runCli(['city', 'import', ...files, '--check', '--data-dir', dataDir])
    expect(checked.stdout).toMatch(/the city files are sound: districts 10, streets 10, community grids 10, micro-grids 23, special grids 2; devices 113, cameras 65/)
    const imported = await runCli(['city', 'import', ...files, '--name', 'sample', '--data-dir', dataDir])
    expect(imported.code, imported.stderr).toBe(0)
    expect(await stats(dataDir)).toMatchObject({ source: 'import: sample', devices: 113, cameras: 65, grids: { district: 10, street: 10, community: 10, micro: 23, special: 2 } })

    const out = join(dir, 'out')
    const exported = await runCli(['city', 'export', '--out', out, '--data-dir', dataDir])
    expect(exported.code, exported.stderr).toBe(0)
    for (const f of ['grids.geojson', 'devices.csv', 'cameras.csv']) expect(readFileSync(join(out, f), 'utf8'), f).toBe(readFileSync(join(SAMPLE, f), 'utf8'))

    // A devices file with two bad rows: both reported with their lines, and the city in the store is the one before.
    const devices = readFileSync(join(SAMPLE, 'devices.csv'), 'utf8').split('\n')
    devices[2] = (devices[2] as string).replace(/^([^,]+),[^,]+/, '$1,toaster')
    devices[9] = (devices[9] as string).replace(/^([^,]+),([^,]+),[^,]+,[^,]+,[^,]*/, '$1,$2,100,30,')
    const bad = join(dir, 'bad-devices.csv')
    writeFileSync(bad, devices.join('\n'))
    const refused = await runCli(['city', 'import', '--grids', join(SAMPLE, 'grids.geojson'), '--devices', bad, '--data-dir', dataDir])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain(`${bad}:3: device D0000002: type "toaster" is not a device type`)
    expect(refused.stderr).toContain(`${bad}:10: device D0000009: [100, 30] lies in no micro-grid of the city`)
    expect(refused.stderr).toMatch(/CITY_IMPORT_INVALID: 2 errors in the city files; nothing was imported/)
    expect(await stats(dataDir)).toMatchObject({ source: 'import: sample', devices: 113, cameras: 65 })
  }, 120_000)

  it('provisions devices from the command line, with clear refusals', async () => {
    const dataDir = join(tempDir(), 'db')
    expect((await runCli(['city', 'import', ...files, '--name', 'sample', '--data-dir', dataDir])).code).toBe(0)
    const sample = readFileSync(join(SAMPLE, 'devices.csv'), 'utf8').split('\n')[1]?.split(',') ?? []
    const [lon, lat, micro] = [sample[2], sample[3], sample[4]]
    const added = await runCli(['devices', 'add', 'X-CLI-1', '--type', 'smoke', '--lon', lon ?? '', '--lat', lat ?? '', '--reason', 'new', '--data-dir', dataDir])
    expect(added.code, added.stderr).toBe(0)
    expect(added.stdout).toMatch(new RegExp(`X-CLI-1 added: smoke, micro-grid ${micro} `))
    expect((await runCli(['devices', 'update', 'X-CLI-1', '--interval-s', '30', '--data-dir', dataDir])).stdout).toMatch(/updated: smoke, .* every 30 s/)
    expect((await runCli(['device-token', 'X-CLI-1', '--data-dir', dataDir])).code).toBe(0)
    expect(await stats(dataDir)).toMatchObject({ devices: 114 })
    // Refusals: no type (a usage error), an id taken, a device that is not there, a place outside the city.
    expect((await runCli(['devices', 'add', 'X-CLI-2', '--lon', '113.6', '--lat', '34.7', '--data-dir', dataDir])).code).toBe(2)
    const taken = await runCli(['devices', 'add', 'X-CLI-1', '--type', 'smoke', '--micro-grid', micro ?? '', '--data-dir', dataDir])
    expect([taken.code, taken.stderr]).toEqual([1, expect.stringMatching(/device X-CLI-1 exists already/)])
    const missing = await runCli(['devices', 'move', 'X-NONE', '--micro-grid', micro ?? '', '--data-dir', dataDir])
    expect([missing.code, missing.stderr]).toEqual([1, expect.stringMatching(/DEVICE_NOT_FOUND: no device X-NONE/)])
    const outside = await runCli(['devices', 'move', 'X-CLI-1', '--lon', '100', '--lat', '30', '--data-dir', dataDir])
    expect([outside.code, outside.stderr]).toEqual([1, expect.stringMatching(/\[100, 30\] lies in no micro-grid of the city/)])
    expect((await runCli(['devices', 'decommission', 'X-CLI-1', '--data-dir', dataDir])).code).toBe(0)
    expect(await stats(dataDir)).toMatchObject({ devices: 113 })
  }, 120_000)

  it('is kept by citytwin start, which runs it without the demo fleet and will not replace it', async () => {
    const dataDir = join(tempDir(), 'db')
    expect((await runCli(['city', 'import', ...files, '--name', 'sample', '--data-dir', dataDir])).code).toBe(0)
    const replaced = await runCli(['start', '--full', '--port', '0', '--mqtt-port', '0', '--data-dir', dataDir])
    expect(replaced.code).toBe(1)
    expect(replaced.stderr).toMatch(/CITY_IMPORTED: the store in .* holds the imported city "sample"; --full, --scale and --seed would replace it/)
    const run = await spawnCli(['start', '--port', '0', '--mqtt-port', '0', '--data-dir', dataDir], /API\s+(http:\/\/\S+)\/api\/city/)
    try {
      expect(run.stdout()).toMatch(/city "sample" \(imported\): 10 community grids, 113 devices, 65 cameras/)
      expect(run.stdout()).not.toMatch(/demo\s+\d+ simulated devices/)
      // Not the demo: reads need a token.
      expect(run.stdout()).toMatch(/reads need a token/)
      // While it runs, the city cannot be swapped under its twin and gateways, imported or generated.
      const during = await runCli(['city', 'import', ...files, '--data-dir', dataDir])
      expect(during.code).toBe(1)
      expect(during.stderr).toMatch(/CITY_IN_USE: citytwin is running on the store in .* \(citytwin start, pid \d+\): stop it, import, then start it again/)
      const generated = await runCli(['city', 'generate', '--seed', '2', '--scale', '0.01', '--data-dir', dataDir])
      expect(generated.code).toBe(1)
      expect(generated.stderr).toMatch(/CITY_IN_USE: citytwin is running on the store .*: stop it, generate the city, then start it again/)
    } finally {
      run.child.kill('SIGTERM')
      await run.exited
    }
    expect(await stats(dataDir)).toMatchObject({ source: 'import: sample', devices: 113 })
  }, 120_000)
})
