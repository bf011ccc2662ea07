// Snapshots: a JPEG of the keyframe a camera event was seen in, kept as the
// ticket's evidence. Files under `dir`, one folder a camera
// (`<camera id>/<ms>.jpg`), and the event's row in the store's events table
// points at it (evidence_path: the API path that serves it). Retention by
// age and by total size, oldest first, swept every few minutes; a snapshot
// retention removed answers 404 saying so.
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Component, ComponentStats } from '../../lib/component.ts'
import { messageOf } from '../../lib/errors.ts'
import { logger } from '../../lib/log.ts'

const log = logger('snapshots')

/** Camera ids as folder names: what the registry allows, without path tricks. */
const SAFE_ID = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/

export interface SnapshotOptions {
  dir: string
  maxAgeDays: number
  maxBytes: number
  sweepEveryMs?: number
}

/** The API path of a camera's snapshot taken at `ts`. */
export function snapshotPath(cameraId: string, ts: number): string {
  return `/api/cameras/${encodeURIComponent(cameraId)}/snapshots/${ts}`
}

export class SnapshotStore implements Component {
  readonly name = 'snapshots'
  readonly #o: SnapshotOptions
  #timer: NodeJS.Timeout | undefined
  #sweeping = false
  #counts = { saved: 0, savedBytes: 0, removed: 0, failed: 0 }

  constructor(o: SnapshotOptions) {
    this.#o = o
  }

  get dir(): string {
    return this.#o.dir
  }

  async start(): Promise<void> {
    await mkdir(this.#o.dir, { recursive: true })
    await this.sweep()
    this.#timer = setInterval(() => void this.sweep(), this.#o.sweepEveryMs ?? 300_000)
    this.#timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer)
  }

  stats(): ComponentStats {
    return { ...this.#counts }
  }

  #file(cameraId: string, ts: number): string | undefined {
    if (!SAFE_ID.test(cameraId) || !Number.isSafeInteger(ts) || ts < 0) return undefined
    return join(this.#o.dir, cameraId, `${ts}.jpg`)
  }

  /** Keeps `jpeg` as `cameraId`'s snapshot at `ts`; its API path, or undefined when it could not be kept (said in the log). */
  async save(cameraId: string, ts: number, jpeg: Buffer): Promise<string | undefined> {
    const file = this.#file(cameraId, ts)
    if (!file) {
      log.warn({ camera: cameraId }, 'a camera id that cannot name a folder: no snapshot kept')
      return undefined
    }
    try {
      await mkdir(join(this.#o.dir, cameraId), { recursive: true })
      // Written beside and renamed, so a reader never meets half a JPEG.
      await writeFile(`${file}.partial`, jpeg)
      await rename(`${file}.partial`, file)
      this.#counts.saved++
      this.#counts.savedBytes += jpeg.length
      return snapshotPath(cameraId, ts)
    } catch (e) {
      this.#counts.failed++
      log.warn({ err: messageOf(e), camera: cameraId }, 'snapshot not kept')
      return undefined
    }
  }

  /** The JPEG of `cameraId` at `ts`, or why there is none. */
  async read(cameraId: string, ts: number): Promise<{ jpeg: Buffer } | { missing: string }> {
    const file = this.#file(cameraId, ts)
    if (!file) return { missing: 'not a camera id and a time in epoch milliseconds' }
    try {
      return { jpeg: await readFile(file) }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
      return { missing: `no snapshot of ${cameraId} at ${ts}: never taken, or removed by retention (after ${this.#o.maxAgeDays} days, or the oldest when all passed ${Math.round(this.#o.maxBytes / 1_048_576)} MB)` }
    }
  }

  /** A camera's snapshots, the latest first, at most `limit`: their times (epoch ms). */
  async list(cameraId: string, limit: number): Promise<number[]> {
    if (!SAFE_ID.test(cameraId)) return []
    let names: string[]
    try {
      names = await readdir(join(this.#o.dir, cameraId))
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw e
    }
    return names.map((n) => /^(\d+)\.jpg$/.exec(n)?.[1]).filter((t): t is string => t !== undefined).map(Number).sort((a, b) => b - a).slice(0, limit)
  }

  /** Removes snapshots past their age, then the oldest until all fit the size. */
  async sweep(now = Date.now()): Promise<void> {
    // One sweep at a time: the timer does not wait for the one before.
    if (this.#sweeping) return
    this.#sweeping = true
    try {
      const files: { path: string; ts: number; bytes: number }[] = []
      for (const camera of await readdir(this.#o.dir)) {
        if (!SAFE_ID.test(camera)) continue
        let names: string[]
        try {
          names = await readdir(join(this.#o.dir, camera))
        } catch {
          continue // not a folder, or removed meanwhile
        }
        for (const name of names) {
          const path = join(this.#o.dir, camera, name)
          // A write a crash left half done, an hour old: it will never be renamed into place.
          if (name.endsWith('.jpg.partial')) {
            const st = await stat(path).catch(() => undefined)
            if (st && now - st.mtimeMs > 3_600_000) await rm(path, { force: true })
            continue
          }
          const m = /^(\d+)\.jpg$/.exec(name)
          if (!m) continue
          // Gone since the listing (another gateway's sweep of a shared folder): nothing to count.
          const st = await stat(path).catch(() => undefined)
          if (st) files.push({ path, ts: Number(m[1]), bytes: st.size })
        }
      }
      files.sort((a, b) => a.ts - b.ts)
      let total = files.reduce((n, f) => n + f.bytes, 0)
      const oldest = now - this.#o.maxAgeDays * 86_400_000
      for (const f of files) {
        if (f.ts >= oldest && total <= this.#o.maxBytes) break
        await rm(f.path, { force: true })
        total -= f.bytes
        this.#counts.removed++
      }
    } catch (e) {
      log.warn({ err: messageOf(e), dir: this.#o.dir }, 'snapshot retention could not sweep; tried again later')
    } finally {
      this.#sweeping = false
    }
  }
}
