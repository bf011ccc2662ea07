// What a camera's DESCRIBE says about its video: codec, clock rate, the
// control URL to SETUP, and where stated, resolution and frame rate. Parsed
// with sdp-transform; the resolution comes from `a=framesize` or
// `a=x-dimensions` where a camera states it, else from the H.264 sequence
// parameter set in `sprop-parameter-sets` (most cameras send only that).
import { parse, parseParams } from 'sdp-transform'

export type VideoCodec = 'h264' | 'h265' | 'other'

export interface VideoTrack {
  codec: VideoCodec
  /** The encoding name as the camera gave it (H264, H265, MP4V-ES, JPEG...). */
  encoding: string
  payloadType: number
  clockRate: number
  /** Absolute URL to SETUP. */
  controlUrl: string
  width?: number
  height?: number
  fps?: number
  /** Parameter sets from the SDP (H.264 SPS and PPS; H.265 VPS, SPS, PPS), Annex-B ready. */
  parameterSets: Buffer[]
}

export interface SdpSummary {
  /** The aggregate control URL, for PLAY and TEARDOWN of the whole session. */
  sessionUrl: string
  video?: VideoTrack
  /** Media other than video (audio, metadata), by type. */
  others: string[]
}

/** An SDP that cannot be read as a session description. */
export class SdpError extends Error {
  override name = 'SdpError'
}

/** Resolves a control attribute against the session's base (Content-Base, else the request URL), RFC 2326 C.1.1. */
export function resolveControl(base: string, control: string | undefined): string {
  if (!control || control === '*') return base
  if (/^rtsps?:\/\//i.test(control)) return control
  return base.endsWith('/') ? base + control : `${base}/${control}`
}

export function parseSdp(text: string, baseUrl: string): SdpSummary {
  if (!/^v=0\s*$/m.test(text)) throw new SdpError('no v=0 line: not a session description')
  let session: ReturnType<typeof parse>
  try {
    session = parse(text)
  } catch (e) {
    throw new SdpError(`the session description could not be parsed: ${(e as Error).message}`)
  }
  const media = session.media ?? []
  const others: string[] = []
  let video: VideoTrack | undefined
  const sessionBase = resolveControl(baseUrl, session.control)
  for (const m of media) {
    if (m.type !== 'video' || video) {
      others.push(m.type)
      continue
    }
    const payloadType = Number(String(m.payloads ?? '').split(' ')[0])
    if (!Number.isInteger(payloadType)) throw new SdpError(`the video media line has no payload type: ${JSON.stringify(m.payloads)}`)
    const rtp = (m.rtp ?? []).find((r) => r.payload === payloadType)
    // Static payload types need no rtpmap (RFC 3551): 26 is JPEG, 32 MPEG video.
    const encoding = rtp?.codec ?? (payloadType === 26 ? 'JPEG' : payloadType === 32 ? 'MPV' : '')
    if (!encoding) throw new SdpError(`no rtpmap for the video payload type ${payloadType}`)
    const upper = encoding.toUpperCase()
    const codec: VideoCodec = upper === 'H264' ? 'h264' : upper === 'H265' || upper === 'HEVC' ? 'h265' : 'other'
    const fmtp = (m.fmtp ?? []).find((f) => f.payload === payloadType)
    const fp = fmtp ? parseParams(fmtp.config) : {}
    const parameterSets = parameterSetsOf(codec, fp)
    const track: VideoTrack = { codec, encoding, payloadType, clockRate: rtp?.rate ?? 90_000, controlUrl: resolveControl(sessionBase, m.control), parameterSets }
    const size = stated(m.invalid ?? []) ?? (codec === 'h264' && parameterSets[0] ? spsSize(parameterSets[0]) : undefined)
    if (size) {
      track.width = size.width
      track.height = size.height
    }
    const fps = m.framerate !== undefined ? Number(m.framerate) : undefined
    if (fps !== undefined && Number.isFinite(fps) && fps > 0) track.fps = fps
    video = track
  }
  return { sessionUrl: sessionBase, ...(video ? { video } : {}), others }
}

function parameterSetsOf(codec: VideoCodec, fp: Readonly<Record<string, string | number | undefined>>): Buffer[] {
  const keys = codec === 'h264' ? ['sprop-parameter-sets'] : codec === 'h265' ? ['sprop-vps', 'sprop-sps', 'sprop-pps'] : []
  const out: Buffer[] = []
  for (const k of keys) {
    const v = fp[k]
    if (v === undefined) continue
    for (const b64 of String(v).split(',')) if (b64.trim()) out.push(Buffer.from(b64.trim(), 'base64'))
  }
  return out
}

/** a=framesize:96 1920-1080, a=x-dimensions:1920,1080. */
function stated(invalid: readonly { value: string }[]): { width: number; height: number } | undefined {
  for (const { value } of invalid) {
    const m = /^(?:framesize:\d+ (\d+)-(\d+)|x-dimensions:\s*(\d+),\s*(\d+))/.exec(value)
    if (m) return { width: Number(m[1] ?? m[3]), height: Number(m[2] ?? m[4]) }
  }
  return undefined
}

/** Reads exp-Golomb codes from an RBSP (emulation-prevention bytes removed). */
class BitReader {
  #pos = 0
  constructor(readonly bytes: Uint8Array) {}
  bit(): number {
    const byte = this.bytes[this.#pos >> 3]
    if (byte === undefined) throw new SdpError('the sequence parameter set ends early')
    const b = (byte >> (7 - (this.#pos & 7))) & 1
    this.#pos++
    return b
  }
  bits(n: number): number {
    let v = 0
    for (let i = 0; i < n; i++) v = v * 2 + this.bit()
    return v
  }
  ue(): number {
    let zeros = 0
    while (this.bit() === 0) if (++zeros > 31) throw new SdpError('a bad exp-Golomb code in the sequence parameter set')
    return 2 ** zeros - 1 + this.bits(zeros)
  }
  se(): number {
    const k = this.ue()
    return k % 2 === 1 ? (k + 1) / 2 : -(k / 2)
  }
}

/** The NAL unit's payload without its emulation-prevention bytes (00 00 03 → 00 00). */
export function rbsp(nal: Uint8Array): Uint8Array {
  const out = new Uint8Array(nal.length)
  let n = 0
  let zeros = 0
  for (const b of nal) {
    if (zeros >= 2 && b === 3) {
      zeros = 0
      continue
    }
    zeros = b === 0 ? zeros + 1 : 0
    out[n++] = b
  }
  return out.subarray(0, n)
}

function skipScalingList(r: BitReader, size: number): void {
  let last = 8
  let next = 8
  for (let j = 0; j < size; j++) {
    if (next !== 0) next = (last + r.se() + 256) % 256
    last = next === 0 ? last : next
  }
}

/**
 * The picture size an H.264 sequence parameter set describes (ITU-T H.264
 * §7.3.2.1.1), after cropping; undefined when it cannot be read (the probe
 * then reports the size as unknown rather than fail the camera).
 */
export function spsSize(sps: Uint8Array): { width: number; height: number } | undefined {
  try {
    if (((sps[0] ?? 0) & 0x1f) !== 7) return undefined
    const r = new BitReader(rbsp(sps.subarray(1)))
    const profile = r.bits(8)
    r.bits(16) // constraint flags, level
    r.ue() // seq_parameter_set_id
    let chromaFormat = 1
    if ([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].includes(profile)) {
      chromaFormat = r.ue()
      if (chromaFormat === 3) r.bit() // separate_colour_plane_flag
      r.ue() // bit_depth_luma_minus8
      r.ue() // bit_depth_chroma_minus8
      r.bit() // qpprime_y_zero_transform_bypass_flag
      if (r.bit()) for (let i = 0; i < (chromaFormat !== 3 ? 8 : 12); i++) if (r.bit()) skipScalingList(r, i < 6 ? 16 : 64)
    }
    r.ue() // log2_max_frame_num_minus4
    const pocType = r.ue()
    if (pocType === 0) r.ue()
    else if (pocType === 1) {
      r.bit()
      r.se()
      r.se()
      const cycle = r.ue()
      for (let i = 0; i < cycle; i++) r.se()
    }
    r.ue() // max_num_ref_frames
    r.bit() // gaps_in_frame_num_value_allowed_flag
    const widthMbs = r.ue() + 1
    const heightMapUnits = r.ue() + 1
    const frameMbsOnly = r.bit()
    if (!frameMbsOnly) r.bit() // mb_adaptive_frame_field_flag
    r.bit() // direct_8x8_inference_flag
    let crop = { left: 0, right: 0, top: 0, bottom: 0 }
    if (r.bit()) crop = { left: r.ue(), right: r.ue(), top: r.ue(), bottom: r.ue() }
    const cropX = chromaFormat === 0 || chromaFormat === 3 ? 1 : 2
    const cropY = (chromaFormat === 1 ? 2 : 1) * (2 - frameMbsOnly)
    const width = widthMbs * 16 - cropX * (crop.left + crop.right)
    const height = (2 - frameMbsOnly) * heightMapUnits * 16 - cropY * (crop.top + crop.bottom)
    return width > 0 && height > 0 ? { width, height } : undefined
  } catch {
    // A truncated or exotic SPS: the size stays unknown; the probe does not fail the camera for it.
    return undefined
  }
}
