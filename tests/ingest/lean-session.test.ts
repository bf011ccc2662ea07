// Lean sessions (ingest/mqtt/lean-session.ts), their pure parts: which
// first packets the gateway answers itself, the CONNECT aedes reads when it
// takes a session over, and the CONNACK kept from the device then. The
// gateway's behaviour with lean sessions is in fast-lane.test.ts.
import { createServer, connect as tcpConnect, type AddressInfo, type Socket } from 'node:net'
import mqttPacket from 'mqtt-packet'
import { afterAll, describe, expect, it } from 'vitest'
import { connack, PLAIN_CONNECT_MAX, readConnect, swallowConnack, takeOverConnect } from '../../ingest/mqtt/lean-session.ts'
import { connectPacket } from '../../simulators/devices/packets.ts'

/** A CONNECT as a third-party client writes it (mqtt-packet, which mqtt.js uses). */
function generated(o: Partial<mqttPacket.IConnectPacket>): Buffer {
  return mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'D1', keepalive: 30, username: 'D1', password: Buffer.from('tok'), ...o })
}

describe('which CONNECT the gateway answers itself', () => {
  it('reads the city simulator\'s CONNECT and a third-party client\'s: client id, user name, token, keep-alive, where it ends', () => {
    const sim = connectPacket('D0000001', 'D0000001', 'token-1', 60)
    const r = readConnect(Buffer.concat([sim, Buffer.from([0xc0, 0])]))
    expect(r).toEqual({ kind: 'plain', end: sim.length, connect: { clientId: 'D0000001', username: 'D0000001', password: Buffer.from('token-1'), keepaliveS: 60 } })
    const other = generated({ clientId: 'dev-ü', username: 'D2', password: Buffer.from([0, 1, 2]), keepalive: 0 })
    expect(readConnect(other)).toEqual({ kind: 'plain', end: other.length, connect: { clientId: 'dev-ü', username: 'D2', password: Buffer.from([0, 1, 2]), keepaliveS: 0 } })
  })

  it('waits for the rest of a CONNECT that comes in pieces', () => {
    const p = connectPacket('D1', 'D1', 'tok', 30)
    for (const n of [0, 1, 2, 10, p.length - 1]) expect(readConnect(p.subarray(0, n))).toEqual({ kind: 'partial' })
  })

  it('leaves to aedes a will, a persistent session, no user name or password, MQTT 3.1 and 5, an empty or long client id', () => {
    const cases: Buffer[] = [
      generated({ will: { topic: 'devices/D1/status', payload: Buffer.from('gone'), qos: 1, retain: false } }),
      generated({ clean: false }),
      generated({ username: undefined, password: undefined }),
      generated({ password: undefined }),
      generated({ protocolId: 'MQIsdp', protocolVersion: 3 }),
      generated({ protocolVersion: 5 }),
      generated({ clientId: '' }),
      generated({ clientId: 'x'.repeat(65) }),
    ]
    for (const b of cases) expect(readConnect(b).kind).toBe('aedes')
  })

  it('leaves to aedes what is not a plain CONNECT at all: another packet, reserved flags, a CONNECT too long, one malformed', () => {
    expect(readConnect(Buffer.from([0xc0, 0])).kind).toBe('aedes')
    const flagged = generated({})
    flagged[0] = 0x12
    expect(readConnect(flagged).kind).toBe('aedes')
    const long = generated({ password: Buffer.alloc(PLAIN_CONNECT_MAX) })
    const r = readConnect(long.subarray(0, 3))
    expect(r.kind === 'aedes' ? r.reason : r.kind).toBe(`a CONNECT above ${PLAIN_CONNECT_MAX} bytes`)
    // The password's length runs past the packet's end.
    const p = connectPacket('D1', 'D1', 'tok', 30)
    p.writeUInt16BE(200, p.length - 5)
    expect(readConnect(p)).toEqual({ kind: 'aedes', reason: 'a malformed CONNECT' })
    // Bytes inside the packet after the password.
    const padded = Buffer.concat([p.subarray(0, 1), Buffer.from([(p[1] as number) + 1]), connectPacket('D1', 'D1', 'tok', 30).subarray(2), Buffer.from([0])])
    expect(readConnect(padded).kind).toBe('aedes')
  })
})

describe('a session aedes takes over', () => {
  it('gets a CONNECT with the session\'s client id, user name and keep-alive, clean, and no password', () => {
    const parser = mqttPacket.parser({ protocolVersion: 4 })
    const got: mqttPacket.Packet[] = []
    parser.on('packet', (p) => got.push(p))
    parser.parse(takeOverConnect('dev-ü', 'D7', 45))
    expect(got).toHaveLength(1)
    expect(got[0]).toMatchObject({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'dev-ü', username: 'D7', keepalive: 45 })
    expect((got[0] as mqttPacket.IConnectPacket).password).toBeUndefined()
  })

  const sockets: Socket[] = []
  afterAll(() => {
    for (const s of sockets) s.destroy()
  })

  it('does not send the device a second CONNACK: PUBACKs before it and everything after it go through', async () => {
    const received: Buffer[] = []
    const server = createServer((s) => s.on('data', (b: Buffer) => received.push(b)))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const socket = tcpConnect((server.address() as AddressInfo).port, '127.0.0.1')
    sockets.push(socket)
    await new Promise<void>((r) => socket.once('connect', () => r()))
    swallowConnack(socket)
    socket.write(Buffer.from([0x40, 2, 0, 1]))
    // As aedes writes its CONNACK: mqtt-packet, four writes in one call.
    let written = false
    mqttPacket.writeToStream({ cmd: 'connack', returnCode: 0, sessionPresent: false }, socket)
    socket.write(Buffer.from([0x90, 3, 0, 2, 0]), () => (written = true))
    mqttPacket.writeToStream({ cmd: 'connack', returnCode: 0, sessionPresent: false }, socket)
    await expect.poll(() => Buffer.concat(received).length).toBe(13)
    expect([...Buffer.concat(received)]).toEqual([0x40, 2, 0, 1, 0x90, 3, 0, 2, 0, ...connack(0)])
    expect(written).toBe(true)
    socket.destroy()
    await new Promise<void>((r) => server.close(() => r()))
  })
})
