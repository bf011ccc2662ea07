// The API thread's view of the live twin: a Twin read over the main
// thread's shared columns (twin.ts TwinShare), and ingest's state as the
// main thread last judged it. Messages are drained before every answer
// (`current`), so an answer never predates a change the main thread had
// made before the request was sent.
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads'
import type { IngestHealth } from '../../state/ingest-health.ts'
import { Twin } from '../../state/twin.ts'
import type { TwinReads } from '../twin-routes.ts'
import type { TwinMessage } from './protocol.ts'

export class TwinReader implements TwinReads {
  readonly #port: MessagePort
  readonly #onLoaded: (devices: number, ms: number) => void
  #twin: Twin | undefined
  #ingest: IngestHealth = { degraded: false, since: null, reason: null, lagMs: 0, shedding: false, spells: 0 }

  constructor(port: MessagePort, onLoaded: (devices: number, ms: number) => void) {
    this.#port = port
    this.#onLoaded = onLoaded
    // Between requests too, so a new twin is built before the next request waits for it.
    port.on('message', (m: TwinMessage) => this.#take(m))
  }

  /** Takes every message waiting; false while no twin has come yet (the main thread answers then). */
  current(): boolean {
    for (let m = receiveMessageOnPort(this.#port); m; m = receiveMessageOnPort(this.#port)) this.#take(m.message as TwinMessage)
    return this.#twin !== undefined
  }

  get twin(): Twin {
    if (!this.#twin) throw new Error('the twin is not loaded yet')
    return this.#twin
  }

  get ingest(): IngestHealth {
    return this.#ingest
  }

  #take(m: TwinMessage): void {
    this.#ingest = m.ingest
    if (m.type !== 'twin') return
    const t0 = performance.now()
    // The city's index is built here, once per twin loaded: the state itself is the main thread's memory.
    this.#twin = new Twin(m.share.city, m.share.policy, m.share)
    this.#onLoaded(this.#twin.devices.length, Math.round(performance.now() - t0))
  }

  close(): void {
    this.#port.close()
  }
}
