// A fleet of simulated devices speaking raw MQTT over TCP: each connects
// with its own credentials, then publishes telemetry of its type at its
// interval with plausible values, and times every QoS 1 acknowledgement.
// Sockets are spread over several loopback source addresses, so the city's
// connections are not limited by one address's ports. Each device has its
// own (source address, port) slot: binding a source address with port 0
// makes the kernel search for a free port, which costs milliseconds once
// tens of thousands are taken (measured: 6 ms per bind at 100k connections,
// most of the simulator's CPU), while binding a given port costs nothing.
import { connect, type Socket } from 'node:net'
import { DEVICE_TYPE_BY_NAME, type DeviceType, type MetricSpec } from '../../registry/device-types.ts'
import { deviceToken } from '../../ingest/mqtt/tokens.ts'
import { LatencyHistogram } from './latency.ts'
import { connectPacket, DISCONNECT, PacketReader, PINGREQ, publishPacket } from './packets.ts'

export interface SimDevice {
  id: string
  type: DeviceType
  intervalS: number
  /** The device's place among all simulated devices (over every process): picks its source address and port. */
  slot?: number
}

/**
 * Local ports the simulator binds: below the kernel's default ephemeral
 * range (32768-60999), so they never collide with ports the kernel hands out.
 */
export const LOCAL_PORT_FIRST = 10_000
export const LOCAL_PORT_COUNT = 22_768

/** How many devices a list of source addresses can carry. */
export const slotsFor = (sources: number): number => sources * LOCAL_PORT_COUNT

/** The source address and port of a slot. `offset` shifts the ports, so two runs at once (tests) do not take the same ones. */
export function localEndpoint(slot: number, sources: readonly string[], offset: number): { localAddress: string; localPort: number } | undefined {
  const address = sources[slot % sources.length]
  const index = Math.floor(slot / Math.max(1, sources.length))
  if (address === undefined || index >= LOCAL_PORT_COUNT) return undefined
  return { localAddress: address, localPort: LOCAL_PORT_FIRST + ((index + offset) % LOCAL_PORT_COUNT) }
}

/**
 * A scenario's incident on some devices for a while (epoch ms): their
 * readings take these values (plus or minus `noise`), or they fall silent
 * (connected, sending nothing: the power of a cabinet is cut).
 */
export interface Injection {
  deviceIds: readonly string[]
  fromMs: number
  toMs: number
  values?: Readonly<Record<string, number>>
  noise?: Readonly<Record<string, number>>
  silence?: boolean
}

export interface FleetOptions {
  host: string
  port: number
  /** Local addresses to connect from, e.g. 127.0.0.2 ... 127.0.0.17. */
  sources: readonly string[]
  /** Shifts the local ports (see localEndpoint); pick at random per run. */
  portOffset: number
  secret: string
  qos: 0 | 1
  /** Messages per interval are multiplied by this (2 = twice as often). */
  rateScale: number
  /** Most CONNECTs waiting for their CONNACK at once. */
  connectConcurrency: number
  keepaliveS: number
  /** Reconnect after a lost connection, as devices do (with jittered backoff). */
  reconnect: boolean
  /** The first reconnect after a drop waits a random time up to this, in ms; later tries back off from it. */
  reconnectSpreadMs: number
  /** Incidents injected by a scenario. */
  injections?: readonly Injection[]
  /**
   * Most QoS 1 messages a device leaves unacknowledged (default 10). A
   * reading that falls due while its device's window is full is not sent
   * (counted as skipped), as a real device with a bounded queue drops it:
   * the simulator's memory stays bounded, and its latency figures are of
   * messages a device could send, not of a queue growing without end.
   */
  window?: number
}

export interface FleetStats {
  devices: number
  connected: number
  /** Most devices connected at once. */
  peakConnected: number
  refused: number
  connectErrors: number
  /** Connect errors by their code (ECONNREFUSED, ETIMEDOUT, ECONNRESET, ...; "closed" for a connection ended before its CONNACK with no error). */
  connectErrorCodes: Record<string, number>
  disconnects: number
  reconnectAttempts: number
  sent: number
  /** Readings not sent because their device's QoS 1 window was full. */
  skipped: number
  acked: number
  inflight: number
  latency: number[]
  /** With the final stats only: acknowledged messages per device, in the order of the fleet's devices. */
  ackedByDevice?: number[]
}

interface DeviceState {
  d: SimDevice
  metrics: readonly MetricSpec[]
  socket: Socket | undefined
  connected: boolean
  seq: number
  /** The device's telemetry topic, encoded once. */
  topic: Buffer
  /** When it last sent anything (ms): a device that publishes within its keep-alive needs no PINGREQ (MQTT-3.1.2-23). */
  lastSentAt: number
  nextId: number
  inflight: Map<number, number>
  /** Messages of this device acknowledged so far. */
  acked: number
  intervalTicks: number
  /** Failed connection attempts since the device was last connected. */
  attempts: number
  slot: number
  /** The scenario's incidents on this device. */
  injections: Injection[]
}

const TICK_MS = 100
export const DEFAULT_WINDOW = 10

/**
 * Which wheel slots are due at `nowMs` for a wheel started at `startMs`
 * that has turned `done` slots: the time elapsed decides, not how often the
 * timer fired, so a simulator starved of CPU still offers its devices'
 * rate once it runs (in a burst, as devices that buffered would). A device
 * reports at most once a turn of the wheel (`slots`): whole turns missed
 * are skipped (`skip` slots, a multiple of `slots`), and `run` slots are due.
 */
export function slotsDue(startMs: number, nowMs: number, tickMs: number, done: number, slots: number): { skip: number; run: number } {
  const behind = Math.floor((nowMs - startMs) / tickMs) + 1 - done
  if (behind <= 0) return { skip: 0, run: 0 }
  const skip = behind > slots ? Math.floor((behind - 1) / slots) * slots : 0
  return { skip, run: behind - skip }
}

export class DeviceFleet {
  readonly #o: FleetOptions
  readonly #devices: DeviceState[]
  readonly #byId = new Map<string, DeviceState>()
  #wheel: DeviceState[][] = []
  readonly #latency = new LatencyHistogram()
  #tick = 0
  #startedAt = 0
  #timer: NodeJS.Timeout | undefined
  #ping: NodeJS.Timeout | undefined
  #stopping = false
  #unackedAtStop: number | undefined
  #peak = 0
  #counts = { connected: 0, refused: 0, disconnects: 0, reconnectAttempts: 0, sent: 0, skipped: 0, acked: 0 }
  /** Connect errors by code (their sum is FleetStats.connectErrors). */
  readonly #errorCodes: Record<string, number> = {}
  /** Sockets dropAll() closed: their close, which comes later, is not the gateway's doing. */
  readonly #dropped = new WeakSet<Socket>()
  /**
   * Devices waiting to reconnect, by the tick (TICK_MS since start) they are
   * due in, all served by the publishing timer. A timer each cost the
   * simulator about 8% of its CPU in a storm: node keeps a list per
   * distinct delay, and random delays up to a minute make nearly one a device.
   */
  readonly #reconnects = new Map<number, DeviceState[]>()
  /** The first tick whose reconnects are not yet served. */
  #reconnectTick = 0

  constructor(devices: readonly SimDevice[], opts: FleetOptions) {
    this.#o = opts
    const injected = new Map<string, Injection[]>()
    for (const j of opts.injections ?? []) for (const id of j.deviceIds) injected.set(id, [...(injected.get(id) ?? []), j])
    this.#devices = devices.map((d, i) => {
      const s: DeviceState = { d, metrics: DEVICE_TYPE_BY_NAME.get(d.type)?.metrics ?? [], socket: undefined, connected: false, seq: 0, topic: Buffer.from(`devices/${d.id}/telemetry`), lastSentAt: 0, nextId: 1, inflight: new Map(), acked: 0, intervalTicks: 1, attempts: 0, slot: d.slot ?? i, injections: injected.get(d.id) ?? [] }
      this.#byId.set(d.id, s)
      return s
    })
    this.#lay(opts.rateScale)
  }

  /**
   * Sends this many times as often as the devices' intervals from now on
   * (an overload benchmark raises the rate, then lowers it), each device's
   * next report spread over its new interval.
   */
  setRateScale(rateScale: number): void {
    if (!(rateScale > 0)) throw new RangeError(`a rate scale must be positive, not ${rateScale}`)
    this.#lay(rateScale)
  }

  /** Lays every device on a new wheel for `rateScale`: reports spread over each device's interval from the current tick, as real devices' are. */
  #lay(rateScale: number): void {
    let slots = 1
    for (const s of this.#devices) {
      s.intervalTicks = Math.max(1, Math.round((s.d.intervalS * 1000) / rateScale / TICK_MS))
      slots = Math.max(slots, s.intervalTicks)
    }
    const wheel: DeviceState[][] = Array.from({ length: slots }, () => [])
    this.#devices.forEach((s, i) => wheel[(this.#tick + ((i * 7919) % s.intervalTicks)) % slots]?.push(s))
    this.#wheel = wheel
  }

  /**
   * Adds an incident while the fleet runs (the demo city's, say). Incidents
   * already over are dropped from those devices meanwhile, so a fleet that
   * runs for days holds only the ones still to come. Returns how many of
   * its devices are in this fleet.
   */
  inject(j: Injection): number {
    const now = Date.now()
    let found = 0
    for (const id of j.deviceIds) {
      const s = this.#byId.get(id)
      if (!s) continue
      s.injections = [...s.injections.filter((x) => x.toMs > now), j]
      found++
    }
    return found
  }

  /** Connects every device (at most connectConcurrency at once) and starts publishing. */
  async start(): Promise<void> {
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < this.#devices.length && !this.#stopping) {
        const s = this.#devices[next++] as DeviceState
        await this.#connect(s)
      }
    }
    this.#startedAt = performance.now()
    this.#timer = setInterval(() => this.#onTick(), TICK_MS)
    // Only a device that has been quiet for half its keep-alive pings, as
    // real clients do: at the city's intervals almost none need to.
    const halfKeepaliveMs = (this.#o.keepaliveS * 1000) / 2
    this.#ping = setInterval(() => {
      const quietSince = Date.now() - halfKeepaliveMs
      for (const s of this.#devices) {
        if (!s.connected || s.lastSentAt > quietSince) continue
        s.socket?.write(PINGREQ)
        s.lastSentAt = Date.now()
      }
    }, halfKeepaliveMs / 2)
    await Promise.all(Array.from({ length: Math.min(this.#o.connectConcurrency, this.#devices.length) }, worker))
  }

  /** Stops publishing, waits up to `graceMs` for outstanding PUBACKs, then disconnects every device. */
  async stop(graceMs = 5_000): Promise<void> {
    this.#stopping = true
    clearInterval(this.#timer)
    const until = Date.now() + graceMs
    while (Date.now() < until && this.#devices.some((s) => s.inflight.size > 0 && s.connected)) await new Promise((r) => setTimeout(r, 50))
    this.#unackedAtStop = this.#devices.reduce((n, s) => n + s.inflight.size, 0)
    clearInterval(this.#ping)
    await Promise.all(this.#devices.map((s) => new Promise<void>((resolve) => {
      const sock = s.socket
      if (!sock || sock.destroyed) return resolve()
      sock.once('close', () => resolve())
      sock.end(DISCONNECT)
      setTimeout(() => sock.destroy(), 2_000).unref()
    })))
  }

  /** Stops publishing, pinging and reconnecting at once, without waiting for anything (the simulator is ending). */
  stopPublishing(): void {
    this.#stopping = true
    clearInterval(this.#timer)
    clearInterval(this.#ping)
  }

  /**
   * Closes every connection at once without DISCONNECT, as a network failure
   * would: with a reset, so no TIME_WAIT holds the device's local port when
   * it reconnects from it.
   */
  dropAll(): void {
    for (const s of this.#devices) {
      if (!s.socket) continue
      this.#dropped.add(s.socket)
      s.socket.resetAndDestroy()
    }
  }

  /** Acknowledged messages per device, in the order the fleet was given its devices. */
  ackedByDevice(): number[] {
    return this.#devices.map((s) => s.acked)
  }

  stats(): FleetStats {
    let inflight = 0
    let connected = 0
    for (const s of this.#devices) {
      inflight += s.inflight.size
      if (s.connected) connected++
    }
    this.#peak = Math.max(this.#peak, connected)
    return {
      devices: this.#devices.length, ...this.#counts, connectErrors: Object.values(this.#errorCodes).reduce((a, b) => a + b, 0),
      connectErrorCodes: { ...this.#errorCodes }, connected, peakConnected: this.#peak,
      inflight: this.#unackedAtStop ?? inflight, latency: [...this.#latency.counts],
    }
  }

  #connect(s: DeviceState): Promise<void> {
    return new Promise((resolve) => {
      const local = this.#o.sources.length > 0 ? localEndpoint(s.slot, this.#o.sources, this.#o.portOffset) : undefined
      const socket = connect({ host: this.#o.host, port: this.#o.port, ...local, noDelay: true })
      s.socket = socket
      const reader = new PacketReader()
      let settled = false
      const settle = (): void => {
        if (!settled) {
          settled = true
          resolve()
        }
      }
      socket.on('connect', () => socket.write(connectPacket(s.d.id, s.d.id, deviceToken(this.#o.secret, s.d.id), this.#o.keepaliveS)))
      socket.on('data', (chunk: Buffer) => {
        for (const p of reader.push(chunk)) {
          if (p.type === 'connack') {
            if (p.returnCode === 0) {
              s.connected = true
              s.lastSentAt = Date.now()
              this.#counts.connected++
              this.#peak = Math.max(this.#peak, this.#counts.connected - this.#counts.disconnects)
            } else {
              this.#counts.refused++
              socket.destroy()
            }
            settle()
          } else if (p.type === 'puback') {
            const sentAt = s.inflight.get(p.packetId)
            if (sentAt !== undefined) {
              s.inflight.delete(p.packetId)
              s.acked++
              this.#counts.acked++
              this.#latency.record(performance.now() - sentAt)
            }
          }
        }
      })
      socket.on('error', (e: NodeJS.ErrnoException) => {
        if (!settled) this.#connectError(e.code ?? 'error')
        settle()
      })
      socket.on('close', () => {
        // Closed by the gateway before its CONNACK, with no error (aedes' connect timeout, a refusal before CONNECT);
        // not one this fleet closed itself (stopping, or dropping every connection).
        if (!settled && !this.#stopping && !this.#dropped.has(socket)) this.#connectError('closed')
        const wasConnected = s.connected
        if (wasConnected) this.#counts.disconnects++
        s.connected = false
        // What was in flight is not acknowledged; a real device would resend it.
        s.inflight.clear()
        settle()
        // A real device comes back: after a random delay (full jitter),
        // longer after each failed try.
        if (!this.#stopping && this.#o.reconnect) {
          s.attempts = wasConnected ? 0 : s.attempts + 1
          const delay = Math.random() * Math.min(Math.max(30_000, this.#o.reconnectSpreadMs), this.#o.reconnectSpreadMs * 2 ** s.attempts)
          const at = Math.max(this.#reconnectTick, Math.floor((performance.now() - this.#startedAt + delay) / TICK_MS))
          const due = this.#reconnects.get(at)
          if (due) due.push(s)
          else this.#reconnects.set(at, [s])
        }
      })
    })
  }

  #connectError(code: string): void {
    this.#errorCodes[code] = (this.#errorCodes[code] ?? 0) + 1
  }

  #onTick(): void {
    this.#reconnectDue()
    const now = Date.now()
    const { skip, run } = slotsDue(this.#startedAt, performance.now(), TICK_MS, this.#tick, this.#wheel.length)
    this.#tick += skip
    for (let n = run; n > 0; n--) {
      const slot = this.#tick % this.#wheel.length
      const due = this.#wheel[slot] ?? []
      this.#wheel[slot] = []
      for (const s of due) {
        if (s.connected && !s.injections.some((j) => j.silence && now >= j.fromMs && now < j.toMs)) this.#publish(s, now)
        this.#wheel[(this.#tick + s.intervalTicks) % this.#wheel.length]?.push(s)
      }
      this.#tick++
    }
  }

  /** Starts the reconnects whose tick has come. */
  #reconnectDue(): void {
    if (this.#stopping) return
    const tick = Math.floor((performance.now() - this.#startedAt) / TICK_MS)
    if (this.#reconnects.size === 0) {
      this.#reconnectTick = tick + 1
      return
    }
    for (; this.#reconnectTick <= tick; this.#reconnectTick++) {
      const due = this.#reconnects.get(this.#reconnectTick)
      if (!due) continue
      this.#reconnects.delete(this.#reconnectTick)
      for (const s of due) {
        this.#counts.reconnectAttempts++
        void this.#connect(s)
      }
    }
  }

  #publish(s: DeviceState, now: number): void {
    if (this.#o.qos === 1 && s.inflight.size >= (this.#o.window ?? DEFAULT_WINDOW)) {
      this.#counts.skipped++
      return
    }
    const values: Record<string, number> = {}
    for (const m of s.metrics) {
      const spread = (m.max - m.min) * 0.01
      const v = m.typical + (Math.random() - 0.5) * 2 * spread
      values[m.name] = Math.round(Math.min(m.max, Math.max(m.min, v)) * 100) / 100
    }
    for (const j of s.injections) {
      if (now < j.fromMs || now >= j.toMs || !j.values) continue
      for (const [k, base] of Object.entries(j.values)) {
        const m = s.metrics.find((x) => x.name === k)
        if (!m) continue
        const v = base + (Math.random() - 0.5) * 2 * (j.noise?.[k] ?? 0)
        values[k] = Math.round(Math.min(m.max, Math.max(m.min, v)) * 100) / 100
      }
    }
    s.seq++
    const payload = Buffer.from(JSON.stringify({ ts: now, seq: s.seq, values }))
    const topic = s.topic
    s.lastSentAt = now
    if (this.#o.qos === 1) {
      const id = s.nextId
      s.nextId = s.nextId === 65535 ? 1 : s.nextId + 1
      s.inflight.set(id, performance.now())
      s.socket?.write(publishPacket(topic, payload, 1, id))
    } else {
      s.socket?.write(publishPacket(topic, payload, 0))
    }
    this.#counts.sent++
  }
}
