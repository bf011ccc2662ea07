// A gateway worker's MQTT listener, closed and opened again as the primary
// tells it (hand-over.ts: a worker well ahead of the others stops accepting
// for a while, and the kernel gives new connections to the others). The
// connections the worker holds stay; only accepting stops.
//
// In a cluster worker a listen asks the primary for the shared socket, so
// it takes a turn or more, and a verdict may come meanwhile: one close or
// listen at a time, then on to what was last asked.
import type { AddressInfo, Server } from 'node:net'
import { listen } from '../../lib/http/listen.ts'
import { logger } from '../../lib/log.ts'

const log = logger('mqtt-gateway')

export interface ListenArgs {
  port: number
  host: string
  backlog: number
}

export class PausableListener {
  readonly #server: Server
  readonly #args: ListenArgs
  #want = true
  #listening = false
  /** While a listen is on its way (the first one included), nothing else is asked of the server. */
  #busy = false
  #stopped = false
  /** Set when a listen got another port than the first (port 0, and the shared socket was closed meanwhile): no more listens. */
  #lost = false
  #port = 0
  #pauses = 0

  constructor(server: Server, args: ListenArgs) {
    this.#server = server
    this.#args = args
  }

  /** The port of the first listen (kept while paused); 0 before it. */
  get port(): number {
    return this.#port
  }

  /** Times the listener was closed by a verdict. */
  get pauses(): number {
    return this.#pauses
  }

  get accepting(): boolean {
    return this.#listening
  }

  /** Whether it gave up listening (another port came back: see #sync); the worker then takes no new devices. */
  get lost(): boolean {
    return this.#lost
  }

  /** The first listen; rejects with the bind error. */
  async start(): Promise<void> {
    this.#busy = true
    try {
      await this.#listen()
      this.#listening = true
      this.#port = (this.#server.address() as AddressInfo | null)?.port ?? 0
    } finally {
      this.#busy = false
    }
    this.#sync()
  }

  /** Accept (true) or not (false), from now on, until told otherwise. */
  set(on: boolean): void {
    this.#want = on
    this.#sync()
  }

  /** No listen from now on (the gateway stops and closes the server itself). */
  stop(): void {
    this.#stopped = true
  }

  #sync(): void {
    if (this.#busy || this.#stopped || this.#lost || this.#want === this.#listening) return
    if (!this.#want) {
      this.#close()
      this.#pauses++
      log.debug('well ahead of the other workers: not accepting for now')
      return
    }
    this.#busy = true
    this.#listen().then(
      () => {
        this.#listening = true
        // Stopped meanwhile: the gateway's close ends a listen on its way in a cluster worker (node drops the
        // handle when it comes, and this promise never settles, which is harmless at stop); one that completed
        // before it is closed here.
        if (this.#stopped) return void this.#close()
        const now = (this.#server.address() as AddressInfo | null)?.port ?? 0
        if (now !== this.#port) {
          log.error({ port: this.#port, got: now }, 'the MQTT port was closed while this worker did not accept; it serves the devices it has and takes no new ones')
          this.#close()
          this.#lost = true
        }
      },
      (e: unknown) => {
        // Tried again when told to accept again (the next verdict), not in a loop.
        this.#want = false
        log.warn({ err: e }, 'could not listen again after a pause')
      },
    ).finally(() => {
      this.#busy = false
      this.#sync()
    })
  }

  #listen(): Promise<void> {
    return listen(this.#server, this.#args.port, this.#args.host, this.#args.backlog)
  }

  #close(): void {
    this.#server.close()
    this.#listening = false
  }
}
