// The pictures the camera simulator serves: a few short H.264 clips that
// ffmpeg renders once from its own test sources and that are cached on
// disk (keyed by what made them, so a changed recipe renders again). Each
// stands for a condition the picture checks must tell apart.
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { renderH264Clip, type ClipSpec } from '../../ingest/rtsp/ffmpeg.ts'
import { packetizeClip, type H264Clip } from './h264.ts'

export const CLIP_NAMES = ['street', 'black', 'frozen', 'obstructed', 'moved', 'smoke', 'motion'] as const
export type ClipName = (typeof CLIP_NAMES)[number]

const W = 640
const H = 360
const FPS = 25
const size = `size=${W}x${H}:rate=${FPS}`

/** What each clip shows, as an ffmpeg lavfi graph; 10 s, looped by the simulator. */
export const CLIPS: Record<ClipName, ClipSpec> = {
  // A busy scene that changes every frame: the healthy camera.
  street: { lavfi: `testsrc2=${size}`, seconds: 10, fps: FPS, gop: 50, bitrateKbps: 800 },
  // A dead sensor or a covered lens in the dark.
  black: { lavfi: `color=c=black:${size}`, seconds: 10, fps: FPS, gop: 50, bitrateKbps: 800 },
  // The street's first frame, sent again and again: a hung encoder.
  frozen: { lavfi: `testsrc2=${size}:duration=${1 / FPS},loop=loop=${10 * FPS - 1}:size=1:start=0,setpts=N/${FPS}/TB`, seconds: 10, fps: FPS, gop: 50, bitrateKbps: 800 },
  // The street through a smeared or covered lens: detail gone.
  obstructed: { lavfi: `testsrc2=${size},boxblur=luma_radius=30:luma_power=3`, seconds: 10, fps: FPS, gop: 50, bitrateKbps: 800 },
  // The camera turned: the same kind of scene, another view.
  moved: { lavfi: `testsrc2=${size},hflip,vflip`, seconds: 10, fps: FPS, gop: 50, bitrateKbps: 800 },
  // Grey haze thickening over the street in four seconds.
  smoke: { lavfi: `testsrc2=${size}[a];color=c=0x909090:${size}[b];[a][b]blend=all_expr='A*(1-min(T/4,0.85))+B*min(T/4,0.85)'[out0]`, seconds: 10, fps: FPS, gop: 50, bitrateKbps: 800 },
  // A dark, still scene with something crossing it: night motion.
  motion: { lavfi: `color=c=0x303030:${size}[bg];color=c=white:size=80x80:rate=${FPS}[box];[bg][box]overlay=x='mod(t*200,${W - 80})':y=${H / 2 - 40}[out0]`, seconds: 10, fps: FPS, gop: 50, bitrateKbps: 800 },
}

export interface LoadedClip extends H264Clip {
  name: ClipName
  fps: number
  width: number
  height: number
}

/** Where clips are cached unless told otherwise. */
export function defaultClipDir(): string {
  return join(tmpdir(), 'citytwin-camera-clips')
}

/** The file of `name`'s clip, rendering it first where it is not cached. */
export async function clipFile(name: ClipName, dir = defaultClipDir()): Promise<string> {
  const spec = CLIPS[name]
  const key = createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 12)
  const file = join(dir, `${name}-${key}.h264`)
  try {
    if (statSync(file).size > 0) return file
  } catch {
    // Not cached yet: rendered below.
  }
  mkdirSync(dir, { recursive: true })
  // Rendered beside and renamed into place, so a simulator killed mid-render leaves no half clip that looks cached.
  const partial = `${file}.${process.pid}.partial`
  try {
    await renderH264Clip(spec, partial)
    renameSync(partial, file)
  } finally {
    rmSync(partial, { force: true })
  }
  return file
}

/** Loads (rendering where needed) and packetizes each named clip. */
export async function loadClips(names: readonly ClipName[] = CLIP_NAMES, dir = defaultClipDir()): Promise<Map<ClipName, LoadedClip>> {
  const out = new Map<ClipName, LoadedClip>()
  for (const name of names) {
    const clip = packetizeClip(readFileSync(await clipFile(name, dir)))
    out.set(name, { ...clip, name, fps: CLIPS[name].fps, width: W, height: H })
  }
  return out
}
