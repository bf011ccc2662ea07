// Devices denied while a cluster runs (ingest/mqtt/denial-sync.ts): the
// primary reads the deny list, hands it to every worker, and only once each
// has it in force are the denied devices' connections ended; a worker takes
// the list from the primary at its start. A real store (chDB in a temp dir)
// and the real deny list table; the workers' IPC channels are in-process
// pairs that deliver a message a turn later, as a pipe would (the real
// cluster's channels are in tests/ingest/deny-list.test.ts).
import { EventEmitter } from 'node:events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DenialSync, PrimaryDenials } from '../../ingest/mqtt/denial-sync.ts'
import { setDenial } from '../../ingest/mqtt/deny-list.ts'
import type { PrimaryChannel, SyncWorker } from '../../ingest/mqtt/worker-rounds.ts'
import { openGatewayStore, type GatewayStore } from './gateway-store.ts'

interface Linked {
  worker: SyncWorker & { exit(): void }
  channel: PrimaryChannel
}

/**
 * A worker as the primary sees it and its channel as the worker sees it;
 * `answers: false` drops the worker's answers that it applied a list;
 * `delayMs` holds what the primary sends to it (a busy worker), in order;
 * `lose` drops what the primary sends that it matches (a lost message).
 */
function link(pid: number, answers = true, delayMs = 0, lose: (m: object) => boolean = () => false): Linked {
  const toWorker = new EventEmitter()
  const toPrimary = new EventEmitter()
  let last = Promise.resolve()
  const deliver = (to: EventEmitter, m: object, ms: number): void => {
    last = last.then(() => new Promise<void>((r) => setTimeout(r, ms))).then(() => void to.emit('message', structuredClone(m)))
  }
  return {
    worker: {
      process: { pid },
      isConnected: () => true,
      send: (m) => void (lose(m) || deliver(toWorker, m, delayMs)),
      on: (event, listener) => toPrimary.on(event, listener),
      once: (event, listener) => toPrimary.once(event, listener),
      exit: () => toPrimary.emit('exit'),
    },
    channel: {
      connected: true,
      send: (m) => (answers || (m as { type?: string }).type !== 'citytwin-denials-applied') && void setImmediate(() => toPrimary.emit('message', structuredClone(m))),
      on: (event, listener) => toWorker.on(event, listener),
    },
  }
}

describe('deny list sync between a gateway primary and its workers', () => {
  let fx: GatewayStore

  beforeAll(async () => {
    fx = await openGatewayStore(73, 20)
  })

  afterAll(async () => {
    await fx.close()
  })

  async function until(ok: () => boolean, what: string): Promise<void> {
    for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 20))
    if (!ok()) throw new Error(`timed out waiting for: ${what}`)
  }

  /**
   * Workers following `sync`, each started (it asks the primary for the
   * list) and then saying it listens, as cli.ts has a worker do. Each
   * records, when it is told to end connections, whether every worker had
   * the devices denied by then.
   */
  async function workers(sync: DenialSync, opts: { answers?: boolean[]; delays?: number[] } = {}) {
    const out: { linked: Linked; list: PrimaryDenials; ends: { ids: readonly string[]; deniedEverywhere: boolean }[] }[] = []
    const n = Math.max(opts.answers?.length ?? 2, opts.delays?.length ?? 2)
    for (let i = 0; i < n; i++) {
      const linked = link(2000 + i, opts.answers?.[i] ?? true, opts.delays?.[i] ?? 0)
      const ends: { ids: readonly string[]; deniedEverywhere: boolean }[] = []
      const list = new PrimaryDenials({ onDenied: (ids) => ends.push({ ids, deniedEverywhere: out.every((w) => ids.every((id) => w.list.has(id))) }) }, linked.channel)
      sync.watch(linked.worker)
      out.push({ linked, list, ends })
    }
    await Promise.all(out.map((w) => w.list.start()))
    for (const [i, w] of out.entries()) w.linked.channel.send?.({ type: 'mqtt-ready', port: 0, pid: 2000 + i })
    await new Promise((r) => setTimeout(r, 20))
    return out
  }

  const syncFor = (applyTimeoutMs: number): DenialSync => new DenialSync({ client: fx.store.client, refreshMs: 60_000, applyTimeoutMs })

  it('ends a denied device\'s connections only once every worker refuses it, and a worker starts with the list in force', async () => {
    await setDenial(fx.store.client, { deviceId: 'X-DENY-0', denied: true, reason: 'before the start', actor: 'test' })
    const sync = syncFor(30_000)
    await sync.start()
    // The second worker is slow to take what the primary sends: were the end sent without waiting for it, the first would end the connection while the second still let the device in.
    const ws = await workers(sync, { delays: [0, 150] })
    expect(ws.map((w) => w.list.has('X-DENY-0'))).toEqual([true, true])

    await setDenial(fx.store.client, { deviceId: 'X-DENY-1', denied: true, reason: 'cloned token', actor: 'test' })
    await sync.refresh()
    await until(() => ws.every((w) => w.ends.length > 0), 'every worker told to end the connection')
    for (const w of ws) expect(w.ends).toEqual([{ ids: ['X-DENY-1'], deniedEverywhere: true }])
    expect(sync.stats()).toMatchObject({ denied: 1, rounds: 1, timedOut: 0, inForce: 2, version: 2 })

    // Given back: every worker lets it in again, and nothing ends.
    await setDenial(fx.store.client, { deviceId: 'X-DENY-1', denied: false, reason: '', actor: 'test' })
    await sync.refresh()
    await until(() => ws.every((w) => !w.list.has('X-DENY-1')), 'every worker allows it again')
    expect(ws.map((w) => w.ends.length)).toEqual([1, 1])
    expect(sync.stats()).toMatchObject({ allowed: 1, rounds: 2 })
    // A read that finds nothing new runs no round.
    await sync.refresh()
    expect(sync.stats()).toMatchObject({ rounds: 2 })
    await sync.stop()
  })

  it('ends them after applyTimeoutMs when a worker does not answer, and at once when it has exited', async () => {
    const sync = syncFor(300)
    await sync.start()
    const ws = await workers(sync, { answers: [true, false] })
    await setDenial(fx.store.client, { deviceId: 'X-DENY-2', denied: true, reason: 'floods', actor: 'test' })
    await sync.refresh()
    await until(() => ws.every((w) => w.ends.length > 0), 'the end after the timeout')
    // The silent worker put the list in force too (it only failed to say so).
    for (const w of ws) expect(w.ends).toEqual([{ ids: ['X-DENY-2'], deniedEverywhere: true }])
    expect(sync.stats()).toMatchObject({ timedOut: 1 })
    await sync.stop()

    // A worker that exits while the primary waits for it does not hold the others for the timeout.
    const slow = syncFor(60_000)
    await slow.start()
    const again = await workers(slow, { answers: [true, false] })
    await setDenial(fx.store.client, { deviceId: 'X-DENY-3', denied: true, reason: 'stolen', actor: 'test' })
    const done = slow.refresh()
    setTimeout(() => again[1]?.linked.worker.exit(), 100)
    await done
    expect(slow.stats()).toMatchObject({ rounds: 1, timedOut: 0 })
    await slow.stop()
  })

  it('answers a worker that asks before the first read once it has read, and a worker whose primary never answers does not start', async () => {
    const sync = syncFor(30_000)
    const linked = link(3000)
    const list = new PrimaryDenials({ onDenied: () => undefined }, linked.channel)
    sync.watch(linked.worker)
    const started = list.start()
    await new Promise((r) => setTimeout(r, 50))
    await sync.start()
    await started
    expect(list.has('X-DENY-0')).toBe(true)
    expect(list.stats()).toMatchObject({ lists: 1 })
    await sync.stop()

    // No list, no start: a worker that let every device in would undo every denial.
    const orphan = new PrimaryDenials({ onDenied: () => undefined, startTimeoutMs: 200 }, link(3001).channel)
    const failed = await orphan.start().then(() => undefined, (e: unknown) => e)
    expect(failed).toMatchObject({ code: 'STORE_UNAVAILABLE' })
    expect((failed as Error).message).toMatch(/did not hand over the device deny list/)
  })

  it('hands a change read while the workers start to them, though none has said it listens yet', async () => {
    const sync = syncFor(30_000)
    await sync.start()
    const linked = link(4000)
    const ends: (readonly string[])[] = []
    const list = new PrimaryDenials({ onDenied: (ids) => ends.push(ids) }, linked.channel)
    sync.watch(linked.worker)
    await list.start()
    // No 'mqtt-ready' yet: a worker loading its registry, the pool not yet known to the primary.
    await setDenial(fx.store.client, { deviceId: 'X-DENY-4', denied: true, reason: 'cloned token', actor: 'test' })
    await sync.refresh()
    await until(() => list.has('X-DENY-4'), 'the starting worker has the list')
    await until(() => ends.length > 0, 'the starting worker told to end the connection')
    expect(ends).toEqual([['X-DENY-4']])
    await sync.stop()
  })

  it('repairs a lost list at the next read: a worker behind the version in force asks for the list again', async () => {
    const sync = syncFor(300)
    await sync.start()
    let lost = 0
    // The first round's list never arrives.
    const linked = link(5000, true, 0, (m) => (m as { type?: string; id?: number }).type === 'citytwin-denials' && ((m as { id?: number }).id ?? 0) > 0 && lost++ === 0)
    const list = new PrimaryDenials({ onDenied: () => undefined }, linked.channel)
    sync.watch(linked.worker)
    await list.start()
    linked.channel.send?.({ type: 'mqtt-ready', port: 0, pid: 5000 })
    await setDenial(fx.store.client, { deviceId: 'X-DENY-5', denied: true, reason: 'stolen', actor: 'test' })
    await sync.refresh()
    expect(lost).toBe(1)
    expect(list.has('X-DENY-5')).toBe(false)
    // A read that finds nothing new tells the version in force; the worker, behind it, asks, and has the list.
    await sync.refresh()
    await until(() => list.has('X-DENY-5'), 'the worker repaired')
    expect(list.stats()).toMatchObject({ version: sync.stats().version })
    await sync.stop()
  })
})
