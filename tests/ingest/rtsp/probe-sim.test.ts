// The probe against the camera simulator, with clips rendered by the real
// ffmpeg: each failure class, Basic and Digest, TCP interleaved and the UDP
// fallback, a degraded frame rate, and an RTSP stream cut into reads of a
// few bytes on its way.
import { connect, createServer, type Server, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { probeCamera } from '../../../ingest/rtsp/probe.ts'
import { loadClips, type LoadedClip, type ClipName } from '../../../simulators/cameras/clips.ts'
import { CameraSimulator, type SimCamera } from '../../../simulators/cameras/server.ts'

const CAMERAS: Record<string, SimCamera> = {
  C000001: { clip: 'street' },
  C000002: { clip: 'street', fps: 5 },
  C000003: { clip: 'street', auth: { scheme: 'digest', username: 'admin', password: 'Circle Of Life' } },
  C000004: { clip: 'street', auth: { scheme: 'basic', username: 'admin', password: '12345' } },
  C000005: { clip: 'street', fault: 'not_found' },
  C000006: { clip: 'street', fault: 'no_media' },
  C000007: { clip: 'street', fault: 'silent' },
  C000008: { clip: 'street', fault: 'offline' },
  C000009: { clip: 'black' },
}

let clips: Map<ClipName, LoadedClip>
let sim: CameraSimulator
let udpOnly: CameraSimulator
const stop: { close(): Promise<void> }[] = []

beforeAll(async () => {
  clips = await loadClips(['street', 'black'])
  sim = new CameraSimulator({ host: '127.0.0.1', port: 0, clips, camera: (id) => CAMERAS[id] })
  udpOnly = new CameraSimulator({ host: '127.0.0.1', port: 0, clips, camera: (id) => CAMERAS[id], transports: ['udp'] })
  await sim.start()
  await udpOnly.start()
})

afterAll(async () => {
  for (const s of stop) await s.close()
  await sim.stop(Date.now() + 1_000)
  await udpOnly.stop(Date.now() + 1_000)
})

const url = (id: string, s = sim): string => `rtsp://127.0.0.1:${s.port}/live/${id}`

describe('probing the camera simulator', () => {
  it('reads a healthy camera: codec, size, rate, and its stream over TCP', async () => {
    // Three seconds hold two keyframes (one every 2 s) with a second to spare.
    const r = await probeCamera(url('C000001'), { windowMs: 3_000 })
    expect(r).toMatchObject({ ok: true, step: 'window', transport: 'tcp', video: { codec: 'h264', width: 640, height: 360, fps: 25 } })
    expect(r.health).toMatchObject({ fps: 25, lost: 0, keyframeInterval: 50 })
    expect(r.health?.frames).toBeGreaterThanOrEqual(50)
    expect(r.health?.bitrateKbps).toBeGreaterThan(300)
    expect(r.health?.bitrateKbps).toBeLessThan(2_000)
  })

  it('reads reachability alone without SETUP when no window is asked for', async () => {
    const before = sim.stats().framesSent as number
    const r = await probeCamera(url('C000009'))
    expect(r).toMatchObject({ ok: true, step: 'describe', video: { codec: 'h264', width: 640, height: 360 } })
    expect(r.health).toBeUndefined()
    expect(r.describeMs).toBeGreaterThan(0)
    expect(sim.stats().framesSent).toBe(before)
  })

  it('sees a degraded camera send 5 frames a second of its 25', async () => {
    const r = await probeCamera(url('C000002'), { windowMs: 2_000 })
    expect(r.ok).toBe(true)
    expect(r.health?.fps).toBe(5)
    expect(r.video?.fps).toBe(25)
  })

  it('falls back to UDP where the camera will not interleave', async () => {
    const r = await probeCamera(url('C000001', udpOnly), { windowMs: 1_500 })
    expect(r).toMatchObject({ ok: true, transport: 'udp' })
    expect(r.health?.fps).toBe(25)
    expect(r.health?.frames).toBeGreaterThan(20)
  })

  it('answers Digest and Basic, and says unauthorized without or with wrong credentials', async () => {
    const digest = await probeCamera(url('C000003').replace('rtsp://', 'rtsp://admin:Circle%20Of%20Life@'), { windowMs: 500 })
    expect(digest).toMatchObject({ ok: true, url: url('C000003') })
    expect(digest.health?.packets).toBeGreaterThan(0)
    expect(await probeCamera(url('C000004'), { windowMs: 500, credentials: { username: 'admin', password: '12345' } })).toMatchObject({ ok: true })
    expect(await probeCamera(url('C000003'))).toMatchObject({ ok: false, step: 'describe', failure: { class: 'unauthorized', status: 401 } })
    const wrong = await probeCamera(url('C000004'), { credentials: { username: 'admin', password: 'nope' } })
    expect(wrong).toMatchObject({ ok: false, failure: { class: 'unauthorized', message: expect.stringMatching(/refused the credentials/) as unknown } })
    expect(await probeCamera(url('C000003'), { credentials: { username: 'admin', password: 'nope' } })).toMatchObject({ ok: false, failure: { class: 'unauthorized' } })
  })

  it('sorts each failure into its class', async () => {
    expect(await probeCamera(url('C000005'))).toMatchObject({ ok: false, step: 'describe', failure: { class: 'not_found', status: 404 } })
    expect(await probeCamera(url('NOSUCH'))).toMatchObject({ ok: false, failure: { class: 'not_found' } })
    expect(await probeCamera(url('C000006'), { windowMs: 300, timeoutMs: 800 })).toMatchObject({ ok: false, step: 'window', failure: { class: 'no_media' } })
    expect(await probeCamera(url('C000007'), { timeoutMs: 400 })).toMatchObject({ ok: false, step: 'options', failure: { class: 'timeout' } })
    expect(await probeCamera(url('C000008'))).toMatchObject({ ok: false, step: 'options', failure: { class: 'reset' } })
    const closed = createServer()
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()))
    const port = (closed.address() as { port: number }).port
    await new Promise<void>((r) => closed.close(() => r()))
    expect(await probeCamera(`rtsp://127.0.0.1:${port}/live/C000001`)).toMatchObject({ ok: false, step: 'connect', failure: { class: 'refused' } })
    expect(await probeCamera('http://127.0.0.1/live')).toMatchObject({ ok: false, failure: { class: 'protocol', message: expect.stringMatching(/give an rtsp:\/\/ or rtsps:\/\/ URL/) as unknown } })
  })

  it('says bad SDP for a camera that answers DESCRIBE with a web page, and protocol for one that does not speak RTSP', async () => {
    const peer = await fakeCamera((req, socket) => {
      const cseq = /CSeq: (\d+)/.exec(req)?.[1] ?? '0'
      if (req.startsWith('OPTIONS')) return socket.write(`RTSP/1.0 200 OK\r\nCSeq: ${cseq}\r\n\r\n`)
      const body = '<html>login</html>'
      socket.write(`RTSP/1.0 200 OK\r\nCSeq: ${cseq}\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
    })
    expect(await probeCamera(`rtsp://127.0.0.1:${peer}/x`)).toMatchObject({ ok: false, step: 'describe', failure: { class: 'bad_sdp', message: expect.stringMatching(/not a session description/) as unknown } })
    const web = await fakeCamera((_req, socket) => socket.write('HTTP/1.1 400 Bad Request\r\n\r\n'))
    expect(await probeCamera(`rtsp://127.0.0.1:${web}/x`)).toMatchObject({ ok: false, step: 'options', failure: { class: 'protocol', message: expect.stringMatching(/not RTSP/) as unknown } })
  })

  it('reads the stream whole when the network cuts it into reads of a few bytes', async () => {
    const port = await chopper(sim.port)
    const r = await probeCamera(`rtsp://127.0.0.1:${port}/live/C000001`, { windowMs: 1_500 })
    expect(r).toMatchObject({ ok: true, transport: 'tcp' })
    expect(r.health).toMatchObject({ fps: 25, lost: 0 })
    expect(r.health?.frames).toBeGreaterThan(20)
  })

  it('takes a camera switched to another fault while it runs', async () => {
    sim.set('C000010', { clip: 'street', fault: 'not_found' })
    expect(await probeCamera(url('C000010'))).toMatchObject({ failure: { class: 'not_found' } })
    sim.set('C000010', { clip: 'black' })
    expect(await probeCamera(url('C000010'))).toMatchObject({ ok: true })
  })
})

/** A peer that answers each request with `answer`: the camera that is not quite one. */
async function fakeCamera(answer: (request: string, socket: Socket) => void): Promise<number> {
  const server = createServer((socket) => {
    socket.on('error', () => undefined)
    let text = ''
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1')
      let end
      while ((end = text.indexOf('\r\n\r\n')) >= 0) {
        answer(text.slice(0, end), socket)
        text = text.slice(end + 4)
      }
    })
  })
  return listen(server)
}

/** A proxy that passes what the server sends in pieces of 1 to 7 bytes, each its own write. */
async function chopper(target: number): Promise<number> {
  const server = createServer((client) => {
    const up = connect(target, '127.0.0.1')
    up.setNoDelay(true)
    client.setNoDelay(true)
    client.on('error', () => up.destroy())
    up.on('error', () => client.destroy())
    client.on('data', (d: Buffer) => up.write(d))
    up.on('data', (d: Buffer) => {
      for (let off = 0; off < d.length;) {
        const n = 1 + ((off * 7919) % 7)
        client.write(d.subarray(off, off + n))
        off += n
      }
    })
    client.on('close', () => up.destroy())
    up.on('close', () => client.destroy())
  })
  return listen(server)
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  stop.push({ close: () => new Promise<void>((r) => server.close(() => r())) })
  return (server.address() as { port: number }).port
}
