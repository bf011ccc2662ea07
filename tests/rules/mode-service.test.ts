// The operating modes as their own component: what is switched is stored
// before it takes effect, and a fresh service (a restart) finds it again.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ModeService } from '../../rules/mode-service.ts'
import { CITY } from '../../rules/modes.ts'
import { openMigratedStore } from '../../store/index.ts'
import { tempDir } from '../helpers.ts'

describe('mode service', () => {
  it('stores each switch and cancellation, and a restarted service finds them', async () => {
    const { store } = await openMigratedStore({ env: {} }, { dataDir: join(tempDir(), 'db') })
    try {
      let now = Date.UTC(2026, 5, 1, 8)
      const clock = (): number => now
      const modes = new ModeService({ client: store.client, clock })
      await modes.start()
      expect(modes.modeAt(3)).toBe('normal')
      const storm = await modes.set({ districtId: 3, mode: 'emergency', startsAt: now, endsAt: undefined, actor: 'desk-1', note: '暴雨红色预警' })
      const marathon = await modes.set({ districtId: CITY, mode: 'major_event', startsAt: now + 3_600_000, endsAt: now + 7_200_000, actor: 'desk-1', note: 'marathon' })
      expect([modes.modeAt(3), modes.modeAt(4)]).toEqual(['emergency', 'normal'])
      now += 5_400_000 // during the marathon: the district's own entry before the city's
      expect([modes.modeAt(3), modes.modeAt(4)]).toEqual(['emergency', 'major_event'])
      expect(modes.stats()).toEqual({ entries: 2, changes: 2 })

      const restarted = new ModeService({ client: store.client, clock })
      await restarted.start()
      expect(restarted.entries.map((e) => e.id).sort()).toEqual([storm.id, marathon.id].sort())
      expect(await restarted.cancel(storm.id)).toMatchObject({ id: storm.id })
      expect(await restarted.cancel('M-none')).toBeUndefined()
      expect(restarted.modeAt(3)).toBe('major_event')
      await restarted.stop(Date.now() + 1_000)

      const again = new ModeService({ client: store.client, clock })
      await again.start()
      expect(again.entries.map((e) => e.id)).toEqual([marathon.id])
    } finally {
      await store.close()
    }
  })
})
