// The picture checks: what a camera's sampled keyframes say about its view,
// from small grey pictures (160×90 by default: the detail that tells a
// blurred lens from a sharp one survives, and a picture is 14 KB). Pure:
// pictures and the camera's baseline in, a verdict and the next baseline
// out. The thresholds were set on the camera simulator's clips and are
// options, so a deployment can tune them per camera kind.
//
//   black         dark and flat (a dead sensor, a covered lens at night)
//   frozen        two keyframes or more without a change (a hung encoder):
//                 live sensors always add some noise
//   obstructed    detail far below the baseline's while the contrast holds
//                 (a smeared, sprayed or defocused lens), or, before any
//                 baseline, almost no detail at all
//   scene_change  far from the baseline (the camera moved), or contrast and
//                 detail both washed out (smoke, fog, a flooded lens)
//   motion        a part of the picture changed between keyframes
//
// Budget: a few passes over 14,400 pixels a picture, well under a
// millisecond; the decode before it is what costs (ffmpeg.ts).

export interface Picture {
  width: number
  height: number
  /** Luma, row by row. */
  luma: Uint8Array
}

export interface PictureStats {
  mean: number
  /** Standard deviation of luma: global contrast. */
  contrast: number
  /** Mean absolute difference between neighbouring pixels: fine detail, sharpness. */
  detail: number
}

/**
 * What the camera's view is known to look like when it is fine: the size of
 * the pictures it was made from, and their luma at half that size each way
 * (2×2 averages: 3.6 KB a camera at 160×90, where the full picture as floats
 * was 57.6 KB, 1.9 GB for a gateway of 32,500 cameras; the difference from
 * the baseline is a mean over the picture, which the halving hardly moves).
 */
export interface Baseline {
  width: number
  height: number
  /** Luma at (width/2)×(height/2), rounded down. */
  luma: Uint8Array
  stats: PictureStats
  samples: number
}

/** `p`'s luma at half its size each way, by 2×2 averages. */
export function halfLuma(p: Picture): Uint8Array {
  const w = p.width >> 1
  const h = p.height >> 1
  const out = new Uint8Array(w * h)
  for (let y = 0; y < h; y++) {
    const r0 = 2 * y * p.width
    const r1 = r0 + p.width
    for (let x = 0; x < w; x++) {
      const c = 2 * x
      out[y * w + x] = ((p.luma[r0 + c] as number) + (p.luma[r0 + c + 1] as number) + (p.luma[r1 + c] as number) + (p.luma[r1 + c + 1] as number) + 2) >> 2
    }
  }
  return out
}

export const PICTURE_CONDITIONS = ['ok', 'black', 'frozen', 'obstructed', 'scene_change'] as const
export type PictureCondition = (typeof PICTURE_CONDITIONS)[number]

export interface PictureVerdict {
  condition: PictureCondition
  /** For scene_change: the camera looks elsewhere ('moved': tampering), or the view is washed out ('haze': smoke, fog, an event). */
  cause?: 'moved' | 'haze'
  /** Why, in a few words, with the figures. */
  reason: string
  motion: boolean
  /** The latest picture's figures, and how they compare. */
  stats: PictureStats
  /** Mean absolute difference from the baseline, where there is one. */
  fromBaseline?: number
  /** Share of pixels that changed by more than `motionDelta` between the last two pictures. */
  changed?: number
  /** The baseline to keep for next time. */
  baseline: Baseline | undefined
}

export interface PictureThresholds {
  blackMean: number
  blackContrast: number
  /** Largest mean difference between keyframes still counted as no change. */
  frozenDiff: number
  /** Detail below this share of the baseline's, with contrast held, is obstructed. */
  obstructedDetailRatio: number
  /** Detail below which a picture with no baseline is obstructed. */
  obstructedDetailFloor: number
  /** Contrast and detail both below this share of the baseline's: washed out (smoke, fog). */
  hazeRatio: number
  /** Mean absolute difference from the baseline above which the scene changed. */
  sceneChangeDiff: number
  /** A pixel that moved by more than this between keyframes changed. */
  motionDelta: number
  /** Share of changed pixels from which there is motion. */
  motionShare: number
  /** Weight of a new ok picture in the baseline (slow drift: daylight, seasons). */
  baselineWeight: number
}

export const DEFAULT_THRESHOLDS: PictureThresholds = {
  blackMean: 30, blackContrast: 8, frozenDiff: 0.5, obstructedDetailRatio: 0.6, obstructedDetailFloor: 0.8, hazeRatio: 0.5,
  sceneChangeDiff: 40, motionDelta: 20, motionShare: 0.01, baselineWeight: 0.2,
}

export function pictureStats(p: Picture): PictureStats {
  const { width: w, height: h, luma } = p
  const n = w * h
  let sum = 0
  let sq = 0
  let detail = 0
  for (let y = 0; y < h; y++) {
    const row = y * w
    for (let x = 0; x < w; x++) {
      const v = luma[row + x] as number
      sum += v
      sq += v * v
      if (x + 1 < w) detail += Math.abs(v - (luma[row + x + 1] as number))
      if (y + 1 < h) detail += Math.abs(v - (luma[row + w + x] as number))
    }
  }
  const mean = sum / n
  return { mean, contrast: Math.sqrt(Math.max(0, sq / n - mean * mean)), detail: detail / n }
}

function meanDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0
  for (let i = 0; i < a.length; i++) d += Math.abs((a[i] as number) - (b[i] as number))
  return d / a.length
}

function changedShare(a: Uint8Array, b: Uint8Array, delta: number): number {
  let c = 0
  for (let i = 0; i < a.length; i++) if (Math.abs((a[i] as number) - (b[i] as number)) > delta) c++
  return c / a.length
}

const r1 = (x: number): number => Math.round(x * 10) / 10

/**
 * Judges the latest of `pictures` (in the order they were taken, all of one
 * size) against the ones before it and the camera's `baseline`.
 */
export function checkPictures(pictures: readonly Picture[], baseline: Baseline | undefined, t: PictureThresholds = DEFAULT_THRESHOLDS): PictureVerdict {
  const last = pictures[pictures.length - 1]
  if (!last) throw new RangeError('checkPictures needs at least one picture')
  for (const p of pictures) if (p.width !== last.width || p.height !== last.height || p.luma.length !== p.width * p.height) throw new RangeError('pictures of one size, each width × height bytes')
  const stats = pictureStats(last)
  const base = baseline && baseline.width === last.width && baseline.height === last.height ? baseline : undefined
  const lastHalf = halfLuma(last)
  const fromBaseline = base ? meanDiff(lastHalf, base.luma) : undefined
  let changed: number | undefined
  let still = pictures.length >= 2
  for (let i = 1; i < pictures.length; i++) {
    const a = (pictures[i - 1] as Picture).luma
    const b = (pictures[i] as Picture).luma
    if (meanDiff(a, b) >= t.frozenDiff) still = false
    if (i === pictures.length - 1) changed = changedShare(a, b, t.motionDelta)
  }
  const motion = changed !== undefined && changed >= t.motionShare
  const figures = `mean ${r1(stats.mean)}, contrast ${r1(stats.contrast)}, detail ${r1(stats.detail)}`
  const verdict = (condition: PictureCondition, reason: string, cause?: 'moved' | 'haze'): PictureVerdict => ({
    condition, ...(cause ? { cause } : {}), reason, motion: condition === 'ok' || condition === 'scene_change' ? motion : false, stats: { mean: r1(stats.mean), contrast: r1(stats.contrast), detail: r1(stats.detail) },
    ...(fromBaseline !== undefined ? { fromBaseline: r1(fromBaseline) } : {}), ...(changed !== undefined ? { changed: Math.round(changed * 1000) / 1000 } : {}),
    baseline: condition === 'ok' ? nextBaseline(base, last, lastHalf, stats, fromBaseline, t) : base,
  })
  if (stats.mean < t.blackMean && stats.contrast < t.blackContrast) return verdict('black', `dark and flat: ${figures}`)
  if (still) return verdict('frozen', `${pictures.length} keyframes without a change (${figures})`)
  if (base) {
    const detailRatio = stats.detail / Math.max(base.stats.detail, 1e-6)
    const contrastRatio = stats.contrast / Math.max(base.stats.contrast, 1e-6)
    const against = `${figures}; the baseline's contrast ${r1(base.stats.contrast)}, detail ${r1(base.stats.detail)}`
    if (contrastRatio < t.hazeRatio && detailRatio < t.hazeRatio) return verdict('scene_change', `washed out, as by smoke or fog: ${against}`, 'haze')
    if (detailRatio < t.obstructedDetailRatio) return verdict('obstructed', `detail lost while the contrast holds: ${against}`)
    if ((fromBaseline ?? 0) > t.sceneChangeDiff) return verdict('scene_change', `far from the baseline (mean difference ${r1(fromBaseline ?? 0)}): the camera moved or the scene changed`, 'moved')
  } else if (stats.detail < t.obstructedDetailFloor) {
    return verdict('obstructed', `almost no detail: ${figures}`)
  }
  return verdict('ok', figures)
}

/** The baseline after an ok picture: the first one, then a slow average of those close to it (a moved camera does not drag it). */
function nextBaseline(base: Baseline | undefined, p: Picture, half: Uint8Array, stats: PictureStats, fromBaseline: number | undefined, t: PictureThresholds): Baseline {
  if (!base) return { width: p.width, height: p.height, luma: half, stats, samples: 1 }
  if ((fromBaseline ?? 0) > t.sceneChangeDiff) return base
  const w = t.baselineWeight
  const luma = new Uint8Array(base.luma.length)
  for (let i = 0; i < luma.length; i++) luma[i] = Math.round((base.luma[i] as number) * (1 - w) + (half[i] as number) * w)
  return {
    width: base.width, height: base.height, luma, samples: base.samples + 1,
    stats: { mean: base.stats.mean * (1 - w) + stats.mean * w, contrast: base.stats.contrast * (1 - w) + stats.contrast * w, detail: base.stats.detail * (1 - w) + stats.detail * w },
  }
}
