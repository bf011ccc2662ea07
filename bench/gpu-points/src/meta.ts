// What make-data.ts writes beside the binary attributes, read by the page.

export interface CityMeta {
  seed: number
  scale: number
  devices: number
  cameras: number
  /** [[minLon, minLat], [maxLon, maxLat]] over all points. */
  bounds: [[number, number], [number, number]]
  /** District outlines, closed rings of [lon, lat]. */
  districts: [number, number][][]
}

/** What the page POSTs to /result when a run ends (or fails). */
export interface RunResult {
  label: string
  ok: boolean
  error?: string
  userAgent: string
  /** UNMASKED_RENDERER_WEBGL / UNMASKED_VENDOR_WEBGL of deck's WebGL2 context. */
  renderer: string
  vendor: string
  /** luma.gl's own view of the device. */
  lumaInfo: Record<string, unknown>
  points: number
  devices: number
  cameras: number
  districts: number
  canvas: { width: number; height: number; cssWidth: number; cssHeight: number; devicePixelRatio: number }
  radiusPx: number
  /** performance.now() from page start to data loaded and to the first drawn frame. */
  dataLoadedMs: number
  firstFrameMs: number
  warmupMs: number
  /** Each frame is a redraw after a small pan of the view. */
  syncEachFrame: boolean
  frames: number
  durationMs: number
  fps: number
  frameMs: { mean: number; p50: number; p95: number; p99: number; max: number; min: number }
  deckMetrics: Record<string, unknown>
}
