// The bus between the gateways and the twin and rules. One interface, two
// implementations: in-process (this file; the embedded default) and Kafka
// (scale-out). Elements go on the bus only after the store holds them, so
// the twin, which is rebuilt from the store at start-up, never shows what
// the store does not have.
import type { Element } from './elements.ts'
import { logger } from '../log.ts'

const log = logger('bus')

/**
 * What the twin asks of ingest beside its elements (a gateway process, or a
 * cluster of them): how long data has waited in it, and whether it sheds
 * devices to keep its memory. Together they say whether ingest is degraded
 * (twin/state/ingest-health.ts).
 */
export interface IngestSource {
  backlogMs(now: number): number
  shedding(): boolean
}

export type ElementHandler = (batch: readonly Element[]) => void

export interface Bus {
  /** Hands a batch to every subscriber. */
  publish(batch: readonly Element[]): void
  /** Calls `handler` with every batch published from now on; returns the unsubscribe. */
  subscribe(handler: ElementHandler): () => void
}

/**
 * The in-process bus: publish calls each subscriber synchronously. The
 * subscribers are the twin's reducers, which do no I/O, so a batch costs
 * what reducing it costs and nothing queues up in between.
 */
export class MemoryBus implements Bus {
  readonly #handlers = new Set<ElementHandler>()
  #published = 0

  publish(batch: readonly Element[]): void {
    if (batch.length === 0) return
    this.#published += batch.length
    for (const h of this.#handlers) {
      try {
        h(batch)
      } catch (e) {
        // A subscriber's bug must not stop the gateway that published.
        log.error({ err: e }, 'a bus subscriber failed on a batch')
      }
    }
  }

  subscribe(handler: ElementHandler): () => void {
    this.#handlers.add(handler)
    return () => this.#handlers.delete(handler)
  }

  get published(): number {
    return this.#published
  }
}
