// Ack-through and backpressure: a QoS 1 PUBACK means the rows are stored.
// The store is stalled for real by holding the TCP link between the
// gateway's writer and the store owner.
import { join } from 'node:path'
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../lib/config.ts'
import { mqttConfig } from '../../ingest/mqtt/config.ts'
import { loadDevices, type DeviceRegistry } from '../../ingest/mqtt/devices.ts'
import { EVENTS_COLUMNS, MqttGateway, TURN_ROWS_MAX } from '../../ingest/mqtt/gateway.ts'
import { READINGS_COLUMNS, type DeviceInfo } from '../../ingest/mqtt/telemetry.ts'
import { deviceToken } from '../../ingest/mqtt/tokens.ts'
import { generateCity } from '../../simulators/city/generate.ts'
import { DeviceFleet } from '../../simulators/devices/fleet.ts'
import { connectPacket, PacketReader, PINGREQ, publishPacket, type ServerPacket } from '../../simulators/devices/packets.ts'
import { connect as tcpConnect, type Socket } from 'node:net'
import { writeCity } from '../../registry/city-store.ts'
import { readOwnerInfo } from '../../store/client.ts'
import { DeadLetterWriter, openMigratedStore, StoreOwner, StoreWriter, type Store, type WriterConfig } from '../../store/index.ts'
import { tempDir } from '../helpers.ts'
import { Link } from '../tcp-link.ts'

const SECRET = 'ack-secret'
let store: Store
let owner: StoreOwner
let writerCfg: WriterConfig
let devices: DeviceRegistry
const cleanup: (() => Promise<void>)[] = []

beforeAll(async () => {
  ;({ store, writerCfg } = await openMigratedStore({ env: {} }, { dataDir: join(tempDir(), 'db') }))
  owner = new StoreOwner(store)
  await owner.start()
  await writeCity(store.client, generateCity({ seed: 5, scale: 0.01 }), writerCfg)
  devices = await loadDevices(store.client)
})

afterAll(async () => {
  for (const f of cleanup.reverse()) await f()
  await owner?.stop(Date.now() + 5_000)
  await store?.close()
})

/** A gateway whose readings writer reaches the store through `link`. */
async function gatewayThrough(link: Link, cfg: Partial<WriterConfig>, mqttOverrides: Record<string, number> = {}): Promise<{ gateway: MqttGateway; readings: StoreWriter }> {
  const info = readOwnerInfo(store.dataDir)
  if (!info) throw new Error('no owner file')
  const client: ClickHouseClient = createClient({ url: await link.listen(), username: 'citytwin', password: info.token, database: store.database, keep_alive: { enabled: false }, log: { level: ClickHouseLogLevel.OFF } })
  const writer = { ...writerCfg, flushIntervalMs: 20, ...cfg }
  const dead = new DeadLetterWriter(store.client, writer)
  const readings = new StoreWriter({ client, table: 'readings', columns: READINGS_COLUMNS, config: writer, deadLetters: dead })
  const events = new StoreWriter({ client: store.client, table: 'events', columns: EVENTS_COLUMNS, config: writer, deadLetters: dead })
  const gateway = new MqttGateway({ config: loadConfig(mqttConfig, { env: {}, overrides: { port: 0, host: '127.0.0.1', burstPerDevice: 1000, ratePerDevicePerS: 1000, ...mqttOverrides } }), devices, secret: SECRET, readings, events, deadLetters: dead })
  for (const c of [dead, readings, events, gateway]) await c.start()
  cleanup.push(async () => {
    link.release()
    await gateway.stop(Date.now() + 2_000)
    for (const c of [readings, events, dead]) await c.stop(Date.now() + 5_000).catch(() => undefined)
    await client.close()
    link.close()
  })
  return { gateway, readings }
}

function device(type: string): DeviceInfo {
  const d = [...devices.values()].find((x) => x.type === type)
  if (!d) throw new Error(`no ${type}`)
  return d
}

async function connectAs(gateway: MqttGateway, d: DeviceInfo): Promise<MqttClient> {
  return mqtt.connectAsync(`mqtt://127.0.0.1:${gateway.port}`, { username: d.id, password: deviceToken(SECRET, d.id), reconnectPeriod: 0 })
}

async function stored(deviceId: string): Promise<number> {
  const rs = await store.client.query({ query: `SELECT toUInt32(count()) AS n FROM readings WHERE device_id = '${deviceId}'`, format: 'JSONEachRow' })
  return (await rs.json<{ n: number }>())[0]?.n ?? -1
}

/** A device spoken for over raw TCP: connected (CONNACK seen), with what the gateway sent it and its telemetry packets. */
interface RawDevice {
  socket: Socket
  got: ServerPacket[]
  closed: () => boolean
  pub: (seq: number) => Buffer
  pubacks: () => number[]
}

async function rawDevice(gateway: MqttGateway, d: DeviceInfo, keepaliveS: number): Promise<RawDevice> {
  const socket = tcpConnect({ port: gateway.port, host: '127.0.0.1', noDelay: true })
  const reader = new PacketReader()
  const got: ServerPacket[] = []
  let closed = false
  socket.on('data', (b: Buffer) => got.push(...reader.push(b)))
  socket.on('close', () => (closed = true))
  socket.on('error', () => undefined)
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  socket.write(connectPacket(d.id, d.id, deviceToken(SECRET, d.id), keepaliveS))
  await expect.poll(() => got.some((p) => p.type === 'connack')).toBe(true)
  return {
    socket, got, closed: () => closed,
    pub: (seq) => publishPacket(`devices/${d.id}/telemetry`, Buffer.from(JSON.stringify({ ts: Date.now(), seq, values: { tilt_deg: seq } })), 1, seq),
    pubacks: () => got.flatMap((p) => (p.type === 'puback' ? [p.packetId] : [])),
  }
}

/** A manhole cover connected over raw TCP to a gateway with a window of one, whose store holds every insert until `link.release()`. */
async function heldDevice(keepaliveS: number): Promise<RawDevice & { link: Link; gateway: MqttGateway; d: DeviceInfo }> {
  const link = new Link(new URL(owner.url))
  link.mode = 'hold'
  const { gateway } = await gatewayThrough(link, {}, { maxInFlightPerConnection: 1 })
  const d = device('manhole_cover')
  return { link, gateway, d, ...(await rawDevice(gateway, d, keepaliveS)) }
}

describe('ack-through', () => {
  it('keeps what a device sent beyond its window as bytes while the store is stalled, answers its PINGREQ meanwhile, and acknowledges all in order once stored', async () => {
    const { link, gateway, d, socket, got, pub, pubacks } = await heldDevice(30)
    try {
      socket.write(Buffer.concat([pub(1), pub(2), pub(3), pub(4), pub(5), PINGREQ]))
      await expect.poll(() => got.some((p) => p.type === 'pingresp')).toBe(true)
      // One in flight (the window); the other four are bytes in the lane, not packets waiting in admission.
      expect(gateway.stats()).toMatchObject({ inFlight: 1, waitingPackets: 0 })
      expect(got.filter((p) => p.type === 'puback')).toEqual([])
      link.release()
      await expect.poll(() => got.filter((p) => p.type === 'puback').length, { timeout: 10_000 }).toBe(5)
      expect(pubacks()).toEqual([1, 2, 3, 4, 5])
      expect(await stored(d.id)).toBe(5)
    } finally {
      socket.destroy()
    }
  })

  it('keeps held bytes that come in many reads, packets split between them and PINGREQs among them, and acknowledges each message once in order', async () => {
    const { link, socket, got, pub, pubacks, d } = await heldDevice(30)
    const before = await stored(d.id)
    try {
      // 20 messages (about 2.5 KB, past the lane's first buffer several times over) with a PINGREQ after every
      // fourth, written in pieces of 37 bytes: most reads end inside a packet, and the lane keeps growing
      // what it holds while there is no room.
      const packets: Buffer[] = []
      for (let seq = 1; seq <= 20; seq++) packets.push(pub(seq), ...(seq % 4 === 0 ? [PINGREQ] : []))
      const bytes = Buffer.concat(packets)
      for (let at = 0; at < bytes.length; at += 37) {
        socket.write(bytes.subarray(at, at + 37))
        await new Promise((r) => setTimeout(r, 2))
      }
      // Each PINGREQ answered while the data before it waits for room.
      await expect.poll(() => got.filter((p) => p.type === 'pingresp').length).toBe(5)
      expect(pubacks()).toEqual([])
      link.release()
      await expect.poll(() => pubacks().length, { timeout: 10_000 }).toBe(20)
      expect(pubacks()).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
      expect(await stored(d.id)).toBe(before + 20)
    } finally {
      socket.destroy()
    }
  })

  it('keeps a device whose window is full connected past one and a half keep-alives while the store is stalled: its PINGREQs are read and answered', async () => {
    // Keep-alive 2 s: aedes closes a connection it has heard nothing from for 3 s.
    const { link, gateway, socket, got, pub, closed } = await heldDevice(2)
    try {
      // One in flight (the window), one held: the device then waits, pinging, as a device with a full QoS 1 window does.
      socket.write(Buffer.concat([pub(1), pub(2)]))
      await expect.poll(() => gateway.stats()).toMatchObject({ inFlight: 1 })
      for (let i = 0; i < 6; i++) {
        await new Promise((r) => setTimeout(r, 800))
        socket.write(PINGREQ)
      }
      await expect.poll(() => got.filter((p) => p.type === 'pingresp').length).toBe(6)
      expect(closed()).toBe(false)
      expect(got.filter((p) => p.type === 'puback')).toEqual([])
      link.release()
      await expect.poll(() => got.filter((p) => p.type === 'puback').length, { timeout: 10_000 }).toBe(2)
      expect(closed()).toBe(false)
    } finally {
      socket.destroy()
    }
  })

  it('goes on reading a held device that sent more than the hold keeps, once room frees, without the device sending anything more', async () => {
    const { link, gateway, socket, got, pub, pubacks } = await heldDevice(60)
    try {
      socket.write(pub(1))
      await expect.poll(() => gateway.stats()).toMatchObject({ inFlight: 1 })
      // Eight reads of ten packets each, about 8 KB: the lane holds about 4 KB, then pauses, and the rest waits in the stream.
      let seq = 1
      for (let w = 0; w < 8; w++) {
        socket.write(Buffer.concat(Array.from({ length: 10 }, () => pub(++seq))))
        await new Promise((r) => setTimeout(r, 30))
      }
      socket.write(PINGREQ)
      await new Promise((r) => setTimeout(r, 100))
      link.release()
      // One at a time (a window of one) through the stalled-then-released store, each PUBACK in order, and the PINGREQ answered.
      await expect.poll(() => got.filter((p) => p.type === 'puback').length, { timeout: 20_000 }).toBe(seq)
      expect(pubacks()).toEqual(Array.from({ length: seq }, (_, i) => i + 1))
      await expect.poll(() => got.some((p) => p.type === 'pingresp')).toBe(true)
    } finally {
      socket.destroy()
    }
  })

  it('a simulated device leaves at most its window unacknowledged while the store is stalled, and skips the readings due meanwhile', async () => {
    const link = new Link(new URL(owner.url))
    link.mode = 'hold'
    const { gateway } = await gatewayThrough(link, {})
    const d = device('water_level')
    // Ten readings a second; the gateway would take eight at once (its window), the device leaves three unacknowledged.
    const fleet = new DeviceFleet([{ id: d.id, type: d.type, intervalS: 1 }], {
      host: '127.0.0.1', port: gateway.port, sources: [], portOffset: 0, secret: SECRET, qos: 1, rateScale: 10,
      connectConcurrency: 1, keepaliveS: 60, reconnect: false, reconnectSpreadMs: 1_000, window: 3,
    })
    await fleet.start()
    try {
      await expect.poll(() => fleet.stats().skipped, { timeout: 10_000 }).toBeGreaterThanOrEqual(5)
      expect(fleet.stats()).toMatchObject({ sent: 3, inflight: 3, acked: 0 })
      link.release()
      await expect.poll(() => fleet.stats().acked, { timeout: 10_000 }).toBeGreaterThanOrEqual(4)
      expect(fleet.stats().inflight).toBeLessThanOrEqual(3)
    } finally {
      await fleet.stop(2_000)
    }
  })

  it('sends no PUBACK while the store is stalled, and sends it once the row is stored', async () => {
    const link = new Link(new URL(owner.url))
    link.mode = 'hold'
    const { gateway } = await gatewayThrough(link, {})
    const d = device('smoke')
    const c = await connectAs(gateway, d)
    let acked = false
    const puback = c.publishAsync(`devices/${d.id}/telemetry`, JSON.stringify({ ts: Date.now(), seq: 1, values: { temperature_c: 20 } }), { qos: 1 }).then(() => (acked = true))
    while (link.accepted < 1) await new Promise((r) => setTimeout(r, 10)) // the INSERT is on the wire and held
    await new Promise((r) => setTimeout(r, 100))
    expect(acked).toBe(false)
    expect(await stored(d.id)).toBe(0)
    link.release()
    await puback
    expect(await stored(d.id)).toBe(1)
    await c.endAsync()
  })

  it('closes the connection without a PUBACK when the writer is stopped, and nothing is stored', async () => {
    const link = new Link(new URL(owner.url))
    const { gateway, readings } = await gatewayThrough(link, {})
    await readings.stop(Date.now() + 1_000)
    const d = device('gas')
    const c = await connectAs(gateway, d)
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()))
    let acked = false
    c.publish(`devices/${d.id}/telemetry`, JSON.stringify({ ts: Date.now(), seq: 1, values: { ch4_pct_lel: 1 } }), { qos: 1 }, (err) => {
      if (!err) acked = true
    })
    await closed
    expect(acked).toBe(false)
    expect(await stored(d.id)).toBe(0)
    c.end(true)
  })

  it('stops reading a device\'s socket while the store is stalled, instead of buffering', async () => {
    const link = new Link(new URL(owner.url))
    link.mode = 'hold'
    const { gateway, readings } = await gatewayThrough(link, { maxBatchRows: 100, queueRows: 200, concurrency: 1 })
    const d = device('air_quality')
    const c = await connectAs(gateway, d)
    const now = Date.now()
    // 60 messages of 100 readings (about 9 KB each): more than one socket read.
    const acks: Promise<unknown>[] = []
    for (let m = 0; m < 60; m++) {
      const readingsOfMessage = Array.from({ length: 100 }, (_, i) => ({ ts: now - 60_000 + m * 100 + i, seq: m * 100 + i + 1, values: { pm25_ug_m3: 40, pm10_ug_m3: 70, no2_ug_m3: 30 } }))
      acks.push(c.publishAsync(`devices/${d.id}/telemetry`, JSON.stringify({ readings: readingsOfMessage }), { qos: 1 }))
    }
    while (link.accepted < 1) await new Promise((r) => setTimeout(r, 10))
    await new Promise((r) => setTimeout(r, 300))
    const held = gateway.stats() as { received: number }
    expect(held.received).toBeLessThan(60)
    // The writer's queue, and one write over it: the messages the gateway took in one turn (TURN_ROWS_MAX), or one message.
    expect((readings.stats() as { queued: number }).queued).toBeLessThanOrEqual(200 + TURN_ROWS_MAX)
    link.release()
    await Promise.all(acks)
    expect(await stored(d.id)).toBe(60 * 100 * 3)
    expect((gateway.stats() as { received: number }).received).toBe(60)
    await c.endAsync()
  })

  it('holds no more than maxInFlight messages unacknowledged when many devices trickle in while the store is stalled', async () => {
    const link = new Link(new URL(owner.url))
    link.mode = 'hold'
    const { gateway } = await gatewayThrough(link, {}, { maxInFlight: 5 })
    const noise = [...devices.values()].filter((x) => x.type === 'noise').slice(0, 20)
    const clients = await Promise.all(noise.map((d) => connectAs(gateway, d)))
    // Each device sends three messages, one at a time as separate packets, without waiting for acknowledgements.
    const acks: Promise<unknown>[] = []
    for (let m = 1; m <= 3; m++) {
      clients.forEach((c, k) => {
        const d = noise[k] as DeviceInfo
        acks.push(c.publishAsync(`devices/${d.id}/telemetry`, JSON.stringify({ ts: Date.now(), seq: m, values: { noise_dba: 50 } }), { qos: 1 }))
      })
      await new Promise((r) => setTimeout(r, 50))
    }
    while (link.accepted < 1) await new Promise((r) => setTimeout(r, 10))
    await new Promise((r) => setTimeout(r, 200))
    const held = gateway.stats() as { inFlight: number; inFlightPeak: number; waitingConnections: number; received: number }
    // Without the cap all 60 would be taken in and held; with it, exactly 5 are, and the rest wait in the sockets.
    expect(held.waitingConnections).toBeGreaterThan(0)
    expect(held.received).toBeLessThan(60)
    expect(held.inFlight).toBe(5)
    expect(held.inFlightPeak).toBe(5)
    // The data held back counts as the gateway's backlog (the twin waits that long before judging silence).
    expect(gateway.backlogMs(Date.now())).toBeGreaterThanOrEqual(200)
    link.release()
    await Promise.all(acks)
    for (const d of noise) expect(await stored(d.id)).toBe(3)
    expect((gateway.stats() as { inFlight: number }).inFlight).toBe(0)
    await Promise.all(clients.map((c) => c.endAsync()))
  })

  it('answers a new device\'s CONNECT and PINGREQ while every slot is taken and other devices\' data waits', async () => {
    const link = new Link(new URL(owner.url))
    link.mode = 'hold'
    const { gateway } = await gatewayThrough(link, {}, { maxInFlight: 1 })
    const [first, second, late] = [...devices.values()].filter((x) => x.type === 'streetlight').slice(0, 3) as [DeviceInfo, DeviceInfo, DeviceInfo]
    const a = await connectAs(gateway, first)
    const b = await connectAs(gateway, second)
    const acks = [
      a.publishAsync(`devices/${first.id}/telemetry`, JSON.stringify({ ts: Date.now(), seq: 1, values: { power_w: 120 } }), { qos: 1 }),
      b.publishAsync(`devices/${second.id}/telemetry`, JSON.stringify({ ts: Date.now(), seq: 1, values: { power_w: 121 } }), { qos: 1 }),
    ]
    while ((gateway.stats() as { waitingConnections: number }).waitingConnections < 1) await new Promise((r) => setTimeout(r, 10))
    // The one slot is held by a stalled insert and a packet waits: a newcomer is still let in and kept alive.
    const c = await connectAs(gateway, late)
    const pong = new Promise<void>((resolve) => c.once('packetreceive', (p) => p.cmd === 'pingresp' && resolve()))
    c.sendPing()
    await pong
    expect((gateway.stats() as { inFlight: number; waitingConnections: number }).waitingConnections).toBe(1)
    link.release()
    await Promise.all(acks)
    expect(await stored(first.id)).toBe(1)
    expect(await stored(second.id)).toBe(1)
    await Promise.all([a, b, c].map((x) => x.endAsync()))
  })
})
