// The fast lane (ingest/mqtt/fast-lane.ts): its framer on its own, and the
// real gateway (aedes on a random port, chDB in a temp dir) spoken to over
// raw TCP, with the lane on and off: a device must not tell the difference.
import { connect as tcpConnect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../lib/config.ts'
import { mqttConfig } from '../../ingest/mqtt/config.ts'
import { nextFrame, ownCopy, puback } from '../../ingest/mqtt/fast-lane.ts'
import type { DeviceRegistry } from '../../ingest/mqtt/devices.ts'
import { MqttGateway } from '../../ingest/mqtt/gateway.ts'
import { LastSeqLookup } from '../../ingest/mqtt/last-seq.ts'
import type { DeviceInfo } from '../../ingest/mqtt/telemetry.ts'
import { deviceToken } from '../../ingest/mqtt/tokens.ts'
import { connectAsync } from 'mqtt'
import mqttPacket from 'mqtt-packet'
import { connectPacket, DISCONNECT, PacketReader, PINGREQ, publishPacket, type ServerPacket } from '../../simulators/devices/packets.ts'
import type { Store } from '../../store/index.ts'
import { openGatewayStore, type GatewayStore } from './gateway-store.ts'

const MAX = 1_000

describe('fast lane: framing', () => {
  const topic = 'devices/D1/telemetry'

  it('frames a QoS 1 PUBLISH: its topic, message id and payload', () => {
    const p = publishPacket(topic, Buffer.from('{"a":1}'), 1, 513)
    const f = nextFrame(p, 0, MAX)
    expect(f).toMatchObject({ kind: 'publish', end: p.length, qos: 1, dup: false, messageId: 513 })
    if (f.kind !== 'publish') return
    expect(p.toString('utf8', f.topicStart, f.topicEnd)).toBe(topic)
    expect(p.toString('utf8', f.payloadStart, f.end)).toBe('{"a":1}')
  })

  it('frames a QoS 0 PUBLISH, a DUP, a long payload (two length bytes), and finds the next packet after each', () => {
    const q0 = publishPacket(topic, Buffer.from('x'), 0)
    const dup = publishPacket(topic, Buffer.from('y'), 1, 7)
    dup[0] = (dup[0] as number) | 8
    const long = publishPacket(topic, Buffer.alloc(300, 0x61), 1, 9)
    const all = Buffer.concat([q0, dup, long, PINGREQ])
    const a = nextFrame(all, 0, MAX)
    expect(a).toMatchObject({ kind: 'publish', qos: 0, messageId: 0, end: q0.length })
    const b = nextFrame(all, q0.length, MAX)
    expect(b).toMatchObject({ kind: 'publish', qos: 1, dup: true, messageId: 7 })
    const c = nextFrame(all, q0.length + dup.length, MAX)
    expect(c).toMatchObject({ kind: 'publish', messageId: 9, end: q0.length + dup.length + long.length })
    if (c.kind === 'publish') expect(c.end - c.payloadStart).toBe(300)
    expect(nextFrame(all, all.length - 2, MAX)).toEqual({ kind: 'other', end: all.length })
  })

  it('says a packet is partial, with its size once the header is complete', () => {
    const p = publishPacket(topic, Buffer.alloc(300), 1, 1)
    expect(nextFrame(p.subarray(0, 1), 0, MAX)).toEqual({ kind: 'partial', size: 0 })
    expect(nextFrame(p.subarray(0, 2), 0, MAX)).toEqual({ kind: 'partial', size: 0 }) // the length's first byte says more follow
    expect(nextFrame(p.subarray(0, 10), 0, MAX)).toEqual({ kind: 'partial', size: p.length })
    expect(nextFrame(p, p.length, MAX)).toEqual({ kind: 'partial', size: 0 })
  })

  it('leaves to aedes what the lane does not take: QoS 2, QoS 0 with DUP, message id 0, a bad length, a short body, a packet above the limit', () => {
    const q2 = publishPacket(topic, Buffer.from('x'), 1, 5)
    q2[0] = 0x34
    const q0dup = publishPacket(topic, Buffer.from('x'), 0)
    q0dup[0] = 0x38
    const id0 = publishPacket(topic, Buffer.from('x'), 1, 0)
    for (const b of [q2, q0dup, id0]) expect(nextFrame(b, 0, MAX).kind).toBe('unusual')
    expect(nextFrame(Buffer.from([0x32, 0xff, 0xff, 0xff, 0xff, 0x7f]), 0, MAX)).toEqual({ kind: 'unusual', reason: 'malformed remaining length' })
    expect(nextFrame(Buffer.from([0x32, 0x05, 0xff, 0xff, 0x00, 0x01, 0x02]), 0, MAX).kind).toBe('unusual')
    expect(nextFrame(Buffer.from([0x32, 0x01, 0x00]), 0, MAX).kind).toBe('unusual')
    expect(nextFrame(publishPacket(topic, Buffer.alloc(MAX), 1, 1), 0, MAX).kind).toBe('unusual')
  })

  it('keeps held bytes in memory of their own, not in a slice of a pooled slab or of the socket read', () => {
    // Buffer.concat of a few hundred bytes is a slice of Node's shared 8 KB pool: kept, it keeps the whole slab.
    const pooled = Buffer.concat([Buffer.from('ab'), Buffer.from('cd')])
    expect(pooled.buffer.byteLength).toBeGreaterThan(pooled.length)
    const read = Buffer.alloc(65_536, 7)
    const kept = ownCopy([read.subarray(10, 310), Buffer.from([1, 2, 3])], 303)
    expect(kept.buffer.byteLength).toBe(303)
    expect(kept.byteOffset).toBe(0)
    expect([...kept.subarray(298)]).toEqual([7, 7, 1, 2, 3])
    read.fill(0)
    expect(kept[0]).toBe(7)
  })

  it('writes a PUBACK as the four bytes of MQTT-3.4', () => {
    expect([...puback(0x1234)]).toEqual([0x40, 0x02, 0x12, 0x34])
  })
})

const SECRET = 'lane-secret'
let fixture: GatewayStore | undefined
let store: Store
let devices: DeviceRegistry
/** The lane with lean sessions (the default), aedes alone, and the lane after aedes' own CONNECT. */
type Variant = 'on' | 'off' | 'aedes CONNECT'
const gateways: Record<Variant, MqttGateway | undefined> = { on: undefined, off: undefined, 'aedes CONNECT': undefined }
const sockets: Socket[] = []

beforeAll(async () => {
  fixture = await openGatewayStore(5, 20)
  ;({ store, devices } = fixture)
  const { readings, events, dead } = fixture
  for (const lane of ['on', 'off', 'aedes CONNECT'] as const) {
    const g = new MqttGateway({
      config: loadConfig(mqttConfig, { env: {}, overrides: { port: 0, host: '127.0.0.1', fastLane: lane !== 'off', leanSessions: lane === 'on', burstPerDevice: 100, maxInFlightPerConnection: 1 } }),
      devices, secret: SECRET, readings, events, deadLetters: dead,
    })
    await g.start()
    gateways[lane] = g
  }
})

afterAll(async () => {
  for (const s of sockets) s.destroy()
  for (const g of Object.values(gateways)) await g?.stop(Date.now() + 5_000)
  await fixture?.close()
})

/** A device on a raw socket: what it received, and whether the gateway closed it. */
class RawDevice {
  readonly received: ServerPacket[] = []
  /** The size of each read the device's socket delivered. */
  readonly reads: number[] = []
  closed = false
  readonly #reader = new PacketReader()
  readonly #waiters: (() => void)[] = []

  constructor(readonly socket: Socket, readonly device: DeviceInfo) {
    socket.on('data', (chunk: Buffer) => {
      this.reads.push(chunk.length)
      this.received.push(...this.#reader.push(chunk))
      for (const w of this.#waiters.splice(0)) w()
    })
    socket.on('close', () => {
      this.closed = true
      for (const w of this.#waiters.splice(0)) w()
    })
    socket.on('error', () => undefined)
  }

  /** Connects; `pipelined` seqs of QoS 1 telemetry go in the CONNECT's own write (`withConnect`) and right after it (`after`), before the CONNACK. */
  static async open(port: number, d: DeviceInfo, keepaliveS = 30, pipelined: { withConnect: number[]; after: number[] } = { withConnect: [], after: [] }): Promise<RawDevice> {
    const socket = tcpConnect({ port, host: '127.0.0.1', noDelay: true })
    sockets.push(socket)
    const dev = new RawDevice(socket, d)
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve())
      socket.once('error', reject)
    })
    socket.write(Buffer.concat([connectPacket(d.id, d.id, deviceToken(SECRET, d.id), keepaliveS), ...pipelined.withConnect.map((seq) => dev.telemetry(seq, 1))]))
    for (const seq of pipelined.after) socket.write(dev.telemetry(seq, 1))
    await dev.until(() => dev.received.some((p) => p.type === 'connack'))
    expect(dev.received[0]).toEqual({ type: 'connack', returnCode: 0 })
    return dev
  }

  /** Resolves once `test` holds (checked at each packet and at close); fails after 10 s. */
  async until(test: () => boolean): Promise<void> {
    const deadline = Date.now() + 10_000
    while (!test()) {
      if (this.closed) throw new Error(`connection closed; received ${JSON.stringify(this.received)}`)
      if (Date.now() > deadline) throw new Error(`timed out; received ${JSON.stringify(this.received)}`)
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve)
        setTimeout(resolve, 100)
      })
    }
  }

  telemetry(seq: number, qos: 0 | 1, id = seq): Buffer {
    const payload = Buffer.from(JSON.stringify({ ts: Date.now(), seq, values: { level_cm: seq } }))
    return publishPacket(`devices/${this.device.id}/telemetry`, payload, qos, id)
  }

  pubacks(): number[] {
    return this.received.flatMap((p) => (p.type === 'puback' ? [p.packetId] : []))
  }
}

async function storedSeqs(deviceId: string): Promise<number[]> {
  const rs = await store.client.query({ query: `SELECT toUInt32(seq) AS seq FROM readings WHERE device_id = {id:String} ORDER BY seq`, query_params: { id: deviceId }, format: 'JSONEachRow' })
  return (await rs.json<{ seq: number }>()).map((r) => r.seq)
}

const waterLevel = (nth: number): DeviceInfo => {
  const d = [...devices.values()].filter((x) => x.type === 'water_level')[nth]
  if (!d) throw new Error(`no water_level device ${nth}`)
  return d
}

describe.each([['on', 0], ['off', 10], ['aedes CONNECT', 50]] as const)('fast lane %s: what a device sees', (lane, base) => {
  const port = (): number => gateways[lane]?.port ?? 0

  it('stores a PUBLISH that arrives a byte at a time, and acknowledges it once', async () => {
    const dev = await RawDevice.open(port(), waterLevel(base))
    const p = dev.telemetry(1, 1, 41)
    for (const byte of p) {
      dev.socket.write(Buffer.from([byte]))
      await new Promise((r) => setTimeout(r, 1))
    }
    await dev.until(() => dev.pubacks().length === 1)
    expect(dev.pubacks()).toEqual([41])
    expect(await storedSeqs(dev.device.id)).toEqual([1])
  })

  it('stores a large PUBLISH that arrives in pieces larger each time, and acknowledges it once', async () => {
    const dev = await RawDevice.open(port(), waterLevel(base + 9))
    // Several kilobytes of readings: what the lane keeps of the packet until its end arrives grows past its first buffer, twice.
    const readings = Array.from({ length: 60 }, (_, i) => ({ ts: Date.now(), seq: 10 + i, values: { level_cm: i } }))
    const p = publishPacket(`devices/${dev.device.id}/telemetry`, Buffer.from(JSON.stringify({ readings })), 1, 42)
    for (const [from, to] of [[0, 3], [3, 300], [300, 1_200], [1_200, p.length]] as const) {
      dev.socket.write(p.subarray(from, to))
      await new Promise((r) => setTimeout(r, 20))
    }
    await dev.until(() => dev.pubacks().length === 1)
    expect(dev.pubacks()).toEqual([42])
    expect(await storedSeqs(dev.device.id)).toEqual(readings.map((r) => r.seq))
  })

  it('answers the packets of one read in their order: PUBACKs in PUBLISH order, a PINGRESP, QoS 0 stored unanswered', async () => {
    const dev = await RawDevice.open(port(), waterLevel(base + 1))
    dev.socket.write(Buffer.concat([dev.telemetry(1, 1), PINGREQ, dev.telemetry(2, 1), dev.telemetry(3, 0), dev.telemetry(4, 1)]))
    await dev.until(() => dev.pubacks().length === 3 && dev.received.some((p) => p.type === 'pingresp'))
    expect(dev.pubacks()).toEqual([1, 2, 4])
    await expect.poll(() => storedSeqs(dev.device.id)).toEqual([1, 2, 3, 4])
  })

  it('takes a QoS 2 PUBLISH through aedes (PUBREC), then goes on acknowledging QoS 1', async () => {
    const dev = await RawDevice.open(port(), waterLevel(base + 2))
    dev.socket.write(dev.telemetry(1, 1))
    await dev.until(() => dev.pubacks().length === 1)
    const q2 = dev.telemetry(2, 1, 2)
    q2[0] = 0x34 // QoS 2
    const left = gateways[lane]?.stats().leftFastLane
    dev.socket.write(q2)
    await dev.until(() => dev.received.some((p) => p.type === 'other' && p.firstByte === 0x50))
    dev.socket.write(dev.telemetry(3, 1))
    await dev.until(() => dev.pubacks().length === 2)
    expect(dev.pubacks()).toEqual([1, 3])
    expect(gateways[lane]?.stats().leftFastLane).toBe((left as number) + (lane === 'off' ? 0 : 1))
    await expect.poll(() => storedSeqs(dev.device.id)).toEqual([1, 2, 3])
  })

  it('takes the PUBLISHes a device sends with its CONNECT and before its CONNACK, each once, through a window of one', async () => {
    // Each PUBLISH waits for the one before it to be stored, so while the first ones go through aedes
    // (they came before the connection was on the lane), the later ones lie in the socket's buffer.
    const dev = await RawDevice.open(port(), waterLevel(base + 6), 30, { withConnect: [1, 2, 3], after: [4, 5, 6] })
    for (let seq = 7; seq <= 12; seq++) dev.socket.write(Buffer.concat([PINGREQ, dev.telemetry(seq, 1)]))
    const seqs = Array.from({ length: 12 }, (_, i) => i + 1)
    await dev.until(() => dev.pubacks().length >= 12 && dev.received.filter((p) => p.type === 'pingresp').length === 6)
    await new Promise((r) => setTimeout(r, 200)) // a second PUBACK of any of them would have come by now
    expect(dev.pubacks()).toEqual(seqs)
    await expect.poll(() => storedSeqs(dev.device.id)).toEqual(seqs)
    // And it goes on: the window did not leave the connection unread.
    dev.socket.write(Buffer.concat([dev.telemetry(13, 1), dev.telemetry(14, 1), dev.telemetry(15, 1)]))
    await dev.until(() => dev.pubacks().length === 15)
  })

  it('reads each byte once when a PUBLISH that aedes took frees the window while the lane holds data', async () => {
    // seq 1 goes with the CONNECT, so aedes takes it; while it is stored (the window is one) a PINGREQ alone
    // makes the lane stop reading, and seq 2 lies in the socket's buffer until seq 1 is done.
    const dev = await RawDevice.open(port(), waterLevel(base + 7), 30, { withConnect: [1], after: [] })
    dev.socket.write(PINGREQ)
    await new Promise((r) => setTimeout(r, 2))
    dev.socket.write(dev.telemetry(2, 1))
    await dev.until(() => dev.pubacks().length >= 2)
    await new Promise((r) => setTimeout(r, 200)) // a second PUBACK would have come by now
    expect(dev.pubacks()).toEqual([1, 2])
    dev.socket.write(dev.telemetry(3, 1))
    await dev.until(() => dev.pubacks().length >= 3)
    expect(dev.pubacks()).toEqual([1, 2, 3])
  })

  it('keeps a device that only publishes connected past one and a half keep-alives', async () => {
    // aedes closes a connection silent for 1.5 keep-alives (MQTT-3.1.2-24); publishing is not silence.
    const dev = await RawDevice.open(port(), waterLevel(base + 3), 1)
    for (let seq = 1; seq <= 8; seq++) {
      dev.socket.write(dev.telemetry(seq, 1))
      await new Promise((r) => setTimeout(r, 400))
    }
    await dev.until(() => dev.pubacks().length === 8)
    expect(dev.closed).toBe(false)
    // And silence still ends it.
    await new Promise((r) => setTimeout(r, 2_500))
    expect(dev.closed).toBe(true)
  })

  it('closes the connection of a device that publishes outside its own topics, and only that one', async () => {
    const dev = await RawDevice.open(port(), waterLevel(base + 4))
    const bystander = await RawDevice.open(port(), waterLevel(base + 5))
    dev.socket.write(publishPacket(`devices/${bystander.device.id}/telemetry`, Buffer.from('{}'), 1, 1))
    await new Promise<void>((resolve) => (dev.closed ? resolve() : dev.socket.once('close', () => resolve())))
    expect(dev.pubacks()).toEqual([])
    bystander.socket.write(bystander.telemetry(1, 1))
    await bystander.until(() => bystander.pubacks().length === 1)
  })
})

describe('connections first', () => {
  it('counts a connection as connecting from its accept to its CONNACK or its close', async () => {
    const g = gateways.on as MqttGateway
    const connecting = (): number => (g.stats() as { connecting: number }).connecting
    const silent = tcpConnect({ port: g.port, host: '127.0.0.1' })
    sockets.push(silent)
    await expect.poll(connecting).toBe(1)
    const dev = await RawDevice.open(g.port, waterLevel(30))
    expect(dev.closed).toBe(false)
    await expect.poll(connecting).toBe(1) // the silent one still
    silent.destroy()
    await expect.poll(connecting).toBe(0)
  })
})

describe('PUBACKs of one store batch', () => {
  let g: MqttGateway | undefined
  beforeAll(async () => {
    const { readings, events, dead } = fixture as GatewayStore
    g = new MqttGateway({
      config: loadConfig(mqttConfig, { env: {}, overrides: { port: 0, host: '127.0.0.1', fastLane: true, burstPerDevice: 100, maxInFlightPerConnection: 8 } }),
      devices, secret: SECRET, readings, events, deadLetters: dead,
    })
    await g.start()
  })
  afterAll(async () => {
    await g?.stop(Date.now() + 5_000)
  })

  it('go to a device in one write, in the order of its PUBLISHes', async () => {
    const dev = await RawDevice.open(g?.port ?? 0, waterLevel(31))
    const writes = (): number => (g?.stats() as { laneAckWrites: number }).laneAckWrites
    const writesBefore = writes()
    // Five messages in one read are admitted together (the window is 8) and stored in one batch.
    dev.socket.write(Buffer.concat([1, 2, 3, 4, 5].map((seq) => dev.telemetry(seq, 1, 100 + seq))))
    await dev.until(() => dev.pubacks().length === 5)
    expect(dev.pubacks()).toEqual([101, 102, 103, 104, 105])
    expect(writes() - writesBefore).toBe(1)
    await expect.poll(() => storedSeqs(dev.device.id)).toEqual([1, 2, 3, 4, 5])
  })
})

describe('one read buffer for every connection of a process', () => {
  let g: MqttGateway | undefined
  beforeAll(async () => {
    const { readings, events, dead } = fixture as GatewayStore
    // Room for two packets in the whole process: most wait in admission or are held as bytes while other sockets are read.
    g = new MqttGateway({
      config: loadConfig(mqttConfig, { env: {}, overrides: { port: 0, host: '127.0.0.1', fastLane: true, burstPerDevice: 100, maxInFlight: 2, maxInFlightPerConnection: 8 } }),
      // A retransmission waits for the store's answer on what it holds, while other sockets are read.
      devices, secret: SECRET, readings, events, deadLetters: dead, lastSeq: new LastSeqLookup({ client: store.client, lookbackMs: 3_600_000 }),
    })
    await g.start()
  })
  afterAll(async () => {
    await g?.stop(Date.now() + 5_000)
  })

  it('stores what each device sent, byte for byte, while waiting packets, held bytes, a retransmission and a dead letter outlive the reads they came in', async () => {
    const devs = await Promise.all([40, 41, 42, 43, 44, 45].map((n) => RawDevice.open(g?.port ?? 0, waterLevel(n))))
    // Each device's values are its own (level_cm is 0 to 500): a byte read from another socket's read would show.
    const reading = (dev: RawDevice, d: number, seq: number, dup = false): Buffer => {
      const payload = Buffer.from(JSON.stringify({ ts: Date.now(), seq, values: { level_cm: d * 50 + seq } }))
      const p = publishPacket(`devices/${dev.device.id}/telemetry`, payload, 1, seq)
      if (dup) p[0] = (p[0] as number) | 0x08
      return p
    }
    const garbage = (d: number): string => `not json from device ${d}: ${'x'.repeat(40 + d)}`
    devs.forEach((dev, d) => {
      const packets = [1, 2, 3, 4, 5].map((seq) => reading(dev, d, seq))
      packets.push(publishPacket(`devices/${dev.device.id}/telemetry`, Buffer.from(garbage(d)), 1, 6))
      packets.push(reading(dev, d, 7, true))
      dev.socket.write(Buffer.concat(packets))
    })
    await Promise.all(devs.map((dev) => dev.until(() => dev.pubacks().length === 7)))
    for (const dev of devs) expect(dev.pubacks()).toEqual([1, 2, 3, 4, 5, 6, 7])
    for (const [d, dev] of devs.entries()) {
      await expect.poll(async () => {
        const rs = await store.client.query({ query: 'SELECT toUInt32(seq) AS seq, value FROM readings WHERE device_id = {id:String} ORDER BY seq', query_params: { id: dev.device.id }, format: 'JSONEachRow' })
        return rs.json<{ seq: number; value: number }>()
      }).toEqual([1, 2, 3, 4, 5, 7].map((seq) => ({ seq, value: d * 50 + seq })))
      await expect.poll(async () => {
        const rs = await store.client.query({ query: "SELECT raw FROM dead_letters WHERE device_id = {id:String} AND code = 'INGEST_BAD_JSON'", query_params: { id: dev.device.id }, format: 'JSONEachRow' })
        return rs.json<{ raw: string }>()
      }).toEqual([{ raw: garbage(d) }])
    }
    expect((g?.stats() as { leftFastLane: number }).leftFastLane).toBe(0)
  })

  it('keeps a retransmission whole while it waits for the store, though other sockets are read meanwhile', async () => {
    const [a, b] = await Promise.all([46, 47].map((n) => RawDevice.open(g?.port ?? 0, waterLevel(n))))
    const packet = (dev: RawDevice, seq: number, level: number, dup: boolean): Buffer => {
      const p = publishPacket(`devices/${dev.device.id}/telemetry`, Buffer.from(JSON.stringify({ ts: Date.now(), seq, values: { level_cm: level } })), 1, seq)
      if (dup) p[0] = (p[0] as number) | 0x08
      return p
    }
    const [devA, devB] = [a as RawDevice, b as RawDevice]
    // A's first message of the session is a retransmission: the gateway asks the store what it holds of A before it
    // decodes it, and B's message, read meanwhile, lands where A's was read.
    devA.socket.write(packet(devA, 3, 111, true))
    devB.socket.write(packet(devB, 3, 222, false))
    await Promise.all([devA.until(() => devA.pubacks().length === 1), devB.until(() => devB.pubacks().length === 1)])
    const stored = async (dev: RawDevice): Promise<{ seq: number; value: number }[]> => {
      const rs = await store.client.query({ query: 'SELECT toUInt32(seq) AS seq, value FROM readings WHERE device_id = {id:String}', query_params: { id: dev.device.id }, format: 'JSONEachRow' })
      return rs.json<{ seq: number; value: number }>()
    }
    await expect.poll(() => stored(devA)).toEqual([{ seq: 3, value: 111 }])
    await expect.poll(() => stored(devB)).toEqual([{ seq: 3, value: 222 }])
  })
})

describe('lean sessions: a plain CONNECT answered by the gateway itself', () => {
  const g = (): MqttGateway => gateways.on as MqttGateway
  const lean = (): number => (g().stats() as { leanSessions: number }).leanSessions
  const connectivity = async (deviceId: string): Promise<Record<string, number>> => {
    const rs = await store.client.query({ query: `SELECT kind, count() AS n FROM events WHERE source_id = {id:String} AND kind IN ('connected', 'disconnected') GROUP BY kind`, query_params: { id: deviceId }, format: 'JSONEachRow' })
    return Object.fromEntries((await rs.json<{ kind: string; n: string }>()).map((r) => [r.kind, Number(r.n)]))
  }
  const subscribe = (d: DeviceInfo, messageId: number): Buffer => mqttPacket.generate({ cmd: 'subscribe', messageId, subscriptions: [{ topic: `devices/${d.id}/commands/#`, qos: 1 }] })
  const closedSoon = (dev: RawDevice): Promise<void> => new Promise<void>((resolve) => (dev.closed ? resolve() : dev.socket.once('close', () => resolve())))

  it('carries a device with no aedes client: PUBACKs, PINGRESP, DISCONNECT; its device told connected and gone once each', async () => {
    const before = lean()
    const dev = await RawDevice.open(g().port, waterLevel(60))
    expect(lean()).toBe(before + 1)
    dev.socket.write(Buffer.concat([dev.telemetry(1, 1), PINGREQ, dev.telemetry(2, 1)]))
    await dev.until(() => dev.pubacks().length === 2 && dev.received.some((p) => p.type === 'pingresp'))
    dev.socket.write(DISCONNECT)
    await closedSoon(dev)
    await expect.poll(lean).toBe(before)
    await expect.poll(() => connectivity(dev.device.id)).toEqual({ connected: 1, disconnected: 1 })
    expect(dev.received.filter((p) => p.type === 'connack')).toHaveLength(1)
    expect(await storedSeqs(dev.device.id)).toEqual([1, 2])
  })

  it('refuses a wrong token with CONNACK 4 and closes the connection', async () => {
    const socket = tcpConnect({ port: g().port, host: '127.0.0.1' })
    sockets.push(socket)
    const dev = new RawDevice(socket, waterLevel(61))
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    socket.write(connectPacket(dev.device.id, dev.device.id, 'not-the-token', 30))
    await closedSoon(dev)
    expect(dev.received).toEqual([{ type: 'connack', returnCode: 4 }])
  })

  it('gives a client id to its newest connection: the older is closed, its device told gone before it is told connected again', async () => {
    const first = await RawDevice.open(g().port, waterLevel(62))
    const second = await RawDevice.open(g().port, waterLevel(62))
    await closedSoon(first)
    second.socket.write(second.telemetry(1, 1))
    await second.until(() => second.pubacks().length === 1)
    await expect.poll(() => connectivity(first.device.id)).toEqual({ connected: 2, disconnected: 1 })
    // In the order they were told (a tie in ms puts the gone one first, as it was told first).
    const rs = await store.client.query({ query: `SELECT kind FROM events WHERE source_id = {id:String} AND kind IN ('connected', 'disconnected') ORDER BY ts, kind = 'connected'`, query_params: { id: first.device.id }, format: 'JSONEachRow' })
    expect((await rs.json<{ kind: string }>()).map((r) => r.kind)).toEqual(['connected', 'disconnected', 'connected'])
  })

  it('hands a session to aedes at its first SUBSCRIBE: one CONNACK, PUBACKs in order around the SUBACK, publishing goes on', async () => {
    const before = g().stats() as { leanSessions: number; connections: number; leftFastLane: number }
    const dev = await RawDevice.open(g().port, waterLevel(63))
    dev.socket.write(Buffer.concat([dev.telemetry(1, 1), subscribe(dev.device, 2), dev.telemetry(3, 1)]))
    await dev.until(() => dev.pubacks().length === 2 && dev.received.some((p) => p.type === 'other' && p.firstByte === 0x90))
    expect(dev.pubacks()).toEqual([1, 3])
    dev.socket.write(dev.telemetry(4, 1))
    await dev.until(() => dev.pubacks().length === 3)
    await new Promise((r) => setTimeout(r, 100)) // a second CONNACK would have come by now
    expect(dev.received.filter((p) => p.type === 'connack')).toHaveLength(1)
    // The SUBACK may come before PUBACK 1, which waits for the store (MQTT orders PUBACKs among themselves only).
    expect(dev.received.filter((p) => p.type === 'other')).toEqual([{ type: 'other', firstByte: 0x90 }])
    expect(dev.pubacks()).toEqual([1, 3, 4])
    // aedes holds it now, counted once; the device was told connected once.
    expect(g().stats()).toMatchObject({ leanSessions: before.leanSessions, connections: before.connections + 1, leftFastLane: before.leftFastLane + 1 })
    await expect.poll(() => connectivity(dev.device.id)).toEqual({ connected: 1 })
    expect(await storedSeqs(dev.device.id)).toEqual([1, 3, 4])
    // Its close is aedes' to tell, once; a clean session kept nothing, so the device comes back on a lean session.
    dev.socket.destroy()
    await expect.poll(() => connectivity(dev.device.id)).toEqual({ connected: 1, disconnected: 1 })
    await expect.poll(() => g().stats().connections).toBe(before.connections)
    const again = await RawDevice.open(g().port, waterLevel(63))
    expect(g().stats()).toMatchObject({ leanSessions: before.leanSessions + 1 })
    again.socket.write(again.telemetry(5, 1))
    await again.until(() => again.pubacks().length === 1)
  })

  it('leaves to aedes a clean CONNECT of a client id whose persistent session aedes holds, so that aedes clears it', async () => {
    const d = waterLevel(66)
    const persistent = await connectAsync(`mqtt://127.0.0.1:${g().port}`, { clientId: d.id, username: d.id, password: deviceToken(SECRET, d.id), clean: false, reconnectPeriod: 0 })
    await persistent.subscribeAsync(`devices/${d.id}/commands/#`, { qos: 1 })
    await persistent.endAsync()
    const before = (g().stats() as { leanSessions: number }).leanSessions
    const dev = await RawDevice.open(g().port, d)
    expect(g().stats()).toMatchObject({ leanSessions: before })
    dev.socket.write(dev.telemetry(1, 1))
    await dev.until(() => dev.pubacks().length === 1)
  })

  it('lets a CONNECT through aedes (one with a will) take over a lean session\'s client id', async () => {
    const d = waterLevel(64)
    const first = await RawDevice.open(g().port, d)
    const socket = tcpConnect({ port: g().port, host: '127.0.0.1' })
    sockets.push(socket)
    const second = new RawDevice(socket, d)
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: d.id, keepalive: 30, username: d.id, password: Buffer.from(deviceToken(SECRET, d.id)), will: { topic: `devices/${d.id}/status`, payload: Buffer.from('{"status":"offline"}'), qos: 1, retain: false } }))
    await second.until(() => second.received.some((p) => p.type === 'connack'))
    await closedSoon(first)
    expect(second.received[0]).toEqual({ type: 'connack', returnCode: 0 })
    second.socket.write(second.telemetry(1, 1))
    await second.until(() => second.pubacks().length === 1)
  })

  it('hands aedes a session with 60 PUBLISHes after its SUBSCRIBE, more than aedes queues before a CONNACK, and loses none', async () => {
    const dev = await RawDevice.open(g().port, waterLevel(67))
    const seqs = Array.from({ length: 60 }, (_, i) => i + 2)
    dev.socket.write(Buffer.concat([dev.telemetry(1, 1), subscribe(dev.device, 1000), ...seqs.map((seq) => dev.telemetry(seq, 1))]))
    await dev.until(() => dev.pubacks().length === 61)
    expect(dev.pubacks()).toEqual([1, ...seqs])
    await expect.poll(() => storedSeqs(dev.device.id)).toEqual([1, ...seqs])
  })

  it('tells a handed-over device gone once when aedes closes it before it is connected there (a malformed packet)', async () => {
    const before = g().stats() as { connections: number }
    const dev = await RawDevice.open(g().port, waterLevel(68))
    const bad = subscribe(dev.device, 3)
    bad[0] = 0x80 // SUBSCRIBE's reserved flags must be 0010 (MQTT-3.8.1-1)
    dev.socket.write(bad)
    await closedSoon(dev)
    await expect.poll(() => connectivity(dev.device.id)).toEqual({ connected: 1, disconnected: 1 })
    await expect.poll(() => g().stats().connections).toBe(before.connections)
  })

  it('is not ended by a CONNECT of its client id that is refused', async () => {
    const dev = await RawDevice.open(g().port, waterLevel(69))
    const socket = tcpConnect({ port: g().port, host: '127.0.0.1' })
    sockets.push(socket)
    const intruder = new RawDevice(socket, dev.device)
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    // Through aedes (MQTT 3.1), with a wrong token.
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQIsdp', protocolVersion: 3, clean: true, clientId: dev.device.id, keepalive: 30, username: dev.device.id, password: Buffer.from('wrong') }))
    await closedSoon(intruder)
    expect(intruder.received).toEqual([{ type: 'connack', returnCode: 4 }])
    dev.socket.write(dev.telemetry(1, 1))
    await dev.until(() => dev.pubacks().length === 1)
    expect(dev.closed).toBe(false)
  })

  it('ends a lean session whose device is revoked', async () => {
    const dev = await RawDevice.open(g().port, waterLevel(65))
    expect(g().disconnectDevices([dev.device.id])).toBe(1)
    await closedSoon(dev)
  })
})
