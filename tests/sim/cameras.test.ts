// The camera simulator as operators and load tests use it: the command with
// cameras set apart, probed by `citytwin camera probe`; and hundreds of
// streams from one process, each received whole at its frame rate.
import { performance } from 'node:perf_hooks'
import { afterAll, describe, expect, it } from 'vitest'
import { cameraUrl, RtspClient } from '../../ingest/rtsp/client.ts'
import { parseSdp } from '../../ingest/rtsp/sdp.ts'
import { StreamHealthMeter } from '../../ingest/rtsp/stream-health.ts'
import { parseCameraSetting } from '../../simulators/cameras/cli.ts'
import { loadClips } from '../../simulators/cameras/clips.ts'
import { CameraSimulator } from '../../simulators/cameras/server.ts'
import { runCli, spawnCli, type RunningCli } from '../helpers.ts'

const running: RunningCli[] = []
afterAll(async () => {
  for (const r of running) {
    r.child.kill('SIGTERM')
    await r.exited
  }
})

describe('citytwin sim cameras and citytwin camera probe', () => {
  it('serves the city ids with cameras set apart, and the probe says what each is, its exit status with it', async () => {
    const sim = await spawnCli(['sim', 'cameras', '--port', '0', '--cameras', '20', '--set', 'C000002=black,fps=5', '--set', 'C000003=digest=admin:pw', '--set', 'C000004=no_media'], /rtsp:\/\/127\.0\.0\.1:(\d+)\/live/)
    running.push(sim)
    const base = `rtsp://127.0.0.1:${sim.match[1]}/live`
    const degraded = await runCli(['camera', 'probe', `${base}/C000002`, '--window-s', '1'])
    expect(degraded.code).toBe(0)
    expect(JSON.parse(degraded.stdout)).toMatchObject({ ok: true, health: { fps: 5 }, video: { fps: 25, width: 640 } })
    const locked = await runCli(['camera', 'probe', `${base}/C000003`, '--window-s', '0'])
    expect(locked.code).toBe(1)
    expect(JSON.parse(locked.stdout)).toMatchObject({ ok: false, failure: { class: 'unauthorized' } })
    const opened = await runCli(['camera', 'probe', `${base}/C000003`, '--window-s', '0', '--user', 'admin'], { CITYTWIN_CAMERA_PASSWORD: 'pw' })
    expect(JSON.parse(opened.stdout)).toMatchObject({ ok: true })
    expect(JSON.parse((await runCli(['camera', 'probe', `${base}/C000004`, '--window-s', '0.5', '--timeout-ms', '800'])).stdout)).toMatchObject({ failure: { class: 'no_media' } })
    expect(JSON.parse((await runCli(['camera', 'probe', `${base}/C000021`, '--window-s', '0'])).stdout)).toMatchObject({ failure: { class: 'not_found' } })
    const usage = await runCli(['camera', 'probe', `${base}/C000001`, '--transport', 'sctp'])
    expect(usage.code).not.toBe(0)
    expect(usage.stderr).toMatch(/--transport must be auto, tcp or udp/)
  })

  it('reads --set values and says what a wrong one should be', () => {
    expect(parseCameraSetting('C000009=smoke,fps=12.5,basic=u:p:q')).toEqual({ id: 'C000009', camera: { clip: 'smoke', fps: 12.5, auth: { scheme: 'basic', username: 'u', password: 'p:q' } } })
    expect(parseCameraSetting('C000010=offline')).toEqual({ id: 'C000010', camera: { clip: 'street', fault: 'offline' } })
    expect(() => parseCameraSetting('C000011=fog')).toThrow(/"fog" is not a clip/)
    expect(() => parseCameraSetting('=black')).toThrow(/write ID=setting/)
  })
})

describe('many streams from one process', () => {
  it('plays 300 streams at once, each received whole at 25 frames a second', async () => {
    const clips = await loadClips(['street'])
    const sim = new CameraSimulator({ host: '127.0.0.1', port: 0, clips, camera: () => ({ clip: 'street' }) })
    await sim.start()
    const clients: RtspClient[] = []
    const meters: StreamHealthMeter[] = []
    try {
      await Promise.all(Array.from({ length: 300 }, async (_, i) => {
        const client = new RtspClient(cameraUrl(`rtsp://127.0.0.1:${sim.port}/live/C${String(i + 1).padStart(6, '0')}`), { timeoutMs: 10_000 })
        clients.push(client)
        await client.open()
        const sdp = parseSdp((await client.request('DESCRIBE', client.url, { Accept: 'application/sdp' })).body.toString(), `${client.url}/`)
        const meter = new StreamHealthMeter('h264', 90_000, sdp.video!.payloadType)
        meters.push(meter)
        client.onPacket((ch, p) => ch === 0 && meter.add(p, performance.now()))
        expect(await client.setup(sdp.video!.controlUrl)).toBe('tcp')
        expect((await client.request('PLAY', sdp.sessionUrl)).status).toBe(200)
      }))
      expect(sim.stats().playing).toBe(300)
      await new Promise((r) => setTimeout(r, 3_000))
      // Each stream whole: 25 fps by its RTP clock, nothing lost; how many frames 3 s hold depends on the machine, so only that they came.
      const health = meters.map((m) => m.summary())
      expect(health.filter((h) => h.fps !== 25 || h.lost > 0 || h.frames < 10)).toEqual([])
      expect(sim.stats().framesSkipped).toBe(0)
    } finally {
      await Promise.all(clients.map((c) => c.close()))
      await sim.stop(Date.now() + 1_000)
    }
  })
})
