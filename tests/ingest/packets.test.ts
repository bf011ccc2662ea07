// The simulator's hand-written MQTT packets, read back by mqtt-packet (the
// parser aedes itself uses) and fed the broker's answers split at every byte.
import { describe, expect, it } from 'vitest'
import mqttPacket from 'mqtt-packet'
import { connectPacket, PacketReader, publishPacket } from '../../simulators/devices/packets.ts'

function parse(buf: Buffer): mqttPacket.Packet[] {
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  const out: mqttPacket.Packet[] = []
  parser.on('packet', (p) => out.push(p))
  parser.on('error', (e) => {
    throw e
  })
  parser.parse(buf)
  return out
}

describe('simulator packets', () => {
  it('encode a CONNECT that a real parser reads back', () => {
    const [p] = parse(connectPacket('D0000001', 'D0000001', 'tok', 60))
    expect(p).toMatchObject({ cmd: 'connect', clientId: 'D0000001', username: 'D0000001', keepalive: 60, clean: true, protocolVersion: 4 })
    expect((p as mqttPacket.IConnectPacket).password?.toString()).toBe('tok')
  })

  it('encode PUBLISH at QoS 0 and 1, with long payloads', () => {
    const payload = Buffer.alloc(20_000, 0x61)
    const [p] = parse(publishPacket('devices/D1/telemetry', payload, 1, 513))
    expect(p).toMatchObject({ cmd: 'publish', topic: 'devices/D1/telemetry', qos: 1, messageId: 513 })
    expect((p as mqttPacket.IPublishPacket).payload).toHaveLength(20_000)
    expect(parse(publishPacket('t', Buffer.from('x'), 0))[0]).toMatchObject({ cmd: 'publish', qos: 0 })
  })

  it('read CONNACK, PUBACK and PINGRESP however the stream is split', () => {
    const stream = Buffer.concat([
      mqttPacket.generate({ cmd: 'connack', returnCode: 0, sessionPresent: false }),
      mqttPacket.generate({ cmd: 'puback', messageId: 7 }),
      mqttPacket.generate({ cmd: 'pingresp' }),
      mqttPacket.generate({ cmd: 'puback', messageId: 65535 }),
    ])
    const reader = new PacketReader()
    const got = []
    for (let i = 0; i < stream.length; i++) got.push(...reader.push(stream.subarray(i, i + 1)))
    expect(got).toEqual([{ type: 'connack', returnCode: 0 }, { type: 'puback', packetId: 7 }, { type: 'pingresp' }, { type: 'puback', packetId: 65535 }])
  })
})
