// RTSP over TLS (rtsps://): the camera simulator behind a certificate made
// with Debian's openssl; the probe trusts it by its authority, refuses it
// without, takes it when told to take any, and keeps RTP inside the TLS
// connection.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { probeCamera } from '../../../ingest/rtsp/probe.ts'
import { loadClips } from '../../../simulators/cameras/clips.ts'
import { CameraSimulator } from '../../../simulators/cameras/server.ts'
import { tempDir } from '../../helpers.ts'

let sim: CameraSimulator
let ca: Buffer

beforeAll(async () => {
  const dir = tempDir('citytwin-rtsps-')
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { encoding: 'utf8' })
  if (made.error || made.status !== 0) throw new Error(`openssl could not make a test certificate (${made.error?.message ?? made.stderr}); install it with: apt-get install -y openssl`)
  ca = readFileSync(join(dir, 'cert.pem'))
  sim = new CameraSimulator({ host: '127.0.0.1', port: 0, clips: await loadClips(['street']), camera: () => ({ clip: 'street' }), tls: { key: readFileSync(join(dir, 'key.pem')), cert: ca } })
  await sim.start()
})

afterAll(() => sim?.stop(Date.now() + 1_000))

describe('rtsps://', () => {
  it('reads a camera over TLS whose authority it is given, the stream inside the connection', async () => {
    const r = await probeCamera(`rtsps://127.0.0.1:${sim.port}/live/C000001`, { windowMs: 1_000, tls: { ca } })
    expect(r).toMatchObject({ ok: true, transport: 'tcp', video: { codec: 'h264', width: 640 } })
    expect(r.health).toMatchObject({ fps: 25, lost: 0 })
  })

  it('refuses a certificate it cannot trust, says so, and takes any when told to', async () => {
    const refused = await probeCamera(`rtsps://127.0.0.1:${sim.port}/live/C000001`)
    expect(refused).toMatchObject({ ok: false, step: 'connect', failure: { class: 'tls', message: expect.stringMatching(/TLS handshake .* failed/) as unknown } })
    expect(await probeCamera(`rtsps://127.0.0.1:${sim.port}/live/C000001`, { windowMs: 300, tls: { insecure: true } })).toMatchObject({ ok: true })
    expect(await probeCamera(`rtsps://127.0.0.1:${sim.port}/live/C000001`, { windowMs: 300, tls: { ca }, transport: 'udp' })).toMatchObject({ ok: false, failure: { class: 'protocol', message: expect.stringMatching(/UDP would send it in clear/) as unknown } })
    // A plain RTSP client at a TLS port: what it reads is no RTSP.
    expect((await probeCamera(`rtsp://127.0.0.1:${sim.port}/live/C000001`, { timeoutMs: 1_000 })).ok).toBe(false)
  })
})
