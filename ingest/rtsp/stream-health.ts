// A stream's health from its RTP packets alone, without decoding a frame:
// frame rate from RTP timestamps, bitrate, loss from sequence gaps, and the
// keyframe interval from the H.264 / H.265 NAL unit types each packet
// carries (RFC 6184 and RFC 7798 payloads: a single NAL unit, an
// aggregation packet, or a fragment). This is the second of the probe's
// tiers: cheap enough to run for every camera on a schedule, since it reads
// a few header bytes a packet. Pure: packets in, figures out.
//
// Budget: per packet, a header read (one small object, shared with the
// keyframe collector) and a few comparisons;
// a 2-second window of a 4 Mbit/s camera is about 700 packets.
import type { VideoCodec } from './sdp.ts'

export interface RtpHeader {
  marker: boolean
  payloadType: number
  sequence: number
  timestamp: number
  ssrc: number
  /** Where the payload starts and ends in the packet (after CSRCs, extension and before padding). */
  payloadStart: number
  payloadEnd: number
}

/** The RTP fixed header (RFC 3550 §5.1), or undefined for a packet that is not RTP version 2 or is cut short. */
export function rtpHeader(p: Uint8Array): RtpHeader | undefined {
  if (p.length < 12 || (p[0] as number) >> 6 !== 2) return undefined
  const b0 = p[0] as number
  const b1 = p[1] as number
  let start = 12 + (b0 & 0x0f) * 4
  if (b0 & 0x10) {
    if (p.length < start + 4) return undefined
    start += 4 + (((p[start + 2] as number) << 8) | (p[start + 3] as number)) * 4
  }
  let end = p.length
  if (b0 & 0x20) end -= p[p.length - 1] as number
  if (start > end) return undefined
  return {
    marker: (b1 & 0x80) !== 0, payloadType: b1 & 0x7f, sequence: ((p[2] as number) << 8) | (p[3] as number),
    timestamp: (((p[4] as number) << 24) | ((p[5] as number) << 16) | ((p[6] as number) << 8) | (p[7] as number)) >>> 0,
    ssrc: (((p[8] as number) << 24) | ((p[9] as number) << 16) | ((p[10] as number) << 8) | (p[11] as number)) >>> 0,
    payloadStart: start, payloadEnd: end,
  }
}

/** What a packet's payload holds: whether it begins a keyframe, and whether it carries parameter sets. */
export interface NalInfo {
  /** The packet starts (or is) an IDR picture (H.264) or an IRAP picture (H.265). */
  keyframe: boolean
  parameterSets: boolean
}

/** nalFlags' bits. */
export const KEYFRAME = 1
export const PARAMETER_SETS = 2

const h264Flags = (t: number): number => (t === 5 ? KEYFRAME : t === 7 || t === 8 ? PARAMETER_SETS : 0)
const h265Flags = (t: number): number => (t >= 16 && t <= 21 ? KEYFRAME : t >= 32 && t <= 34 ? PARAMETER_SETS : 0)

/** The NAL unit types of one RTP payload (`p` from `start` to `end`) as KEYFRAME and PARAMETER_SETS bits: per packet, so no object. */
export function nalFlags(codec: VideoCodec, p: Uint8Array, start: number, end: number): number {
  if (end <= start || codec === 'other') return 0
  if (codec === 'h264') {
    const type = (p[start] as number) & 0x1f
    if (type >= 1 && type <= 23) return h264Flags(type)
    if (type === 24) {
      // STAP-A: 16-bit sizes, each followed by a NAL unit.
      let flags = 0
      for (let o = start + 1; o + 2 < end;) {
        const size = ((p[o] as number) << 8) | (p[o + 1] as number)
        if (size === 0 || o + 2 + size > end) break
        flags |= h264Flags((p[o + 2] as number) & 0x1f)
        o += 2 + size
      }
      return flags
    }
    // FU-A: only the first fragment (S bit) starts the unit.
    if (type === 28 && end - start >= 2) {
      const fu = p[start + 1] as number
      return fu & 0x80 ? h264Flags(fu & 0x1f) : 0
    }
    return 0
  }
  if (end - start < 2) return 0
  const type = ((p[start] as number) >> 1) & 0x3f
  if (type <= 47) return h265Flags(type)
  if (type === 48) {
    let flags = 0
    for (let o = start + 2; o + 2 < end;) {
      const size = ((p[o] as number) << 8) | (p[o + 1] as number)
      if (size === 0 || o + 2 + size > end) break
      flags |= h265Flags(((p[o + 2] as number) >> 1) & 0x3f)
      o += 2 + size
    }
    return flags
  }
  if (type === 49 && end - start >= 3) {
    const fu = p[start + 2] as number
    return fu & 0x80 ? h265Flags(fu & 0x3f) : 0
  }
  return 0
}

/** nalFlags as an object, for a reader that is not on the per-packet path. */
export function nalInfo(codec: VideoCodec, p: Uint8Array, start: number, end: number): NalInfo {
  const flags = nalFlags(codec, p, start, end)
  return { keyframe: (flags & KEYFRAME) !== 0, parameterSets: (flags & PARAMETER_SETS) !== 0 }
}

export interface StreamHealth {
  packets: number
  /** Packets that were not RTP or not of the video payload type. */
  ignored: number
  frames: number
  /** From RTP timestamps; undefined below two frames. */
  fps?: number
  /** Payload bits over the RTP time the frames span. */
  bitrateKbps?: number
  /** Sequence numbers missing between the first and the last packet seen. */
  lost: number
  lossRatio: number
  keyframes: number
  /** Mean frames from one keyframe to the next; undefined below two keyframes. */
  keyframeInterval?: number
  /** Milliseconds from the first packet to the last, by the receiver's clock. */
  spanMs: number
}

/**
 * Accumulates one window of one stream. The clock rate is the SDP's (90 kHz
 * for video); the payload type filters out anything else on the channel.
 */
export class StreamHealthMeter {
  readonly #codec: VideoCodec
  readonly #clockRate: number
  readonly #payloadType: number
  #packets = 0
  #ignored = 0
  #bytes = 0
  #frames = 0
  #lastTs = 0
  /** RTP time from the first frame to the last, summed so 32-bit wraps are taken in steps. */
  #rtpSpan = 0
  #seqBase = -1
  #extSeqMax = -1
  #lastExtSeq = -1
  #received = 0
  #keyframes = 0
  #lastKeyFrame = -1
  #intervals = 0
  #intervalFrames = 0
  #firstAt = 0
  #lastAt = 0

  constructor(codec: VideoCodec, clockRate: number, payloadType: number) {
    this.#codec = codec
    this.#clockRate = clockRate
    this.#payloadType = payloadType
  }

  /** One RTP packet received at `atMs`; `h` its header, where the caller has read it already. */
  add(packet: Uint8Array, atMs: number, h: RtpHeader | undefined = rtpHeader(packet)): void {
    if (!h || h.payloadType !== this.#payloadType) {
      this.#ignored++
      return
    }
    if (this.#packets === 0) {
      this.#firstAt = atMs
      this.#lastTs = h.timestamp
      this.#seqBase = h.sequence
      this.#lastExtSeq = h.sequence
      this.#extSeqMax = h.sequence
      this.#frames = 1
    } else {
      // Extended sequence: the nearest of the 16-bit value's candidates to the last one.
      const last = this.#lastExtSeq
      let ext = (last & ~0xffff) + h.sequence
      if (ext - last > 0x8000) ext -= 0x10000
      else if (last - ext > 0x8000) ext += 0x10000
      this.#lastExtSeq = ext
      if (ext > this.#extSeqMax) this.#extSeqMax = ext
      if (h.timestamp !== this.#lastTs) {
        const step = (h.timestamp - this.#lastTs) >>> 0
        // A step backwards (reordering) is not a new frame.
        if (step < 0x80000000) {
          this.#rtpSpan += step
          this.#frames++
          this.#lastTs = h.timestamp
        }
      }
    }
    this.#packets++
    this.#received++
    this.#bytes += h.payloadEnd - h.payloadStart
    this.#lastAt = atMs
    if (nalFlags(this.#codec, packet, h.payloadStart, h.payloadEnd) & KEYFRAME) {
      const frame = this.#frames - 1
      if (frame !== this.#lastKeyFrame) {
        if (this.#lastKeyFrame >= 0) {
          this.#intervals++
          this.#intervalFrames += frame - this.#lastKeyFrame
        }
        this.#lastKeyFrame = frame
        this.#keyframes++
      }
    }
  }

  get packets(): number {
    return this.#packets
  }

  get frames(): number {
    return this.#frames
  }

  summary(): StreamHealth {
    const expected = this.#packets === 0 ? 0 : this.#extSeqMax - this.#seqBase + 1
    const lost = Math.max(0, expected - this.#received)
    const out: StreamHealth = {
      packets: this.#packets, ignored: this.#ignored, frames: this.#packets === 0 ? 0 : this.#frames,
      lost, lossRatio: expected > 0 ? lost / expected : 0, keyframes: this.#keyframes, spanMs: this.#lastAt - this.#firstAt,
    }
    if (this.#frames >= 2 && this.#rtpSpan > 0) {
      const spanS = this.#rtpSpan / this.#clockRate
      const fps = (this.#frames - 1) / spanS
      out.fps = round(fps, 2)
      // The bytes are of `frames` frames; the span covers one frame fewer.
      out.bitrateKbps = round((this.#bytes * 8) / 1000 / (spanS * (this.#frames / (this.#frames - 1))), 1)
    }
    if (this.#intervals > 0) out.keyframeInterval = round(this.#intervalFrames / this.#intervals, 1)
    return out
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}
