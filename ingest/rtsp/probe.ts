// Probing one camera, in the first two of the issue's tiers:
//   1. reachability: connect, OPTIONS, DESCRIBE, and what the SDP states
//      (codec, resolution, frame rate);
//   2. stream health, when a window is asked for: SETUP (TCP interleaved,
//      UDP where the camera will not), PLAY, and the RTP of that window
//      measured without decoding (stream-health.ts), then TEARDOWN.
// The result is data, failures included: which class, at which step, with
// the camera's own status where it gave one. `citytwin camera probe` prints
// it; the camera gateway turns it into the camera's state.
import { performance } from 'node:perf_hooks'
import { header } from './messages.ts'
import { cameraUrl, RtspClient, RtspFailure, statusFailure, type FailureClass } from './client.ts'
import type { Credentials } from './auth.ts'
import { parseSdp, SdpError, type VideoCodec } from './sdp.ts'
import { rtpHeader, StreamHealthMeter, type StreamHealth } from './stream-health.ts'
import { KeyframeCollector } from './depacketize.ts'
import { decodeGrayKeyframes } from './ffmpeg.ts'
import type { KeyframeDecoder } from './keyframe-decoder.ts'
import { checkPictures, type Baseline, type PictureThresholds, type PictureVerdict } from './picture-checks.ts'
import { CitytwinError } from '../../lib/errors.ts'

export interface ProbeOptions {
  /** Connecting and each request's answer. */
  timeoutMs: number
  /** How long to measure RTP after PLAY; 0 probes reachability only. */
  windowMs: number
  credentials?: Credentials
  localAddress?: string
  /** RTP over TCP interleaved, falling back to UDP when refused ('auto'), or one of them alone. */
  transport?: 'auto' | 'tcp' | 'udp'
  /** For rtsps:// cameras: the authority to trust, or any certificate. */
  tls?: { ca?: string | Buffer; insecure?: boolean }
  /** Keyframes to decode and check (tier 3); 0 for none. Needs a window. */
  pictures?: number
  /** How long to wait for those keyframes from the first packet, past the window (default 6 s: three keyframes of a 2-s GOP). */
  pictureWaitMs?: number
  /** The camera's baseline from its last probe, for the checks that compare against it. */
  baseline?: Baseline
  /** Size the keyframes are checked at (default 160×90; a decoder's own size when one is given). */
  pictureSize?: { width: number; height: number }
  /** Decodes with other probes' keyframes in one ffmpeg run (a prober of many cameras); one run of its own when absent. */
  decoder?: KeyframeDecoder
  thresholds?: PictureThresholds
}

export const DEFAULT_PROBE: ProbeOptions = { timeoutMs: 5_000, windowMs: 0 }

export type ProbeStep = 'connect' | 'options' | 'describe' | 'setup' | 'play' | 'window'

export interface ProbeResult {
  /** The URL probed, without credentials. */
  url: string
  ok: boolean
  /** The step that failed, or the last one done. */
  step: ProbeStep
  failure?: { class: FailureClass; message: string; status?: number }
  /** Server header of the camera, where it gave one. */
  server?: string
  /** Milliseconds from the start to the TCP connection, and to DESCRIBE's answer. */
  connectMs?: number
  describeMs?: number
  video?: { codec: VideoCodec; encoding: string; width?: number; height?: number; fps?: number }
  transport?: 'tcp' | 'udp'
  health?: StreamHealth
  /** The picture checks, when asked for: the verdict, or why there is none. */
  pictures?: { keyframes: number; dropped: number; decodeMs?: number; verdict?: Omit<PictureVerdict, 'baseline'>; error?: string }
  /** The baseline to keep for the camera's next probe (binary: not for printing). */
  baseline?: Baseline
  /** The latest keyframe checked, Annex-B with its parameter sets, for a snapshot (binary: not for printing). */
  keyframe?: { bytes: Buffer; codec: 'h264' | 'h265' }
}

/** Probes `rawUrl` (credentials may be in it). Never throws for the camera's failings: they are in the result. */
export async function probeCamera(rawUrl: string, options: Partial<ProbeOptions> = {}): Promise<ProbeResult> {
  const o = { ...DEFAULT_PROBE, ...options }
  const started = performance.now()
  let target
  try {
    target = cameraUrl(rawUrl, o.credentials)
  } catch (e) {
    if (!(e instanceof RtspFailure)) throw e
    return { url: rawUrl.replace(/\/\/[^@/]*@/, '//'), ok: false, step: 'connect', failure: { class: e.failure, message: e.message } }
  }
  const result: ProbeResult = { url: target.url, ok: false, step: 'connect' }
  const client = new RtspClient(target, { timeoutMs: o.timeoutMs, ...(o.localAddress ? { localAddress: o.localAddress } : {}), ...(o.tls ? { tls: o.tls } : {}) })
  try {
    await client.open()
    result.connectMs = round(performance.now() - started)
    result.step = 'options'
    const options = await client.request('OPTIONS', target.url)
    const server = header(options.headers, 'server')
    if (server) result.server = server
    // A camera may answer OPTIONS for any path and 404 only at DESCRIBE; 404 here is as final.
    if (options.status === 404) throw statusFailure('OPTIONS', options)
    result.step = 'describe'
    const describe = await client.request('DESCRIBE', target.url, { Accept: 'application/sdp' })
    if (describe.status < 200 || describe.status >= 300) throw statusFailure('DESCRIBE', describe)
    result.describeMs = round(performance.now() - started)
    const type = header(describe.headers, 'content-type')
    if (type && !/application\/sdp/i.test(type)) throw new RtspFailure('bad_sdp', `DESCRIBE answered ${type}, not application/sdp`)
    const base = header(describe.headers, 'content-base') ?? header(describe.headers, 'content-location') ?? target.url
    let sdp
    try {
      sdp = parseSdp(describe.body.toString('utf8'), base)
    } catch (e) {
      if (e instanceof SdpError) throw new RtspFailure('bad_sdp', e.message)
      throw e
    }
    const video = sdp.video
    if (!video) throw new RtspFailure('no_media', `the camera describes no video${sdp.others.length > 0 ? ` (only ${sdp.others.join(', ')})` : ''}`)
    result.video = {
      codec: video.codec, encoding: video.encoding,
      ...(video.width !== undefined ? { width: video.width, height: video.height } : {}), ...(video.fps !== undefined ? { fps: video.fps } : {}),
    }
    if (o.windowMs <= 0) {
      result.ok = true
      return result
    }
    result.step = 'setup'
    const meter = new StreamHealthMeter(video.codec, video.clockRate, video.payloadType)
    const wanted = o.pictures ?? 0
    const decodable = video.codec === 'h264' || video.codec === 'h265'
    const keyframes = wanted > 0 && decodable ? new KeyframeCollector(video.codec, video.payloadType, video.parameterSets, { maxKeyframes: wanted }) : undefined
    client.onPacket((channel, packet) => {
      if (channel !== 0) return
      const h = rtpHeader(packet)
      meter.add(packet, performance.now(), h)
      keyframes?.add(packet, h)
    })
    result.transport = await client.setup(video.controlUrl, o.transport)
    result.step = 'play'
    const play = await client.request('PLAY', sdp.sessionUrl, { Range: 'npt=0.000-' })
    if (play.status < 200 || play.status >= 300) throw statusFailure('PLAY', play)
    result.step = 'window'
    if (o.windowMs > (client.sessionTimeoutS * 1000) / 2) client.keepAlive()
    const firstAt = await windowOf(o.windowMs, o.timeoutMs, () => meter.packets)
    if (keyframes && firstAt !== undefined) {
      const until = firstAt + Math.max(o.windowMs, o.pictureWaitMs ?? 6_000)
      while (!keyframes.full && performance.now() < until) await sleep(20)
    }
    const health = meter.summary()
    result.health = health
    if (health.packets === 0) throw new RtspFailure('no_media', `PLAY was answered but no RTP of the video came within ${Math.max(o.windowMs, o.timeoutMs)} ms`)
    result.ok = true
    // The stream is measured: let the camera go before decoding.
    await client.close()
    if (wanted > 0) await checkKeyframes(result, keyframes, video.codec, o)
    return result
  } catch (e) {
    if (!(e instanceof RtspFailure)) throw e
    result.failure = { class: e.failure, message: e.message, ...(e.status !== undefined ? { status: e.status } : {}) }
    return result
  } finally {
    await client.close()
  }
}

/** Waits `windowMs` from the first packet, or gives up `timeoutMs` after PLAY when none came; the first packet's time, if one came. */
async function windowOf(windowMs: number, timeoutMs: number, packets: () => number): Promise<number | undefined> {
  const begun = performance.now()
  while (packets() === 0 && performance.now() - begun < timeoutMs) await sleep(Math.min(20, windowMs))
  if (packets() === 0) return undefined
  const first = performance.now()
  await sleep(windowMs)
  return first
}

/** Tier 3: decodes the keyframes gathered and judges them; a decode that fails is said in the result, not thrown (ffmpeg missing is). */
async function checkKeyframes(result: ProbeResult, keyframes: KeyframeCollector | undefined, codec: string, o: ProbeOptions): Promise<void> {
  if (!keyframes || (codec !== 'h264' && codec !== 'h265')) {
    result.pictures = { keyframes: 0, dropped: 0, error: `pictures of ${codec} are not decoded (H.264 and H.265 are)` }
    return
  }
  const kept = keyframes.keyframes
  result.pictures = { keyframes: kept.length, dropped: keyframes.dropped }
  const latest = kept[kept.length - 1]
  if (latest) result.keyframe = { bytes: latest, codec }
  if (kept.length === 0) {
    result.pictures.error = `no whole keyframe came within the wait${keyframes.dropped > 0 ? ` (${keyframes.dropped} broken by lost packets)` : ''}`
    return
  }
  const size = o.decoder?.size ?? o.pictureSize ?? { width: 160, height: 90 }
  const started = performance.now()
  try {
    const frames = o.decoder ? await o.decoder.decode(kept, codec) : (await decodeGrayKeyframes(Buffer.concat(kept), codec, size, Math.max(o.timeoutMs, 10_000))).frames
    result.pictures.decodeMs = round(performance.now() - started)
    if (frames.length === 0) {
      result.pictures.error = 'ffmpeg decoded none of the keyframes'
      return
    }
    const { baseline, ...verdict } = checkPictures(frames.map((luma) => ({ width: size.width, height: size.height, luma })), o.baseline, o.thresholds)
    result.pictures.verdict = verdict
    if (baseline) result.baseline = baseline
  } catch (e) {
    if (e instanceof CitytwinError && e.code === 'FFMPEG_FAILED') result.pictures.error = e.message
    else throw e
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const round = (ms: number): number => Math.round(ms * 10) / 10
