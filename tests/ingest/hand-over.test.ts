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
async function accepted(n: number): Promise<Socket[]> {
  const got: Socket[] = []
  const server = createServer({ pauseOnConnect: true }, (s) => got.push(s))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const port = (server.address() as { port: number }).port
  const clients = Array.from({ length: n }, () => connect(port, '127.0.0.1'))
  open.push({ server, sockets: [...clients, ...got] })
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
