// The MQTT gateway with real aedes on a random port, real chDB and real
// mqtt.js clients.
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { Socket } from 'node:net'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { WebSocket } from 'ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../lib/config.ts'
import { CitytwinError } from '../../lib/errors.ts'
import { mqttConfig } from '../../ingest/mqtt/config.ts'
import type { DeviceRegistry } from '../../ingest/mqtt/devices.ts'
import { MqttGateway, TURN_ROWS_MAX } from '../../ingest/mqtt/gateway.ts'
import { LastSeqLookup } from '../../ingest/mqtt/last-seq.ts'
import type { DeviceInfo } from '../../ingest/mqtt/telemetry.ts'
import { deviceToken } from '../../ingest/mqtt/tokens.ts'
import { connectPacket, PacketReader, publishPacket, type ServerPacket } from '../../simulators/devices/packets.ts'
import type { DeadLetterWriter, Store, StoreWriter } from '../../store/index.ts'
import { tempDir } from '../helpers.ts'
import { openGatewayStore, type GatewayStore } from './gateway-store.ts'

const SECRET = 'test-secret'
let fixture: GatewayStore | undefined
let store: Store
let gateway: MqttGateway
let readings: StoreWriter
let events: StoreWriter
let dead: DeadLetterWriter
let devices: DeviceRegistry
const clients: MqttClient[] = []
const sockets: Socket[] = []
let caPem: Buffer

function deviceOfType(type: string, nth = 0): DeviceInfo {
  const d = [...devices.values()].filter((x) => x.type === type)[nth]
  if (!d) throw new Error(`no ${type} device`)
  return d
}

async function connect(username?: string, password?: string, extra: mqtt.IClientOptions = {}, port = gateway.port): Promise<MqttClient> {
  const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { username, password, reconnectPeriod: 0, connectTimeout: 5_000, protocolVersion: 4, ...extra })
  clients.push(c)
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve())
    c.once('error', reject)
  })
  return c
}

async function connectAs(d: DeviceInfo, port = gateway.port): Promise<MqttClient> {
  return connect(d.id, deviceToken(SECRET, d.id), { clientId: d.id }, port)
}

/** A device connected over a raw TCP socket, to send packets exactly as the test writes them; `got` collects what the gateway sends back. */
async function rawDevice(d: DeviceInfo, port: number): Promise<{ socket: Socket; got: ServerPacket[] }> {
  const socket = new Socket()
  sockets.push(socket)
  const got: ServerPacket[] = []
  const reader = new PacketReader()
  socket.on('data', (b: Buffer) => got.push(...reader.push(b)))
  await new Promise<void>((resolve) => socket.connect(port, '127.0.0.1', resolve))
  socket.write(connectPacket(d.id, d.id, deviceToken(SECRET, d.id), 60))
  await expect.poll(() => got.some((p) => p.type === 'connack'), { timeout: 15_000 }).toBe(true)
  return { socket, got }
}

async function q<T>(query: string): Promise<T[]> {
  return (await store.client.query({ query, format: 'JSONEachRow' })).json<T>()
}

async function deadLetterCodes(deviceId: string): Promise<string[]> {
  await dead.stop(Date.now() + 5_000) // flush
  await dead.start()
  return (await q<{ code: string }>(`SELECT code FROM dead_letters WHERE device_id = '${deviceId}' ORDER BY ts`)).map((r) => r.code)
}

beforeAll(async () => {
  fixture = await openGatewayStore(4, 50)
  ;({ store, devices, dead, readings, events } = fixture)
  // A self-signed certificate for the TLS listener, made with Debian's openssl.
  const certDir = tempDir('citytwin-cert-')
  const cert = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem')], { encoding: 'utf8' })
  if (cert.error || cert.status !== 0) throw new Error(`openssl could not make a test certificate (${cert.error?.message ?? cert.stderr}); install it with: apt-get install -y openssl`)
  caPem = readFileSync(join(certDir, 'cert.pem'))
  gateway = new MqttGateway({
    config: loadConfig(mqttConfig, { env: {}, overrides: { port: 0, host: '127.0.0.1', burstPerDevice: 50, tlsPort: 0, tlsCertFile: join(certDir, 'cert.pem'), tlsKeyFile: join(certDir, 'key.pem'), wsPort: 0 } }),
    devices, secret: SECRET, readings, events, deadLetters: dead, lastSeq: new LastSeqLookup({ client: store.client, lookbackMs: 3_600_000 }),
  })
  await gateway.start()
})

afterAll(async () => {
  for (const c of clients) c.end(true)
  for (const c of sockets) c.destroy()
  await gateway?.stop(Date.now() + 5_000)
  await fixture?.close()
})

describe('MQTT gateway: connect', () => {
  it('accepts a device with its token', async () => {
    const c = await connectAs(deviceOfType('smoke'))
    expect(c.connected).toBe(true)
  })

  it.each([
    ['an unknown device', 'D9999999', 'whatever', 4],
    ['a wrong token', 'D0000001', 'not-the-token', 4],
    ['an anonymous client', undefined, undefined, 5],
  ])('refuses %s with the right CONNACK code', async (_what, user, pass, code) => {
    const err = await connect(user, pass).then(() => undefined, (e: unknown) => e)
    expect(err).toMatchObject({ code })
  })
})

describe('MQTT gateway: connect timeout', () => {
  it('closes a connection that sends no CONNECT within mqtt.connectTimeoutS, counts it apart from refusals, and serves the next device', async () => {
    const gw = new MqttGateway({
      config: loadConfig(mqttConfig, { env: {}, overrides: { port: 0, host: '127.0.0.1', connectTimeoutS: 1 } }),
      devices, secret: SECRET, readings, events, deadLetters: dead,
    })
    await gw.start()
    try {
      const silent = new Socket()
      const closed = new Promise<void>((resolve) => silent.once('close', () => resolve()))
      silent.on('error', () => undefined)
      silent.connect(gw.port, '127.0.0.1')
      await closed
      expect(gw.stats()).toMatchObject({ connectTimeouts: 1, refusedConnects: 0 })
      expect((await connectAs(deviceOfType('smoke', 5), gw.port)).connected).toBe(true)
    } finally {
      await gw.stop(Date.now() + 5_000)
    }
  })
})

describe('MQTT gateway: load shedding', () => {
  it('refuses new devices with "server unavailable" while its heap is nearly full, keeps serving those connected, and takes devices again once it is lower', async () => {
    let used = 50
    const shedding = new MqttGateway({
      config: loadConfig(mqttConfig, { env: {}, overrides: { port: 0, host: '127.0.0.1', shedHeapRatio: 0.85 } }),
      devices, secret: SECRET, readings, events, deadLetters: dead, heap: () => ({ used, limit: 100 }),
    })
    await shedding.start()
    try {
      const d = deviceOfType('water_level', 3)
      const early = await connectAs(d, shedding.port)
      used = 90
      const refused = await connectAs(deviceOfType('smoke', 3), shedding.port).then(() => undefined, (e: unknown) => e)
      expect(refused).toMatchObject({ code: 3 })
      // The device already connected is still served: its reading is stored and acknowledged.
      await early.publishAsync(`devices/${d.id}/telemetry`, JSON.stringify({ ts: Date.now(), seq: 7, values: { level_cm: 3 } }), { qos: 1 })
      expect((await q<{ n: number }>(`SELECT toUInt32(count()) AS n FROM readings WHERE device_id = '${d.id}' AND seq = 7`))[0]?.n).toBe(1)
      // Hysteresis: just under the line is not enough; 0.1 under it is.
      used = 80
      expect(await connectAs(deviceOfType('smoke', 4), shedding.port).then(() => undefined, (e: unknown) => e)).toMatchObject({ code: 3 })
      used = 74
      expect((await connectAs(deviceOfType('smoke', 4), shedding.port)).connected).toBe(true)
      expect(shedding.stats()).toMatchObject({ shedConnects: 2, shedding: false })
    } finally {
      await shedding.stop(Date.now() + 5_000)
    }
  })
})

describe('MQTT gateway: protocol', () => {
  it('refuses MQTT 5, which aedes does not speak, with "unacceptable protocol version"', async () => {
    const d = deviceOfType('smoke')
    const err = await connect(d.id, deviceToken(SECRET, d.id), { protocolVersion: 5 }).then(() => undefined, (e: unknown) => e)
    expect(String((err as Error).message)).toMatch(/Unacceptable protocol version/)
  })
})

describe('MQTT gateway: TLS and WebSocket listeners', () => {
  it('accepts devices over TLS (verified against the certificate) and over WebSocket, with the same rules', async () => {
    const d = deviceOfType('tree_tilt')
    const tls = await connect(d.id, deviceToken(SECRET, d.id), { protocol: 'mqtts', port: gateway.tlsPort, ca: caPem, rejectUnauthorized: true })
    await tls.publishAsync(`devices/${d.id}/telemetry`, JSON.stringify({ ts: Date.now(), seq: 1, values: { tilt_deg: 3 } }), { qos: 1 })
    await tls.endAsync()
    const ws = mqtt.connect(`ws://127.0.0.1:${gateway.wsPort}/mqtt`, { username: d.id, password: deviceToken(SECRET, d.id), reconnectPeriod: 0, protocolVersion: 4 })
    clients.push(ws)
    await new Promise<void>((resolve, reject) => {
      ws.once('connect', () => resolve())
      ws.once('error', reject)
    })
    await ws.publishAsync(`devices/${d.id}/telemetry`, JSON.stringify({ ts: Date.now(), seq: 2, values: { tilt_deg: 4 } }), { qos: 1 })
    await ws.endAsync()
    expect(await q<{ value: number }>(`SELECT value FROM readings WHERE device_id = '${d.id}' ORDER BY seq`)).toEqual([{ value: 3 }, { value: 4 }])
    const refused = await connect(d.id, 'wrong', { protocol: 'mqtts', port: gateway.tlsPort, ca: caPem }).then(() => undefined, (e: unknown) => e)
    expect(refused).toMatchObject({ code: 4 })
  })

  it('closes a WebSocket that sends a message larger than any packet it may carry (1009), before holding it', async () => {
    const socket = new WebSocket(`ws://127.0.0.1:${gateway.wsPort}/mqtt`, 'mqtt')
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve())
      socket.once('error', reject)
    })
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)))
    socket.on('error', () => undefined)
    socket.send(Buffer.alloc(8 * 1024 * 1024, 0x30))
    expect(await closed).toBe(1009)
  })
})

describe('MQTT gateway: publish', () => {
  it('stores QoS 1 telemetry before the PUBACK', async () => {
    const d = deviceOfType('water_level')
    const c = await connectAs(d)
    const ts = Date.now()
    await c.publishAsync(`devices/${d.id}/telemetry`, JSON.stringify({ ts, seq: 1, values: { level_cm: 12.5, battery_pct: 90 } }), { qos: 1 })
    // The PUBACK came back, so the rows are already in the store.
    const rows = await q<{ metric: string; value: number }>(`SELECT metric, value FROM readings WHERE device_id = '${d.id}' ORDER BY metric`)
    expect(rows).toEqual([{ metric: 'battery_pct', value: 90 }, { metric: 'level_cm', value: 12.5 }])
  })

  it('hands each PUBACK to the kernel in one write', async () => {
    // Every write a net.Socket makes to the kernel goes through _write or _writev, one call each.
    const writes: { bytes: number[] }[] = []
    const proto = Socket.prototype as unknown as Record<'_write' | '_writev', (this: Socket, ...args: unknown[]) => void>
    const [write, writev] = [proto._write, proto._writev]
    const gatewayPort = gateway.port
    const record = (socket: Socket, chunks: Buffer[]): void => {
      if (socket.localPort === gatewayPort) writes.push({ bytes: [...Buffer.concat(chunks)] })
    }
    const d = deviceOfType('water_level', 1)
    const c = await connectAs(d)
    proto._write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
      record(this, [chunk as Buffer])
      return write.call(this, chunk, ...rest)
    }
    proto._writev = function (this: Socket, chunks: unknown, ...rest: unknown[]) {
      record(this, (chunks as { chunk: Buffer }[]).map((x) => Buffer.from(x.chunk)))
      return writev.call(this, chunks, ...rest)
    }
    try {
      await c.publishAsync(`devices/${d.id}/telemetry`, JSON.stringify({ ts: Date.now(), seq: 1, values: { level_cm: 3 } }), { qos: 1 })
      await new Promise((r) => setTimeout(r, 50))
    } finally {
      proto._write = write
      proto._writev = writev
    }
    // PUBACK: type 4 (0x40), remaining length 2, the packet id.
    expect(writes).toHaveLength(1)
    expect(writes[0]?.bytes.slice(0, 2)).toEqual([0x40, 2])
    expect(writes[0]?.bytes).toHaveLength(4)
  })

  it('stores the will of a device whose connection drops, on its own status topic', async () => {
    const d = deviceOfType('manhole_cover')
    const c = await connect(d.id, deviceToken(SECRET, d.id), { clientId: d.id, will: { topic: `devices/${d.id}/status`, payload: Buffer.from(JSON.stringify({ severity: 'warning', reason: 'power lost' })), qos: 1, retain: false } })
    // No DISCONNECT: the connection just goes, so the broker publishes the will.
    c.stream.destroy()
    let rows: { kind: string; severity: string }[] = []
    for (let i = 0; i < 100 && rows.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 50))
      rows = await q<{ kind: string; severity: string }>(`SELECT kind, toString(severity) AS severity FROM events WHERE source_id = '${d.id}' AND kind = 'status'`)
    }
    expect(rows).toEqual([{ kind: 'status', severity: 'warning' }])
  })

  it('stores a retransmitted seq once', async () => {
    const d = deviceOfType('gas')
    const c = await connectAs(d)
    const body = JSON.stringify({ ts: Date.now(), seq: 7, values: { ch4_pct_lel: 1.5 } })
    await c.publishAsync(`devices/${d.id}/telemetry`, body, { qos: 1 })
    await c.publishAsync(`devices/${d.id}/telemetry`, body, { qos: 1 })
    expect(await q<{ n: number }>(`SELECT toUInt32(count()) AS n FROM readings WHERE device_id = '${d.id}'`)).toEqual([{ n: 1 }])
  })

  it('stores once a retransmission (DUP) that another gateway process already stored, and takes what follows', async () => {
    // A second gateway on the same store stands in for another cluster worker.
    const other = new MqttGateway({
      config: loadConfig(mqttConfig, { env: {}, overrides: { port: 0, host: '127.0.0.1' } }),
      devices, secret: SECRET, readings, events, deadLetters: dead, lastSeq: new LastSeqLookup({ client: store.client, lookbackMs: 3_600_000 }),
    })
    await other.start()
    try {
      const d = deviceOfType('gas', 1)
      const topic = `devices/${d.id}/telemetry`
      const count = async (): Promise<number> => (await q<{ n: number }>(`SELECT toUInt32(count()) AS n FROM readings WHERE device_id = '${d.id}'`))[0]?.n ?? -1
      const reading = (seq: number): string => JSON.stringify({ ts: Date.now(), seq, values: { ch4_pct_lel: 2 } })
      const first = await connectAs(d)
      const body = reading(41)
      await first.publishAsync(topic, body, { qos: 1 })
      await first.endAsync()
      expect(await count()).toBe(1)
      // The device comes back on the other process and retransmits: acknowledged, not stored again.
      const second = await connectAs(d, other.port)
      await second.publishAsync(topic, body, { qos: 1, dup: true })
      expect(await count()).toBe(1)
      await second.publishAsync(topic, reading(42), { qos: 1 })
      await second.publishAsync(topic, reading(43), { qos: 1, dup: true }) // a DUP of something never stored is new
      expect(await count()).toBe(3)
      expect(await deadLetterCodes(d.id)).toEqual([])
    } finally {
      await other.stop(Date.now() + 5_000)
    }
  })

  it('stores the retransmission of a message that failed while a later one was stored, instead of taking it for a duplicate', async () => {
    // The store fails seq 11 once, and only after seq 12 (sent once 11 is in the store's hands, so in a write of
    // its own) is stored: the high-water mark is then 12, above the message that was never stored nor acknowledged.
    let twelveStored: () => void = () => undefined
    const twelve = new Promise<void>((r) => (twelveStored = r))
    let elevenWriting: () => void = () => undefined
    const eleven = new Promise<void>((r) => (elevenWriting = r))
    let failed = false
    const flaky = {
      async write(rows: readonly (readonly unknown[])[]) {
        const seqs = rows.map((r) => r[5])
        if (seqs.includes(11) && !failed) {
          failed = true
          elevenWriting()
          await twelve
          throw new CitytwinError('STORE_UNAVAILABLE', 'the store failed this insert (fault injected by the test)')
        }
        const outcome = await readings.write(rows)
        if (seqs.includes(12)) twelveStored()
        return outcome
      },
    }
    const other = new MqttGateway({
      config: loadConfig(mqttConfig, { env: {}, overrides: { port: 0, host: '127.0.0.1' } }),
      devices, secret: SECRET, readings: flaky, events, deadLetters: dead, lastSeq: new LastSeqLookup({ client: store.client, lookbackMs: 3_600_000 }),
    })
    await other.start()
    try {
      const d = deviceOfType('gas', 3)
      const topic = `devices/${d.id}/telemetry`
      const seqs = async (): Promise<number[]> => (await q<{ seq: number }>(`SELECT seq FROM readings WHERE device_id = '${d.id}' ORDER BY seq`)).map((r) => Number(r.seq))
      const reading = (seq: number): string => JSON.stringify({ ts: Date.now() + seq, seq, values: { ch4_pct_lel: 2 } })
      const first = await connectAs(d, other.port)
      await first.publishAsync(topic, reading(10), { qos: 1 })
      const closed = new Promise<void>((r) => first.once('close', () => r()))
      first.publish(topic, reading(11), { qos: 1 })
      await eleven
      first.publish(topic, reading(12), { qos: 1 })
      await closed
      first.end(true)
      await readings.flush()
      expect(await seqs()).toEqual([10, 12])
      // The device comes back and retransmits both, as MQTT asks (DUP): 11 is stored now, 12 is not stored twice.
      const second = await connectAs(d, other.port)
      await second.publishAsync(topic, reading(11), { qos: 1, dup: true })
      await second.publishAsync(topic, reading(12), { qos: 1, dup: true })
      await second.endAsync()
      await readings.flush()
      expect(await seqs()).toEqual([10, 11, 12])
      expect(other.stats()).toMatchObject({ recovered: 1, duplicates: 1 })
    } finally {
      await other.stop(Date.now() + 5_000)
    }
  })

  it('writes the telemetry read in one turn as one write, cut at TURN_ROWS_MAX rows, and acknowledges every message once its write is stored', async () => {
    const writes: number[][] = []
    const counting = {
      async write(rows: readonly (readonly unknown[])[]) {
        writes.push(rows.map((r) => r[5] as number))
        return readings.write(rows)
      },
    }
    const other = new MqttGateway({
      config: loadConfig(mqttConfig, { env: {}, overrides: { port: 0, host: '127.0.0.1', maxInFlightPerConnection: 1_000, burstPerDevice: 10_000 } }),
      devices, secret: SECRET, readings: counting, events, deadLetters: dead,
    })
    await other.start()
    const d = deviceOfType('air_quality', 5)
    try {
      const { socket, got } = await rawDevice(d, other.port)
      // 10 messages of 3 rows in one TCP write: one socket read, one turn, one write of 30 rows.
      const now = Date.now()
      const message = (seq: number, readingsOf = 1): Buffer =>
        publishPacket(`devices/${d.id}/telemetry`, Buffer.from(JSON.stringify({ readings: Array.from({ length: readingsOf }, (_, i) => ({ ts: now + seq * 1_000 + i, seq: seq * 1_000 + i, values: { pm25_ug_m3: 1, pm10_ug_m3: 2, no2_ug_m3: 3 } })) })), 1, seq)
      socket.write(Buffer.concat(Array.from({ length: 10 }, (_, i) => message(i + 1))))
      await expect.poll(() => got.filter((p) => p.type === 'puback').length, { timeout: 15_000 }).toBe(10)
      expect(writes).toEqual([Array.from({ length: 10 }, (_, i) => new Array<number>(3).fill((i + 1) * 1_000)).flat()])
      // Messages of 150 rows each (50 readings of 3 metrics): a turn's write holds as many as fit in TURN_ROWS_MAX.
      writes.length = 0
      const n = Math.ceil((2 * TURN_ROWS_MAX) / 150) + 1
      socket.write(Buffer.concat(Array.from({ length: n }, (_, i) => message(100 + i, 50))))
      await expect.poll(() => got.filter((p) => p.type === 'puback').length, { timeout: 15_000 }).toBe(10 + n)
      expect(writes.flat()).toHaveLength(n * 150)
      expect(writes.length).toBeGreaterThan(1)
      for (const w of writes) expect(w.length).toBeLessThanOrEqual(TURN_ROWS_MAX)
      // PUBACKs in the order of the PUBLISHes (MQTT-4.6.0-2).
      expect(got.flatMap((p) => (p.type === 'puback' ? [p.packetId] : []))).toEqual([...Array.from({ length: 10 }, (_, i) => i + 1), ...Array.from({ length: n }, (_, i) => 100 + i)])
      await readings.flush()
      expect(await q<{ n: number }>(`SELECT toUInt32(count()) AS n FROM readings WHERE device_id = '${d.id}'`)).toEqual([{ n: 30 + n * 150 }])
    } finally {
      await other.stop(Date.now() + 5_000)
    }
  })

  it('sends a connection\'s PUBACKs in the order of its PUBLISHes when a DUP waits for the store and a later message is stored first', async () => {
    let answer: () => void = () => undefined
    const asked = new Promise<void>((r) => (answer = r))
    // The store's answer about the session's last seq is held back until the test lets it go.
    class SlowLastSeq extends LastSeqLookup {
      override async lastStoredSeq(device: DeviceInfo): Promise<number | undefined> {
        await asked
        return super.lastStoredSeq(device)
      }
    }
    const other = new MqttGateway({
      config: loadConfig(mqttConfig, { env: {}, overrides: { port: 0, host: '127.0.0.1' } }),
      devices, secret: SECRET, readings, events, deadLetters: dead, lastSeq: new SlowLastSeq({ client: store.client, lookbackMs: 3_600_000 }),
    })
    await other.start()
    const d = deviceOfType('air_quality', 6)
    try {
      const { socket, got } = await rawDevice(d, other.port)
      const message = (id: number, seq: number, dup: boolean): Buffer => {
        const b = publishPacket(`devices/${d.id}/telemetry`, Buffer.from(JSON.stringify({ ts: Date.now(), seq, values: { pm25_ug_m3: 1 } })), 1, id)
        if (dup) b[0] = (b[0] as number) | 0x08
        return b
      }
      // A retransmission (DUP, packet 1) asks the store first; the new message behind it (packet 2) is stored meanwhile.
      socket.write(Buffer.concat([message(1, 100, true), message(2, 101, false)]))
      await expect.poll(async () => (await q<{ n: number }>(`SELECT toUInt32(count()) AS n FROM readings WHERE device_id = '${d.id}' AND seq = 101`))[0]?.n, { timeout: 15_000 }).toBe(1)
      await new Promise((r) => setTimeout(r, 100))
      const pubacks = (): number[] => got.flatMap((p) => (p.type === 'puback' ? [p.packetId] : []))
      expect(pubacks()).toEqual([]) // stored, but its PUBACK waits for the one before it (MQTT-4.6.0-2)
      answer()
      await expect.poll(pubacks, { timeout: 15_000 }).toEqual([1, 2])
      expect(await q<{ seq: number }>(`SELECT seq FROM readings WHERE device_id = '${d.id}' ORDER BY seq`)).toEqual([{ seq: 100 }, { seq: 101 }])
    } finally {
      answer()
      await other.stop(Date.now() + 5_000)
    }
  })

  it('takes a device back with its seq restarted after it reconnects (a reboot)', async () => {
    const d = deviceOfType('gas', 2)
    const topic = `devices/${d.id}/telemetry`
    const first = await connectAs(d)
    await first.publishAsync(topic, JSON.stringify({ ts: Date.now(), seq: 500, values: { ch4_pct_lel: 1 } }), { qos: 1 })
    await first.endAsync()
    const second = await connectAs(d)
    await second.publishAsync(topic, JSON.stringify({ ts: Date.now(), seq: 3, values: { ch4_pct_lel: 1 } }), { qos: 1 })
    expect(await q<{ seq: number }>(`SELECT seq FROM readings WHERE device_id = '${d.id}' ORDER BY seq`)).toEqual([{ seq: 3 }, { seq: 500 }])
    expect(await deadLetterCodes(d.id)).toEqual([])
  })

  it.each([
    ['malformed JSON', '{"ts":', 'INGEST_BAD_JSON'],
    ['a value of the wrong type', { seq: 1, ts: 'now', values: { noise_dba: 50 } }, 'INGEST_BAD_TYPE'],
    ['an unknown metric', { seq: 1, ts: 0, values: { level_cm: 3 } }, 'INGEST_UNKNOWN_METRIC'],
    ['a value out of range', { seq: 1, ts: 0, values: { noise_dba: 500 } }, 'INGEST_OUT_OF_RANGE'],
    ['a timestamp from the future', { seq: 1, ts: 'future', values: { noise_dba: 50 } }, 'INGEST_TS_FUTURE'],
    ['a timestamp from long ago', { seq: 1, ts: 'past', values: { noise_dba: 50 } }, 'INGEST_TS_PAST'],
    ['no seq', { ts: 0, values: { noise_dba: 50 } }, 'INGEST_SEQ_MISSING'],
    ['an oversize payload', 'x'.repeat(20_000), 'INGEST_PAYLOAD_TOO_LARGE'],
  ])('dead-letters %s with its code, and still acknowledges it', async (_what, payload, code) => {
    const d = deviceOfType('noise', ['INGEST_BAD_JSON', 'INGEST_BAD_TYPE', 'INGEST_UNKNOWN_METRIC', 'INGEST_OUT_OF_RANGE', 'INGEST_TS_FUTURE', 'INGEST_TS_PAST', 'INGEST_SEQ_MISSING', 'INGEST_PAYLOAD_TOO_LARGE'].indexOf(code))
    const c = await connectAs(d)
    const now = Date.now()
    const body = typeof payload === 'string' ? payload : JSON.stringify({
      ...payload, ts: payload.ts === 'future' ? now + 3_600_000 : payload.ts === 'past' ? now - 7 * 86_400_000 : payload.ts === 0 ? now : payload.ts,
    })
    await c.publishAsync(`devices/${d.id}/telemetry`, body, { qos: 1 })
    expect(await deadLetterCodes(d.id)).toEqual([code])
    const raw = await q<{ raw: string; topic: string }>(`SELECT raw, topic FROM dead_letters WHERE device_id = '${d.id}'`)
    expect(raw[0]?.topic).toBe(`devices/${d.id}/telemetry`)
    expect(raw[0]?.raw.length).toBeGreaterThan(0)
    expect(c.connected).toBe(true)
  })

  it('closes the connection of a device that publishes outside its topics', async () => {
    const d = deviceOfType('streetlight')
    const other = deviceOfType('streetlight', 1)
    const c = await connectAs(d)
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()))
    c.publish(`devices/${other.id}/telemetry`, '{}', { qos: 1 })
    await closed
    expect(gateway.stats()).toMatchObject({ refusedPublishes: 1 })
  })

  it('refuses a subscription outside the device\'s command topics with 0x80', async () => {
    const d = deviceOfType('elevator')
    const c = await connectAs(d)
    // mqtt.js turns any 0x80 in the SUBACK into an error that carries the packet.
    const err = await c.subscribeAsync([`devices/${d.id}/commands/#`, 'devices/#'], { qos: 1 }).then(() => undefined, (e: unknown) => e)
    expect((err as { packet?: { granted?: number[] } }).packet?.granted).toEqual([1, 128])
    expect(c.connected).toBe(true)
  })

  it('records device events and connectivity', async () => {
    const d = deviceOfType('manhole_cover')
    const c = await connectAs(d)
    await c.publishAsync(`devices/${d.id}/events`, JSON.stringify({ kind: 'cover_opened', severity: 'critical', ts: Date.now() }), { qos: 1 })
    await c.endAsync()
    await events.flush()
    const kinds = (await q<{ kind: string }>(`SELECT kind FROM events WHERE source_id = '${d.id}' ORDER BY ts, kind`)).map((r) => r.kind)
    expect(kinds).toEqual(expect.arrayContaining(['connected', 'cover_opened', 'disconnected']))
  })

  it('dead-letters an event whose ts the store should not take, instead of giving it the arrival time', async () => {
    const d = deviceOfType('tree_tilt', 1)
    const c = await connectAs(d)
    const now = Date.now()
    for (const ts of [now + 3_600_000, now - 30 * 86_400_000, 'yesterday', 1.5]) {
      await c.publishAsync(`devices/${d.id}/events`, JSON.stringify({ kind: 'tilted', severity: 'warning', ts }), { qos: 1 })
    }
    // Without a ts, the arrival time.
    await c.publishAsync(`devices/${d.id}/events`, JSON.stringify({ kind: 'tilted', severity: 'warning' }), { qos: 1 })
    await c.endAsync()
    await events.flush()
    expect(await deadLetterCodes(d.id)).toEqual(['INGEST_TS_FUTURE', 'INGEST_TS_PAST', 'INGEST_BAD_TYPE', 'INGEST_BAD_TYPE'])
    const stored = await q<{ kind: string; ms: string }>(`SELECT kind, toUnixTimestamp64Milli(ts) AS ms FROM events WHERE source_id = '${d.id}' AND kind = 'tilted'`)
    expect(stored).toHaveLength(1)
    expect(Math.abs(Number(stored[0]?.ms) - now)).toBeLessThan(60_000)
  })
})

describe('MQTT gateway: abuse', () => {
  it('dead-letters a flood above the device\'s rate limit', async () => {
    const d = deviceOfType('bin_fill')
    const c = await connectAs(d)
    const now = Date.now()
    // The test gateway allows bursts of 50; 70 at once overflow it.
    await Promise.all(Array.from({ length: 70 }, (_, i) =>
      c.publishAsync(`devices/${d.id}/telemetry`, JSON.stringify({ ts: now, seq: i + 1, values: { fill_pct: 40 } }), { qos: 1 })))
    const codes = await deadLetterCodes(d.id)
    expect(codes.length).toBeGreaterThanOrEqual(15)
    expect(new Set(codes)).toEqual(new Set(['INGEST_RATE_LIMITED']))
    const rows = await q<{ n: number }>(`SELECT toUInt32(count()) AS n FROM readings WHERE device_id = '${d.id}'`)
    expect((rows[0]?.n ?? 0) + codes.length).toBe(70)
  })

  it('closes only the connection that sends a malformed packet', async () => {
    const { connect: tcpConnect } = await import('node:net')
    const { connectPacket } = await import('../../simulators/devices/packets.ts')
    const d = deviceOfType('water_level', 1)
    const bystander = await connectAs(deviceOfType('water_level', 2))
    const sock = tcpConnect(gateway.port, '127.0.0.1')
    const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()))
    sock.on('error', () => undefined) // the reset is what this test expects
    // Read what comes (a CONNACK may, before the close): a socket's end is seen only once its data is read.
    sock.resume()
    await new Promise<void>((resolve) => sock.once('connect', () => resolve()))
    sock.write(connectPacket(d.id, d.id, deviceToken(SECRET, d.id), 30))
    // A PUBLISH whose remaining length promises more than the topic length field can hold, then garbage.
    sock.write(Buffer.from([0x32, 0x05, 0xff, 0xff, 0x00, 0x01, 0x02]))
    sock.write(Buffer.from([0xf0, 0xff, 0xff, 0xff, 0xff, 0x7f]))
    await closed
    const other = deviceOfType('water_level', 2)
    await bystander.publishAsync(`devices/${other.id}/telemetry`, JSON.stringify({ ts: Date.now(), seq: 1, values: { level_cm: 1 } }), { qos: 1 })
    expect(bystander.connected).toBe(true)
    expect((await gateway.health()).ok).toBe(true)
  })
})

describe('MQTT gateway: a third-party client', () => {
  // Debian's mosquitto_pub, a client we did not write, against the gateway.
  // Spawned asynchronously: the gateway runs in this very process.
  function mosquittoPub(args: string[]): Promise<{ status: number | null; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(gateway.port), '-V', 'mqttv311', ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
      let stderr = ''
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
      child.on('error', (e) => {
        clearTimeout(timer)
        reject(new Error(`mosquitto_pub is not installed (${e.message}); install it with: apt-get install -y mosquitto-clients`))
      })
      child.on('close', (status) => {
        clearTimeout(timer)
        resolve({ status, stderr })
      })
    })
  }

  it('publishes QoS 1 telemetry that is stored', async () => {
    const d = deviceOfType('hydrant_pressure')
    const r = await mosquittoPub(['-i', d.id, '-u', d.id, '-P', deviceToken(SECRET, d.id), '-q', '1', '-t', `devices/${d.id}/telemetry`,
      '-m', JSON.stringify({ ts: Date.now(), seq: 1, values: { pressure_mpa: 0.31 } })])
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    expect(await q<{ value: number }>(`SELECT value FROM readings WHERE device_id = '${d.id}'`)).toEqual([{ value: 0.31 }])
  })

  it('is refused with a wrong password', async () => {
    const d = deviceOfType('hydrant_pressure', 1)
    const r = await mosquittoPub(['-u', d.id, '-P', 'wrong', '-q', '1', '-t', `devices/${d.id}/telemetry`, '-m', '{}'])
    expect(r.status).not.toBe(0)
    expect(r.stderr).toMatch(/bad user name or password/i)
  })
})
