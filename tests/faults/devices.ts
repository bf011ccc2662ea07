// Devices for the fault suite: QoS 1 publishers that keep what they sent
// until it is acknowledged and send it again (DUP) after a reconnect, as
// MQTT 3.1.1 asks of a client (MQTT-4.4.0-1). Unlike the load simulator,
// which forgets what was in flight when a connection drops, these remember
// every seq they sent and every seq acknowledged, so a fault case can say,
// message by message, what was acknowledged and whether the store holds it.
import { connect, type Socket } from 'node:net'
import { deviceToken } from '../../ingest/mqtt/tokens.ts'
import { connectPacket, DISCONNECT, PacketReader, publishPacket } from '../../simulators/devices/packets.ts'

export interface FaultDeviceSpec {
  id: string
  topic: string
  /** The one metric it reports (a message is one row). */
  metric: string
  /** The value it reports (default: its seq modulo 50). */
  value?: number
}

export interface FleetCounts {
  /** Distinct messages sent (a retransmission is not a new message). */
  sent: number
  acknowledged: number
  /** Messages sent again with DUP after a reconnect. */
  resent: number
  /** Sent, not acknowledged (yet). */
  unacknowledged: number
  connected: number
  /** Readings not sent: the device was not connected, or its window was full. */
  skipped: number
  /** Bytes handed to the sockets. */
  bytesWritten: number
  /** Connections that ended without the device ending them. */
  dropped: number
}

interface Unacked {
  seq: number
  packet: Buffer
}

class FaultDevice {
  readonly sent = new Set<number>()
  readonly acked = new Set<number>()
  resent = 0
  skipped = 0
  bytesWritten = 0
  dropped = 0
  connected = false
  /** Off: it neither sends, reads, nor reconnects (a power cut: its connection is left as it was, with no FIN). */
  powered = true
  /** By packet id, oldest first: what goes out again after a reconnect. */
  readonly #unacked = new Map<number, Unacked>()
  #socket: Socket | undefined
  #seq = 0
  #nextId = 1
  #stopping = false

  constructor(readonly spec: FaultDeviceSpec, readonly o: { port: number; password: string; window: number; clockSkewMs: number; keepaliveS: number }) {}

  get unacked(): number {
    return this.#unacked.size
  }

  connect(): void {
    if (this.#stopping || !this.powered) return
    const socket = connect({ host: '127.0.0.1', port: this.o.port, noDelay: true })
    this.#socket = socket
    // A reader per connection: a packet cut off by a dropped connection is not the start of the next one's.
    const reader = new PacketReader()
    socket.on('connect', () => socket.write(connectPacket(this.spec.id, this.spec.id, this.o.password, this.o.keepaliveS)))
    socket.on('data', (chunk: Buffer) => {
      for (const p of reader.push(chunk)) {
        if (p.type === 'connack') {
          if (p.returnCode !== 0) {
            socket.destroy()
            continue
          }
          this.connected = true
          // What the last connection did not see acknowledged goes again, in order, marked DUP.
          for (const u of this.#unacked.values()) {
            const again = Buffer.from(u.packet)
            again[0] = (again[0] as number) | 0x08
            this.resent++
            this.#write(again)
          }
        } else if (p.type === 'puback') {
          const u = this.#unacked.get(p.packetId)
          if (u) {
            this.#unacked.delete(p.packetId)
            this.acked.add(u.seq)
          }
        }
      }
    })
    socket.on('error', () => undefined)
    socket.on('close', () => {
      if (this.connected && !this.#stopping) this.dropped++
      this.connected = false
      if (this.#socket === socket) this.#socket = undefined
      // A device comes back by itself, after a short random wait.
      if (!this.#stopping && this.powered) setTimeout(() => this.connect(), 100 + Math.random() * 400).unref()
    })
  }

  publish(now: number): void {
    if (!this.powered) return
    if (!this.connected || this.#unacked.size >= this.o.window) {
      this.skipped++
      return
    }
    const seq = ++this.#seq
    const id = this.#nextId
    this.#nextId = id === 65535 ? 1 : id + 1
    const payload = Buffer.from(JSON.stringify({ ts: now + this.o.clockSkewMs, seq, values: { [this.spec.metric]: this.spec.value ?? seq % 50 } }))
    const packet = publishPacket(this.spec.topic, payload, 1, id)
    this.#unacked.set(id, { seq, packet })
    this.sent.add(seq)
    this.#write(packet)
  }

  /** The power goes: nothing more is sent or read, and the connection is left open, as a dead device leaves it. */
  powerOff(): void {
    this.powered = false
    this.connected = false
    this.#socket?.pause()
  }

  /** The power comes back: the device starts afresh, with a new connection. */
  powerOn(): void {
    this.powered = true
    const old = this.#socket
    this.#socket = undefined
    old?.removeAllListeners('close')
    old?.resetAndDestroy()
    this.connect()
  }

  /** Stops publishing and reconnecting, and says goodbye if connected. */
  end(): Promise<void> {
    this.#stopping = true
    const socket = this.#socket
    if (!socket || socket.destroyed) return Promise.resolve()
    return new Promise((resolve) => {
      socket.once('close', () => resolve())
      socket.end(DISCONNECT)
      setTimeout(() => socket.destroy(), 2_000).unref()
    })
  }

  #write(b: Buffer): void {
    this.bytesWritten += b.length
    this.#socket?.write(b)
  }
}

export interface FleetOptions {
  port: number
  /** The deployment's device secret (CITYTWIN_DEVICE_SECRET of the system under test). */
  secret: string
  /** Messages per second, per device. */
  ratePerS: number
  /** Most messages a device leaves unacknowledged (default 10). */
  window?: number
  /** How far the devices' clocks are from the test's (ms; positive: ahead). */
  clockSkewMs?: number
  /** MQTT keep-alive the devices ask for (default 30 s; the gateway closes a connection silent for 1.5 times it). */
  keepaliveS?: number
}

/** A set of QoS 1 devices publishing at a steady rate until stopped. */
export class FaultFleet {
  readonly #devices: FaultDevice[]
  readonly #o: FleetOptions
  #timer: NodeJS.Timeout | undefined
  #tick = 0

  constructor(specs: readonly FaultDeviceSpec[], o: FleetOptions) {
    this.#o = o
    this.#devices = specs.map((s) => new FaultDevice(s, { port: o.port, password: deviceToken(o.secret, s.id), window: o.window ?? 10, clockSkewMs: o.clockSkewMs ?? 0, keepaliveS: o.keepaliveS ?? 30 }))
  }

  get devices(): readonly { spec: FaultDeviceSpec; sent: ReadonlySet<number>; acked: ReadonlySet<number> }[] {
    return this.#devices
  }

  /** Connects every device and starts publishing; resolves once all are connected (or after `timeoutMs`). */
  async start(timeoutMs = 30_000): Promise<void> {
    for (const d of this.#devices) d.connect()
    // Ticks of 100 ms; each device's turn comes round ratePerS times a second.
    const everyTicks = Math.max(1, Math.round(10 / this.#o.ratePerS))
    const perTick = Math.max(1, Math.round(this.#o.ratePerS / 10))
    this.#timer = setInterval(() => {
      const now = Date.now()
      this.#tick++
      this.#devices.forEach((d, i) => {
        if ((this.#tick + i) % everyTicks !== 0) return
        for (let k = 0; k < perTick; k++) d.publish(now)
      })
    }, 100)
    await until(() => this.counts().connected === this.#devices.length, timeoutMs, 'every fault-suite device connected')
  }

  counts(): FleetCounts {
    const c: FleetCounts = { sent: 0, acknowledged: 0, resent: 0, unacknowledged: 0, connected: 0, skipped: 0, bytesWritten: 0, dropped: 0 }
    for (const d of this.#devices) {
      c.sent += d.sent.size
      c.acknowledged += d.acked.size
      c.resent += d.resent
      c.unacknowledged += d.unacked
      c.skipped += d.skipped
      c.bytesWritten += d.bytesWritten
      c.dropped += d.dropped
      if (d.connected) c.connected++
    }
    return c
  }

  /** Every device loses its power at once (see FaultDevice.powerOff). */
  powerOff(): void {
    for (const d of this.#devices) d.powerOff()
  }

  powerOn(): void {
    for (const d of this.#devices) d.powerOn()
  }

  /** Acknowledged messages per device. */
  ackedPerDevice(): number[] {
    return this.#devices.map((d) => d.acked.size)
  }

  /** Stops publishing, waits (up to `graceMs`) for every message to be acknowledged, reconnecting as needed, then disconnects. */
  async stop(graceMs = 30_000): Promise<FleetCounts> {
    clearInterval(this.#timer)
    const deadline = Date.now() + graceMs
    while (Date.now() < deadline && this.#devices.some((d) => d.powered && d.unacked > 0)) await sleep(50)
    await Promise.all(this.#devices.map((d) => d.end()))
    return this.counts()
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Waits until `ok()` holds; throws naming `what` after `timeoutMs`. */
export async function until(ok: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(50)
  }
}

/** The CONNACK return code a device gets with `token` (0: accepted, 4: bad user name or password, 5: not authorized). */
export function connackOf(port: number, id: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port })
    const reader = new PacketReader()
    s.on('connect', () => s.write(connectPacket(id, id, token, 30)))
    s.on('data', (d: Buffer) => {
      for (const p of reader.push(d)) {
        if (p.type === 'connack') {
          resolve(p.returnCode)
          s.destroy()
        }
      }
    })
    s.on('error', reject)
    s.on('close', () => reject(new Error('closed before a CONNACK')))
  })
}
