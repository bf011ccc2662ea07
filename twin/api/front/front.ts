// Starting, feeding and stopping the API's own thread (thread.ts) from the
// main thread: the thread is bundled (lib/bundle.ts) and started with the
// API's configuration and the path of the main thread's server; it hears
// of every twin loaded and every sweep (LiveTwin.follow) on a port of its
// own, and its counts of what it answered go into this process's metrics.
// A thread that dies is started again, after a wait that grows while it
// keeps dying.
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads'
import type { Bundle } from '../../../lib/bundle.ts'
import { bundleEntry } from '../../../lib/bundle.ts'
import { backoffDelayMs } from '../../../lib/backoff.ts'
import { CitytwinError, messageOf } from '../../../lib/errors.ts'
import { logger } from '../../../lib/log.ts'
import type { LiveTwin } from '../../state/live-twin.ts'
import type { ApiConfig } from '../config.ts'
import { apiAnswerSeconds, authFailures, httpRequests } from '../metrics.ts'
import type { Counts, FromFront, FrontData, ToFront, TwinMessage } from './protocol.ts'

const log = logger('api-front')

/** Every API thread of this process, for GET /metrics to collect their counts first. */
const running = new Set<ApiFront>()

/** Adds every API thread's counts so far to this process's metrics (at most `waitMs` for each). */
export async function flushFrontCounts(waitMs = 500): Promise<void> {
  await Promise.all([...running].map((f) => f.flush(waitMs)))
}

export interface ApiFrontOptions {
  config: ApiConfig
  /** The main thread's server (a Unix socket path). */
  backend: string
  staticDir: string | undefined
  /** The main thread's routes, [method, path]. */
  backendRoutes: [string, string][]
  twin: LiveTwin
}

function addCounts(c: Counts): void {
  for (const [route, status, n] of c.requests) httpRequests.inc({ route, status }, n)
  for (const [outcome, n] of c.authFailures) authFailures.inc({ outcome }, n)
  for (const [route, seconds] of c.answers) {
    const timed = apiAnswerSeconds.labels({ route })
    for (const s of seconds) timed.observe(s)
  }
}

export class ApiFront {
  readonly #opts: ApiFrontOptions
  readonly #bundle: Bundle
  #worker: Worker | undefined
  #port = 0
  #stopping = false
  #deaths = 0
  #restartTimer: NodeJS.Timeout | undefined
  #unfollow: (() => void) | undefined
  #flushes = new Map<number, () => void>()
  #nextFlush = 0
  #starts = 0

  private constructor(opts: ApiFrontOptions, bundle: Bundle) {
    this.#opts = opts
    this.#bundle = bundle
  }

  /** Starts the thread; resolves once it listens, rejects with its reason (the port taken, say). */
  static async start(opts: ApiFrontOptions): Promise<ApiFront> {
    const bundle = await bundleEntry('twin/api/front/thread.ts', 'api-thread')
    const front = new ApiFront(opts, bundle)
    try {
      front.#port = await front.#spawn(opts.config.port)
    } catch (e) {
      bundle.remove()
      throw e
    }
    running.add(front)
    return front
  }

  /** The port the thread listens on. */
  get port(): number {
    return this.#port
  }

  get starts(): number {
    return this.#starts
  }

  /**
   * One thread listening on `port`. The twin goes to it on a port of its
   * own: the thread drains that port before each answer, so it never
   * answers from a twin older than the one the main thread had when the
   * request was sent.
   */
  #spawn(port: number): Promise<number> {
    const { port1, port2 } = new MessageChannel()
    const data: FrontData = { config: { ...this.#opts.config, port }, backend: this.#opts.backend, staticDir: this.#opts.staticDir, backendRoutes: this.#opts.backendRoutes, twinPort: port2 }
    // No flags: it needs none, and a worker thread refuses the process-wide ones the process may run with (--max-old-space-size).
    const worker = new Worker(this.#bundle.file, { workerData: data, transferList: [port2], execArgv: [] })
    this.#worker = worker
    this.#starts++
    const startedAt = Date.now()
    return new Promise<number>((resolve, reject) => {
      let listening = false
      worker.on('message', (m: FromFront) => {
        switch (m.type) {
          case 'listening':
            listening = true
            this.#unfollow = this.#follow(port1)
            resolve(m.port)
            return
          case 'listen-failed':
            reject(Object.assign(new Error(m.message), { code: m.code }))
            return
          case 'counts':
            addCounts(m.counts)
            if (m.flushed !== undefined) this.#flushes.get(m.flushed)?.()
            return
          case 'twin-ready':
          case 'stopped':
            return
        }
      })
      worker.on('error', (e) => {
        log.error({ err: e }, 'the API thread failed')
        if (!listening) reject(new CitytwinError('INTERNAL', `the API thread failed before it listened: ${messageOf(e)}`, { cause: e }))
      })
      worker.on('exit', (code) => {
        this.#unfollow?.()
        this.#unfollow = undefined
        port1.close()
        for (const done of this.#flushes.values()) done()
        if (!listening) {
          reject(new CitytwinError('INTERNAL', `the API thread exited (${code}) before it listened`))
          return
        }
        if (this.#stopping) return
        // A thread that ran a while starts again at once; one that keeps dying waits longer each time.
        if (Date.now() - startedAt > 60_000) this.#deaths = 0
        log.error({ code }, 'the API thread stopped; starting another')
        this.#restart()
      })
    })
  }

  /** Starts another thread on the same port (clients and the address in the logs stay right), after a wait that grows while starts fail. */
  #restart(): void {
    const delayMs = backoffDelayMs(this.#deaths++, { initialMs: 200, maxMs: 10_000 })
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined
      if (this.#stopping) return
      this.#spawn(this.#port).catch((e: unknown) => {
        log.error({ err: messageOf(e), retryInMs: delayMs }, 'could not start the API thread again')
        if (!this.#stopping) this.#restart()
      })
    }, delayMs)
  }

  /** Sends the twin to the thread now and at every load, and ingest's state after every sweep. */
  #follow(port: MessagePort): () => void {
    const send = (m: TwinMessage): void => {
      try {
        port.postMessage(m)
      } catch (e) {
        // The city could not be copied (it is plain data, so this is a bug): the thread keeps passing the reads on.
        log.error({ err: messageOf(e) }, 'could not send the twin to the API thread')
      }
    }
    return this.#opts.twin.follow({
      loaded: (twin, ingest) => send({ type: 'twin', share: twin.share(), ingest }),
      swept: (ingest) => send({ type: 'ingest', ingest }),
    })
  }

  /** Asks the thread for its counts and waits for them (at most `waitMs`). */
  flush(waitMs: number): Promise<void> {
    const worker = this.#worker
    if (!worker) return Promise.resolve()
    const id = this.#nextFlush++
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.#flushes.delete(id)
        resolve()
      }
      const timer = setTimeout(done, waitMs)
      this.#flushes.set(id, done)
      worker.postMessage({ type: 'flush', id } satisfies ToFront)
    })
  }

  /** Closes the port (requests in flight may finish until the deadline), then ends the thread. */
  async stop(deadline: number): Promise<void> {
    this.#stopping = true
    running.delete(this)
    clearTimeout(this.#restartTimer)
    const worker = this.#worker
    if (worker) {
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
      worker.postMessage({ type: 'stop', deadline } satisfies ToFront)
      const cut = setTimeout(() => void worker.terminate(), Math.max(0, deadline - Date.now()) + 1_000)
      await exited
      clearTimeout(cut)
    }
    this.#bundle.remove()
  }
}
