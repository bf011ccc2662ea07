// Keyframes of many cameras in one ffmpeg run, with the real ffmpeg:
// pictures split back to the right camera, cameras of different sizes in
// one run, and a keyframe that does not decode failing only its camera.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { renderH264Clip } from '../../../ingest/rtsp/ffmpeg.ts'
import { KeyframeDecoder } from '../../../ingest/rtsp/keyframe-decoder.ts'
import { pictureStats } from '../../../ingest/rtsp/picture-checks.ts'
import { clipFile } from '../../../simulators/cameras/clips.ts'
import { splitAnnexB } from '../../../simulators/cameras/h264.ts'
import { tempDir } from '../../helpers.ts'

const START = Buffer.from([0, 0, 0, 1])
/** The first keyframe of an Annex-B clip with its parameter sets, as the collector makes them. */
function firstKeyframe(stream: Buffer): Buffer {
  const nals = splitAnnexB(stream)
  const sps = nals.find((n) => (n[0]! & 0x1f) === 7)!
  const pps = nals.find((n) => (n[0]! & 0x1f) === 8)!
  const idr = nals.find((n) => (n[0]! & 0x1f) === 5)!
  return Buffer.concat([START, sps, START, pps, START, idr])
}

let black: Buffer
let street: Buffer
let small: Buffer
beforeAll(async () => {
  black = firstKeyframe(readFileSync(await clipFile('black')))
  street = firstKeyframe(readFileSync(await clipFile('street')))
  const file = join(tempDir(), 'white-320x240.h264')
  await renderH264Clip({ lavfi: 'color=c=white:size=320x240:rate=10', seconds: 1, fps: 10, gop: 10, bitrateKbps: 200 }, file)
  small = firstKeyframe(readFileSync(file))
})

const mean = (luma: Uint8Array): number => pictureStats({ width: 160, height: 90, luma }).mean

describe('KeyframeDecoder', () => {
  it('decodes the keyframes asked for together in one run, and gives each camera its own', async () => {
    const d = new KeyframeDecoder({ lingerMs: 30 })
    const [a, b, c] = await Promise.all([d.decode([black, black], 'h264'), d.decode([small], 'h264'), d.decode([street, black], 'h264')])
    expect(d.stats()).toMatchObject({ runs: 1, requests: 3, keyframes: 5, redecoded: 0, failed: 0 })
    expect(a?.map(mean).map(Math.round)).toEqual([0, 0])
    expect(b?.map(mean).map(Math.round)).toEqual([255])
    expect(c?.map((p) => p.length)).toEqual([14_400, 14_400])
    expect(Math.round(mean(c[0]!))).toBeGreaterThan(100)
    expect(Math.round(mean(c[1]!))).toBe(0)
  })

  it('fails only the camera whose keyframe does not decode', async () => {
    const d = new KeyframeDecoder({ lingerMs: 30 })
    // A keyframe cut short after its parameter sets: the slice is gone.
    const broken = street.subarray(0, street.indexOf(Buffer.from([0, 0, 0, 1, 0x65])) + 6)
    const results = await Promise.allSettled([d.decode([black], 'h264'), d.decode([broken], 'h264'), d.decode([small], 'h264')])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/ffmpeg/)
    // Decoded again in halves: all three, then the half with the broken one.
    expect(d.stats()).toMatchObject({ redecoded: 5, failed: 1, runs: 5 })
  })

  it('cuts a batch at its size and keeps to its number of runs at once', async () => {
    const d = new KeyframeDecoder({ lingerMs: 1_000, maxBatch: 4, concurrency: 2 })
    let most = 0
    const watch = setInterval(() => (most = Math.max(most, d.stats().running as number)), 2)
    const all = await Promise.all(Array.from({ length: 12 }, () => d.decode([black, black], 'h264')))
    clearInterval(watch)
    expect(all.map((f) => f.length)).toEqual(Array.from({ length: 12 }, () => 2))
    expect(d.stats()).toMatchObject({ runs: 6, failed: 0 })
    expect(most).toBe(2)
    await expect(d.decode(Array.from({ length: 5 }, () => black), 'h264')).rejects.toThrow(/at most 4/)
    await d.stop(Date.now() + 1_000)
    await expect(d.decode([black], 'h264')).rejects.toThrow(/stopping/)
  })
})
