// Tier 3, the picture checks: keyframes rebuilt from RTP, decoded by the
// real ffmpeg, and judged; each check on the simulator's clip made for it,
// the baseline carried from one probe to the next as the gateway will.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KeyframeCollector } from '../../../ingest/rtsp/depacketize.ts'
import { checkPictures, type Baseline, type Picture } from '../../../ingest/rtsp/picture-checks.ts'
import { probeCamera } from '../../../ingest/rtsp/probe.ts'
import { loadClips, type ClipName, type LoadedClip } from '../../../simulators/cameras/clips.ts'
import { framePackets, payloadsOf, type RtpState } from '../../../simulators/cameras/h264.ts'
import { CameraSimulator } from '../../../simulators/cameras/server.ts'

const W = 32
const H = 18
function picture(f: (x: number, y: number) => number): Picture {
  const luma = new Uint8Array(W * H)
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) luma[y * W + x] = Math.max(0, Math.min(255, Math.round(f(x, y))))
  return { width: W, height: H, luma }
}
/** A sharp, busy scene: a bright half and a dark one, a fine checkerboard over both shifted by `t`, a little sensor noise. */
const scene = (t = 0, noise = 0): Picture => picture((x, y) => (x < W / 2 ? 190 : 60) + ((Math.floor((x + t) / 2) + Math.floor(y / 2)) % 2 ? 30 : -30) + ((x * 7 + y * 13 + t * 5) % 5) * noise)
const blur = (p: Picture): Picture => picture((x, y) => {
  let s = 0
  let n = 0
  for (let dy = -3; dy <= 3; dy++) for (let dx = -3; dx <= 3; dx++) {
    const v = p.luma[Math.min(H - 1, Math.max(0, y + dy)) * W + Math.min(W - 1, Math.max(0, x + dx))]
    s += v ?? 0
    n++
  }
  return s / n
})

describe('checkPictures', () => {
  const base = checkPictures([scene(0, 1)], undefined).baseline as Baseline

  it('keeps the first ok picture as the baseline, and moves it slowly with later ones', () => {
    expect(base).toMatchObject({ width: W, height: H, samples: 1 })
    const next = checkPictures([scene(0, 1), scene(1, 1)], base)
    expect(next.condition).toBe('ok')
    expect(next.baseline?.samples).toBe(2)
    expect(Array.from(next.baseline?.luma ?? [])).not.toEqual(Array.from(base.luma))
  })

  it('tells black, frozen, obstructed, washed out, moved and motion apart', () => {
    expect(checkPictures([picture(() => 3)], base).condition).toBe('black')
    expect(checkPictures([scene(2, 1), scene(2, 1), scene(2, 1)], base)).toMatchObject({ condition: 'frozen', reason: expect.stringMatching(/3 keyframes without a change/) as unknown })
    expect(checkPictures([blur(scene(0, 1))], base)).toMatchObject({ condition: 'obstructed', reason: expect.stringMatching(/detail lost while the contrast holds/) as unknown })
    expect(checkPictures([picture((x, y) => 120 + (scene(0).luma[y * W + x]! - 120) * 0.15)], base)).toMatchObject({ condition: 'scene_change', reason: expect.stringMatching(/smoke or fog/) as unknown })
    const moved = checkPictures([picture((x, y) => (x < W / 2 ? 60 : 190) + ((Math.floor(x / 2) + Math.floor(y / 2)) % 2 ? 30 : -30))], base)
    expect(moved).toMatchObject({ condition: 'scene_change', reason: expect.stringMatching(/far from the baseline/) as unknown })
    expect(moved.baseline).toBe(base) // a moved camera does not drag its baseline along
    expect(checkPictures([scene(0, 1), scene(1, 1)], base)).toMatchObject({ condition: 'ok', motion: true })
    expect(checkPictures([scene(0, 0), scene(0, 1)], base)).toMatchObject({ condition: 'ok', motion: false })
  })

  it('judges without a baseline only what needs none', () => {
    expect(checkPictures([picture(() => 128)], undefined)).toMatchObject({ condition: 'obstructed', reason: expect.stringMatching(/almost no detail/) as unknown })
    expect(checkPictures([blur(scene(0, 1))], undefined).condition).toBe('ok')
    expect(() => checkPictures([], undefined)).toThrow(RangeError)
    expect(() => checkPictures([scene(), { width: 2, height: 2, luma: new Uint8Array(4) }], undefined)).toThrow(/one size/)
  })
})

describe('keyframes out of RTP', () => {
  const annexB = (...nals: Buffer[]): Buffer => Buffer.concat(nals.flatMap((n) => [Buffer.from([0, 0, 0, 1]), n]))
  const sps = Buffer.from('6742c01eda0280bfe5c044000003000400000300c83c58ba80', 'hex')
  const pps = Buffer.from('68ce3c80', 'hex')
  const idr = Buffer.concat([Buffer.from([0x65]), Buffer.alloc(5_000, 0x5a)])
  const inter = Buffer.concat([Buffer.from([0x41]), Buffer.alloc(900, 0x33)])

  function send(collector: KeyframeCollector, frames: Buffer[][], drop?: (n: number) => boolean): void {
    const state: RtpState = { ssrc: 7, sequence: 65_530, timestamp: 0 }
    let n = 0
    for (const units of frames) {
      for (const p of framePackets(units.flatMap((u) => payloadsOf(u)), 96, state, undefined)) if (!drop?.(n++)) collector.add(p)
      state.timestamp += 3600
    }
  }

  it('rebuilds a keyframe from FU-A fragments across a sequence wrap, with the SDP parameter sets before it', () => {
    const c = new KeyframeCollector('h264', 96, [sps, pps], { maxKeyframes: 2 })
    send(c, [[inter], [idr], [inter], [idr], [idr]])
    expect(c.keyframes).toEqual([annexB(sps, pps, idr), annexB(sps, pps, idr)])
    expect(c.full).toBe(true)
  })

  it('drops a keyframe a lost packet broke, and takes in-band parameter sets', () => {
    const c = new KeyframeCollector('h264', 96, [], { maxKeyframes: 3 })
    send(c, [[sps, pps, idr], [inter], [idr], [idr]], (n) => n === 8)
    expect(c.dropped).toBe(1)
    expect(c.keyframes).toEqual([annexB(sps, pps, idr), annexB(sps, pps, idr)])
  })

  it('rebuilds an H.265 keyframe from its fragments', () => {
    const vps = Buffer.from([32 << 1, 1, 0xaa])
    const hsps = Buffer.from([33 << 1, 1, 0xbb])
    const hpps = Buffer.from([34 << 1, 1, 0xcc])
    const irap = Buffer.concat([Buffer.from([19 << 1, 1]), Buffer.alloc(3_000, 0x21)])
    const fus: Buffer[] = []
    for (let off = 2; off < irap.length; off += 1_200) {
      const end = Math.min(irap.length, off + 1_200)
      fus.push(Buffer.concat([Buffer.from([49 << 1, 1, (off === 2 ? 0x80 : 0) | (end === irap.length ? 0x40 : 0) | 19]), irap.subarray(off, end)]))
    }
    const c = new KeyframeCollector('h265', 96, [vps, hsps, hpps], { maxKeyframes: 1 })
    const state: RtpState = { ssrc: 1, sequence: 1, timestamp: 0 }
    for (const p of framePackets(fus, 96, state, undefined)) c.add(p)
    expect(c.keyframes).toEqual([annexB(vps, hsps, hpps, irap)])
  })
})

describe('picture checks on the simulator clips, decoded by ffmpeg', () => {
  let clips: Map<ClipName, LoadedClip>
  let sim: CameraSimulator
  beforeAll(async () => {
    clips = await loadClips()
    sim = new CameraSimulator({ host: '127.0.0.1', port: 0, clips, camera: () => ({ clip: 'street' }) })
    await sim.start()
  })
  afterAll(() => sim.stop(Date.now() + 1_000))

  const probe = (id: string, baseline?: Baseline) => probeCamera(`rtsp://127.0.0.1:${sim.port}/live/${id}`, { windowMs: 500, pictures: 3, pictureWaitMs: 6_000, ...(baseline ? { baseline } : {}) })

  it('finds each condition on its clip', async () => {
    const street = await probe('S1')
    expect(street.pictures).toMatchObject({ keyframes: 3, dropped: 0, verdict: { condition: 'ok', motion: true } })
    const baseline = street.baseline
    expect(baseline?.samples).toBe(1)
    const expected: [ClipName, string, boolean][] = [['black', 'black', false], ['frozen', 'frozen', false], ['obstructed', 'obstructed', false], ['moved', 'scene_change', true], ['smoke', 'scene_change', true], ['motion', 'ok', true]]
    for (const [clip] of expected) sim.set(`X-${clip}`, { clip })
    // The motion clip is another scene: judged alone, as a camera seen for the first time.
    const got = await Promise.all(expected.map(async ([clip]) => {
      const r = await probe(`X-${clip}`, clip === 'motion' ? undefined : baseline)
      return [clip, r.pictures?.verdict?.condition, r.pictures?.verdict?.motion]
    }))
    expect(got).toEqual(expected)
  })
})
