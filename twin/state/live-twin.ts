// The twin as a running component: loaded from the store at start, fed by
// the bus, swept once a second for devices that have turned silent.
import type { ClickHouseClient } from '@clickhouse/client'
import type { Bus, IngestSource } from '../../lib/bus/bus.ts'
import type { Component, ComponentStats } from '../../lib/component.ts'
import { logger } from '../../lib/log.ts'
import { counter, gauge } from '../../lib/metrics.ts'
import type { TwinConfig } from './config.ts'
import { loadTwin } from './load.ts'
import type { IngestHealth } from './ingest-health.ts'
import type { StatusListener, Twin } from './twin.ts'

const log = logger('twin')
const elementsTotal = counter('citytwin_twin_elements_total', 'Elements applied to the live twin', [])
const devicesGauge = gauge('citytwin_twin_devices', 'Devices in the twin, by status', ['status'])
const lagGauge = gauge('citytwin_twin_lag_seconds', 'How far behind the clock the readings reaching the twin are (silence is judged that much later)')
const degradedGauge = gauge('citytwin_ingest_degraded', '1 while ingest is degraded (data too late, or a gateway shedding devices): no silence is judged meanwhile')
const degradedTotal = counter('citytwin_ingest_degraded_total', 'Times ingest turned degraded')

export class LiveTwin implements Component {
  readonly name = 'twin'
  readonly #client: ClickHouseClient
  readonly #bus: Bus
  readonly #cfg: TwinConfig
  #twin: Twin | undefined
  #unsubscribe: (() => void) | undefined
  #timer: NodeJS.Timeout | undefined
  #onStatus: StatusListener | undefined
  #ingest: IngestSource | undefined
  #loadedAt = 0
  #loadMs = 0

  constructor(opts: { client: ClickHouseClient; bus: Bus; config: TwinConfig }) {
    this.#client = opts.client
    this.#bus = opts.bus
    this.#cfg = opts.config
  }

  /** The twin; throws before start. */
  get twin(): Twin {
    if (!this.#twin) throw new Error('the twin is not loaded yet')
    return this.#twin
  }

  /** Calls `fn` on every device status change, of this twin and of any it is rebuilt as. */
  onStatusChange(fn: StatusListener | undefined): void {
    this.#onStatus = fn
    this.#twin?.onStatusChange(fn)
  }

  /**
   * Where ingest says how it is doing, for this twin and any it is rebuilt
   * as: its backlog counts in the lag (lag.ts), so silence is not judged for
   * data still waiting in the gateway, and with whether it sheds devices,
   * decides whether ingest is degraded (ingest-health.ts).
   */
  watchIngest(source: IngestSource | undefined): void {
    this.#ingest = source
    this.#twin?.watchIngest(source)
  }

  /** Ingest's state as the twin last judged it. */
  get ingest(): IngestHealth {
    return this.#twin?.ingestHealth ?? { degraded: false, since: null, reason: null, lagMs: 0, shedding: false, spells: 0 }
  }

  async start(): Promise<void> {
    // Elements that arrive while the store is read are kept and applied after.
    const early: Parameters<Bus['publish']>[0][] = []
    this.#unsubscribe = this.#bus.subscribe((batch) => {
      if (!this.#twin) early.push(batch)
      else this.#apply(batch)
    })
    await this.rebuild()
    for (const b of early) this.#apply(b)
    this.#timer = setInterval(() => this.#sweep(), this.#cfg.sweepIntervalMs)
    this.#timer.unref()
  }

  /** Reads the state from the store again (e.g. after the store was restored). */
  async rebuild(): Promise<void> {
    const t0 = performance.now()
    const previous = this.#twin?.ingestHealth
    this.#twin = await loadTwin(this.#client, { silentAfterIntervals: this.#cfg.silentAfterIntervals, maxLagMs: this.#cfg.maxLagMs, degradedAfterMs: this.#cfg.degradedAfterMs })
    this.#twin.onStatusChange(this.#onStatus)
    this.#twin.watchIngest(this.#ingest)
    if (previous) this.#twin.adoptIngestHealth(previous)
    this.#loadMs = Math.round(performance.now() - t0)
    this.#loadedAt = Date.now()
    log.info({ ms: this.#loadMs, devices: this.#twin.devices.length, cameras: this.#twin.cameras.length, grids: this.#twin.grids.length }, 'twin loaded from the store')
    this.#gauges()
  }

  async stop(): Promise<void> {
    this.#unsubscribe?.()
    clearInterval(this.#timer)
  }

  stats(): ComponentStats {
    return { applied: this.#twin?.applied ?? 0, lagMs: this.#twin?.lagMs() ?? 0, loadMs: this.#loadMs, loadedAt: this.#loadedAt, ingestDegraded: this.ingest.degraded }
  }

  #apply(batch: Parameters<Bus['publish']>[0]): void {
    this.#twin?.apply(batch)
    elementsTotal.inc(batch.length)
  }

  #sweep(): void {
    this.#twin?.sweep(Date.now(), (h) => {
      if (h.degraded) {
        degradedTotal.inc()
        log.warn({ reason: h.reason, lagMs: h.lagMs, shedding: h.shedding }, 'ingest degraded: no device is judged silent until it recovers')
      } else {
        log.info({ lagMs: h.lagMs }, 'ingest recovered: silence is judged again')
      }
    })
    this.#gauges()
  }

  #gauges(): void {
    const c = this.#twin?.counts(0)
    if (!c) return
    degradedGauge.set(this.ingest.degraded ? 1 : 0)
    for (const s of ['unknown', 'online', 'silent', 'offline'] as const) devicesGauge.set({ status: s }, c.devices[s])
    lagGauge.set((this.#twin?.lagMs() ?? 0) / 1000)
  }
}
