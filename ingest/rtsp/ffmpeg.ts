// Every use of ffmpeg goes through this module, through fluent-ffmpeg as
// the design asks. fluent-ffmpeg's upstream was archived in 2025, so
// nothing outside this file imports it: replacing it means rewriting these
// few functions over child_process, nothing else. The binary is Debian's
// ffmpeg, or the one FFMPEG_PATH names.
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import ffmpeg from 'fluent-ffmpeg'
import { CitytwinError } from '../../lib/errors.ts'

/** The ffmpeg binary: FFMPEG_PATH, else the first `ffmpeg` on PATH. Throws FFMPEG_MISSING saying how to install it. */
export function ffmpegPath(env: NodeJS.ProcessEnv = process.env): string {
  const given = env.FFMPEG_PATH
  if (given) {
    if (!executable(given)) throw new CitytwinError('FFMPEG_MISSING', `FFMPEG_PATH is ${given}, which is not an executable file`)
    return given
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue
    const candidate = join(dir, 'ffmpeg')
    if (executable(candidate)) return candidate
  }
  throw new CitytwinError('FFMPEG_MISSING', 'ffmpeg is not on PATH: install it (Debian: apt-get install ffmpeg) or set FFMPEG_PATH to the binary')
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

export interface ClipSpec {
  /** An ffmpeg lavfi filter graph that makes the picture (its last output is the video). */
  lavfi: string
  seconds: number
  fps: number
  /** Frames from one keyframe to the next. */
  gop: number
  bitrateKbps: number
}

/**
 * Renders `spec` into `outFile` as an H.264 Annex-B elementary stream:
 * baseline profile, no B-frames, one slice a picture (one encoder thread),
 * so a simulator can cut it into frames and RTP packets without a demuxer.
 */
export function renderH264Clip(spec: ClipSpec, outFile: string): Promise<void> {
  const bin = ffmpegPath()
  return new Promise((resolve, reject) => {
    ffmpeg()
      .setFfmpegPath(bin)
      .input(spec.lavfi)
      .inputFormat('lavfi')
      .outputOptions([
        '-an', '-c:v', 'libx264', '-preset', 'veryfast', '-profile:v', 'baseline', '-threads', '1', '-bf', '0',
        '-g', String(spec.gop), '-keyint_min', String(spec.gop), '-sc_threshold', '0', '-pix_fmt', 'yuv420p', '-r', String(spec.fps),
        '-b:v', `${spec.bitrateKbps}k`, '-maxrate', `${spec.bitrateKbps}k`, '-bufsize', `${spec.bitrateKbps}k`, '-t', String(spec.seconds),
      ])
      .format('h264')
      .on('error', (e: Error, _stdout: string | null, stderr: string | null) => {
        reject(new CitytwinError('FFMPEG_FAILED', `ffmpeg could not render ${outFile}: ${e.message}${stderr ? `\n${stderr.trim().split('\n').slice(-5).join('\n')}` : ''}`))
      })
      .on('end', () => resolve())
      .save(outFile)
  })
}
