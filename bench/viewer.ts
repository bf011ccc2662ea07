// npm run bench:viewer: a scripted tour of the viewer in headless Chromium
// (Debian's, software GL through SwiftShader) under live load. It starts
// `citytwin start` on a city (the full one by default), drives the device
// simulator meanwhile, then in the browser: first render, then per step
// (city -> district -> street -> close-up with devices -> pan -> back to the
// city) the p95 time of a frame while the view moves, and the JS heap.
//
//   npm run bench:viewer [-- --scale 1] [--workers 2] [--sim-devices 20000] [--sim-rate-scale 11] [--frames 40]
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { chromium } from 'playwright-core'
import { buildViewer, CHROMIUM, CHROMIUM_FLAGS, REPO } from '../tests/viewer/browser-setup.ts'
import { waitForLine } from './proc.ts'

const { values } = parseArgs({
  options: {
    scale: { type: 'string', default: '1' },
    workers: { type: 'string', default: '2' },
    'sim-devices': { type: 'string', default: '20000' },
    'sim-rate-scale': { type: 'string', default: '11' },
    frames: { type: 'string', default: '40' },
  },
})

const dir = mkdtempSync(join(tmpdir(), 'citytwin-bench-viewer-'))
const cli = join(REPO, 'bin', 'citytwin.js')
const env = { ...process.env, CITYTWIN_LOG_LEVEL: 'warn', CITYTWIN_DATA_DIR: join(dir, 'db'), CITYTWIN_MQTT_RATE_PER_DEVICE_PER_S: '100', CITYTWIN_MQTT_BURST_PER_DEVICE: '200' }
const at = new Date().toISOString()
const stopChild = (c: ChildProcess | undefined): Promise<void> => new Promise((r) => {
  if (!c || c.exitCode !== null) return r()
  c.once('exit', () => r())
  c.kill('SIGTERM')
  setTimeout(() => c.kill('SIGKILL'), 30_000).unref()
})

await buildViewer(join(REPO, 'viewer', 'dist'))
console.log(`bench:viewer: citytwin start --scale ${values.scale} --workers ${values.workers}; sim ${values['sim-devices']} devices x${values['sim-rate-scale']}; Chromium ${CHROMIUM}`)
const system = spawn(process.execPath, [cli, 'start', '--scale', values.scale, '--workers', values.workers, '--port', '0', '--mqtt-port', '0'], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'inherit'] })
let sim: ChildProcess | undefined
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS })
try {
  const ready = await waitForLine(system, /MQTT\s+port (\d+)[\s\S]*viewer\s+(http:\/\/\S+)\//)
  const url = (ready[2] ?? '').replace(/\/$/, '')
  sim = spawn(process.execPath, [cli, 'sim', 'devices', '--limit', values['sim-devices'], '--rate-scale', values['sim-rate-scale'], '--processes', '2', '--duration-s', '3600', '--mqtt-port', ready[1] ?? ''], { cwd: REPO, env, stdio: ['ignore', 'ignore', 'ignore'] })
  await new Promise((r) => setTimeout(r, 30_000)) // the devices connect; the load is on
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
  const cdp = await page.context().newCDPSession(page)
  await cdp.send('Performance.enable')
  const heapMiB = async (): Promise<number> => {
    const m = await cdp.send('Performance.getMetrics')
    return Math.round((m.metrics.find((x) => x.name === 'JSHeapUsedSize')?.value ?? 0) / 2 ** 20)
  }
  // tsx keeps function names with an __name helper, which functions sent to the page then call.
  await page.addInitScript('globalThis.__name = (f) => f')
  await page.goto(`${url}/`)
  // First render: from navigation to the first frame drawn after the map has its data.
  const firstRenderMs = await page.evaluate(async () => {
    type W = { citytwin?: { ready: boolean; map: { frameTimes: () => number[]; busy: boolean } } }
    const w = globalThis as unknown as W
    while (!w.citytwin?.ready || w.citytwin.map.busy) await new Promise((r) => setTimeout(r, 10))
    const raf = (globalThis as unknown as { requestAnimationFrame: (f: () => void) => void }).requestAnimationFrame
    await new Promise<void>((r) => raf(() => raf(() => r())))
    return performance.now()
  })
  const city = (await (await fetch(`${url}/api/city`)).json()) as { districts: { id: number; centroid: [number, number] }[] }
  const d = city.districts[0]?.centroid ?? [113.65, 34.75]
  const steps: [string, number, number, number][] = [
    ['city', d[0], d[1], 9.6], ['district', d[0], d[1], 11.3], ['street', d[0], d[1], 12.9], ['close-up with devices', d[0], d[1], 15], ['pan', d[0] + 0.02, d[1] + 0.01, 15], ['back to the city', d[0], d[1], 9.6],
  ]
  const results: { step: string; level: string; frames: number; p50Ms: number; p95Ms: number; maxMs: number; heapMiB: number }[] = []
  for (const [name, lon, lat, zoom] of steps) {
    const r = await page.evaluate(async ([lon0, lat0, z, n]) => {
      type M = { flyTo: (a: number, b: number, c: number) => void; nextFrame: () => Promise<number>; busy: boolean; level: string }
      const map = (globalThis as unknown as { citytwin: { map: M } }).citytwin.map
      const raf = (globalThis as unknown as { requestAnimationFrame: (f: () => void) => void }).requestAnimationFrame
      const frame = (): Promise<void> => new Promise((r) => raf(() => raf(() => r())))
      map.flyTo(lon0, lat0, z)
      await new Promise((r) => setTimeout(r, 300))
      while (map.busy) await new Promise((r) => setTimeout(r, 20))
      await frame()
      // The view moves a little each frame, as when an operator drags the map.
      // A frame's time: from the move to deck.gl having drawn the view it asked for.
      const times: number[] = []
      for (let i = 0; i < n; i++) {
        const t0 = performance.now()
        const drawn = map.nextFrame()
        map.flyTo(lon0 + (i % 2 === 0 ? 1 : -1) * 0.0005 * 2 ** (12 - z), lat0, z)
        times.push((await drawn) - t0)
      }
      times.sort((a, b) => a - b)
      const q = (f: number): number => Math.round(times[Math.min(times.length - 1, Math.floor(f * times.length))] ?? 0)
      return { level: map.level, frames: n, p50Ms: q(0.5), p95Ms: q(0.95), maxMs: Math.round(times[times.length - 1] ?? 0) }
    }, [lon, lat, zoom, Number(values.frames)] as const)
    results.push({ step: name, ...r, heapMiB: await heapMiB() })
    console.log(`  ${name.padEnd(22)} level ${r.level.padEnd(10)} frame p50 ${r.p50Ms} ms, p95 ${r.p95Ms} ms, max ${r.maxMs} ms; JS heap ${results[results.length - 1]?.heapMiB ?? 0} MiB`)
  }
  mkdirSync(join(REPO, 'tests', 'artifacts'), { recursive: true })
  await page.screenshot({ path: join(REPO, 'tests', 'artifacts', 'bench-viewer.png') })
  const saved = {
    bench: 'viewer', at, command: `npm run bench:viewer -- --scale ${values.scale} --sim-devices ${values['sim-devices']} --sim-rate-scale ${values['sim-rate-scale']}`,
    machine: { cpu: cpus()[0]?.model ?? '', cpus: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version, browser: browser.version() },
    firstRenderMs: Math.round(firstRenderMs), steps: results,
  }
  console.log(`first render ${Math.round(firstRenderMs)} ms (aim < 3000); worst step p95 ${Math.max(...results.map((r) => r.p95Ms))} ms (aim < 100)`)
  mkdirSync(join(REPO, 'bench', 'results'), { recursive: true })
  const file = join(REPO, 'bench', 'results', `viewer-${at.replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify(saved, null, 2))
  console.log(`results: ${file}`)
} finally {
  await browser.close()
  await stopChild(sim)
  await stopChild(system)
  rmSync(dir, { recursive: true, force: true })
}
