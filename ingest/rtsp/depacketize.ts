// Keyframes out of RTP, for the picture checks: NAL units rebuilt from the
// packets (RFC 6184 for H.264: single units, STAP-A, FU-A; RFC 7798 for
// H.265: single units, AP, FU), gathered into access units by RTP
// timestamp, and the keyframes kept as Annex-B byte streams that a decoder
// reads on their own (the parameter sets from the SDP or the stream put in
// front). Only keyframes are kept: the checks decode nothing else, and a
// keyframe decodes without the frames before it.
//
// Bounded: at most `maxKeyframes` kept, each at most `maxFrameBytes`; a
// fragment lost on the way drops its unit (and with it that access unit
// as a keyframe), never splices a broken one together.
import type { VideoCodec } from './sdp.ts'
import { rtpHeader, type RtpHeader } from './stream-health.ts'

const START = Buffer.from([0, 0, 0, 1])

export interface DepacketizerLimits {
  maxKeyframes: number
  maxFrameBytes: number
}

export class KeyframeCollector {
  readonly #codec: VideoCodec
  readonly #payloadType: number
  readonly #limits: DepacketizerLimits
  /** Parameter sets by NAL type, latest kept (SDP first, in-band ones replace them). */
  readonly #params = new Map<number, Buffer>()
  readonly #keyframes: Buffer[] = []
  #units: Buffer[] = []
  #unitBytes = 0
  #timestamp = -1
  #keyframe = false
  #broken = false
  #fragment: Buffer[] | undefined
  #fragmentBytes = 0
  #lastSeq = -1
  #dropped = 0

  constructor(codec: VideoCodec, payloadType: number, parameterSets: readonly Buffer[], limits: Partial<DepacketizerLimits> = {}) {
    this.#codec = codec
    this.#payloadType = payloadType
    this.#limits = { maxKeyframes: 4, maxFrameBytes: 4 * 1024 * 1024, ...limits }
    for (const p of parameterSets) this.#param(p)
  }

  /** Keyframes kept so far, each an Annex-B stream with its parameter sets. */
  get keyframes(): readonly Buffer[] {
    return this.#keyframes
  }

  get full(): boolean {
    return this.#keyframes.length >= this.#limits.maxKeyframes
  }

  /** Keyframes seen but not kept: broken by a lost packet, or too large. */
  get dropped(): number {
    return this.#dropped
  }

  /**
   * One RTP packet; `h` its header, where the caller has read it already.
   * The collector keeps views into the packets of a keyframe until it joins
   * them (one copy, into the keyframe): give it packets it may keep, as the
   * RTSP client's are (each read into a buffer of its own).
   */
  add(packet: Uint8Array, h: RtpHeader | undefined = rtpHeader(packet)): void {
    if (this.full || this.#codec === 'other') return
    if (!h || h.payloadType !== this.#payloadType) return
    // A packet lost: whatever unit was being rebuilt is broken, and so is the
    // access unit it belonged to, this one or the one before.
    const lost = this.#lastSeq >= 0 && h.sequence !== ((this.#lastSeq + 1) & 0xffff)
    this.#lastSeq = h.sequence
    if (lost) {
      this.#fragment = undefined
      this.#broken = true
    }
    if (h.timestamp !== this.#timestamp) {
      this.#endAccessUnit()
      this.#timestamp = h.timestamp
      this.#broken = lost
    }
    const p = Buffer.from(packet.buffer, packet.byteOffset + h.payloadStart, h.payloadEnd - h.payloadStart)
    if (this.#codec === 'h264') this.#h264(p)
    else this.#h265(p)
    if (h.marker) this.#endAccessUnit()
  }

  #h264(p: Buffer): void {
    if (p.length === 0) return
    const type = (p[0] as number) & 0x1f
    if (type >= 1 && type <= 23) this.#unit(p, type)
    else if (type === 24) this.#aggregated(p, 1)
    else if (type === 28 && p.length >= 2) {
      const fu = p[1] as number
      this.#fragmentOf(p.subarray(2), fu & 0x80, fu & 0x40, () => Buffer.from([((p[0] as number) & 0xe0) | (fu & 0x1f)]), fu & 0x1f)
    }
  }

  #h265(p: Buffer): void {
    if (p.length < 2) return
    const type = ((p[0] as number) >> 1) & 0x3f
    if (type <= 47) this.#unit(p, type)
    else if (type === 48) this.#aggregated(p, 2)
    else if (type === 49 && p.length >= 3) {
      const fu = p[2] as number
      this.#fragmentOf(p.subarray(3), fu & 0x80, fu & 0x40, () => Buffer.from([((p[0] as number) & 0x81) | ((fu & 0x3f) << 1), p[1] as number]), fu & 0x3f)
    }
  }

  #aggregated(p: Buffer, headerBytes: number): void {
    for (let o = headerBytes; o + 2 < p.length;) {
      const size = p.readUInt16BE(o)
      if (size === 0 || o + 2 + size > p.length) return
      const nal = p.subarray(o + 2, o + 2 + size)
      this.#unit(nal, this.#codec === 'h264' ? (nal[0] as number) & 0x1f : ((nal[0] as number) >> 1) & 0x3f)
      o += 2 + size
    }
  }

  #fragmentOf(body: Buffer, start: number, end: number, header: () => Buffer, type: number): void {
    if (start) {
      this.#fragment = [header()]
      this.#fragmentBytes = 0
      // A keyframe from its first fragment on, so one broken later counts as dropped.
      if (this.#isKey(type)) this.#keyframe = true
    }
    if (!this.#fragment) return // the start was lost: skip to the next unit
    this.#fragment.push(body)
    this.#fragmentBytes += body.length
    if (this.#fragmentBytes > this.#limits.maxFrameBytes) {
      this.#fragment = undefined
      this.#broken = true
      return
    }
    if (end) {
      const nal = Buffer.concat(this.#fragment)
      this.#fragment = undefined
      this.#unit(nal, type)
    }
  }

  #unit(nal: Buffer, type: number): void {
    if (this.#isParam(type)) {
      this.#param(nal)
      return
    }
    if (this.#isKey(type)) this.#keyframe = true
    // Units of a frame that is not a keyframe are not kept: the checks never decode them.
    if (!this.#keyframe) return
    this.#unitBytes += nal.length
    if (this.#unitBytes > this.#limits.maxFrameBytes) this.#broken = true
    else this.#units.push(nal)
  }

  #isParam(type: number): boolean {
    return this.#codec === 'h264' ? type === 7 || type === 8 : type >= 32 && type <= 34
  }

  #isKey(type: number): boolean {
    return this.#codec === 'h264' ? type === 5 : type >= 16 && type <= 21
  }

  #param(nal: Buffer): void {
    if (nal.length === 0) return
    const type = this.#codec === 'h264' ? (nal[0] as number) & 0x1f : ((nal[0] as number) >> 1) & 0x3f
    if (this.#isParam(type)) this.#params.set(type, Buffer.from(nal))
  }

  #endAccessUnit(): void {
    if (this.#keyframe) {
      const needed = this.#codec === 'h264' ? [7, 8] : [32, 33, 34]
      if (this.#broken || this.#units.length === 0 || !needed.every((t) => this.#params.has(t))) this.#dropped++
      else if (!this.full) {
        const parts: Buffer[] = []
        for (const t of needed) parts.push(START, this.#params.get(t) as Buffer)
        for (const u of this.#units) parts.push(START, u)
        this.#keyframes.push(Buffer.concat(parts))
      }
    }
    this.#units = []
    this.#unitBytes = 0
    this.#keyframe = false
    this.#broken = false
  }
}
