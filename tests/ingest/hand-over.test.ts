// A full gateway worker's side of the hand-over (ingest/mqtt/hand-over.ts):
// what it passes on, and when it refuses to (the caller then closes the
// connection). The path through a real primary and two workers is in
// cluster.test.ts.
import type { Worker } from 'node:cluster'
import { EventEmitter } from 'node:events'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { HandOverClient, HandOverRouter, MAX_HOPS, MAX_IN_TRANSIT, MIN_ACCEPTING, PAUSE_MAX_MS, SHARE_FLOOR, SHARE_MARGIN, shouldAccept } from '../../ingest/mqtt/hand-over.ts'

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
      expect(sent[0]?.m).toEqual({ type: 'citytwin-mqtt-held', held: 0, cap: 10, listening: true })
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

describe('hand-over: who accepts', () => {
  it('stops a worker that holds more than the mean by SHARE_MARGIN of its cap, past SHARE_FLOOR of it, but never the least loaded', () => {
    const cap = 1_000
    const margin = cap * SHARE_MARGIN
    // Below the floor a worker accepts however far ahead it is: the kernel's choice (the idlest) balances the CPU.
    expect(shouldAccept(cap * SHARE_FLOOR - 1, cap, [cap * SHARE_FLOOR - 1, 0, 0])).toBe(true)
    const loads = [900, 800, 800]
    const mean = (900 + 800 + 800) / 3
    expect(900 >= mean + margin).toBe(true)
    expect(shouldAccept(900, cap, loads)).toBe(false)
    expect(shouldAccept(800, cap, loads)).toBe(true)
    // Within the margin of the mean: still accepting.
    expect(shouldAccept(820, cap, [820, 800, 800])).toBe(true)
    // All far past the floor and one alone: it is the least loaded, so it accepts.
    expect(shouldAccept(990, cap, [990])).toBe(true)
  })

  it('tells each worker with its report whether to accept, keeping at least MIN_ACCEPTING others accepting', () => {
    const [a, b, c, d] = routedWorkers()
    a.report(500, 1_000)
    b.report(500, 1_000)
    c.report(500, 1_000)
    d.report(990, 1_000)
    expect(d.told.at(-1)).toBe(false)
    expect([a, b, c].map((w) => w.told.at(-1))).toEqual([true, true, true])
    // c far ahead too: a and b still accept, so c may stop.
    c.report(990, 1_000)
    expect(c.told.at(-1)).toBe(false)
    // b as well: only a would be left, fewer than MIN_ACCEPTING, so b goes on accepting.
    b.report(990, 1_000)
    expect(MIN_ACCEPTING).toBe(2)
    expect(b.told.at(-1)).toBe(true)
    // d falls back under the mean: told to accept again.
    d.report(100, 1_000)
    expect(d.told.at(-1)).toBe(true)
  })

  it('counts neither a worker that has not reported (just forked) nor one whose listener is not open yet, and tells the others at once when one exits', () => {
    const [a, b, c, d] = routedWorkers()
    // d was just forked and says nothing: its 0 does not pull the mean down, and it is not one of those listening.
    c.report(500, 1_000)
    b.report(990, 1_000)
    a.report(990, 1_000)
    // a: b and c listen, so a may stop. b: only c listens besides it (a was told to stop), so b goes on.
    expect(a.told.at(-1)).toBe(false)
    b.report(990, 1_000)
    expect(b.told.at(-1)).toBe(true)
    // c told to accept but its listener not open yet (a listen on its way): it does not count, so b goes on.
    c.report(500, 1_000, false)
    b.report(990, 1_000)
    expect(b.told.at(-1)).toBe(true)
    expect(d.told).toEqual([])
    // c exits: a, stopped, hears at once that it must accept (only b listens now).
    const before = a.told.length
    c.emit('exit')
    expect(a.told.length).toBe(before + 1)
    expect(a.told.at(-1)).toBe(true)
  })

  it('has a worker told to stop close its listener, and open it again when told or, without a word, after PAUSE_MAX_MS', () => {
    vi.useFakeTimers()
    const calls: boolean[] = []
    const c = new HandOverClient(() => true)
    c.attach({ ...hooks, accepting: (on) => calls.push(on), listening: () => true })
    try {
      c.verdict(false)
      c.verdict(true)
      expect(calls).toEqual([false, true])
      c.verdict(false)
      vi.advanceTimersByTime(PAUSE_MAX_MS - 1)
      expect(calls).toEqual([false, true, false])
      vi.advanceTimersByTime(1)
      expect(calls).toEqual([false, true, false, true])
      // Detached (stopping), a verdict changes nothing.
      c.detach()
      c.verdict(false)
      expect(calls).toHaveLength(4)
    } finally {
      c.detach()
      vi.useRealTimers()
    }
  })
})

/** Four fake workers a router watches. */
function routedWorkers(): [FakeWorker, FakeWorker, FakeWorker, FakeWorker] {
  const router = new HandOverRouter()
  const workers = [1, 2, 3, 4].map((id) => new FakeWorker(id))
  for (const w of workers) router.watch(w as unknown as Worker)
  return workers as [FakeWorker, FakeWorker, FakeWorker, FakeWorker]
}

/** What the router uses of a cluster worker: its messages, its channel, and its end. */
class FakeWorker extends EventEmitter {
  readonly id: number
  readonly told: boolean[] = []
  constructor(id: number) {
    super()
    this.id = id
  }

  isConnected(): boolean {
    return true
  }

  send(m: unknown): boolean {
    if ((m as { type?: string }).type === 'citytwin-mqtt-accept') this.told.push((m as { accept: boolean }).accept)
    return true
  }

  report(held: number, cap: number, listening = true): void {
    this.emit('message', { type: 'citytwin-mqtt-held', held, cap, listening }, undefined)
  }
}
