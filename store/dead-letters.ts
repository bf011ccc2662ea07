// Dead letters: everything the system refuses, kept with a stable code, the
// reason and the raw bytes (size-capped), so nothing is dropped silently.
import { isUtf8 } from 'node:buffer'
import type { ClickHouseClient } from '@clickhouse/client'
import type { Component, ComponentStats } from '../lib/component.ts'
import { counter } from '../lib/metrics.ts'
import type { WriterConfig } from './config.ts'
import { StoreWriter, type DeadLetter, type DeadLetterSink, type Row, type WriteOutcome } from './writer.ts'

/** Raw payloads are cut to this many bytes; `raw_bytes` keeps the original size. */
export const DEAD_LETTER_RAW_MAX_BYTES = 64 * 1024

const deadLettersTotal = counter('citytwin_dead_letters_total', 'Records refused and kept as dead letters, by source and code', ['source', 'code'])

export const DEAD_LETTER_COLUMNS = ['ts', 'source', 'code', 'reason', 'device_id', 'topic', 'raw', 'raw_bytes', 'raw_truncated'] as const

/** The text kept for raw bytes: UTF-8 as is, anything else as `base64:`-prefixed base64. */
export function encodeRaw(raw: string | Buffer): { text: string; bytes: number; truncated: boolean } {
  const buf = typeof raw === 'string' ? Buffer.from(raw) : raw
  const truncated = buf.length > DEAD_LETTER_RAW_MAX_BYTES
  const kept = truncated ? buf.subarray(0, DEAD_LETTER_RAW_MAX_BYTES) : buf
  // A cut can split a UTF-8 sequence; then it is kept as base64 too.
  const text = isUtf8(kept) ? kept.toString('utf8') : `base64:${kept.toString('base64')}`
  return { text, bytes: buf.length, truncated }
}

export function deadLetterRow(d: DeadLetter): Row {
  const raw = encodeRaw(d.raw)
  return [d.ts, d.source, d.code, d.reason, d.deviceId ?? '', d.topic ?? '', raw.text, raw.bytes, raw.truncated ? 1 : 0]
}

export class DeadLetterWriter implements DeadLetterSink, Component {
  readonly name = 'dead-letters'
  readonly #writer: StoreWriter

  constructor(client: ClickHouseClient, config: WriterConfig) {
    // Dead letters are few; flush them promptly so operators see them.
    this.#writer = new StoreWriter({ client, table: 'dead_letters', columns: DEAD_LETTER_COLUMNS, config: { ...config, flushIntervalMs: Math.min(config.flushIntervalMs, 500) } })
  }

  async deadLetter(letters: readonly DeadLetter[]): Promise<void> {
    for (const d of letters) deadLettersTotal.inc({ source: d.source, code: d.code })
    await this.#writer.write(letters.map(deadLetterRow))
  }

  /** Rows already built with deadLetterRow (relayed from another process, which counted them). */
  writeRows(rows: readonly Row[]): Promise<WriteOutcome> {
    return this.#writer.write(rows)
  }

  start(): Promise<void> {
    return this.#writer.start()
  }

  stop(deadline: number): Promise<void> {
    return this.#writer.stop(deadline)
  }

  stats(): ComponentStats {
    return this.#writer.stats()
  }
}
