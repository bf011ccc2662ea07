// What the gateway drops of a client after its CONNECT (ingest/mqtt/client-trim.ts),
// on a real aedes broker over TCP: the CONNECT (and the socket read its
// password sliced) is gone, and the parser still reads every packet after it.
import { EventEmitter, once } from 'node:events'
import { connect as tcpConnect, createServer, type AddressInfo } from 'node:net'
import { Aedes, type Client } from 'aedes'
import { generate } from 'mqtt-packet'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { compactListeners, trimAfterConnect } from '../../ingest/mqtt/client-trim.ts'
import { connectPacket, PacketReader, PINGREQ, publishPacket, type ServerPacket } from '../../simulators/devices/packets.ts'

interface ParserView {
  settings: Record<string, unknown>
  _list: { length: number; pipe?: unknown }
}

describe('client trim after CONNECT', () => {
  let broker: Aedes
  let server: ReturnType<typeof createServer>
  let port = 0
  const ready: Client[] = []

  beforeAll(async () => {
    broker = await Aedes.createBroker()
    broker.on('clientReady', (client) => {
      trimAfterConnect(client)
      ready.push(client)
    })
    server = createServer((s) => broker.handle(s))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    port = (server.address() as AddressInfo).port
  })

  afterAll(async () => {
    server.close()
    await new Promise<void>((r) => broker.close(() => r()))
  })

  /** A device connected over TCP (its CONNACK awaited): its socket and the packets it got. */
  async function connectDevice(id: string): Promise<{ socket: ReturnType<typeof tcpConnect>; got: ServerPacket[] }> {
    const socket = tcpConnect(port, '127.0.0.1')
    const reader = new PacketReader()
    const got: ServerPacket[] = []
    socket.on('data', (b: Buffer) => got.push(...reader.push(b)))
    socket.write(connectPacket(id, 'user', 'pw', 30))
    for (let i = 0; i < 200 && got.length < 1; i++) await new Promise((r) => setTimeout(r, 10))
    return { socket, got }
  }

  it('keeps neither the CONNECT nor a stream buffer, and aedes still parses SUBSCRIBE, PINGREQ and QoS 2 after it', async () => {
    const socket = tcpConnect(port, '127.0.0.1')
    const reader = new PacketReader()
    const got: ServerPacket[] = []
    socket.on('data', (b: Buffer) => got.push(...reader.push(b)))
    const waitFor = async (n: number): Promise<void> => {
      for (let i = 0; i < 200 && got.length < n; i++) await new Promise((r) => setTimeout(r, 10))
    }
    try {
      socket.write(connectPacket('trim-1', 'user', 'a-password-of-some-length', 30))
      await waitFor(1)
      expect(got[0]).toEqual({ type: 'connack', returnCode: 0 })
      const client = ready.find((c) => c.id === 'trim-1')
      const parser = (client as unknown as { _parser: ParserView })._parser
      expect(parser.settings).toEqual({ protocolVersion: 4 })
      expect(parser._list.length).toBe(0)
      expect(parser._list.pipe).toBeUndefined()
      // Split across reads, so the plain buffer list must join them as the stream did.
      const sub = generate({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: 'a/b', qos: 1 }] })
      const pub2 = publishPacket('a/c', Buffer.from('x'), 1, 4)
      pub2[0] = 0x34 // QoS 2
      const all = Buffer.concat([sub, PINGREQ, pub2])
      for (let i = 0; i < all.length; i += 3) {
        socket.write(all.subarray(i, i + 3))
        await new Promise((r) => setTimeout(r, 2))
      }
      await waitFor(4)
      // SUBACK (0x90), PINGRESP, PUBREC (0x50); aedes answers a SUBSCRIBE after its persistence, so in any order.
      expect(got.length).toBe(4)
      expect(got.slice(1)).toEqual(expect.arrayContaining([{ type: 'other', firstByte: 0x90 }, { type: 'pingresp' }, { type: 'other', firstByte: 0x50 }]))
    } finally {
      socket.destroy()
    }
  })

  it('ends a client whose socket closes without an end or an error, which stream.finished() saw before', async () => {
    const { socket } = await connectDevice('trim-2')
    try {
      const client = ready.find((c) => c.id === 'trim-2') as Client & { closed: boolean; conn: { destroy(): void; listenerCount(e: string): number } }
      expect(client.closed).toBe(false)
      // stream.finished()'s listeners are gone: 'finish' had only its own.
      expect(client.conn.listenerCount('finish')).toBe(0)
      const gone = new Promise<void>((resolve) => broker.on('clientDisconnect', (c) => c === client && resolve()))
      // The gateway's own end of a socket (a destroy without error) emits 'close' only.
      client.conn.destroy()
      await gone
      expect(client.closed).toBe(true)
    } finally {
      socket.destroy()
    }
  })

  it('ends a client whose device half-closes, through the end listeners rebuilt after the trim', async () => {
    const { socket } = await connectDevice('trim-3')
    try {
      const client = ready.find((c) => c.id === 'trim-3') as Client & { closed: boolean; conn: EventEmitter }
      // The stream's own (it ends its side too) and aedes', in that order; stream.finished()'s is gone.
      const names = client.conn.rawListeners('end').map((l) => (l as { name: string }).name)
      expect(names).toHaveLength(2)
      expect(names[0]).toBe('onReadableStreamEnd')
      const gone = new Promise<void>((resolve) => broker.on('clientDisconnect', (c) => c === client && resolve()))
      socket.end()
      await gone
      expect(client.closed).toBe(true)
    } finally {
      socket.destroy()
    }
  })

  it('gives two listeners an array of their own size, in their order, a once among them still called once', () => {
    const e = new EventEmitter()
    const calls: string[] = []
    e.on('end', () => calls.push('first'))
    e.once('end', () => calls.push('second, once'))
    e.on('end', () => calls.push('third, gone before the rebuild'))
    e.removeListener('end', e.rawListeners('end')[2] as () => void)
    const events = (e as unknown as { _events: Record<string, unknown[]> })._events
    const grown = events.end
    compactListeners(e, 'end')
    // A new array of two, not the one that grew to three.
    expect(events.end).not.toBe(grown)
    expect(events.end).toHaveLength(2)
    expect(e.listenerCount('end')).toBe(2)
    e.emit('end')
    e.emit('end')
    expect(calls).toEqual(['first', 'second, once', 'first'])
  })

  it('leaves a client alone that is not in the shape it knows', () => {
    const odd = { _parser: { settings: { protocolVersion: 5 }, _list: { length: 3, append: () => undefined, pipe: () => undefined } } }
    trimAfterConnect(odd)
    expect(odd._parser.settings).toEqual({ protocolVersion: 5 })
    expect(odd._parser._list.length).toBe(3)
    trimAfterConnect({})
  })
})
