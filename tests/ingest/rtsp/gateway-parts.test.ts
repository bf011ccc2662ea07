// The camera gateway's pure parts: what a probe means for a camera's
// status and events, which shard owns a camera (and how few move when a
// shard is added), and when each camera is probed.
import { describe, expect, it } from 'vitest'
import { judgeProbe, type CameraMemory } from '../../../ingest/rtsp/camera-state.ts'
import type { ProbeResult } from '../../../ingest/rtsp/probe.ts'
import { ProbeSchedule } from '../../../ingest/rtsp/schedule.ts'
import { owns, parseShard, shardOf } from '../../../ingest/rtsp/shard.ts'
import { rtspConfig } from '../../../ingest/rtsp/config.ts'
import { loadConfig } from '../../../lib/config.ts'

const PROFILE = { fps: 25, bitrateKbps: 800 }
const healthy: ProbeResult = { url: 'rtsp://c/live/C1', ok: true, step: 'window', health: { packets: 300, ignored: 0, frames: 50, fps: 25, bitrateKbps: 850, lost: 0, lossRatio: 0, keyframes: 1, spanMs: 2000 } }
const failed: ProbeResult = { url: 'rtsp://c/live/C1', ok: false, step: 'connect', failure: { class: 'refused', message: 'ECONNREFUSED' } }
const withPictures = (condition: 'ok' | 'black' | 'frozen' | 'obstructed' | 'scene_change', extra: Record<string, unknown> = {}): ProbeResult => ({
  ...healthy, pictures: { keyframes: 3, dropped: 0, verdict: { condition, reason: condition, motion: false, stats: { mean: 0, contrast: 0, detail: 0 }, ...extra } },
})
const fresh: CameraMemory = { failures: 0 }

describe('judgeProbe', () => {
  it('says ok once, then again only when due', () => {
    const first = judgeProbe(fresh, healthy, PROFILE, 1_000)
    expect(first.status).toMatchObject({ state: 'ok', detail: '25 fps, 850 kbit/s' })
    expect(judgeProbe(first.memory, healthy, PROFILE, 60_000).status).toBeUndefined()
    expect(judgeProbe(first.memory, healthy, PROFILE, 1_000 + 900_000).status?.state).toBe('ok')
  })

  it('goes offline after two failures in a row, with the class, and back on the next success', () => {
    const ok = judgeProbe(fresh, healthy, PROFILE, 0).memory
    const one = judgeProbe(ok, failed, PROFILE, 1_000)
    expect(one.status).toBeUndefined()
    const two = judgeProbe(one.memory, failed, PROFILE, 2_000)
    expect(two.status).toMatchObject({ state: 'offline', failure: 'refused', detail: expect.stringMatching(/refused at connect/) as unknown })
    expect(judgeProbe(two.memory, healthy, PROFILE, 3_000).status?.state).toBe('ok')
    // A camera not judged yet (as after a restart) is not offline at one refused connection either.
    const unknown = judgeProbe(fresh, failed, PROFILE, 0)
    expect(unknown.status).toBeUndefined()
    expect(judgeProbe(unknown.memory, failed, PROFILE, 1_000).status?.state).toBe('offline')
  })

  it('calls a camera far below what it states or usually sends degraded, and a probe of reachability alone keeps it so', () => {
    const slow = { ...healthy, health: { ...healthy.health!, fps: 5 } }
    expect(judgeProbe(fresh, slow, PROFILE, 0).status).toMatchObject({ state: 'degraded', detail: '5 fps of 25' })
    // The camera's SDP says 10 fps: 5 is half of it, not a fifth.
    expect(judgeProbe(fresh, { ...slow, video: { codec: 'h264', encoding: 'H264', fps: 10 } }, PROFILE, 0).status?.state).toBe('ok')
    const lossy = { ...healthy, health: { ...healthy.health!, lossRatio: 0.2 } }
    const degraded = judgeProbe(fresh, lossy, PROFILE, 0)
    expect(degraded.status).toMatchObject({ state: 'degraded', detail: '20% of packets lost' })
    const reach: ProbeResult = { url: healthy.url, ok: true, step: 'describe' }
    expect(judgeProbe(degraded.memory, reach, PROFILE, 1_000).status).toBeUndefined()
    expect(judgeProbe(degraded.memory, healthy, PROFILE, 2_000).status?.state).toBe('ok')
    // Bitrate against the camera's own: 850 learned, then 150 is thin; the registry's profile is not the yardstick.
    const learned = judgeProbe(fresh, healthy, { fps: 25, bitrateKbps: 8_000 }, 0)
    expect(learned.status?.state).toBe('ok')
    expect(learned.memory.bitrateKbps).toBe(850)
    expect(judgeProbe(learned.memory, { ...healthy, health: { ...healthy.health!, bitrateKbps: 150 } }, PROFILE, 1_000).status).toMatchObject({ state: 'degraded', detail: '150 kbit/s of its usual 850' })
  })

  it('says motion when it starts and then once an hour while it goes on', () => {
    const moving = withPictures('ok', { motion: true, changed: 0.08 })
    const first = judgeProbe(fresh, moving, PROFILE, 0)
    expect(first.events).toEqual([{ name: 'motion', severity: 'info', detail: '8% of the picture changed' }])
    const later = judgeProbe(first.memory, moving, PROFILE, 900_000)
    expect(later.events).toEqual([])
    expect(judgeProbe(later.memory, moving, PROFILE, 3_600_000).events.map((e) => e.name)).toEqual(['motion'])
    const still = judgeProbe(later.memory, withPictures('ok'), PROFILE, 1_000_000)
    expect(judgeProbe(still.memory, moving, PROFILE, 1_100_000).events.map((e) => e.name)).toEqual(['motion'])
  })

  it('raises a picture condition once as an event, marks the camera tampered, and repeats it only after a while', () => {
    const black = judgeProbe(fresh, withPictures('black'), PROFILE, 0)
    expect(black.status?.state).toBe('tampered')
    expect(black.events).toEqual([{ name: 'black', severity: 'warning', detail: 'black' }])
    const again = judgeProbe(black.memory, withPictures('black'), PROFILE, 60_000)
    expect(again.events).toEqual([])
    expect(judgeProbe(again.memory, withPictures('black'), PROFILE, 301_000).events.map((e) => e.name)).toEqual(['black'])
    // A probe without pictures does not clear it; pictures that are fine do.
    expect(judgeProbe(again.memory, healthy, PROFILE, 70_000).status).toBeUndefined()
    const cleared = judgeProbe(again.memory, withPictures('ok'), PROFILE, 80_000)
    expect(cleared.status?.state).toBe('ok')
    expect(cleared.memory.condition).toBeUndefined()
  })

  it('keeps a tampered or degraded camera so through an offline spell until a deep probe says otherwise', () => {
    const black = judgeProbe(fresh, withPictures('black'), PROFILE, 0)
    const down = judgeProbe(judgeProbe(black.memory, failed, PROFILE, 1_000).memory, failed, PROFILE, 2_000)
    expect(down.status?.state).toBe('offline')
    const reach: ProbeResult = { url: healthy.url, ok: true, step: 'describe' }
    // Back, but only reachability checked: not ok, which would clear the camera's ticket while it is still black.
    expect(judgeProbe(down.memory, reach, PROFILE, 3_000).status).toMatchObject({ state: 'tampered', detail: 'black: as last checked' })
    const slow = judgeProbe(fresh, { ...healthy, health: { ...healthy.health!, fps: 5 } }, PROFILE, 0)
    const gone = judgeProbe(judgeProbe(slow.memory, failed, PROFILE, 1_000).memory, failed, PROFILE, 2_000)
    expect(judgeProbe(gone.memory, reach, PROFILE, 3_000).status?.state).toBe('degraded')
  })

  it('lets the usual bitrate follow a lasting change, so a camera set to a lower rate is degraded for hours, not for ever', () => {
    let m = judgeProbe(fresh, healthy, PROFILE, 0).memory
    const low = { ...healthy, health: { ...healthy.health!, bitrateKbps: 150 } }
    const states: string[] = []
    for (let k = 1; k <= 30; k++) {
      const r = judgeProbe(m, low, PROFILE, k * 900_000)
      m = r.memory
      states.push(m.status ?? '')
    }
    expect(states[0]).toBe('degraded')
    expect(states[29]).toBe('ok')
  })

  it('tells a moved camera (tampered) from smoke in its view (an event, the camera fine)', () => {
    expect(judgeProbe(fresh, withPictures('scene_change', { cause: 'moved' }), PROFILE, 0)).toMatchObject({ status: { state: 'tampered' }, events: [{ name: 'scene_change', severity: 'warning' }] })
    const smoke = judgeProbe(fresh, withPictures('scene_change', { cause: 'haze', motion: true, changed: 0.4 }), PROFILE, 0)
    expect(smoke.status?.state).toBe('ok')
    expect(smoke.events.map((e) => [e.name, e.severity])).toEqual([['scene_change', 'info'], ['motion', 'info']])
  })
})

describe('rtsp config', () => {
  it('refuses a decode batch smaller than a deep probe\'s keyframes', () => {
    expect(() => loadConfig(rtspConfig, { env: {}, file: { rtsp: { pictures: 4, decodeBatch: 2 } } })).toThrow(/decodeBatch must be at least pictures/)
    expect(loadConfig(rtspConfig, { env: {} })).toMatchObject({ pictures: 3, decodeBatch: 64 })
  })
})

describe('shards', () => {
  it('reads i/n and refuses what is not one', () => {
    expect(parseShard('2/4')).toEqual({ index: 2, count: 4 })
    expect(() => parseShard('4/4')).toThrow(/0 <= i < n/)
    expect(() => parseShard('a/b')).toThrow(RangeError)
  })

  it('spreads cameras evenly and moves only about 1/(n+1) of them to a shard added', () => {
    const ids = Array.from({ length: 20_000 }, (_, i) => `C${String(i + 1).padStart(6, '0')}`)
    const four = ids.map((id) => shardOf(id, 4))
    const five = ids.map((id) => shardOf(id, 5))
    const counts = [0, 1, 2, 3].map((s) => four.filter((x) => x === s).length)
    for (const c of counts) expect(Math.abs(c - 5_000)).toBeLessThan(300)
    const moved = ids.filter((_, i) => four[i] !== five[i])
    expect(moved.every((_, k) => five[ids.indexOf(moved[k]!)] === 4)).toBe(true) // only to the new shard
    expect(Math.abs(moved.length / ids.length - 1 / 5)).toBeLessThan(0.02)
    expect(ids.filter((id) => owns({ index: 1, count: 4 }, id)).length).toBe(counts[1])
  })
})

describe('ProbeSchedule', () => {
  it('probes every camera once a period, spread evenly over it', () => {
    const s = new ProbeSchedule({ reachEveryS: 100, picturesEveryS: 300 })
    for (let i = 0; i < 1_000; i++) s.add(`C${i}`, 0)
    const perSecond: number[] = []
    for (let t = 0; t < 100; t++) {
      const due = s.due(t * 1000 + 999, 10_000)
      perSecond.push(due.length)
      for (const d of due) s.done(d.cameraId, true, d.deep, t * 1000 + 999)
    }
    expect(perSecond.reduce((a, b) => a + b, 0)).toBe(1_000)
    expect(Math.max(...perSecond)).toBeLessThan(25)
    // The next period: each once more, none twice.
    let again = 0
    for (let t = 100; t < 200; t++) {
      const due = s.due(t * 1000 + 999, 10_000)
      again += due.length
      for (const d of due) s.done(d.cameraId, true, d.deep, t * 1000 + 999)
    }
    expect(again).toBe(1_000)
  })

  it('goes deep once a pictures period, sooner for watched cameras, and takes watched ones first', () => {
    const s = new ProbeSchedule({ reachEveryS: 300, picturesEveryS: 600, watchPicturesEveryS: 60 })
    s.add('A', 0)
    s.add('B', 0)
    s.watch('B', true, 0)
    const deep = new Map<string, number>()
    for (let t = 0; t < 1_200; t += 1) {
      for (const d of s.due(t * 1000, 10)) {
        if (d.deep) deep.set(d.cameraId, (deep.get(d.cameraId) ?? 0) + 1)
        s.done(d.cameraId, true, d.deep, t * 1000)
      }
    }
    expect(deep.get('A')).toBe(2)
    // Every minute, though its reachability slot comes every five.
    expect(deep.get('B')).toBeGreaterThanOrEqual(18)
    const t2 = new ProbeSchedule({ reachEveryS: 10 })
    for (const id of ['x', 'y', 'z']) t2.add(id, 0)
    t2.watch('z', true, 0)
    expect(t2.due(20_000, 1).map((d) => d.cameraId)).toEqual(['z'])
    expect(t2.backlog(20_000)).toBe(2)
  })

  it('retries a failed camera sooner, backing off to the period', () => {
    const s = new ProbeSchedule({ reachEveryS: 300, retryAfterS: 10, random: () => 0.999 })
    s.add('C', 0)
    const first = s.due(300_000, 1)
    expect(first).toHaveLength(1)
    const at: number[] = []
    let now = 300_000
    for (let k = 0; k < 7; k++) {
      s.done('C', false, false, now)
      let next = now
      while (s.due(next, 1).length === 0) next += 1_000
      at.push(Math.round((next - now) / 1000))
      now = next
    }
    expect(at).toEqual([10, 20, 40, 80, 160, 300, 300])
    expect(s.due(now + 1_000_000, 5)).toEqual([])
  })

  it('never hands out a camera twice at once, also when it is removed and added while its probe runs', () => {
    const s = new ProbeSchedule({ reachEveryS: 10 })
    s.add('C', 0)
    const [taken] = s.due(20_000, 5)
    expect(taken?.cameraId).toBe('C')
    s.remove('C')
    s.add('C', 20_000)
    s.done('C', true, false, 21_000) // the old probe ends: the new entry is scheduled already
    const seen: string[] = []
    for (let t = 21_000; t < 60_000; t += 1_000) for (const d of s.due(t, 5)) seen.push(`${t}:${d.cameraId}`)
    expect(seen).toHaveLength(1)
  })
})
