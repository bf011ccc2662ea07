// Every use of ffmpeg goes through this module, through fluent-ffmpeg as
// the design asks. fluent-ffmpeg's upstream was archived in 2025, so
// nothing outside this file imports it: replacing it means rewriting these
// few functions over child_process, nothing else. The binary is Debian's
// ffmpeg, or the one FFMPEG_PATH names.
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import { Readable } from 'node:stream'
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

export interface GrayFrames {
  width: number
  height: number
  /** One w×h luma plane a decoded keyframe, in order. */
  frames: Uint8Array[]
}

/**
 * Runs ffmpeg over `annexB` (keyframes with their parameter sets, as
 * depacketize.ts makes them), decoding keyframes only with one thread, and
 * resolves with what it wrote to its output once it has exited well and the
 * output has been read to the end (in whichever order they come). Killed
 * after `timeoutMs`; `what` names the work in errors.
 */
function decodeKeyframes(annexB: Buffer, codec: 'h264' | 'h265', output: { options: string[]; format: string }, what: string, timeoutMs: number): Promise<Buffer> {
  const bin = ffmpegPath()
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let settled = false
    const done = (e?: Error): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (e) reject(e)
      else resolve(Buffer.concat(chunks))
    }
    const command = ffmpeg()
      .setFfmpegPath(bin)
      .input(Readable.from([annexB]))
      .inputFormat(codec === 'h264' ? 'h264' : 'hevc')
      .inputOptions(['-threads', '1', '-skip_frame', 'nokey'])
      .outputOptions(['-an', ...output.options, '-threads', '1'])
      .format(output.format)
      .on('error', (e: Error, _stdout: string | null, stderr: string | null) => {
        done(new CitytwinError('FFMPEG_FAILED', `ffmpeg could not ${what} (${annexB.length} bytes of ${codec}): ${e.message}${stderr ? `\n${stderr.trim().split('\n').slice(-3).join('\n')}` : ''}`))
      })
    const timer = setTimeout(() => {
      command.kill('SIGKILL')
      done(new CitytwinError('FFMPEG_FAILED', `ffmpeg took more than ${timeoutMs} ms to ${what}`))
    }, timeoutMs)
    let ended = 0
    const oneEnd = (): void => {
      if (++ended === 2) done()
    }
    command.on('end', oneEnd)
    const out = command.pipe()
    out.on('data', (c: Buffer) => chunks.push(c))
    out.on('end', oneEnd)
    out.on('error', (e: Error) => done(new CitytwinError('FFMPEG_FAILED', `reading what ffmpeg made failed (${what}): ${e.message}`)))
  })
}

/**
 * Decodes the keyframes in `annexB` into small grey pictures: ffmpeg skips
 * every frame that is not a keyframe, scales to `width`×`height` by area
 * averaging, and writes raw luma to a pipe. One decoder thread: the
 * caller's budget of concurrent decodes is the CPU's.
 */
export async function decodeGrayKeyframes(annexB: Buffer, codec: 'h264' | 'h265', size: { width: number; height: number }, timeoutMs = 10_000): Promise<GrayFrames> {
  const { width, height } = size
  const all = await decodeKeyframes(annexB, codec, { options: ['-vf', `scale=${width}:${height}:flags=area,format=gray`, '-fps_mode', 'passthrough'], format: 'rawvideo' }, 'decode keyframes', timeoutMs)
  const plane = width * height
  const frames: Uint8Array[] = []
  for (let off = 0; off + plane <= all.length; off += plane) frames.push(new Uint8Array(all.subarray(off, off + plane)))
  return { width, height, frames }
}

/**
 * One keyframe (Annex-B, with its parameter sets) as a JPEG at most `width`
 * pixels wide (aspect kept), for a ticket's evidence. A run of its own:
 * snapshots are taken when a condition starts, rarely.
 */
export async function keyframeJpeg(annexB: Buffer, codec: 'h264' | 'h265', width = 640, timeoutMs = 10_000): Promise<Buffer> {
  const jpeg = await decodeKeyframes(annexB, codec, { options: ['-frames:v', '1', '-vf', `scale='min(${width},iw)':-2`, '-c:v', 'mjpeg', '-q:v', '5'], format: 'image2pipe' }, 'make a snapshot', timeoutMs)
  if (jpeg.length < 4 || jpeg[0] !== 0xff || jpeg[1] !== 0xd8) throw new CitytwinError('FFMPEG_FAILED', `ffmpeg made no JPEG of ${annexB.length} bytes of ${codec}`)
  return jpeg
}
