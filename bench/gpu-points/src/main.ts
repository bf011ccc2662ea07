// The whole city point by point: every device and camera in two
// ScatterplotLayers fed binary attributes, district outlines on top. After
// the first frame and a warm-up, the view pans a little every frame for a
// fixed time; the interval between deck.gl's onAfterRender calls is a frame
// time. The result (with the WebGL renderer string, to tell a GPU from
// SwiftShader) is POSTed to /result of the server that served the page.
//
// Query: label, durationMs (5000), warmupMs (1000), sync (0: with 1 each
// frame ends with a 1-pixel readPixels, which waits for the GPU), radiusPx (2),
// points (1; 0 for the district layers alone),
// width and height of the canvas in CSS pixels (1920 x 1080).
import { Deck, MapView, WebMercatorViewport, type DeckProps, type MapViewState } from '@deck.gl/core'
import { PathLayer, ScatterplotLayer, SolidPolygonLayer } from '@deck.gl/layers'
import type { CityMeta, RunResult } from './meta.ts'

const query = new URLSearchParams(location.search)
const label = query.get('label') ?? 'run'
const durationMs = Number(query.get('durationMs') ?? 5000)
const warmupMs = Number(query.get('warmupMs') ?? 1000)
const syncEachFrame = query.get('sync') === '1'
const radiusPx = Number(query.get('radiusPx') ?? 2)
// points=0 draws the district layers alone: the baseline cost of a frame.
const drawPoints = query.get('points') !== '0'
// A fixed canvas size, whatever the headless window's inner size is.
const canvasCss = [Number(query.get('width') ?? 1920), Number(query.get('height') ?? 1080)] as const

interface GlInfo { renderer: string; vendor: string }
type DeckMetrics = Parameters<NonNullable<DeckProps['_onMetrics']>>[0]

async function fetchBytes(path: string): Promise<ArrayBuffer> {
  const res = await fetch(path)
  if (!res.ok) throw new Error(`GET ${path}: ${res.status}`)
  return res.arrayBuffer()
}

async function post(result: RunResult): Promise<void> {
  await fetch(`/result?label=${encodeURIComponent(label)}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(result) })
  document.title = `done ${label}`
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN
}

function glInfo(gl: WebGL2RenderingContext): GlInfo {
  const ext = gl.getExtension('WEBGL_debug_renderer_info')
  if (!ext) return { renderer: String(gl.getParameter(gl.RENDERER)), vendor: String(gl.getParameter(gl.VENDOR)) }
  return { renderer: String(gl.getParameter(ext.UNMASKED_RENDERER_WEBGL)), vendor: String(gl.getParameter(ext.UNMASKED_VENDOR_WEBGL)) }
}

async function run(): Promise<RunResult> {
  const [meta, positionBytes, colorBytes] = await Promise.all([
    fetch('./meta.json').then(async (r) => (await r.json()) as CityMeta),
    fetchBytes('./positions.bin'),
    fetchBytes('./colors.bin'),
  ])
  const positions = new Float32Array(positionBytes)
  const colors = new Uint8Array(colorBytes)
  const points = meta.devices + meta.cameras
  if (positions.length !== points * 2 || colors.length !== points * 4) throw new Error(`data size mismatch: ${positions.length / 2} positions, ${colors.length / 4} colours, ${points} points`)
  const dataLoadedMs = performance.now()

  const parent = document.getElementById('map') as HTMLDivElement
  parent.style.width = `${canvasCss[0]}px`
  parent.style.height = `${canvasCss[1]}px`
  const width = parent.clientWidth
  const height = parent.clientHeight
  const fitted = new WebMercatorViewport({ width, height }).fitBounds(meta.bounds, { padding: 20 })
  const base: MapViewState = { longitude: fitted.longitude, latitude: fitted.latitude, zoom: fitted.zoom, pitch: 0, bearing: 0 }
  // A pan of about 1% of the view's width, back and forth every 2 s.
  const panDeg = (meta.bounds[1][0] - meta.bounds[0][0]) * 0.01

  const points2 = (from: number, to: number): { length: number; attributes: { getPosition: { value: Float32Array; size: number }; getFillColor: { value: Uint8Array; size: number } } } => ({
    length: to - from,
    attributes: {
      getPosition: { value: positions.subarray(from * 2, to * 2), size: 2 },
      getFillColor: { value: colors.subarray(from * 4, to * 4), size: 4 },
    },
  })
  const layers = [
    new SolidPolygonLayer<[number, number][]>({ id: 'districts-fill', data: meta.districts, getPolygon: (r) => r, getFillColor: [40, 60, 90, 90] }),
    ...(drawPoints ? [
      new ScatterplotLayer({ id: 'devices', data: points2(0, meta.devices), radiusUnits: 'pixels', getRadius: radiusPx, stroked: false, filled: true }),
      new ScatterplotLayer({ id: 'cameras', data: points2(meta.devices, points), radiusUnits: 'pixels', getRadius: radiusPx, stroked: false, filled: true }),
    ] : []),
    new PathLayer<[number, number][]>({ id: 'districts-outline', data: meta.districts, getPath: (r) => r, getColor: [160, 190, 230, 255], getWidth: 1.5, widthUnits: 'pixels' }),
  ]

  let gl: WebGL2RenderingContext | undefined
  let info: GlInfo = { renderer: 'no WebGL2 context', vendor: '' }
  let contextLostAtMs: number | undefined
  let lumaInfo: Record<string, unknown> = {}
  let metrics: DeckMetrics | undefined
  const stamps: number[] = []
  let measuring = false
  let firstFrame: (() => void) | undefined
  const firstFrameDrawn = new Promise<void>((resolve) => { firstFrame = resolve })
  const pixel = new Uint8Array(4)

  const deck = new Deck<MapView>({
    parent,
    width: '100%',
    height: '100%',
    views: new MapView({ repeat: false }),
    viewState: base,
    controller: false,
    layers,
    onDeviceInitialized: (device) => { lumaInfo = JSON.parse(JSON.stringify(device.info)) as Record<string, unknown> },
    onWebGLInitialized: (context) => {
      gl = context
      info = glInfo(context)
      context.canvas.addEventListener('webglcontextlost', () => { contextLostAtMs ??= Math.round(performance.now()) })
    },
    onAfterRender: () => {
      if (syncEachFrame && gl) gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, pixel)
      if (measuring) stamps.push(performance.now())
      firstFrame?.()
    },
    _onMetrics: (m) => { metrics = { ...m } },
  })

  await firstFrameDrawn
  const firstFrameMs = performance.now()

  // Pan every animation frame until the warm-up and the measured time are over.
  await new Promise<void>((resolve) => {
    const t0 = performance.now()
    const tick = (now: number): void => {
      const t = now - t0
      if (t >= warmupMs) measuring = true
      if (t >= warmupMs + durationMs) {
        measuring = false
        resolve()
        return
      }
      deck.setProps({ viewState: { ...base, longitude: base.longitude + panDeg * Math.sin((2 * Math.PI * t) / 2000) } })
      requestAnimationFrame(tick)
    }
    requestAnimationFrame(tick)
  })

  const intervals = stamps.slice(1).map((s, i) => s - (stamps[i] ?? s))
  const sorted = [...intervals].sort((a, b) => a - b)
  const span = (stamps[stamps.length - 1] ?? 0) - (stamps[0] ?? 0)
  const mean = intervals.reduce((s, v) => s + v, 0) / Math.max(1, intervals.length)
  const canvas = parent.querySelector('canvas')
  deck.finalize()
  const r2 = (v: number): number => Math.round(v * 100) / 100
  return {
    label, ok: contextLostAtMs === undefined, ...(contextLostAtMs === undefined ? {} : { error: `WebGL context lost at ${contextLostAtMs} ms` }), userAgent: navigator.userAgent, ...info, lumaInfo,
    points: drawPoints ? points : 0, devices: meta.devices, cameras: meta.cameras, districts: meta.districts.length,
    canvas: { width: canvas?.width ?? 0, height: canvas?.height ?? 0, cssWidth: width, cssHeight: height, devicePixelRatio: window.devicePixelRatio },
    radiusPx, dataLoadedMs: Math.round(dataLoadedMs), firstFrameMs: Math.round(firstFrameMs), warmupMs, syncEachFrame,
    frames: stamps.length, durationMs: Math.round(span), fps: span > 0 ? r2((1000 * intervals.length) / span) : 0,
    frameMs: { mean: r2(mean), p50: r2(quantile(sorted, 0.5)), p95: r2(quantile(sorted, 0.95)), p99: r2(quantile(sorted, 0.99)), max: r2(sorted[sorted.length - 1] ?? NaN), min: r2(sorted[0] ?? NaN) },
    deckMetrics: metrics ? { ...metrics } : {},
  }
}

const failed = (error: unknown): RunResult => ({
  label, ok: false, error: error instanceof Error ? `${error.message}\n${error.stack ?? ''}` : String(error), userAgent: navigator.userAgent, renderer: '', vendor: '', lumaInfo: {},
  points: 0, devices: 0, cameras: 0, districts: 0, canvas: { width: 0, height: 0, cssWidth: 0, cssHeight: 0, devicePixelRatio: window.devicePixelRatio },
  radiusPx, dataLoadedMs: 0, firstFrameMs: 0, warmupMs, syncEachFrame, frames: 0, durationMs: 0, fps: 0,
  frameMs: { mean: 0, p50: 0, p95: 0, p99: 0, max: 0, min: 0 }, deckMetrics: {},
})

// One record per run: an error event after the result, or a result after an error, is not posted again.
let posted = false
const postOnce = async (r: RunResult): Promise<void> => {
  if (posted) return
  posted = true
  await post(r)
}
window.addEventListener('error', (e) => { void postOnce(failed(e.error ?? e.message)) })
run().then(postOnce, (e: unknown) => postOnce(failed(e))).catch((e: unknown) => { document.title = `post failed: ${String(e)}` })
