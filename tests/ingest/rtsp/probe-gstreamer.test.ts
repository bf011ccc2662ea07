// The probe against a third-party RTSP server, so the client is not tested
// only against its own peer: GStreamer's RTSP server from Debian, driven by
// gst-rtsp-server.py beside this file under Debian's own python3, with a
// picture encoded by OpenH264. Without the packages the tests fail saying
// what to install.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { probeCamera } from '../../../ingest/rtsp/probe.ts'

const PYTHON = '/usr/bin/python3'
const SCRIPT = join(import.meta.dirname, 'gst-rtsp-server.py')
const INSTALL = 'apt-get install gir1.2-gst-rtsp-server-1.0 python3-gst-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad'

const children: ChildProcess[] = []
afterAll(() => {
  for (const c of children) c.kill('SIGKILL')
})

/** Starts the GStreamer server and resolves with its port. */
function gstServer(args: string[] = []): Promise<number> {
  const check = spawnSync(PYTHON, ['-c', "import gi; gi.require_version('GstRtspServer','1.0'); from gi.repository import GstRtspServer"], { encoding: 'utf8' })
  if (check.status !== 0) throw new Error(`GStreamer's RTSP server is not usable from ${PYTHON} (${(check.stderr || String(check.error)).trim().split('\n').pop()}): ${INSTALL}`)
  const child = spawn(PYTHON, [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  return new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    const timer = setTimeout(() => reject(new Error(`gst-rtsp-server.py did not say its port in 20 s: ${err}`)), 20_000)
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /port (\d+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    })
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`gst-rtsp-server.py ended (${code}) before serving: ${err.trim()} (needs: ${INSTALL})`))
    })
  })
}

describe('probing GStreamer RTSP server', () => {
  it('reads its stream over TCP and over UDP: OpenH264 at 320x240, 15 frames a second', async () => {
    const port = await gstServer()
    const tcp = await probeCamera(`rtsp://127.0.0.1:${port}/cam`, { windowMs: 2_000 })
    expect(tcp).toMatchObject({ ok: true, server: expect.stringMatching(/GStreamer/) as unknown, transport: 'tcp', video: { codec: 'h264', width: 320, height: 240 } })
    expect(tcp.health).toMatchObject({ fps: 15, lost: 0 })
    expect(tcp.health?.frames).toBeGreaterThan(20)
    const udp = await probeCamera(`rtsp://127.0.0.1:${port}/cam`, { windowMs: 2_000, transport: 'udp' })
    expect(udp).toMatchObject({ ok: true, transport: 'udp' })
    expect(udp.health?.fps).toBe(15)
    expect(await probeCamera(`rtsp://127.0.0.1:${port}/elsewhere`)).toMatchObject({ ok: false, failure: { class: 'not_found', status: 404 } })
  })

  it('answers its Digest challenge, and says unauthorized without the password', async () => {
    const port = await gstServer(['--auth', 'digest', '--user', 'operator', '--password', 'p@ss word'])
    const ok = await probeCamera(`rtsp://operator:p%40ss%20word@127.0.0.1:${port}/cam`, { windowMs: 1_000 })
    expect(ok).toMatchObject({ ok: true, url: `rtsp://127.0.0.1:${port}/cam` })
    expect(ok.health?.packets).toBeGreaterThan(0)
    expect(await probeCamera(`rtsp://127.0.0.1:${port}/cam`)).toMatchObject({ ok: false, failure: { class: 'unauthorized', status: 401 } })
    expect(await probeCamera(`rtsp://operator:wrong@127.0.0.1:${port}/cam`)).toMatchObject({ ok: false, failure: { class: 'unauthorized' } })
  })

  it('answers its Basic challenge', async () => {
    const port = await gstServer(['--auth', 'basic'])
    expect(await probeCamera(`rtsp://127.0.0.1:${port}/cam`, { windowMs: 500, credentials: { username: 'admin', password: 'secret' } })).toMatchObject({ ok: true })
    expect(await probeCamera(`rtsp://127.0.0.1:${port}/cam`)).toMatchObject({ ok: false, failure: { class: 'unauthorized' } })
  })
})
