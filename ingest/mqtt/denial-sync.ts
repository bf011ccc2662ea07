// Devices denied while a cluster runs (`citytwin devices deny`): every
// worker refuses a denied device before any of its connections ends.
//
// Why: each worker read the deny list on its own clock. The worker that
// held a denied device's connection ended it at its read; the device came
// back through the shared port to whichever worker the kernel chose, and
// one that had not read the list yet took it and its readings, until its
// own read up to mqtt.denyListRefreshMs later ended it again. Now the
// primary alone reads the list, and for a change runs the two steps of
// worker-rounds.ts:
//   1. every worker is handed the whole list and puts it in force, then
//      says so;
//   2. once all have (or after `applyTimeoutMs`, for a worker that does not
//      answer), every worker ends the connections of the devices denied.
// A worker does not read the list itself: at its start it asks the primary
// for the list the primary holds, and from then on takes the primary's.
// Each list has a version, and a worker never puts an older one in force
// after a newer one. Every read that finds no change still tells the
// workers the version in force; one that is behind (a message lost with a
// worker's channel, say) asks for the list again, so a miss repairs itself
// within a refresh.
import type { Component, ComponentStats, Health } from '../../lib/component.ts'
import { CitytwinError } from '../../lib/errors.ts'
import { logger } from '../../lib/log.ts'
import { gauge } from '../../lib/metrics.ts'
import { Refresher } from '../../lib/refresher.ts'
import { listDenials } from './deny-list.ts'
import { isA, WorkerRounds, type PrimaryChannel, type SyncWorker, type WorkerSyncOptions } from './worker-rounds.ts'

const log = logger('mqtt-denial-sync')
const deniedGauge = gauge('citytwin_mqtt_denied_devices', 'Devices whose access is revoked (device_denials), as this gateway process last read them')

/** The whole list. `id` 0: the answer to a worker's request, not a round (nothing to answer). */
interface DenialsMessage {
  type: 'citytwin-denials'
  id: number
  version: number
  denied: string[]
}

/** The version in force at the primary, after a read that changed nothing. */
interface VersionMessage {
  type: 'citytwin-denials-version'
  version: number
}

interface RequestMessage {
  type: 'citytwin-denials-request'
}

interface AppliedMessage {
  type: 'citytwin-denials-applied'
  id: number
}

interface EndMessage {
  type: 'citytwin-denials-end'
  ids: string[]
}

const isDenials = isA<DenialsMessage>('citytwin-denials')
const isRequest = isA<RequestMessage>('citytwin-denials-request')
const isVersion = isA<VersionMessage>('citytwin-denials-version')
const isEnd = isA<EndMessage>('citytwin-denials-end')

export interface DenialSyncOptions extends WorkerSyncOptions {
  /** How long the first read may keep failing before the start fails (default 30 s). */
  startTimeoutMs?: number
}

/** The primary's side: reads the deny list and takes each change of it to every worker in the two steps above. */
export class DenialSync implements Component {
  readonly name = 'mqtt-denial-sync'
  readonly #o: Required<DenialSyncOptions>
  readonly #rounds: WorkerRounds
  readonly #refresher: Refresher
  /** The list in force; undefined until the first read. */
  #denied: ReadonlySet<string> | undefined
  /** Its version: one more at each change. */
  #version = 0
  /** Workers that asked for the list before the first read: answered by it. */
  #asked: SyncWorker[] = []
  #counts = { reads: 0, denied: 0, allowed: 0 }

  constructor(o: DenialSyncOptions) {
    this.#o = { startTimeoutMs: 30_000, ...o }
    this.#rounds = new WorkerRounds({ applyTimeoutMs: o.applyTimeoutMs, appliedType: 'citytwin-denials-applied', what: 'device denials' })
    this.#refresher = new Refresher(() => this.#read(), (err) => log.warn({ err }, 'device deny list not read; the last one stays in force'))
  }

  /** Give it each worker's messages (from its fork on): it answers requests and listens for the answers of step 1. */
  watch(worker: SyncWorker): void {
    this.#rounds.watch(worker)
    worker.on('message', (m: unknown) => {
      if (!isRequest(m)) return
      if (this.#denied) this.#answer(worker, this.#denied)
      else this.#asked.push(worker)
    })
  }

  #answer(worker: SyncWorker, denied: ReadonlySet<string>): void {
    if (worker.isConnected()) worker.send({ type: 'citytwin-denials', id: 0, version: this.#version, denied: [...denied] } satisfies DenialsMessage)
  }

  /** Reads the list before the workers are forked (so a request finds it), then every refreshMs. */
  async start(): Promise<void> {
    // A store briefly out of reach is tried again for a while before giving up.
    const failed = await this.#refresher.runUntilRead(this.#o.startTimeoutMs)
    if (failed !== undefined) throw new CitytwinError('STORE_UNAVAILABLE', `cannot read the device deny list: ${failed}`)
    this.#refresher.every(this.#o.refreshMs)
  }

  /** Reads the list again now (and runs the rounds for a change). */
  refresh(): Promise<void> {
    return this.#refresher.run()
  }

  async #read(): Promise<void> {
    const next: ReadonlySet<string> = new Set((await listDenials(this.#o.client)).map((d) => d.deviceId))
    this.#counts.reads++
    const before = this.#denied
    // In force here first: a worker that asks from now on gets this list, and the rounds come after it on its channel.
    this.#denied = next
    if (!before) {
      this.#version = 1
      for (const w of this.#asked) this.#answer(w, next)
      this.#asked = []
      return
    }
    const added = [...next].filter((id) => !before.has(id))
    const removed = [...before].filter((id) => !next.has(id))
    if (added.length === 0 && removed.length === 0) {
      this.#rounds.sendAll({ type: 'citytwin-denials-version', version: this.#version } satisfies VersionMessage)
      return
    }
    this.#version++
    this.#counts.denied += added.length
    this.#counts.allowed += removed.length
    // Step 1: every worker puts the list in force.
    await this.#rounds.round({ type: 'citytwin-denials', version: this.#version, denied: [...next] } satisfies Omit<DenialsMessage, 'id'>)
    if (added.length === 0 || this.#rounds.stopping) return
    // Step 2: only now the denied devices' connections end; wherever they come back, they are refused.
    log.info({ devices: added.length, first: added[0] }, 'devices denied, and every gateway worker has the list: ending their connections')
    this.#rounds.sendAll({ type: 'citytwin-denials-end', ids: added } satisfies EndMessage)
  }

  async stop(): Promise<void> {
    this.#rounds.stop()
    await this.#refresher.stop()
  }

  async health(): Promise<Health> {
    const error = this.#refresher.lastError
    return error === undefined ? { ok: true } : { ok: true, detail: `the device deny list could not be read lately (${error}); the last one read is in force` }
  }

  stats(): ComponentStats {
    return { ...this.#counts, ...this.#rounds.counts, inForce: this.#denied?.size ?? 0, version: this.#version }
  }
}

export interface PrimaryDenialsOptions {
  /** Devices whose connections are to end: denied, and every worker has the list. */
  onDenied: (deviceIds: readonly string[]) => void
  /** How long the start waits for the primary's list (default 30 s). */
  startTimeoutMs?: number
}

/**
 * A worker's side: the deny list as the primary hands it over. Starts once
 * the primary has answered its request, so the worker refuses a denied
 * device from its first CONNECT.
 */
export class PrimaryDenials implements Component {
  readonly name = 'mqtt-deny-list'
  readonly #o: Required<PrimaryDenialsOptions>
  readonly #channel: PrimaryChannel
  #denied: ReadonlySet<string> = new Set()
  /** The version of the list in force; 0 before the first. */
  #version = 0
  #received: (() => void) | undefined
  #lists = 0

  /** Listens from here on (before start): a list the primary sends is taken whenever it comes. */
  constructor(o: PrimaryDenialsOptions, channel: PrimaryChannel = process) {
    this.#o = { startTimeoutMs: 30_000, ...o }
    this.#channel = channel
    channel.on('message', (m: unknown) => {
      if (isDenials(m)) this.#take(m)
      // Asked at each such read until the list comes (a request or its answer may be lost too); an answer is the whole list, so two do no harm.
      else if (isVersion(m) && m.version > this.#version) void this.#ask()
      else if (isEnd(m)) {
        log.info({ devices: m.ids.length, first: m.ids[0] }, 'devices denied: ending their connections')
        this.#o.onDenied(m.ids)
      }
    })
  }

  #take(m: DenialsMessage): void {
    // An older list than the one in force (an answer overtaken by a round) is not put in force; the newer one stays.
    if (m.version >= this.#version) {
      this.#denied = new Set(m.denied)
      this.#version = m.version
      this.#lists++
      deniedGauge.set(this.#denied.size)
      this.#received?.()
    }
    const channel = this.#channel
    if (m.id > 0 && channel.connected) channel.send?.({ type: 'citytwin-denials-applied', id: m.id } satisfies AppliedMessage)
  }

  /** Asks the primary for the list; false when there is no channel to ask on. */
  #ask(): boolean {
    if (!this.#channel.connected || !this.#channel.send) return false
    this.#channel.send({ type: 'citytwin-denials-request' } satisfies RequestMessage)
    return true
  }

  has(deviceId: string): boolean {
    return this.#denied.has(deviceId)
  }

  async start(): Promise<void> {
    if (this.#lists > 0) return
    const received = new Promise<void>((resolve) => (this.#received = resolve))
    if (!this.#ask()) throw new CitytwinError('STORE_UNAVAILABLE', 'this gateway worker has no channel to its primary, which hands over the device deny list')
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), this.#o.startTimeoutMs)))
    const outcome = await Promise.race([received, timedOut])
    clearTimeout(timer)
    this.#received = undefined
    // No list, no start: a worker that let every device in would undo every denial (the pool forks it again, with backoff).
    if (outcome === 'timeout') throw new CitytwinError('STORE_UNAVAILABLE', `the gateway primary did not hand over the device deny list within ${this.#o.startTimeoutMs} ms`)
  }

  async stop(): Promise<void> {}

  stats(): ComponentStats {
    return { denied: this.#denied.size, lists: this.#lists, version: this.#version }
  }
}
