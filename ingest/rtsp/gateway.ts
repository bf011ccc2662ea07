// The camera gateway: where a camera's stream becomes a row and an
// element. It owns the cameras of its shard, probes each on the schedule
// (schedule.ts), deeper now and then (a health window and keyframes for the
// picture checks), judges what each probe means (camera-state.ts), writes
// statuses and events to the store's events table, and only once they are
// stored puts them on the bus for the twin and the rules.
//
// Budget: `concurrency` probes at once (each an open connection, a few
// seconds long when deep), decodes through one KeyframeDecoder with its own
// budget of ffmpeg runs. A probe's slot is free once the camera has
// answered, not once its report is stored: the store writes every few
// hundred ms, and holding the slots for that held the whole city's gateway
// to 107 probes a second (bench:cameras --part gateway, 2026-12-03). At most
// MAX_REPORTING reports wait for the store at once; past that no probe
// starts, so a stalled store stops the probing instead of growing memory.
// A gateway that falls behind says so (`backlog` in stats, a metric) rather
// than probing in bursts.
import type { Bus, Subscription } from '../../lib/bus/bus.ts'
import type { Element } from '../../lib/bus/elements.ts'
import type { Component, ComponentStats } from '../../lib/component.ts'
import { messageOf } from '../../lib/errors.ts'
import { logger } from '../../lib/log.ts'
import { counter, sampledGauge } from '../../lib/metrics.ts'
import { CAMERA_STATUS_PREFIX, eventElements, rowsStored } from '../../lib/bus/stored.ts'
import type { Camera } from '../../registry/city.ts'
import type { Row, RowSink } from '../../store/writer.ts'
import type { Credentials } from './auth.ts'
import { DEFAULT_JUDGE_POLICY, judgeProbe, type CameraJudgePolicy, type CameraMemory, type CameraReport } from './camera-state.ts'
import type { KeyframeDecoder } from './keyframe-decoder.ts'
import { keyframeJpeg } from './ffmpeg.ts'
import type { SnapshotStore } from './snapshots.ts'
import type { Baseline } from './picture-checks.ts'
import { probeCamera, type ProbeResult } from './probe.ts'
import { ProbeSchedule, type ScheduleOptions } from './schedule.ts'
import { owns, type Shard } from './shard.ts'

const log = logger('camera-gateway')

/** Reports waiting for the store at most (one a camera at most: a camera's next probe waits for its report). */
const MAX_REPORTING = 4_096

const probesTotal = counter('citytwin_camera_probes_total', 'Camera probes, by depth and outcome (ok or the failure class)', ['depth', 'outcome'])
const reportsTotal = counter('citytwin_camera_reports_total', 'Camera statuses and events written to the store, by kind', ['kind'])
const writeFailures = counter('citytwin_camera_write_failures_total', 'Camera reports the store did not take (the camera is judged again at its next probe)', [])
const backlogGauge = sampledGauge('citytwin_camera_probe_backlog', 'Camera probes due and not yet started', [])

export interface CameraGatewayOptions {
  /** The cameras of the city (all of them: the gateway keeps its shard's). */
  cameras: () => Promise<readonly Camera[]>
  shard: Shard
  /** The events table's writer. */
  events: RowSink
  bus?: Bus
  decoder: KeyframeDecoder
  schedule?: Partial<ScheduleOptions>
  policy?: CameraJudgePolicy
  /** Probes at once. */
  concurrency: number
  timeoutMs: number
  /** RTP measured in a deep probe. */
  windowMs: number
  /** Keyframes checked in a deep probe. */
  pictures: number
  /** Where a snapshot of the keyframe is kept when a picture condition starts (ticket evidence); none when absent. */
  snapshots?: SnapshotStore
  /** Where a camera's stream is pulled from, when not its registry URL (the demo points every camera at its simulator). */
  urlOf?: (camera: Camera) => string
  credentials?: (camera: Camera) => Credentials | undefined
  /** For rtsps:// cameras. */
  tls?: { ca?: string | Buffer; insecure?: boolean }
  tickMs?: number
  clock?: () => number
  /** How often the camera list is read again (cameras added, changed, decommissioned while it runs); 0: at start only. */
  refreshMs?: number
}

interface Watched {
  camera: Camera
  memory: CameraMemory
  baseline?: Baseline
}

export class CameraGateway implements Component {
  readonly name = 'camera-gateway'
  readonly #o: CameraGatewayOptions
  readonly #schedule: ProbeSchedule
  readonly #cameras = new Map<string, Watched>()
  /** Probes and their reports under way; `#probing` of them still waiting for the camera. */
  readonly #inFlight = new Set<Promise<void>>()
  #probing = 0
  #pumpQueued = false
  readonly #clock: () => number
  #timer: NodeJS.Timeout | undefined
  #unwatch: (() => void) | undefined
  #refresh: NodeJS.Timeout | undefined
  #refreshing = false
  #tickets: Subscription | undefined
  /** Open tickets by camera: a camera with one is watched (deeper, sooner, first). */
  readonly #openTickets = new Map<string, Set<string>>()
  #stopping = false
  #counts = { probes: 0, deep: 0, failed: 0, statuses: 0, events: 0, writeFailures: 0 }

  constructor(options: CameraGatewayOptions) {
    this.#o = options
    this.#schedule = new ProbeSchedule(options.schedule)
    this.#clock = options.clock ?? Date.now
  }

  /** Cameras this gateway owns. */
  get size(): number {
    return this.#cameras.size
  }

  async start(): Promise<void> {
    this.#follow(await this.#o.cameras())
    log.info({ shard: `${this.#o.shard.index}/${this.#o.shard.count}`, cameras: this.#cameras.size }, 'camera gateway started')
    if ((this.#o.refreshMs ?? 0) > 0) {
      this.#refresh = setInterval(() => void this.#reread(), this.#o.refreshMs)
      this.#refresh.unref()
    }
    this.#timer = setInterval(() => this.#tick(), this.#o.tickMs ?? 200)
    this.#unwatch = backlogGauge.watch({}, () => this.#schedule.backlog(this.#clock()))
    // Cameras with an open ticket are watched: the rules' ticket elements say which.
    this.#tickets = this.#o.bus?.subscribe('camera-gateway-watch', (batch) => {
      for (const e of batch) if (e.kind === 'ticket' && e.cameraId !== undefined && this.#cameras.has(e.cameraId)) this.#ticket(e.cameraId, e.ticketId, e.open)
    })
  }

  /** Takes the city's cameras as they are now: this shard's new ones scheduled, changed ones updated, gone ones dropped. */
  #follow(cameras: readonly Camera[]): { added: number; removed: number } {
    const now = this.#clock()
    const seen = new Set<string>()
    let added = 0
    for (const camera of cameras) {
      if (!owns(this.#o.shard, camera.id)) continue
      seen.add(camera.id)
      const w = this.#cameras.get(camera.id)
      if (w) {
        // A new URL or profile: what was learned of the old stream is not the new one's.
        if (w.camera.rtspUrl !== camera.rtspUrl) {
          w.memory = { failures: 0, ...(w.memory.status ? { status: w.memory.status } : {}) }
          delete w.baseline
        }
        w.camera = camera
        continue
      }
      this.#cameras.set(camera.id, { camera, memory: { failures: 0 } })
      this.#schedule.add(camera.id, now)
      added++
    }
    let removed = 0
    for (const id of [...this.#cameras.keys()]) {
      if (seen.has(id)) continue
      this.#cameras.delete(id)
      this.#schedule.remove(id)
      this.#openTickets.delete(id)
      removed++
    }
    return { added, removed }
  }

  async #reread(): Promise<void> {
    if (this.#refreshing || this.#stopping) return
    this.#refreshing = true
    try {
      const { added, removed } = this.#follow(await this.#o.cameras())
      if (added + removed > 0) log.info({ added, removed, cameras: this.#cameras.size }, 'cameras followed from the registry')
    } catch (e) {
      log.warn({ err: messageOf(e) }, 'could not read the cameras again; tried at the next refresh')
    } finally {
      this.#refreshing = false
    }
  }

  #ticket(cameraId: string, ticketId: string, open: boolean): void {
    const set = this.#openTickets.get(cameraId) ?? new Set<string>()
    if (open) set.add(ticketId)
    else set.delete(ticketId)
    if (set.size > 0) this.#openTickets.set(cameraId, set)
    else this.#openTickets.delete(cameraId)
    this.watch(cameraId, set.size > 0)
  }

  async stop(deadline: number): Promise<void> {
    this.#stopping = true
    clearInterval(this.#timer)
    clearInterval(this.#refresh)
    this.#unwatch?.()
    this.#tickets?.close()
    // Probes under way finish (a deep one within its window and decode) or are left at the deadline.
    await Promise.race([Promise.allSettled([...this.#inFlight]), new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref())])
  }

  stats(): ComponentStats {
    return { ...this.#counts, cameras: this.#cameras.size, watched: this.#openTickets.size, probing: this.#probing, reporting: this.#inFlight.size - this.#probing, backlog: this.#schedule.backlog(this.#clock()) }
  }

  /** Marks a camera watched (an open ticket, a recent event): checked deeper and sooner. */
  watch(cameraId: string, watched: boolean): void {
    this.#schedule.watch(cameraId, watched, this.#clock())
  }

  #tick(): void {
    if (this.#stopping) return
    const now = this.#clock()
    const room = Math.min(this.#o.concurrency - this.#probing, MAX_REPORTING - (this.#inFlight.size - this.#probing))
    if (room <= 0) return
    for (const due of this.#schedule.due(now, room)) {
      const w = this.#cameras.get(due.cameraId)
      if (!w) continue
      this.#probing++
      let released = false
      // A slot freed takes the next camera due at once: waiting for the next tick held a gateway to `concurrency` probes a tick.
      const release = (): void => {
        if (released) return
        released = true
        this.#probing--
        if (!this.#pumpQueued) {
          this.#pumpQueued = true
          setImmediate(() => {
            this.#pumpQueued = false
            this.#tick()
          })
        }
      }
      const run = this.#probe(w, due.deep, release).finally(() => {
        release()
        this.#inFlight.delete(run)
      })
      this.#inFlight.add(run)
    }
  }

  /** Probes one camera, calls `release` once it has answered, then stores the report. */
  async #probe(w: Watched, deep: boolean, release: () => void): Promise<void> {
    const { camera } = w
    let result: ProbeResult
    try {
      const creds = this.#o.credentials?.(camera)
      result = await probeCamera(this.#o.urlOf?.(camera) ?? camera.rtspUrl, {
        timeoutMs: this.#o.timeoutMs, windowMs: deep ? this.#o.windowMs : 0, pictures: deep ? this.#o.pictures : 0, decoder: this.#o.decoder,
        ...(w.baseline ? { baseline: w.baseline } : {}), ...(creds ? { credentials: creds } : {}), ...(this.#o.tls ? { tls: this.#o.tls } : {}),
      })
    } catch (e) {
      // Not the camera's failing (ffmpeg missing, a bug): said loudly, and the camera is tried again at its next slot.
      log.error({ err: messageOf(e), camera: camera.id }, 'probe could not run')
      this.#schedule.done(camera.id, false, deep, this.#clock())
      return
    }
    release()
    const now = this.#clock()
    this.#counts.probes++
    if (deep) this.#counts.deep++
    if (!result.ok) this.#counts.failed++
    probesTotal.inc({ depth: deep ? 'deep' : 'reach', outcome: result.ok ? 'ok' : (result.failure?.class ?? 'failed') })
    const report = judgeProbe(w.memory, result, { fps: camera.profile.fps, bitrateKbps: camera.profile.bitrateKbps }, now, this.#o.policy ?? DEFAULT_JUDGE_POLICY)
    const snapshot = await this.#snapshot(camera, w.memory, report, result, now)
    const stored = await this.#write(camera, report, result, now, snapshot)
    // What was not stored is judged again next time: the memory moves on only with the store.
    if (stored) w.memory = report.memory
    else w.memory = { ...w.memory, failures: report.memory.failures }
    if (result.baseline) w.baseline = result.baseline
    this.#schedule.done(camera.id, result.ok, deep, this.#clock())
  }

  /**
   * A JPEG of the keyframe a picture condition was seen in, when the
   * condition starts (not at its repeats: an ffmpeg run each); its API path,
   * or undefined. A snapshot that fails is logged, and the event goes without.
   */
  async #snapshot(camera: Camera, before: CameraMemory, report: CameraReport, result: ProbeResult, now: number): Promise<string | undefined> {
    const store = this.#o.snapshots
    const starts = report.events.some((e) => e.name !== 'motion' && before.condition?.name !== e.name)
    if (!store || !starts || !result.keyframe) return undefined
    try {
      return await store.save(camera.id, now, await keyframeJpeg(result.keyframe.bytes, result.keyframe.codec))
    } catch (e) {
      log.warn({ err: messageOf(e), camera: camera.id }, 'no snapshot for this event')
      return undefined
    }
  }

  /** Writes the report's rows; once stored, puts them on the bus. False when the store did not take them. */
  async #write(camera: Camera, report: CameraReport, result: ProbeResult, now: number, snapshot?: string): Promise<boolean> {
    const rows: Row[] = []
    const place = [camera.microGridId, camera.communityId, camera.streetId, camera.districtId, camera.lon, camera.lat] as const
    if (report.status) {
      const s = report.status
      const attributes = { detail: s.detail, ...(s.failure ? { failure: s.failure } : {}), ...(result.health ? { health: result.health } : {}), ...(result.video ? { video: result.video } : {}) }
      rows.push([now, 'camera', camera.id, `${CAMERA_STATUS_PREFIX}${s.state}`, s.state === 'offline' || s.state === 'tampered' ? 'warning' : 'info', ...place, JSON.stringify(attributes), ''])
    }
    for (const e of report.events) {
      const stats = result.pictures?.verdict?.stats
      rows.push([now, 'camera', camera.id, e.name, e.severity, ...place, JSON.stringify({ detail: e.detail, ...(stats ? { stats } : {}) }), e.name !== 'motion' ? (snapshot ?? '') : ''])
    }
    if (rows.length === 0) return true
    try {
      const outcome = await this.#o.events.write(rows)
      const kept = rowsStored(rows, outcome.deadLetteredRows)
      if (report.status) {
        this.#counts.statuses++
        reportsTotal.inc({ kind: 'status' })
      }
      this.#counts.events += report.events.length
      for (const e of report.events) reportsTotal.inc({ kind: e.name })
      const elements: Element[] = eventElements(kept)
      if (this.#o.bus && elements.length > 0) this.#o.bus.publish(elements)
      return true
    } catch (e) {
      this.#counts.writeFailures++
      writeFailures.inc({})
      log.warn({ err: messageOf(e), camera: camera.id, rows: rows.length }, 'camera report not stored; judged again at the next probe')
      return false
    }
  }
}
