// The demo city, alive: `citytwin start` with the demo city runs its
// devices as a simulated fleet against its own MQTT gateway, and injects an
// incident from time to time (a gas leak, smoke, an elevator entrapment),
// so that a newcomer sees devices reporting and a ticket raised, with its
// SLA clock running, within a minute of starting. `--no-demo` turns it off;
// a deployment with its own city and devices never runs it.
import type { ClickHouseClient } from '@clickhouse/client'
import type { Component, ComponentStats, Health } from '../../lib/component.ts'
import { logger } from '../../lib/log.ts'
import type { DeviceType } from '../../registry/device-types.ts'
import { createRng } from '../city/random.ts'
import { randomPortOffset } from '../devices/cli.ts'
import { DeviceFleet, type SimDevice } from '../devices/fleet.ts'
import { devicesFromStore } from '../devices/from-store.ts'

const log = logger('demo')

/** An incident the shipped rules (rules/files/city.yaml) ticket within seconds, on one device of a type. */
export interface DemoIncident {
  name: string
  deviceType: DeviceType
  values: Record<string, number>
  noise?: Record<string, number>
  forMs: number
}

/** Taken in turn; each is the ticket type the shipped rules raise for it. */
export const DEMO_INCIDENTS: readonly DemoIncident[] = [
  { name: 'gas_leak', deviceType: 'gas', values: { ch4_pct_lel: 35 }, noise: { ch4_pct_lel: 2 }, forMs: 180_000 },
  { name: 'smoke_alarm', deviceType: 'smoke', values: { obscuration_pct_m: 8 }, forMs: 120_000 },
  { name: 'elevator_entrapment', deviceType: 'elevator', values: { trapped: 1, speed_m_s: 0 }, forMs: 90_000 },
]

export interface DemoOptions {
  client: ClickHouseClient
  /** The gateway's MQTT port on this machine. */
  port: () => number
  /** The address the gateway listens on (mqtt.host); a wildcard is reached at 127.0.0.1. */
  host?: string
  /** The device secret the gateway checks passwords with. */
  secret: string
  /** The first incident, this long after the devices are connected. */
  firstIncidentAfterMs?: number
  /** Then one every this long. */
  incidentEveryMs?: number
  seed?: number
}

export class DemoFleet implements Component {
  readonly name = 'demo'
  readonly #o: DemoOptions
  readonly #rng
  #fleet: DeviceFleet | undefined
  #devices: SimDevice[] = []
  #timer: NodeJS.Timeout | undefined
  #next = 0
  #injected = 0

  constructor(o: DemoOptions) {
    this.#o = o
    this.#rng = createRng(o.seed ?? 1)
  }

  get devices(): number {
    return this.#devices.length
  }

  get incidentEveryMs(): number {
    return this.#o.incidentEveryMs ?? 300_000
  }

  async start(): Promise<void> {
    this.#devices = await devicesFromStore(this.#o.client)
    if (this.#devices.length === 0) {
      log.warn('the city has no devices: the demo fleet does not run')
      return
    }
    // From 127.0.0.1 alone (no extra loopback addresses, which not every system has): a demo city's few thousand sockets fit one.
    this.#fleet = new DeviceFleet(this.#devices, {
      host: ['', '0.0.0.0', '::'].includes(this.#o.host ?? '') ? '127.0.0.1' : (this.#o.host as string), port: this.#o.port(), sources: [], portOffset: randomPortOffset(), secret: this.#o.secret,
      qos: 1, rateScale: 1, connectConcurrency: 200, keepaliveS: 60, reconnect: true, reconnectSpreadMs: 1_000,
    })
    await this.#fleet.start()
    const { connected, refused, connectErrors } = this.#fleet.stats()
    if (connected === 0) log.warn({ refused, connectErrors, port: this.#o.port() }, 'no demo device could connect to the gateway: the map stays quiet')
    const first = this.#o.firstIncidentAfterMs ?? 15_000
    this.#timer = setTimeout(() => this.#inject(), first)
    this.#timer.unref()
    log.info({ devices: this.#devices.length, firstIncidentAfterMs: first, incidentEveryMs: this.incidentEveryMs }, 'demo fleet reporting')
  }

  /** The next incident in turn, on a device of its type picked at random; then the one after, later. */
  #inject(): void {
    const fleet = this.#fleet
    if (!fleet) return
    for (let tried = 0; tried < DEMO_INCIDENTS.length; tried++) {
      const incident = DEMO_INCIDENTS[this.#next++ % DEMO_INCIDENTS.length] as DemoIncident
      const candidates = this.#devices.filter((d) => d.type === incident.deviceType)
      if (candidates.length === 0) continue
      const device = this.#rng.pick(candidates)
      const now = Date.now()
      fleet.inject({ deviceIds: [device.id], fromMs: now, toMs: now + incident.forMs, values: incident.values, ...(incident.noise ? { noise: incident.noise } : {}) })
      this.#injected++
      log.info({ incident: incident.name, device: device.id, forMs: incident.forMs }, 'demo incident injected')
      break
    }
    this.#timer = setTimeout(() => this.#inject(), this.incidentEveryMs)
    this.#timer.unref()
  }

  async stop(deadline: number): Promise<void> {
    clearTimeout(this.#timer)
    await this.#fleet?.stop(Math.max(0, Math.min(5_000, deadline - Date.now())))
  }

  /**
   * Always healthy; it says on /healthz that the demo fleet runs, so that a
   * tool that would drive the same devices (citytwin sim scenario) can
   * refuse to mix its devices and incidents with the demo's.
   */
  async health(): Promise<Health> {
    return { ok: true, detail: `demo fleet: ${this.#devices.length} simulated devices, an incident every ${Math.round(this.incidentEveryMs / 1000)} s (citytwin start --no-demo runs without it)` }
  }

  stats(): ComponentStats {
    const s = this.#fleet?.stats()
    return { devices: this.#devices.length, connected: s?.connected ?? 0, sent: s?.sent ?? 0, acked: s?.acked ?? 0, incidents: this.#injected }
  }
}
