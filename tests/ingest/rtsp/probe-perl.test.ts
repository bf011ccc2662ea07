// The probe against a second third-party RTSP server: Debian's
// rtsp-server-perl, a relay that serves RTP over UDP only (it answers a TCP
// SETUP with 400, not RFC 2326's 461), fed by the real ffmpeg publishing the
// simulator's street clip. Without the package the test fails saying what
// to install.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { ffmpegPath } from '../../../ingest/rtsp/ffmpeg.ts'
import { probeCamera } from '../../../ingest/rtsp/probe.ts'
import { clipFile } from '../../../simulators/cameras/clips.ts'

const children: ChildProcess[] = []
afterAll(() => {
  for (const c of children) c.kill('SIGKILL')
})

async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))
  const port = (s.address() as { port: number }).port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

async function eventually<T>(what: string, f: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await f()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`${what} not within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

describe('probing rtsp-server-perl (UDP only)', () => {
  it('falls back to UDP on its 400 and reads the stream ffmpeg publishes through it', async () => {
    if (spawnSync('rtsp-server-perl', ['--help']).error) throw new Error('rtsp-server-perl is not installed: apt-get install rtsp-server-perl')
    const [clientPort, sourcePort] = [await freePort(), await freePort()]
    const rtpStart = 30_000 + 2 * Math.floor(Math.random() * 10_000)
    const server = spawn('rtsp-server-perl', ['--clientport', String(clientPort), '--serverport', String(sourcePort), '--client_listen_address', '127.0.0.1', '--source_listen_address', '127.0.0.1', '--rtp_start_port', String(rtpStart)], { stdio: 'ignore' })
    children.push(server)
    await eventually('rtsp-server-perl listening', async () => ((await probeCamera(`rtsp://127.0.0.1:${clientPort}/cam`, { timeoutMs: 500 })).failure?.class === 'refused' ? undefined : true))
    const publisher = spawn(ffmpegPath(), ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-f', 'h264', '-framerate', '25', '-i', await clipFile('street'), '-c', 'copy', '-f', 'rtsp', `rtsp://127.0.0.1:${sourcePort}/cam`], { stdio: 'ignore' })
    children.push(publisher)
    await eventually('the stream published', async () => ((await probeCamera(`rtsp://127.0.0.1:${clientPort}/cam`, { timeoutMs: 2_000 })).ok ? true : undefined))
    const r = await probeCamera(`rtsp://127.0.0.1:${clientPort}/cam`, { windowMs: 2_000 })
    expect(r).toMatchObject({ ok: true, transport: 'udp', video: { codec: 'h264', width: 640, height: 360 } })
    expect(r.health).toMatchObject({ fps: 25, lost: 0 })
    expect(r.health?.frames).toBeGreaterThan(25)
    expect(await probeCamera(`rtsp://127.0.0.1:${clientPort}/cam`, { windowMs: 500, transport: 'tcp' })).toMatchObject({ ok: false, step: 'setup', failure: { class: 'protocol', status: 400 } })
    expect(await probeCamera(`rtsp://127.0.0.1:${clientPort}/elsewhere`)).toMatchObject({ ok: false, failure: { class: 'not_found' } })
  })
})
