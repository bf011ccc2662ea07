// A read repeated on a timer, one at a time: a gateway's copy of the deny
// list, its copy of the device log. A failed read is logged once (until one
// succeeds again) and leaves what was last read in force; the caller's
// `read` decides what a read changes.
import { messageOf } from './errors.ts'
import { sleep } from './backoff.ts'

export class Refresher {
  readonly #read: () => Promise<void>
  readonly #onFirstFailure: (error: string) => void
  #running: Promise<void> | undefined
  #timer: NodeJS.Timeout | undefined
  /** Why the last read failed; undefined once one succeeds. */
  lastError: string | undefined

  constructor(read: () => Promise<void>, onFirstFailure: (error: string) => void) {
    this.#read = read
    this.#onFirstFailure = onFirstFailure
  }

  /** Reads now, or joins the read under way. Never rejects: a failure is in `lastError`. */
  run(): Promise<void> {
    this.#running ??= (async () => {
      try {
        await this.#read()
        this.lastError = undefined
      } catch (e) {
        if (this.lastError === undefined) this.#onFirstFailure(messageOf(e))
        this.lastError = messageOf(e)
      } finally {
        this.#running = undefined
      }
    })()
    return this.#running
  }

  /**
   * Reads until one read succeeds, waiting 100 ms and then twice as long
   * after each failure (at most 2 s), for at most `giveUpAfterMs`: a store
   * briefly out of reach at a start is tried again for a while. Undefined
   * once read; the last error when it gave up.
   */
  async runUntilRead(giveUpAfterMs: number): Promise<string | undefined> {
    const giveUpAt = Date.now() + giveUpAfterMs
    for (let wait = 100; ; wait = Math.min(wait * 2, 2_000)) {
      await this.run()
      if (this.lastError === undefined) return undefined
      if (Date.now() + wait > giveUpAt) return this.lastError
      await sleep(wait)
    }
  }

  /** Reads every `ms` from now on (the timer does not keep the process alive). */
  every(ms: number): void {
    this.#timer = setInterval(() => void this.run(), ms)
    this.#timer.unref()
  }

  /** Stops the timer and waits for a read under way. */
  async stop(): Promise<void> {
    clearInterval(this.#timer)
    await this.#running
  }
}
