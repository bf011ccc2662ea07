// A full gateway worker's side of the hand-over (ingest/mqtt/hand-over.ts):
// what it passes on, and when it refuses to (the caller then closes the
// connection). The path through a real primary and two workers is in
// cluster.test.ts.
import { connect, createServer, type Server, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { HandOverClient, MAX_HOPS, MAX_IN_TRANSIT } from '../../ingest/mqtt/hand-over.ts'

const open: { server: Server; sockets: Socket[] }[] = []
afterEach(async () => {
  for (const o of open.splice(0)) {
    for (const s of o.sockets) s.destroy()
    await new Promise<void>((r) => o.server.close(() => r()))
  }
})

/** `n` accepted sockets on loopback (the server's ends, as a gateway's accept gives them). */
async function accepted(n: number, pauseOnConnect = true, write = true): Promise<Socket[]> {
  const got: Socket[] = []
  // Closed with unread data, a socket is reset: its peer's error is expected here.
  const server = createServer({ pauseOnConnect }, (s) => got.push(s.on('error', () => undefined)))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const port = (server.address() as { port: number }).port
  const clients = Array.from({ length: n }, () => connect(port, '127.0.0.1', function (this: Socket) {
    if (write) this.write('CONNECT')
  }).on('error', () => undefined))
  open.push({ server, sockets: [...clients] })
  while (got.length < n) await new Promise((r) => setTimeout(r, 5))
  open[open.length - 1]?.sockets.push(...got)
  return got
}

const hooks = { held: () => 0, cap: 10, take: () => undefined }

describe('hand-over, a worker\'s side', () => {
  it('passes a socket on with its hops, and no more than MAX_HOPS times', async () => {
    const [s] = await accepted(1)
    const sent: { m: unknown; socket: Socket | undefined }[] = []
    const c = new HandOverClient((m, socket, done) => {
      sent.push({ m, socket })
      if (socket) done(null)
      return true
    })
    c.attach(hooks)
    try {
      expect(c.pass(s as Socket, 1)).toBe(true)
      expect(sent.filter((x) => x.socket)).toEqual([{ m: { type: 'citytwin-mqtt-pass', hops: 1 }, socket: s }])
      // Passed on as often as allowed: the caller closes it.
      expect(c.pass(s as Socket, MAX_HOPS)).toBe(false)
      // Its count goes to the primary at once.
      expect(sent[0]?.m).toEqual({ type: 'citytwin-mqtt-held', held: 0, cap: 10 })
      expect(c.stats()).toMatchObject({ passedOut: 1, inTransit: 0 })
    } finally {
      c.detach()
    }
  })

  it('refuses to pass on without a primary, and closes a socket whose send failed', async () => {
    const [a, b] = await accepted(2)
    const none = new HandOverClient(() => false)
    none.attach(hooks)
    expect(none.pass(a as Socket, 0)).toBe(false)
    none.detach()
    const failing = new HandOverClient((_m, socket, done) => {
      if (socket) setImmediate(() => done(new Error('channel closed')))
      return true
    })
    failing.attach(hooks)
    try {
      expect(failing.pass(b as Socket, 0)).toBe(true)
      await new Promise((r) => setTimeout(r, 20))
      expect(b?.destroyed).toBe(true)
      expect(failing.stats()).toMatchObject({ failed: 1, inTransit: 0 })
    } finally {
      failing.detach()
    }
  })

  it('never passes on a socket that has read data here (it would be lost), and stops the reading of one it passes', async () => {
    // As a socket passed to this worker arrives: reading from the start.
    const [reading] = await accepted(1, false)
    const [fresh] = await accepted(1, false, false)
    while ((reading as Socket).readableLength === 0) await new Promise((r) => setTimeout(r, 5))
    const c = new HandOverClient((_m, socket, done) => {
      if (socket) done(null)
      return true
    })
    c.attach(hooks)
    try {
      expect(c.pass(reading as Socket, 1)).toBe(false)
      expect(c.pass(fresh as Socket, 1)).toBe(true)
      // Its handle no longer reads: what the device sent stays in the kernel for whoever takes the socket.
      expect((fresh as unknown as { _handle: { reading: boolean } })._handle.reading).toBe(false)
    } finally {
      c.detach()
    }
  })

  it('counts a socket on its way once, even when node calls back twice (a handle resent after a NACK)', async () => {
    const [s] = await accepted(1)
    const c = new HandOverClient((_m, socket, done) => {
      if (socket) {
        done(null)
        done(null)
      }
      return true
    })
    c.attach(hooks)
    try {
      expect(c.pass(s as Socket, 0)).toBe(true)
      expect(c.pass(s as Socket, 0)).toBe(true)
      expect(c.stats()).toMatchObject({ inTransit: 0, passedOut: 2 })
    } finally {
      c.detach()
    }
  })

  it('holds at most MAX_IN_TRANSIT sockets on their way, each a descriptor of its own', async () => {
    const [s] = await accepted(1)
    const pending: ((e: Error | null) => void)[] = []
    const c = new HandOverClient((_m, socket, done) => {
      if (socket) pending.push(done)
      return true
    })
    c.attach(hooks)
    try {
      for (let i = 0; i < MAX_IN_TRANSIT; i++) expect(c.pass(s as Socket, 0)).toBe(true)
      expect(c.pass(s as Socket, 0)).toBe(false)
      pending.shift()?.(null)
      expect(c.pass(s as Socket, 0)).toBe(true)
      expect(c.stats()).toMatchObject({ inTransit: MAX_IN_TRANSIT })
    } finally {
      c.detach()
    }
  })
})
