// What probing cameras costs, against the camera simulator in a process of
// its own at a lower priority (nice +10: the load generator never outranks
// the prober it serves). Three parts, each printing the CPU of each role
// from /proc:
//   reach    reachability probes (connect, OPTIONS, DESCRIBE) a second from
//            one process, and CPU µs a probe (aim: 500 a second, so the
//            city's 130,000 in under five minutes);
//   health   stream-health windows (SETUP, PLAY, a window of RTP measured,
//            TEARDOWN) a second and CPU ms a window;
//   pictures keyframes gathered, decoded by ffmpeg and checked a second,
//            and CPU a keyframe with ffmpeg's own time (its processes are
//            this one's children: /proc/self/stat's cutime and cstime);
//   streams  how many streams one simulator process carries at 25 frames
//            a second, every one received whole (aim: 1,000);
//   gateway  the camera gateway itself over a whole city's cameras (a store
//            with a generated city, --gateway-scale 1: 130,000), on a
//            reachability period squeezed to --gateway-period-s so a run
//            of minutes covers every camera: probes a second, CPU a probe
//            with the statuses written to chDB, memory a camera, backlog.
//            Not in the default parts (it writes a city first).
//   detect   detection per class: cameras of a small city, each class's
//            switched to its fault once the gateway knows them healthy
//            (black, frozen, obstructed, moved, smoke, offline, degraded,
//            and healthy ones left alone), on a quick schedule; precision
//            and recall per class of what the gateway reported (statuses
//            and events in the store) and the time from the switch to the
//            first right report (aim: 0.95 each). The simulator runs in
//            this process here (it must be switched while it runs), at the
//            gateway's priority, never above it.
// From reach and health it works out CPU a camera-hour at a schedule
// (--reach-every-s, --health-every-s) and the processes 130,000 cameras need.
//
// Usage: npm run bench:cameras -- [--part reach,health,pictures,streams] [--probes N] [--concurrency C]
//   [--windows N] [--window-s S] [--window-concurrency C] [--samples N] [--keyframes K] [--decodes C]
//   [--streams N] [--streams-s S] [--reach-every-s S] [--health-every-s S] [--pictures-every-s S]
//   [--gateway-scale X] [--gateway-period-s S] [--gateway-s S] [--gateway-concurrency C]
import { spawn, type ChildProcess } from 'node:child_process'
import { cpus } from 'node:os'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { cameraUrl, RtspClient } from '../ingest/rtsp/client.ts'
import { probeCamera } from '../ingest/rtsp/probe.ts'
import { KeyframeDecoder } from '../ingest/rtsp/keyframe-decoder.ts'
import { parseSdp } from '../ingest/rtsp/sdp.ts'
import { StreamHealthMeter } from '../ingest/rtsp/stream-health.ts'
import { CLI } from '../tests/helpers.ts'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startAll, stopAll, type Component } from '../lib/component.ts'
import { createCameraIngest } from '../ingest/rtsp/index.ts'
import { readCameras, writeCity } from '../registry/city-store.ts'
import { generateCity } from '../simulators/city/generate.ts'
import { openMigratedStore } from '../store/index.ts'
import { processTree, schedOfAll } from './proc.ts'
import { CLIP_NAMES } from '../simulators/cameras/clips.ts'

const { values } = parseArgs({
  options: {
    part: { type: 'string', default: 'reach,health,pictures,streams' },
    probes: { type: 'string', default: '5000' },
    concurrency: { type: 'string', default: '64' },
    windows: { type: 'string', default: '600' },
    'window-s': { type: 'string', default: '2' },
    'window-concurrency': { type: 'string', default: '200' },
    samples: { type: 'string', default: '256' },
    keyframes: { type: 'string', default: '3' },
    decodes: { type: 'string', default: '1' },
    'sample-concurrency': { type: 'string', default: '64' },
    'pictures-every-s': { type: 'string', default: '900' },
    streams: { type: 'string', default: '1000' },
    'streams-s': { type: 'string', default: '10' },
    'reach-every-s': { type: 'string', default: '300' },
    'health-every-s': { type: 'string', default: '900' },
    'sim-nice': { type: 'string', default: '10' },
    'gateway-scale': { type: 'string', default: '1' },
    'gateway-period-s': { type: 'string', default: '120' },
    'gateway-s': { type: 'string', default: '150' },
    'gateway-concurrency': { type: 'string', default: '64' },
    'detect-per-class': { type: 'string', default: '10' },
    'detect-s': { type: 'string', default: '90' },
  },
})
const num = (k: keyof typeof values): number => {
  const n = Number(values[k])
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${k} must be a number, got ${String(values[k])}`)
  return n
}
const parts = new Set(String(values.part).split(','))
const CITY_CAMERAS = 130_000

const id = (i: number): string => `C${String((i % 130_000) + 1).padStart(6, '0')}`

interface Sim {
  child: ChildProcess
  port: number
}

/** The simulator as a user runs it, at a lower priority than this process. */
async function startSim(): Promise<Sim> {
  const sets = CLIP_NAMES.flatMap((clip, i) => ['--set', `${id(i)}=${clip}`])
  const child = spawn('nice', ['-n', String(num('sim-nice')), process.execPath, CLI, 'sim', 'cameras', '--port', '0', ...sets], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, CITYTWIN_LOG_LEVEL: 'warn' } })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /127\.0\.0\.1:(\d+)\/live/.exec(out)
      if (m) resolve(Number(m[1]))
    })
    child.on('exit', (code) => reject(new Error(`the camera simulator ended (${code}) before it listened: ${out}`)))
  })
  return { child, port }
}

/** CPU ms of this process and of the simulator's tree now. */
function cpuNow(sim: Sim): { prober: number; sim: number } {
  return { prober: schedOfAll([process.pid]).cpuMs, sim: schedOfAll(processTree(sim.child.pid ?? 0)).cpuMs }
}

/** Runs `task(i)` for i below `count`, `concurrency` at a time. */
async function pool(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(count, concurrency) }, async () => {
    while (next < count) await task(next++)
  }))
}

async function reach(sim: Sim): Promise<number> {
  const n = num('probes')
  const failures = new Map<string, number>()
  const before = cpuNow(sim)
  const t0 = performance.now()
  await pool(n, num('concurrency'), async (i) => {
    const r = await probeCamera(`rtsp://127.0.0.1:${sim.port}/live/${id(i)}`, { timeoutMs: 10_000 })
    if (!r.ok) failures.set(r.failure?.class ?? '?', (failures.get(r.failure?.class ?? '?') ?? 0) + 1)
  })
  const s = (performance.now() - t0) / 1000
  const after = cpuNow(sim)
  const proberUs = ((after.prober - before.prober) * 1000) / n
  console.log(`reach: ${n} probes, ${num('concurrency')} at a time, in ${s.toFixed(1)} s: ${Math.round(n / s)} probes/s; failed ${[...failures].map(([k, v]) => `${k} ${v}`).join(', ') || 0}`)
  console.log(`  CPU: prober ${proberUs.toFixed(0)} µs a probe (${((after.prober - before.prober) / 1000 / s).toFixed(2)} of a core), simulator ${(((after.sim - before.sim) * 1000) / n).toFixed(0)} µs a probe (${((after.sim - before.sim) / 1000 / s).toFixed(2)} of a core)`)
  console.log(`  at this rate one process probes the city's ${CITY_CAMERAS} cameras in ${(CITY_CAMERAS / (n / s)).toFixed(0)} s`)
  return proberUs
}

async function health(sim: Sim): Promise<number> {
  const n = num('windows')
  const windowMs = num('window-s') * 1000
  let failed = 0
  let fpsOff = 0
  let lost = 0
  const before = cpuNow(sim)
  const t0 = performance.now()
  await pool(n, num('window-concurrency'), async (i) => {
    const r = await probeCamera(`rtsp://127.0.0.1:${sim.port}/live/${id(i)}`, { timeoutMs: 10_000, windowMs })
    if (!r.ok) failed++
    else if (r.health?.fps !== 25) fpsOff++
    lost += r.health?.lost ?? 0
  })
  const s = (performance.now() - t0) / 1000
  const after = cpuNow(sim)
  const proberMs = (after.prober - before.prober) / n
  console.log(`health: ${n} windows of ${windowMs / 1000} s, ${num('window-concurrency')} at a time, in ${s.toFixed(1)} s: ${(n / s).toFixed(1)} windows/s; failed ${failed}, fps not 25 in ${fpsOff}, packets lost ${lost}`)
  console.log(`  CPU: prober ${proberMs.toFixed(2)} ms a window (${(1000 / proberMs).toFixed(0)} windows a core-second), simulator ${((after.sim - before.sim) / n).toFixed(2)} ms a window`)
  return proberMs
}

/** CPU seconds of this process's children that have ended and been reaped (ffmpeg runs): cutime and cstime of /proc/self/stat. */
function reapedChildrenCpuS(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(f[13]) + Number(f[14])) / 100
}

async function pictures(sim: Sim): Promise<number> {
  const n = num('samples')
  const k = num('keyframes')
  const clips = CLIP_NAMES
  let keyframes = 0
  let decodeMs = 0
  const verdicts = new Map<string, number>()
  const errors: string[] = []
  const decoder = new KeyframeDecoder({ concurrency: num('decodes') })
  const before = cpuNow(sim)
  const ffmpegBefore = reapedChildrenCpuS()
  const t0 = performance.now()
  await pool(n, num('sample-concurrency'), async (i) => {
    // C000001 to C000007 play one clip each (startSim): the samples go round them.
    const r = await probeCamera(`rtsp://127.0.0.1:${sim.port}/live/${id(i % clips.length)}`, { timeoutMs: 10_000, windowMs: 200, pictures: k, pictureWaitMs: 8_000, decoder })
    keyframes += r.pictures?.keyframes ?? 0
    decodeMs += r.pictures?.decodeMs ?? 0
    const v = r.pictures?.verdict?.condition ?? 'none'
    verdicts.set(v, (verdicts.get(v) ?? 0) + 1)
    if (r.pictures?.error) errors.push(r.pictures.error)
  })
  const s = (performance.now() - t0) / 1000
  const after = cpuNow(sim)
  const ffmpegS = reapedChildrenCpuS() - ffmpegBefore
  const proberS = (after.prober - before.prober) / 1000
  const perKeyframeMs = ((proberS + ffmpegS) * 1000) / Math.max(1, keyframes)
  const d = decoder.stats() as { runs: number; redecoded: number }
  console.log(`pictures: ${n} samples of ${k} keyframes (${clips.length} clips on the simulator), ${num('sample-concurrency')} cameras at a time, ${d.runs} ffmpeg runs (${num('decodes')} at a time at most, ${d.redecoded} requests decoded again), in ${s.toFixed(1)} s: ${keyframes} keyframes, ${(keyframes / s).toFixed(1)} a second; verdicts ${[...verdicts].map(([v, c]) => `${v} ${c}`).join(', ')}; errors ${errors.length}${errors[0] ? ` (${errors[0]})` : ''}`)
  console.log(`  CPU: ffmpeg ${((ffmpegS * 1000) / Math.max(1, keyframes)).toFixed(1)} ms a keyframe, the prober ${((proberS * 1000) / Math.max(1, keyframes)).toFixed(1)} ms, together ${perKeyframeMs.toFixed(1)} ms: ${(1000 / perKeyframeMs).toFixed(1)} keyframes a core-second; decode wall time ${(decodeMs / n).toFixed(0)} ms a sample`)
  return perKeyframeMs
}

/** The camera gateway over a generated city's cameras, in this process, against the simulator. */
async function gateway(sim: Sim): Promise<void> {
  const scale = num('gateway-scale')
  const periodS = num('gateway-period-s')
  const runS = num('gateway-s')
  const dir = mkdtempSync(join(tmpdir(), 'citytwin-bench-cameras-'))
  const opened = await openMigratedStore({ env: {} }, { dataDir: join(dir, 'db') })
  const store = opened.store
  try {
    const t0 = performance.now()
    await writeCity(store.client, generateCity({ seed: 1, scale }), opened.writerCfg)
    console.log(`gateway: a city at scale ${scale} written in ${((performance.now() - t0) / 1000).toFixed(0)} s`)
    global.gc?.()
    const heapBefore = process.memoryUsage().heapUsed
    const ingest = createCameraIngest(store, opened.writerCfg, {
      env: {}, file: { rtsp: { reachEveryS: periodS, picturesEveryS: 86_400, concurrency: num('gateway-concurrency'), streamHost: `127.0.0.1:${sim.port}`, snapshots: false } },
    }, { shard: { index: 0, count: 1 } })
    const started: Component[] = []
    await startAll(ingest.components, started)
    global.gc?.()
    const cameras = ingest.gateway.size
    const perCamera = (process.memoryUsage().heapUsed - heapBefore) / cameras
    const before = cpuNow(sim)
    const s0 = ingest.gateway.stats() as { probes: number; statuses: number }
    const w0 = performance.now()
    let maxBacklog = 0
    while (performance.now() - w0 < runS * 1000) {
      await new Promise((r) => setTimeout(r, 5_000))
      maxBacklog = Math.max(maxBacklog, (ingest.gateway.stats() as { backlog: number }).backlog)
    }
    const s = (performance.now() - w0) / 1000
    const after = cpuNow(sim)
    const s1 = ingest.gateway.stats() as { probes: number; failed: number; statuses: number; writeFailures: number; backlog: number }
    await stopAll(started, Date.now() + 20_000)
    const probes = s1.probes - s0.probes
    console.log(`gateway: ${cameras} cameras, each every ${periodS} s (${Math.round(cameras / periodS)} probes/s due), ${num('gateway-concurrency')} at once, ${s.toFixed(0)} s: ${probes} probes (${(probes / s).toFixed(0)}/s), ${s1.failed} failed, ${s1.statuses - s0.statuses} statuses written, ${s1.writeFailures} not stored, backlog at most ${maxBacklog} and ${s1.backlog} at the end`)
    console.log(`  CPU: the gateway's process ${(((after.prober - before.prober) * 1000) / Math.max(1, probes)).toFixed(0)} µs a probe with its writes (${((after.prober - before.prober) / 1000 / s).toFixed(2)} of a core), simulator ${(((after.sim - before.sim) * 1000) / Math.max(1, probes)).toFixed(0)} µs; the gateway's heap ${Math.round(perCamera)} bytes a camera`)
    console.log(`  at the default schedule (a probe every 300 s) the city's ${CITY_CAMERAS} cameras would take ${((((after.prober - before.prober) * 1000) / Math.max(1, probes)) * (CITY_CAMERAS / 300) / 1e6).toFixed(2)} of a core for reachability`)
  } finally {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

const DETECT_CLASSES = ['healthy', 'black', 'frozen', 'obstructed', 'moved', 'smoke', 'offline', 'degraded'] as const
type DetectClass = (typeof DETECT_CLASSES)[number]

/** What the gateway reported of a camera after the switch, as one of the classes (undefined: nothing but ok). */
function reportedClass(kinds: readonly string[]): DetectClass | undefined {
  const has = (k: string): boolean => kinds.includes(k)
  if (has('status:offline')) return 'offline'
  if (has('black')) return 'black'
  if (has('frozen')) return 'frozen'
  if (has('obstructed')) return 'obstructed'
  if (has('scene_change')) return has('status:tampered') ? 'moved' : 'smoke'
  if (has('status:degraded')) return 'degraded'
  return undefined
}

async function detect(): Promise<void> {
  const per = num('detect-per-class')
  const runS = num('detect-s')
  const dir = mkdtempSync(join(tmpdir(), 'citytwin-bench-detect-'))
  const opened = await openMigratedStore({ env: {} }, { dataDir: join(dir, 'db') })
  const store = opened.store
  const { CameraSimulator } = await import('../simulators/cameras/server.ts')
  const { loadClips } = await import('../simulators/cameras/clips.ts')
  const sim = new CameraSimulator({ host: '127.0.0.1', port: 0, clips: await loadClips(), camera: () => ({ clip: 'street' }) })
  const started: Component[] = []
  try {
    await writeCity(store.client, generateCity({ seed: 1, scale: 0.01 }), opened.writerCfg)
    await sim.start()
    const truth = new Map<string, DetectClass>()
    const ids = Array.from({ length: per * DETECT_CLASSES.length }, (_, i) => `C${String(i + 1).padStart(6, '0')}`)
    ids.forEach((id, i) => truth.set(id, DETECT_CLASSES[i % DETECT_CLASSES.length] as DetectClass))
    const ingest = createCameraIngest(store, { ...opened.writerCfg, flushIntervalMs: 100 }, {
      env: {}, file: { rtsp: { reachEveryS: 10, picturesEveryS: 20, retryAfterS: 2, windowMs: 1_000, pictures: 3, streamHost: `127.0.0.1:${sim.port}`, snapshots: false } },
    }, { shard: { index: 0, count: 1 }, cameras: async () => (await readCameras(store.client)).filter((c) => truth.has(c.id)) })
    await startAll(ingest.components, started)
    // Every camera known healthy (a deep probe each: its baseline) before the faults.
    const warm = performance.now()
    for (;;) {
      const rows = await (await store.client.query({ query: "SELECT uniqExact(source_id) AS n FROM events WHERE source = 'camera' AND kind = 'motion'", format: 'JSONEachRow' })).json<{ n: string }>()
      if (Number(rows[0]?.n) >= ids.length || performance.now() - warm > 120_000) break
      await new Promise((r) => setTimeout(r, 1_000))
    }
    const switchedAt = Date.now()
    for (const [id, cls] of truth) {
      if (cls === 'healthy') continue
      sim.set(id, cls === 'offline' ? { clip: 'street', fault: 'offline' } : cls === 'degraded' ? { clip: 'street', fps: 5 } : { clip: cls === 'smoke' ? 'smoke' : cls })
    }
    console.log(`detect: ${ids.length} cameras (${per} a class) known healthy after ${((performance.now() - warm) / 1000).toFixed(0)} s; faults switched on; watching ${runS} s`)
    await new Promise((r) => setTimeout(r, runS * 1000))
    const rows = await (await store.client.query({
      query: "SELECT source_id, kind, toUnixTimestamp64Milli(ts) AS at FROM events WHERE source = 'camera' AND ts >= fromUnixTimestamp64Milli({t:Int64}) ORDER BY ts",
      query_params: { t: switchedAt }, format: 'JSONEachRow',
    })).json<{ source_id: string; kind: string; at: string }>()
    const byCamera = new Map<string, { kind: string; at: number }[]>()
    for (const r of rows) byCamera.set(r.source_id, [...(byCamera.get(r.source_id) ?? []), { kind: r.kind, at: Number(r.at) }])
    console.log('  class        cameras  reported as it  other reports  precision  recall  first right report after the switch (p50 / max)')
    let worst = 1
    for (const cls of DETECT_CLASSES) {
      const mine = ids.filter((id) => truth.get(id) === cls)
      const said = ids.filter((id) => reportedClass((byCamera.get(id) ?? []).map((r) => r.kind)) === cls)
      const right = said.filter((id) => truth.get(id) === cls)
      const times = right.map((id) => ((byCamera.get(id) ?? []).find((r) => reportedClass([r.kind, ...(cls === 'moved' ? ['status:tampered'] : [])]) === cls)?.at ?? switchedAt) - switchedAt).sort((a, b) => a - b)
      const healthyWrong = cls === 'healthy' ? mine.filter((id) => reportedClass((byCamera.get(id) ?? []).map((r) => r.kind)) !== undefined).length : 0
      const precision = cls === 'healthy' ? (mine.length - healthyWrong) / mine.length : said.length === 0 ? 1 : right.length / said.length
      const recall = cls === 'healthy' ? (mine.length - healthyWrong) / mine.length : right.length / mine.length
      worst = Math.min(worst, precision, recall)
      console.log(`  ${cls.padEnd(12)} ${String(mine.length).padStart(7)}  ${String(cls === 'healthy' ? mine.length - healthyWrong : right.length).padStart(14)}  ${String(cls === 'healthy' ? healthyWrong : said.length - right.length).padStart(13)}  ${(precision * 100).toFixed(0).padStart(8)}%  ${(recall * 100).toFixed(0).padStart(5)}%  ${times.length ? `${(times[Math.floor(times.length / 2)]! / 1000).toFixed(1)} s / ${(times[times.length - 1]! / 1000).toFixed(1)} s` : '-'}`)
    }
    console.log(`  the worst precision or recall: ${(worst * 100).toFixed(0)}% (aim 95%); schedule: a probe each 10 s, deeper each 20 s, 3 keyframes`)
  } finally {
    await stopAll(started, Date.now() + 10_000)
    await sim.stop(Date.now() + 1_000)
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

async function streams(sim: Sim): Promise<void> {
  const n = num('streams')
  const seconds = num('streams-s')
  const clients: RtspClient[] = []
  const meters: StreamHealthMeter[] = []
  await pool(n, 100, async (i) => {
    const client = new RtspClient(cameraUrl(`rtsp://127.0.0.1:${sim.port}/live/${id(i)}`), { timeoutMs: 20_000 })
    clients.push(client)
    await client.open()
    const sdp = parseSdp((await client.request('DESCRIBE', client.url, { Accept: 'application/sdp' })).body.toString(), `${client.url}/`)
    const video = sdp.video
    if (!video) throw new Error(`${client.url} describes no video`)
    const meter = new StreamHealthMeter(video.codec, video.clockRate, video.payloadType)
    client.onPacket((ch, p) => ch === 0 && meter.add(p, performance.now()))
    await client.setup(video.controlUrl, 'tcp')
    const play = await client.request('PLAY', sdp.sessionUrl)
    if (play.status !== 200) throw new Error(`PLAY of ${client.url} answered ${play.status}`)
    meters.push(meter)
  })
  // Measure after all play: the connect wave is not the steady cost.
  const start = meters.map((m) => m.summary())
  const before = cpuNow(sim)
  const t0 = performance.now()
  await new Promise((r) => setTimeout(r, seconds * 1000))
  const s = (performance.now() - t0) / 1000
  const after = cpuNow(sim)
  const end = meters.map((m) => m.summary())
  let short = 0
  let lost = 0
  let frames = 0
  let bytesIn = 0
  for (let i = 0; i < end.length; i++) {
    const got = (end[i]?.frames ?? 0) - (start[i]?.frames ?? 0)
    frames += got
    lost += end[i]?.lost ?? 0
    if (got < 25 * s * 0.95) short++
  }
  for (const c of clients) bytesIn += c.bytesIn
  await Promise.all(clients.map((c) => c.close()))
  const simCores = (after.sim - before.sim) / 1000 / s
  console.log(`streams: ${n} at once from one simulator process for ${s.toFixed(1)} s: ${(frames / s).toFixed(0)} frames/s received (${(frames / s / n).toFixed(2)} a stream), streams short of 95% of 25 fps: ${short}, packets lost ${lost}, ${(bytesIn / 1e6).toFixed(0)} MB in all`)
  console.log(`  CPU: simulator ${simCores.toFixed(2)} of a core (${((simCores * 1e6) / (frames / s)).toFixed(1)} µs a frame), receiver ${((after.prober - before.prober) / 1000 / s).toFixed(2)} of a core`)
}

console.log(`bench:cameras on ${cpus().length} CPUs, Node ${process.version}; simulator at nice +${num('sim-nice')}`)
const sim = await startSim()
try {
  let probeUs: number | undefined
  let windowMs: number | undefined
  let keyframeMs: number | undefined
  if (parts.has('reach')) probeUs = await reach(sim)
  if (parts.has('health')) windowMs = await health(sim)
  if (parts.has('pictures')) keyframeMs = await pictures(sim)
  if (parts.has('streams')) await streams(sim)
  if (parts.has('gateway')) await gateway(sim)
  if (parts.has('detect')) await detect()
  if (probeUs !== undefined && windowMs !== undefined) {
    const reachMs = (3600 / num('reach-every-s')) * (probeUs / 1000)
    const healthMs = (3600 / num('health-every-s')) * windowMs
    const picturesMs = keyframeMs !== undefined ? (3600 / num('pictures-every-s')) * num('keyframes') * keyframeMs : 0
    const perHourMs = reachMs + healthMs + picturesMs
    const cores = (CITY_CAMERAS * perHourMs) / 3600 / 1000
    console.log(`schedule: a reachability probe every ${num('reach-every-s')} s (${reachMs.toFixed(1)} ms), a health window every ${num('health-every-s')} s (${healthMs.toFixed(1)} ms)${keyframeMs !== undefined ? ` and ${num('keyframes')} keyframes checked every ${num('pictures-every-s')} s (${picturesMs.toFixed(1)} ms)` : ''}: ${perHourMs.toFixed(1)} ms of CPU a camera-hour; the city's ${CITY_CAMERAS} cameras need ${cores.toFixed(2)} cores, so ${Math.max(1, Math.ceil(cores / 0.8))} camera gateway process(es) at 80% of a core each`)
  }
} finally {
  sim.child.kill('SIGTERM')
}
