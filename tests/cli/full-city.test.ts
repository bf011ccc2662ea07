// The full-scale city, generated and counted through the CLI, as the issue's
// "done when" reads: 19,136 / 46,818 / 4,774 grids, 219,300 devices and
// 130,000 cameras, queryable through the store.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runCli, tempDir } from '../helpers.ts'

describe('full-scale city', () => {
  it('is written to the store and counted there', async () => {
    const dataDir = join(tempDir(), 'db')
    const gen = await runCli(['city', 'generate', '--seed', '1', '--data-dir', dataDir], {}, 300_000)
    expect(gen.stderr).toBe('')
    expect(gen.code).toBe(0)
    const stats = await runCli(['city', 'stats', '--json', '--data-dir', dataDir])
    const f = JSON.parse(stats.stdout) as { grids: Record<string, number>; devices: number; devicesByType: Record<string, number>; cameras: number }
    expect(f.grids).toMatchObject({ community: 19_136, micro: 46_818, special: 4_774 })
    expect(f.devices).toBe(219_300)
    expect(Object.keys(f.devicesByType).length).toBeGreaterThanOrEqual(10)
    expect(f.cameras).toBe(130_000)
    // Every device's micro-grid exists and lies in the device's community grid.
    const orphans = await runCli(['store', 'query',
      "SELECT toUInt32(count()) AS n FROM devices d LEFT ANTI JOIN (SELECT id, community_id FROM grids WHERE level = 'micro') g ON d.micro_grid_id = g.id AND d.community_id = g.community_id",
      '--data-dir', dataDir])
    expect(JSON.parse(orphans.stdout)).toEqual({ n: 0 })
  })
})
