// An H.264 clip as the camera simulator sends it: the Annex-B elementary
// stream ffmpeg writes, cut into frames, each frame cut into RTP payloads
// once (RFC 6184: a NAL unit that fits in one packet goes as it is, a
// larger one as FU-A fragments). Sending then costs a copy and a 12-byte
// header a packet, whatever the number of cameras playing the clip.

/** The NAL units of an Annex-B stream (start codes 00 00 01 or 00 00 00 01 removed). */
export function splitAnnexB(stream: Uint8Array): Buffer[] {
  const buf = Buffer.from(stream.buffer, stream.byteOffset, stream.byteLength)
  const starts: { at: number; len: number }[] = []
  for (let i = 0; i + 2 < buf.length; i++) {
    if (buf[i] === 0 && buf[i + 1] === 0 && buf[i + 2] === 1) {
      starts.push({ at: i, len: 3 })
      i += 2
    }
  }
  const out: Buffer[] = []
  for (let k = 0; k < starts.length; k++) {
    const s = starts[k] as { at: number; len: number }
    let end = k + 1 < starts.length ? (starts[k + 1] as { at: number }).at : buf.length
    // The zero before 00 00 01 of a four-byte start code belongs to it, not to this unit.
    while (end > s.at + s.len && buf[end - 1] === 0) end--
    if (end > s.at + s.len) out.push(buf.subarray(s.at + s.len, end))
  }
  return out
}

export interface H264Clip {
  /** Frames in order; each the RTP payloads of its NAL units. */
  frames: { payloads: Buffer[]; keyframe: boolean }[]
  sps: Buffer
  pps: Buffer
  /** Payload bytes over the whole clip, for the bitrate it was made at. */
  bytes: number
}

/** Largest RTP payload: a 1500-byte MTU less IP, TCP or UDP, RTP and interleaving headers, with room to spare. */
export const MAX_PAYLOAD = 1_400

/**
 * Cuts an Annex-B stream of single-slice pictures (x264 with one thread,
 * as clips.ts makes them) into frames: a frame ends with each picture's
 * slice (types 1 and 5); parameter sets and SEI go with the next picture.
 */
export function packetizeClip(stream: Uint8Array): H264Clip {
  let sps: Buffer | undefined
  let pps: Buffer | undefined
  const frames: H264Clip['frames'] = []
  let pending: Buffer[] = []
  let keyframe = false
  let bytes = 0
  for (const nal of splitAnnexB(stream)) {
    const type = (nal[0] as number) & 0x1f
    if (type === 7) sps = nal
    if (type === 8) pps = nal
    if (type === 9) continue // access unit delimiters carry nothing a receiver needs
    for (const p of payloadsOf(nal)) {
      pending.push(p)
      bytes += p.length
    }
    if (type === 5) keyframe = true
    if (type === 1 || type === 5) {
      frames.push({ payloads: pending, keyframe })
      pending = []
      keyframe = false
    }
  }
  if (!sps || !pps) throw new Error('the clip has no SPS or PPS: not an H.264 Annex-B stream')
  if (frames.length === 0) throw new Error('the clip has no pictures')
  return { frames, sps, pps, bytes }
}

/** One NAL unit as RTP payloads: itself, or FU-A fragments (RFC 6184 §5.8). */
export function payloadsOf(nal: Buffer, max = MAX_PAYLOAD): Buffer[] {
  if (nal.length <= max) return [nal]
  const header = nal[0] as number
  const indicator = (header & 0xe0) | 28
  const type = header & 0x1f
  const out: Buffer[] = []
  for (let off = 1; off < nal.length; off += max - 2) {
    const end = Math.min(nal.length, off + max - 2)
    const fu = Buffer.allocUnsafe(2 + end - off)
    fu[0] = indicator
    fu[1] = (off === 1 ? 0x80 : 0) | (end === nal.length ? 0x40 : 0) | type
    nal.copy(fu, 2, off, end)
    out.push(fu)
  }
  return out
}

/** RTP state of one stream: what changes packet to packet. */
export interface RtpState {
  ssrc: number
  sequence: number
  timestamp: number
}

/**
 * One frame as RTP packets for TCP interleaving ($, channel, length before
 * each, RFC 2326 §10.12) in one buffer, or as separate packets for UDP
 * (`interleaved` undefined). Advances `state.sequence`.
 */
export function framePackets(payloads: readonly Buffer[], payloadType: number, state: RtpState, interleaved: number | undefined): Buffer[] {
  const prefix = interleaved === undefined ? 0 : 4
  let total = 0
  for (const p of payloads) total += prefix + 12 + p.length
  const one = interleaved !== undefined ? Buffer.allocUnsafe(total) : undefined
  const out: Buffer[] = []
  let off = 0
  for (let i = 0; i < payloads.length; i++) {
    const p = payloads[i] as Buffer
    const b = one ?? Buffer.allocUnsafe(12 + p.length)
    let o = one ? off : 0
    if (interleaved !== undefined) {
      b[o] = 0x24
      b[o + 1] = interleaved
      b.writeUInt16BE(12 + p.length, o + 2)
      o += 4
    }
    b[o] = 0x80
    b[o + 1] = (i === payloads.length - 1 ? 0x80 : 0) | payloadType
    b.writeUInt16BE(state.sequence, o + 2)
    b.writeUInt32BE(state.timestamp >>> 0, o + 4)
    b.writeUInt32BE(state.ssrc >>> 0, o + 8)
    p.copy(b, o + 12)
    state.sequence = (state.sequence + 1) & 0xffff
    if (one) off = o + 12 + p.length
    else out.push(b)
  }
  return one ? [one] : out
}

/** profile-level-id for the SDP: the three bytes after the SPS's NAL header, in hex. */
export function profileLevelId(sps: Buffer): string {
  return sps.subarray(1, 4).toString('hex')
}
