// Snapshots kept as evidence: retention by age and by total size, oldest
// first; ids that could walk out of the folder refused; and the camera
// rule keeping the snapshot's link on the ticket it raises.
import { mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { SnapshotStore, snapshotPath } from '../../../ingest/rtsp/snapshots.ts'
import { stepCamera } from '../../../rules/kinds/camera.ts'
import type { CameraRule } from '../../../rules/schema.ts'
import { tempDir } from '../../helpers.ts'

const JPEG = Buffer.concat([Buffer.from([0xff, 0xd8]), Buffer.alloc(1_000, 1), Buffer.from([0xff, 0xd9])])
const DAY = 86_400_000

describe('SnapshotStore', () => {
  it('keeps a snapshot under its camera and reads it back by its API path', async () => {
    const s = new SnapshotStore({ dir: tempDir(), maxAgeDays: 30, maxBytes: 1e9 })
    await s.start()
    expect(await s.save('C000007', 1_700_000_000_000, JPEG)).toBe('/api/cameras/C000007/snapshots/1700000000000')
    expect(await s.read('C000007', 1_700_000_000_000)).toEqual({ jpeg: JPEG })
    expect(snapshotPath('cam 1', 5)).toBe('/api/cameras/cam%201/snapshots/5')
    for (const bad of ['../etc', 'a/b', '', '.hidden']) {
      expect(await s.save(bad, 1, JPEG)).toBeUndefined()
      expect(await s.read(bad, 1)).toMatchObject({ missing: expect.stringMatching(/not a camera id/) as unknown })
    }
    await s.stop()
  })

  it('removes what is past its age, then the oldest until all fit the size', async () => {
    const dir = tempDir()
    const now = 100 * DAY
    const s = new SnapshotStore({ dir, maxAgeDays: 10, maxBytes: 3 * JPEG.length })
    for (const [cam, ageDays] of [['A', 20], ['A', 5], ['B', 4], ['B', 3], ['C', 2], ['C', 1]] as const) await s.save(cam, now - ageDays * DAY, JPEG)
    mkdirSync(join(dir, 'C'), { recursive: true })
    writeFileSync(join(dir, 'C', 'notes.txt'), 'left alone')
    // A write a crash left half done, two hours old, goes; one under way stays.
    writeFileSync(join(dir, 'C', '5.jpg.partial'), 'x')
    utimesSync(join(dir, 'C', '5.jpg.partial'), new Date(now - 7_200_000), new Date(now - 7_200_000))
    writeFileSync(join(dir, 'C', '6.jpg.partial'), 'x')
    utimesSync(join(dir, 'C', '6.jpg.partial'), new Date(now - 1_000), new Date(now - 1_000))
    await s.sweep(now)
    const left = ['A', 'B', 'C'].flatMap((c) => readdirSync(join(dir, c)).map((f) => `${c}/${f}`)).sort()
    expect(left).toEqual(['C/6.jpg.partial', `B/${now - 3 * DAY}.jpg`, `C/${now - 2 * DAY}.jpg`, `C/${now - DAY}.jpg`, 'C/notes.txt'].sort())
    expect(s.stats()).toMatchObject({ removed: 3 })
    expect(await s.read('A', now - 5 * DAY)).toMatchObject({ missing: expect.stringMatching(/removed by retention \(after 10 days/) as unknown })
  })
})

describe('the camera rule', () => {
  const rule = { id: 'camera-obstructed', kind: 'camera', title: 'obstructed', ticketType: 'camera_obstructed', conditions: ['black', 'frozen', 'obstructed'] } as unknown as CameraRule
  const place = { microGridId: 1, communityId: 2, streetId: 3, districtId: 4, lon: 0, lat: 0 }

  it('keeps the snapshot a condition was seen in as the ticket\'s evidence', () => {
    const raised = stepCamera(rule, undefined, 'black', 10, 'k', place, 'C000002', '/api/cameras/C000002/snapshots/10')
    expect(raised.actions[0]).toMatchObject({ type: 'raise', evidence: { condition: 'black', snapshot: '/api/cameras/C000002/snapshots/10' } })
    expect(stepCamera(rule, undefined, 'frozen', 10, 'k', place as never, 'C000002').actions[0]).toMatchObject({ evidence: { condition: 'frozen' } })
  })
})
