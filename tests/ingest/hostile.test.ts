// Hostile input at the MQTT front door: the real gateway (aedes on a random
// port, chDB in a temp dir) spoken to over raw TCP with garbage, mutated
// packets, a huge claimed length, ill-formed UTF-8 and connections that
// never send CONNECT. Each case ends with the offending connection closed,
// the gateway's memory bounded, and an honest device still served.
import { connect as tcpConnect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttGateway } from '../../ingest/mqtt/gateway.ts'
import type { DeviceInfo } from '../../ingest/mqtt/telemetry.ts'
import { deviceToken } from '../../ingest/mqtt/tokens.ts'
import { createRng } from '../../simulators/city/random.ts'
import { connectPacket, PacketReader, publishPacket, type ServerPacket } from '../../simulators/devices/packets.ts'
import { gatewayOn, openGatewayStore, type GatewayStore } from './gateway-store.ts'

const SECRET = 'hostile-secret'
let fixture: GatewayStore
let gateway: MqttGateway
let devices: DeviceInfo[]
const sockets: Socket[] = []

beforeAll(async () => {
  fixture = await openGatewayStore(9, 20)
  devices = [...fixture.devices.values()]
  gateway = gatewayOn(fixture, SECRET, { burstPerDevice: 100 })
  await gateway.start()
})

afterAll(async () => {
  for (const s of sockets) s.destroy()
  await gateway?.stop(Date.now() + 5_000)
  await fixture?.close()
})

/** A seeded generator (the city's), so a failing case can be replayed. */
const prng = (seed: number): (() => number) => createRng(seed).next

/** A raw connection: resolves when the gateway closes it, or after `waitMs` with it still open. */
async function send(bytes: Buffer[], waitMs = 2_000): Promise<{ closed: boolean; received: ServerPacket[] }> {
  const socket = tcpConnect({ port: gateway.port, host: '127.0.0.1', noDelay: true })
  sockets.push(socket)
  const reader = new PacketReader()
  const received: ServerPacket[] = []
  socket.on('data', (c: Buffer) => received.push(...reader.push(c)))
  socket.on('error', () => undefined)
  const closed = new Promise<boolean>((resolve) => {
    socket.once('close', () => resolve(true))
    setTimeout(() => resolve(false), waitMs)
  })
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  for (const b of bytes) if (!socket.destroyed) socket.write(b)
  const c = await closed
  socket.destroy()
  return { closed: c, received }
}

/** An honest device: connects, publishes one QoS 1 reading, gets its PUBACK. */
async function honest(d: DeviceInfo, seq: number): Promise<void> {
  const payload = Buffer.from(JSON.stringify({ ts: Date.now(), seq, values: { level_cm: 12 } }))
  const socket = tcpConnect({ port: gateway.port, host: '127.0.0.1', noDelay: true })
  sockets.push(socket)
  const reader = new PacketReader()
  const got: ServerPacket[] = []
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no PUBACK for ${d.id}; received ${JSON.stringify(got)}`)), 10_000)
    socket.on('data', (c: Buffer) => {
      got.push(...reader.push(c))
      if (got.some((p) => p.type === 'puback')) {
        clearTimeout(timer)
        resolve()
      }
    })
    socket.on('error', reject)
    socket.once('connect', () => socket.write(Buffer.concat([connectPacket(d.id, d.id, deviceToken(SECRET, d.id), 30), publishPacket(`devices/${d.id}/telemetry`, payload, 1, 1)])))
  })
  socket.destroy()
}

const water = (): DeviceInfo[] => devices.filter((d) => d.type === 'water_level')

describe('hostile input at the MQTT front door', () => {
  it('closes connections that send random bytes, and goes on serving devices', async () => {
    const rand = prng(1)
    const cases = await Promise.all(Array.from({ length: 100 }, (_, i) => {
      const len = 1 + Math.floor(rand() * 600)
      const garbage = Buffer.from(Array.from({ length: len }, () => Math.floor(rand() * 256)))
      // Half of them start like a CONNECT, so the garbage reaches past the first byte.
      if (i % 2 === 0) garbage[0] = 0x10
      return send([garbage], 3_000)
    }))
    // None was answered as a device; every one is closed or left waiting for a CONNECT that never comes.
    for (const c of cases) expect(c.received.filter((p) => p.type === 'puback')).toEqual([])
    expect(cases.filter((c) => c.closed).length).toBeGreaterThan(50)
    await honest(water()[0] as DeviceInfo, 1)
  })

  it('refuses mutated CONNECT and PUBLISH packets of a real device without storing them as anything else', async () => {
    const rand = prng(2)
    const d = water()[1] as DeviceInfo
    const good = Buffer.concat([connectPacket(d.id, d.id, deviceToken(SECRET, d.id), 30), publishPacket(`devices/${d.id}/telemetry`, Buffer.from(JSON.stringify({ ts: Date.now(), seq: 1, values: { level_cm: 1 } })), 1, 1)])
    const stored = gateway.stats().stored as number
    const others = (await fixture.store.client.query({ query: 'SELECT toUInt32(count()) AS n FROM readings WHERE device_id != {id:String}', query_params: { id: d.id }, format: 'JSONEachRow' }).then((r) => r.json<{ n: number }>()))[0]?.n
    const cases = await Promise.all(Array.from({ length: 100 }, () => {
      const m = Buffer.from(good)
      const flips = 1 + Math.floor(rand() * 4)
      for (let f = 0; f < flips; f++) m[Math.floor(rand() * m.length)] = Math.floor(rand() * 256)
      return send([m], 3_000)
    }))
    // A mutation may leave the packets valid (a changed payload byte, another seq): at most one reading per case,
    // all of this device, and nothing of any other device (a changed id in the topic or the credentials is refused).
    expect((gateway.stats().stored as number) - stored).toBeLessThanOrEqual(cases.length)
    for (const c of cases) expect(c.received.filter((p) => p.type === 'puback').length).toBeLessThanOrEqual(1)
    await fixture.readings.flush()
    const othersAfter = (await fixture.store.client.query({ query: 'SELECT toUInt32(count()) AS n FROM readings WHERE device_id != {id:String}', query_params: { id: d.id }, format: 'JSONEachRow' }).then((r) => r.json<{ n: number }>()))[0]?.n
    expect(othersAfter).toBe(others)
    await honest(water()[2] as DeviceInfo, 1)
  })

  it('closes a connection whose CONNECT claims 200 MB instead of reading it in', async () => {
    const before = process.memoryUsage()
    const socket = tcpConnect({ port: gateway.port, host: '127.0.0.1' })
    sockets.push(socket)
    let closed = false
    socket.on('close', () => (closed = true))
    socket.on('error', () => undefined)
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    // Remaining length 0x80 0x80 0x80 0x64: 100 x 2^21 bytes.
    socket.write(Buffer.from([0x10, 0x80, 0x80, 0x80, 0x64]))
    const mb = Buffer.alloc(1 << 20, 0x41)
    let sent = 0
    for (; sent < 64 && !closed; sent++) await new Promise<void>((resolve) => socket.write(mb, () => resolve()))
    await expect.poll(() => closed, { timeout: 10_000 }).toBe(true)
    socket.destroy()
    const grew = process.memoryUsage().arrayBuffers - before.arrayBuffers
    expect(grew).toBeLessThan(16 * 2 ** 20)
    await honest(water()[3] as DeviceInfo, 1)
  })

  it('closes a device that publishes to a topic of ill-formed UTF-8 (MQTT-1.5.3-1)', async () => {
    const d = water()[4] as DeviceInfo
    const topic = Buffer.concat([Buffer.from(`devices/${d.id}/`), Buffer.from([0xff, 0xfe]), Buffer.from('telemetry')])
    const c = await send([connectPacket(d.id, d.id, deviceToken(SECRET, d.id), 30), publishPacket(topic, Buffer.from('{}'), 1, 1)], 5_000)
    expect(c.received.some((p) => p.type === 'connack')).toBe(true)
    expect(c.received.filter((p) => p.type === 'puback')).toEqual([])
    expect(c.closed).toBe(true)
  })

  it('keeps serving devices while four hundred connections never send CONNECT', async () => {
    const idle: Socket[] = []
    for (let i = 0; i < 400; i++) {
      const s = tcpConnect({ port: gateway.port, host: '127.0.0.1' })
      s.on('error', () => undefined)
      idle.push(s)
      sockets.push(s)
    }
    await Promise.all(idle.map((s) => new Promise<void>((resolve) => (s.readyState === 'open' ? resolve() : s.once('connect', () => resolve())))))
    await expect.poll(() => (gateway.stats() as { connecting: number }).connecting, { timeout: 10_000 }).toBeGreaterThanOrEqual(400)
    await honest(water()[5] as DeviceInfo, 1)
    for (const s of idle) s.destroy()
    await expect.poll(() => (gateway.stats() as { connecting: number }).connecting, { timeout: 10_000 }).toBe(0)
  })
})
