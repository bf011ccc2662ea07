// Connections per client address (mqtt.maxConnectionsPerAddress): the real
// gateway on a random port, raw TCP from two loopback addresses. Past the
// limit an address's connections are closed before CONNECT; another
// address is served; a slot frees when a connection ends.
import { connect as tcpConnect, createServer, type AddressInfo, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { metricsText } from '../../lib/metrics.ts'
import type { MqttGateway } from '../../ingest/mqtt/gateway.ts'
import { deviceToken } from '../../ingest/mqtt/tokens.ts'
import { connectPacket, PacketReader } from '../../simulators/devices/packets.ts'
import { gatewayOn, openGatewayStore, type GatewayStore } from './gateway-store.ts'
import { AddressLimit, peerAddress } from '../../ingest/mqtt/address-limit.ts'

const SECRET = 'address-limit-secret'
let fixture: GatewayStore
let gateway: MqttGateway
const sockets: Socket[] = []

beforeAll(async () => {
  fixture = await openGatewayStore(5, 20)
  gateway = gatewayOn(fixture, SECRET, { maxConnectionsPerAddress: 3 })
  await gateway.start()
})

afterAll(async () => {
  for (const s of sockets) s.destroy()
  await gateway?.stop(Date.now() + 5_000)
  await fixture?.close()
})

/** Connects from `from` as device `id`: 'accepted' (CONNACK 0) or 'closed' (ended without an answer). */
function device(from: string, id: string): Promise<{ outcome: 'accepted' | 'closed'; socket: Socket }> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ port: gateway.port, host: '127.0.0.1', localAddress: from })
    sockets.push(socket)
    const reader = new PacketReader()
    socket.on('connect', () => socket.write(connectPacket(id, id, deviceToken(SECRET, id), 30)))
    socket.on('data', (d: Buffer) => {
      if (reader.push(d).some((p) => p.type === 'connack' && p.returnCode === 0)) resolve({ outcome: 'accepted', socket })
    })
    socket.on('error', () => undefined)
    socket.on('close', () => resolve({ outcome: 'closed', socket }))
  })
}

describe('connections per address', () => {
  it('closes an address\'s connections past the limit, serves other addresses, and frees a slot when one ends', async () => {
    const ids = [...fixture.devices.values()].slice(0, 6).map((d) => d.id)
    const first = await Promise.all(ids.slice(0, 3).map((id) => device('127.0.0.1', id)))
    expect(first.map((r) => r.outcome)).toEqual(['accepted', 'accepted', 'accepted'])
    expect((await device('127.0.0.1', ids[3] ?? '')).outcome).toBe('closed')
    // Another address is its own count.
    expect((await device('127.0.0.2', ids[4] ?? '')).outcome).toBe('accepted')
    // One of the first ends: its address may connect again.
    await new Promise<void>((resolve) => {
      first[0]?.socket.once('close', () => resolve())
      first[0]?.socket.end()
    })
    let again = await device('127.0.0.1', ids[5] ?? '')
    // The gateway learns of the close a moment after the device: a retry or two at most.
    for (let i = 0; i < 20 && again.outcome === 'closed'; i++) {
      await new Promise((r) => setTimeout(r, 50))
      again = await device('127.0.0.1', ids[5] ?? '')
    }
    expect(again.outcome).toBe('accepted')
    expect((await metricsText()).body).toMatch(/^citytwin_mqtt_refused_total\{[^}]*code="ADDRESS_LIMIT"[^}]*\} [1-9]/m)
  })

  it('counts per address, and 0 is no limit', () => {
    const l = new AddressLimit(2)
    expect([l.take('a'), l.take('a'), l.take('a'), l.take('b')]).toEqual([true, true, false, true])
    l.release('a')
    expect(l.take('a')).toBe(true)
    l.release('a')
    l.release('a')
    l.release('b')
    expect(l.addresses).toBe(0)
    const off = new AddressLimit(0)
    expect(Array.from({ length: 10_000 }, () => off.take('a')).every(Boolean)).toBe(true)
    expect(off.shared('a')).toBe('a')
    // A release too many (a close after the count was dropped) does not count below zero.
    l.release('a')
    expect([l.take('a'), l.take('a'), l.take('a')]).toEqual([true, true, false])
    expect(l.shared('a')).toBe('a')
  })

  it('reads a TCP peer\'s address from its handle, without the copy Node keeps on the socket', async () => {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve))
      const client = tcpConnect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', localAddress: '127.0.0.3' })
      sockets.push(client)
      const socket = await accepted
      expect(peerAddress(socket)).toBe('127.0.0.3')
      expect(Reflect.get(socket, '_peername')).toBeUndefined()
      expect(socket.remoteAddress).toBe('127.0.0.3')
      expect(peerAddress({})).toBeUndefined()
      expect(peerAddress({ _handle: null })).toBeUndefined()
      socket.destroy()
    } finally {
      server.close()
    }
  })
})
