// The RTSP client's pure parts: the reader that frames responses and
// interleaved RTP out of a TCP stream, Basic and Digest, the SDP and the
// SPS, and stream health from RTP packets (made by the camera simulator's
// packetizer, so both ends are checked against each other).
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { authorization, digestResponse, parseDigestAuthorization, pickChallenge, UnsupportedAuthError } from '../../../ingest/rtsp/auth.ts'
import { encodeRequest, header, RtspProtocolError, RtspReader, type RtspIncoming } from '../../../ingest/rtsp/messages.ts'
import { parseSdp, rbsp, resolveControl, SdpError, spsSize } from '../../../ingest/rtsp/sdp.ts'
import { nalInfo, rtpHeader, StreamHealthMeter } from '../../../ingest/rtsp/stream-health.ts'
import { framePackets, packetizeClip, payloadsOf, splitAnnexB, type RtpState } from '../../../simulators/cameras/h264.ts'

const OK = Buffer.from('RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n')
const interleaved = (channel: number, payload: Buffer): Buffer => Buffer.concat([Buffer.from([0x24, channel, payload.length >> 8, payload.length & 0xff]), payload])

function summary(m: RtspIncoming): unknown {
  if (m.kind === 'interleaved') return { kind: m.kind, channel: m.channel, payload: m.payload.toString('hex') }
  if (m.kind === 'response') return { kind: m.kind, status: m.status, cseq: header(m.headers, 'cseq'), body: m.body.toString() }
  return { kind: m.kind, method: m.method, url: m.url }
}

describe('RtspReader', () => {
  it('reads responses, server requests and interleaved packets however the stream is cut', () => {
    const stream = Buffer.concat([
      OK, interleaved(0, Buffer.alloc(300, 7)), interleaved(1, Buffer.from([1, 2, 3])),
      Buffer.from('GET_PARAMETER rtsp://cam/live RTSP/1.0\r\nCSeq: 9\r\n\r\n'), interleaved(0, Buffer.alloc(0)),
      Buffer.from('RTSP/1.0 401 Unauthorized\r\nCSeq: 3\r\nWWW-Authenticate: Digest realm="r", nonce="n"\r\nWWW-Authenticate: Basic realm="r"\r\n\r\n'),
    ])
    const whole = new RtspReader().push(stream).map(summary)
    expect(whole.map((m) => (m as { kind: string }).kind)).toEqual(['response', 'interleaved', 'interleaved', 'request', 'interleaved', 'response'])
    fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 40 }), (cuts) => {
      const at = [...new Set(cuts)].sort((a, b) => a - b)
      const reader = new RtspReader()
      const got: unknown[] = []
      let from = 0
      for (const c of [...at, stream.length]) {
        got.push(...reader.push(stream.subarray(from, c)).map(summary))
        from = c
      }
      expect(got).toEqual(whole)
      expect(reader.pending).toBe(0)
    }))
  })

  it('keeps every WWW-Authenticate a camera offers', () => {
    const [r] = new RtspReader().push(Buffer.from('RTSP/1.0 401 Unauthorized\r\nCSeq: 3\r\nWWW-Authenticate: Digest realm="r", nonce="n"\r\nwww-authenticate: Basic realm="r"\r\n\r\n'))
    expect(r?.kind === 'response' && r.headers.get('www-authenticate')).toEqual(['Digest realm="r", nonce="n"', 'Basic realm="r"'])
  })

  it('refuses what is not RTSP, and headers or bodies past their limits', () => {
    expect(() => new RtspReader().push(Buffer.from('HTTP/1.1 200 OK\r\n\r\n'))).toThrow(RtspProtocolError)
    expect(() => new RtspReader({ maxHeaderBytes: 64 }).push(Buffer.alloc(100, 0x41))).toThrow(/no end of headers within 64 bytes/)
    expect(() => new RtspReader({ maxBodyBytes: 10 }).push(Buffer.from('RTSP/1.0 200 OK\r\nContent-Length: 11\r\n\r\n'))).toThrow(/11 bytes is more than the 10/)
    expect(() => new RtspReader().push(Buffer.from('RTSP/1.0 200 OK\r\nContent-Length: -1\r\n\r\n'))).toThrow(/bad Content-Length/)
  })

  it('encodes a request with its headers and body length', () => {
    expect(encodeRequest('SETUP', 'rtsp://c/live/trackID=0', { CSeq: '3', Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' }).toString())
      .toBe('SETUP rtsp://c/live/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n')
    expect(encodeRequest('SET_PARAMETER', 'rtsp://c', { CSeq: '4' }, Buffer.from('a: b\r\n')).toString()).toContain('Content-Length: 6\r\n\r\na: b\r\n')
  })
})

describe('camera credentials', () => {
  it('computes the Digest response of RFC 2617 §3.5', () => {
    expect(digestResponse({ algorithm: 'MD5', username: 'Mufasa', password: 'Circle Of Life', realm: 'testrealm@host.com', nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093', method: 'GET', uri: '/dir/index.html', qop: { nc: '00000001', cnonce: '0a4f113b' } }))
      .toBe('6629fae49393a05397450978507c4ef1')
  })

  it('prefers Digest to Basic and answers each', () => {
    const digest = pickChallenge(['Basic realm="cam"', 'Digest realm="cam", nonce="abc", qop="auth,auth-int", opaque="op"'])
    expect(digest).toMatchObject({ scheme: 'digest', realm: 'cam', nonce: 'abc', opaque: 'op', qopAuth: true, algorithm: 'MD5' })
    const value = authorization(digest, { username: 'admin', password: 'p"w' }, 'DESCRIBE', 'rtsp://c/live', 1, 'cn')
    const fields = parseDigestAuthorization(value)
    expect(fields?.get('nc')).toBe('00000001')
    expect(fields?.get('response')).toBe(digestResponse({ algorithm: 'MD5', username: 'admin', password: 'p"w', realm: 'cam', nonce: 'abc', method: 'DESCRIBE', uri: 'rtsp://c/live', qop: { nc: '00000001', cnonce: 'cn' } }))
    expect(authorization(pickChallenge(['Basic realm="cam"']), { username: 'admin', password: '12345' }, 'DESCRIBE', 'rtsp://c', 1, 'x')).toBe('Basic YWRtaW46MTIzNDU=')
    const sha = pickChallenge(['Digest realm="r", nonce="n", algorithm=SHA-256'])
    expect(authorization(sha, { username: 'u', password: 'p' }, 'PLAY', 'rtsp://c', 1, 'x')).toMatch(/algorithm=SHA-256/)
  })

  it('says why a challenge cannot be answered', () => {
    expect(() => pickChallenge([])).toThrow(/without a WWW-Authenticate header/)
    expect(() => pickChallenge(['Digest realm="r", nonce="n", algorithm=MD5-sess', 'NTLM'])).toThrow(UnsupportedAuthError)
    expect(() => pickChallenge(['Digest realm="r", nonce="n", qop="auth-int"'])).toThrow(/qop auth-int/)
  })
})

// An SPS of 640x360 (x264, baseline): 23 macroblock rows less 8 lines of cropping.
const SPS_640x360 = Buffer.from('6742c01eda0280bfe5c044000003000400000300c83c58ba80', 'hex')

describe('what DESCRIBE says', () => {
  it('reads the picture size from the SPS, cropping included', () => {
    expect(spsSize(SPS_640x360)).toEqual({ width: 640, height: 360 })
    expect(spsSize(Buffer.from([0x68, 1, 2]))).toBeUndefined()
    expect(spsSize(SPS_640x360.subarray(0, 6))).toBeUndefined()
    expect([...rbsp(Buffer.from([1, 0, 0, 3, 1, 0, 0, 3]))]).toEqual([1, 0, 0, 1, 0, 0])
  })

  it('parses a camera SDP: codec, control URL, size and rate', () => {
    const sdp = [
      'v=0', 'o=- 1 1 IN IP4 10.0.0.5', 's=Media Presentation', 't=0 0', 'a=control:*',
      'm=audio 0 RTP/AVP 0', 'a=control:trackID=2',
      'm=video 0 RTP/AVP 96', 'a=rtpmap:96 H264/90000', `a=fmtp:96 packetization-mode=1;profile-level-id=42c01e;sprop-parameter-sets=${SPS_640x360.toString('base64')},aM48gA==`,
      'a=framerate:12.5', 'a=control:trackID=1', '',
    ].join('\r\n')
    const s = parseSdp(sdp, 'rtsp://10.0.0.5/Streaming/Channels/101/')
    expect(s.others).toEqual(['audio'])
    expect(s.sessionUrl).toBe('rtsp://10.0.0.5/Streaming/Channels/101/')
    expect(s.video).toMatchObject({ codec: 'h264', payloadType: 96, clockRate: 90000, controlUrl: 'rtsp://10.0.0.5/Streaming/Channels/101/trackID=1', width: 640, height: 360, fps: 12.5 })
    expect(s.video?.parameterSets).toHaveLength(2)
    const stated = parseSdp(['v=0', 's=x', 'm=video 0 RTP/AVP 98', 'a=rtpmap:98 H265/90000', 'a=framesize:98 2560-1440', 'a=control:rtsp://cam/track1', ''].join('\n'), 'rtsp://cam')
    expect(stated.video).toMatchObject({ codec: 'h265', width: 2560, height: 1440, controlUrl: 'rtsp://cam/track1' })
    expect(resolveControl('rtsp://cam/live', 'track1')).toBe('rtsp://cam/live/track1')
  })

  it('refuses what is not a session description', () => {
    expect(() => parseSdp('<html>login</html>', 'rtsp://cam')).toThrow(SdpError)
    expect(() => parseSdp('v=0\r\nm=video 0 RTP/AVP 97\r\n', 'rtsp://cam')).toThrow(/no rtpmap for the video payload type 97/)
    expect(parseSdp('v=0\r\nm=audio 0 RTP/AVP 0\r\n', 'rtsp://cam').video).toBeUndefined()
  })
})

/** An Annex-B stream of `frames` pictures, a keyframe every `gop`, each with sizes that need FU-A now and then. */
function annexB(frames: number, gop: number): Buffer {
  const parts: Buffer[] = []
  const start = Buffer.from([0, 0, 0, 1])
  for (let i = 0; i < frames; i++) {
    if (i % gop === 0) parts.push(start, SPS_640x360, start, Buffer.from([0x68, 0xce, 0x3c, 0x80]), start, Buffer.concat([Buffer.from([0x65]), Buffer.alloc(3_000 + i, 0x11)]))
    else parts.push(start, Buffer.concat([Buffer.from([0x41]), Buffer.alloc(200 + (i % 7) * 300, 0x22)]))
  }
  return Buffer.concat(parts)
}

function play(frames: number, gop: number, fps: number, opts: { drop?: (seq: number) => boolean; firstSequence?: number } = {}): StreamHealthMeter {
  const clip = packetizeClip(annexB(frames, gop))
  const meter = new StreamHealthMeter('h264', 90_000, 96)
  const state: RtpState = { ssrc: 42, sequence: opts.firstSequence ?? 100, timestamp: 0xffff_0000 }
  let n = 0
  for (const f of clip.frames) {
    for (const p of framePackets(f.payloads, 96, state, undefined)) {
      const seq = p.readUInt16BE(2)
      if (!opts.drop?.(seq)) meter.add(p, n)
    }
    state.timestamp = (state.timestamp + 90_000 / fps) >>> 0
    n += 1000 / fps
  }
  return meter
}

describe('stream health from RTP', () => {
  it('cuts an Annex-B stream into frames and FU-A fragments that rebuild each unit', () => {
    const clip = packetizeClip(annexB(10, 5))
    expect(clip.frames).toHaveLength(10)
    expect(clip.frames.map((f) => f.keyframe)).toEqual([true, false, false, false, false, true, false, false, false, false])
    const nal = Buffer.concat([Buffer.from([0x65]), Buffer.alloc(3_000, 9)])
    const fus = payloadsOf(nal)
    expect(fus.length).toBe(3)
    expect(Buffer.concat([Buffer.from([(fus[0]![0]! & 0xe0) | (fus[0]![1]! & 0x1f)]), ...fus.map((f) => f.subarray(2))])).toEqual(nal)
    expect(splitAnnexB(Buffer.from([0, 0, 1, 0x41, 5, 0, 0, 0, 1, 0x68, 7]))).toEqual([Buffer.from([0x41, 5]), Buffer.from([0x68, 7])])
  })

  it('measures frame rate, bitrate and keyframe interval, across a timestamp wrap', () => {
    const h = play(100, 25, 25).summary()
    expect(h).toMatchObject({ frames: 100, fps: 25, lost: 0, keyframes: 4, keyframeInterval: 25 })
    expect(h.bitrateKbps).toBeGreaterThan(100)
    expect(play(40, 10, 12.5).summary()).toMatchObject({ fps: 12.5, keyframeInterval: 10 })
  })

  it('counts packets missing from the sequence, across its wrap', () => {
    const h = play(60, 30, 25, { firstSequence: 65_500, drop: (s) => s === 65_534 || s === 3 || s === 4 }).summary()
    expect(h.lost).toBe(3)
    expect(h.lossRatio).toBeCloseTo(3 / (h.packets + 3), 6)
  })

  it('reads keyframes from single units, STAP-A and FU-A, and from H.265 units', () => {
    const rtp = (payload: number[]): Buffer => Buffer.concat([Buffer.from([0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]), Buffer.from(payload)])
    const info = (codec: 'h264' | 'h265', payload: number[]): unknown => {
      const p = rtp(payload)
      const h = rtpHeader(p)!
      return nalInfo(codec, p, h.payloadStart, h.payloadEnd)
    }
    expect(info('h264', [0x65, 1])).toEqual({ keyframe: true, parameterSets: false })
    expect(info('h264', [0x41, 1])).toEqual({ keyframe: false, parameterSets: false })
    expect(info('h264', [0x78, 0, 2, 0x67, 1, 0, 2, 0x65, 2])).toEqual({ keyframe: true, parameterSets: true })
    expect(info('h264', [0x7c, 0x85, 1])).toEqual({ keyframe: true, parameterSets: false })
    expect(info('h264', [0x7c, 0x05, 1])).toEqual({ keyframe: false, parameterSets: false })
    expect(info('h265', [19 << 1, 1, 0])).toEqual({ keyframe: true, parameterSets: false })
    expect(info('h265', [49 << 1, 1, 0x80 | 20, 0])).toEqual({ keyframe: true, parameterSets: false })
    expect(info('h265', [48 << 1, 1, 0, 3, 33 << 1, 1, 0])).toEqual({ keyframe: false, parameterSets: true })
    expect(rtpHeader(Buffer.from([0x40, 96, 0, 1]))).toBeUndefined()
    const meter = new StreamHealthMeter('h264', 90_000, 96)
    meter.add(Buffer.from([0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0x65]), 0)
    expect(meter.summary()).toMatchObject({ packets: 0, ignored: 1, frames: 0 })
  })
})
