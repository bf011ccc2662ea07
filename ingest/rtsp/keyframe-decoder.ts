// Keyframes of many cameras decoded together. Starting ffmpeg costs 70 to
// 90 ms of CPU here; decoding one keyframe to a 160×90 grey picture costs
// about 1 ms. So one run per camera would spend nearly all its time
// starting, and the city would need a score of cores for its picture checks
// (bench:cameras, 2026-12-03). This decoder gathers the keyframes asked for
// within `lingerMs` (up to `maxBatch`) into one Annex-B stream, each with
// its own parameter sets, so cameras of different sizes may share a run,
// and splits the pictures back in order. A run that gives back another
// number of pictures than it was given keyframes (a keyframe that did not
// decode) is not split by guesswork: it is decoded again in halves, down to
// the cameras at fault, and only they fail.
//
// `concurrency` runs at once at most: the process's budget of decodes.
import type { Component, ComponentStats } from '../../lib/component.ts'
import { CitytwinError } from '../../lib/errors.ts'
import { decodeGrayKeyframes } from './ffmpeg.ts'

export type DecodableCodec = 'h264' | 'h265'

export interface KeyframeDecoderOptions {
  width: number
  height: number
  /** Keyframes in one ffmpeg run at most. */
  maxBatch: number
  /** How long a request waits for others to share its run. */
  lingerMs: number
  /** ffmpeg runs at once at most. */
  concurrency: number
  /** A run killed after this. */
  timeoutMs: number
}

export const DEFAULT_DECODER: KeyframeDecoderOptions = { width: 160, height: 90, maxBatch: 64, lingerMs: 50, concurrency: 1, timeoutMs: 20_000 }

interface Request {
  keyframes: readonly Buffer[]
  resolve: (frames: Uint8Array[]) => void
  reject: (e: unknown) => void
}

export class KeyframeDecoder implements Component {
  readonly name = 'keyframe-decoder'
  readonly #o: KeyframeDecoderOptions
  readonly #queues: Record<DecodableCodec, Request[]> = { h264: [], h265: [] }
  readonly #timers: Partial<Record<DecodableCodec, NodeJS.Timeout>> = {}
  readonly #ready: { codec: DecodableCodec; requests: Request[] }[] = []
  #running = 0
  #stopped = false
  #counts = { requests: 0, keyframes: 0, runs: 0, redecoded: 0, failed: 0 }

  constructor(options: Partial<KeyframeDecoderOptions> = {}) {
    this.#o = { ...DEFAULT_DECODER, ...options }
  }

  get size(): { width: number; height: number } {
    return { width: this.#o.width, height: this.#o.height }
  }

  async start(): Promise<void> {
    // Nothing to open: ffmpeg runs start on demand.
  }

  /** The grey pictures of `keyframes` (Annex-B streams, each with its parameter sets), one each, in order. */
  decode(keyframes: readonly Buffer[], codec: DecodableCodec): Promise<Uint8Array[]> {
    if (this.#stopped) return Promise.reject(new CitytwinError('QUEUE_CLOSED', 'the keyframe decoder is stopping'))
    if (keyframes.length === 0) return Promise.resolve([])
    if (keyframes.length > this.#o.maxBatch) return Promise.reject(new RangeError(`${keyframes.length} keyframes in one request; at most ${this.#o.maxBatch}`))
    this.#counts.requests++
    this.#counts.keyframes += keyframes.length
    return new Promise((resolve, reject) => {
      const queue = this.#queues[codec]
      if (queue.reduce((n, r) => n + r.keyframes.length, 0) + keyframes.length > this.#o.maxBatch) this.#cut(codec)
      this.#queues[codec].push({ keyframes, resolve, reject })
      this.#timers[codec] ??= setTimeout(() => this.#cut(codec), this.#o.lingerMs)
    })
  }

  async stop(deadline: number): Promise<void> {
    this.#stopped = true
    for (const codec of ['h264', 'h265'] as const) this.#cut(codec)
    while ((this.#running > 0 || this.#ready.length > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  }

  stats(): ComponentStats {
    return { ...this.#counts, running: this.#running, waiting: this.#ready.length }
  }

  /** Closes the batch gathering for `codec` and sends it to be run. */
  #cut(codec: DecodableCodec): void {
    clearTimeout(this.#timers[codec])
    delete this.#timers[codec]
    const requests = this.#queues[codec].splice(0)
    if (requests.length === 0) return
    this.#ready.push({ codec, requests })
    this.#pump()
  }

  #pump(): void {
    while (this.#running < this.#o.concurrency && this.#ready.length > 0) {
      const batch = this.#ready.shift() as { codec: DecodableCodec; requests: Request[] }
      this.#running++
      void this.#run(batch.codec, batch.requests).finally(() => {
        this.#running--
        this.#pump()
      })
    }
  }

  async #run(codec: DecodableCodec, requests: Request[]): Promise<void> {
    const all = requests.flatMap((r) => r.keyframes)
    this.#counts.runs++
    let frames: Uint8Array[] | undefined
    try {
      frames = (await decodeGrayKeyframes(Buffer.concat(all), codec, this.size, this.#o.timeoutMs)).frames
    } catch (e) {
      if (requests.length === 1) {
        this.#counts.failed++
        requests[0]?.reject(e)
        return
      }
    }
    if (frames && frames.length === all.length) {
      let at = 0
      for (const r of requests) {
        r.resolve(frames.slice(at, at + r.keyframes.length))
        at += r.keyframes.length
      }
      return
    }
    if (requests.length === 1) {
      this.#counts.failed++
      requests[0]?.reject(new CitytwinError('FFMPEG_FAILED', `ffmpeg gave back ${frames?.length ?? 0} pictures for ${all.length} keyframes: a keyframe did not decode`))
      return
    }
    // Which camera's keyframe failed is not known: each half again on its
    // own, down to the cameras at fault (a few runs for one bad camera in a
    // batch of 64, where one run a camera was 64 ffmpeg starts).
    this.#counts.redecoded += requests.length
    const half = Math.ceil(requests.length / 2)
    await this.#run(codec, requests.slice(0, half))
    await this.#run(codec, requests.slice(half))
  }
}
