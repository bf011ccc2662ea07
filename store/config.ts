import { z } from 'zod'
import { defineConfig } from '../lib/config.ts'

export const storeConfig = defineConfig(
  'store',
  z.strictObject({
    url: z.string().default('').describe('ClickHouse server URL (http://host:8123). Empty: the embedded chDB store under dataDir.'),
    dataDir: z.string().min(1).default('./data').describe('Directory of the embedded chDB store. Only one process may open it; the others reach it through that owner.'),
    database: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a plain identifier').default('citytwin').describe('Database that holds the citytwin tables.'),
    username: z.string().default('default').describe('ClickHouse user (server mode).'),
    password: z.string().default('').describe('ClickHouse password (server mode).'),
    requestTimeoutMs: z.number().int().positive().default(60_000).describe('Timeout of one request to the store, in milliseconds.'),
    connections: z.number().int().min(1).max(32).default(4).describe('Connections to the embedded store (chDB runs one query at a time per connection): the writers, the rules, the twin and the API share them, each call going to the least busy. Server mode: unused.'),
  }),
  { url: ['CLICKHOUSE_URL'], dataDir: ['CITYTWIN_DATA_DIR'] },
)

export type StoreConfig = ReturnType<typeof storeConfig.schema.parse>

export const writerConfig = defineConfig(
  'writer',
  z.strictObject({
    maxBatchRows: z.number().int().min(1).max(1_000_000).default(500_000).describe('Rows per INSERT at most. Large batches cost ClickHouse far less per row (each insert writes a part per table and roll-up); under ClickHouse\'s min_insert_block_size (1,048,449 rows) one insert is one block, stored whole or not at all.'),
    flushIntervalMs: z.number().int().min(1).default(400).describe('Longest time a row waits in the queue before it is flushed, in milliseconds: the floor of a QoS 1 acknowledgement\'s latency under light load. Each insert writes a part, about fifteen files, whatever its size, and the embedded store spent some 16 ms of CPU on one (file creation on an ext4 without journal above all); at 400 ms the city\'s readings are two or three inserts a second instead of five, for a p99 publish-to-stored of about 0.6 s at 50,000 devices (docs/benchmarks.md, 2026-12-01).'),
    queueRows: z.number().int().min(1).default(1_000_000).describe('Rows the writer holds, encoded, before writers are made to wait (backpressure). About 100 bytes each.'),
    concurrency: z.number().int().min(1).max(16).default(2).describe('INSERTs in flight at once.'),
    maxRetries: z.number().int().min(0).default(8).describe('Retries of a batch after a transient failure before its writers are told it failed.'),
    retryInitialMs: z.number().int().min(1).default(200).describe('First retry delay, in milliseconds; doubles each retry, with jitter.'),
    retryMaxMs: z.number().int().min(1).default(10_000).describe('Longest retry delay, in milliseconds.'),
    rollupIntervalMs: z.number().int().min(100).default(15_000).describe('How often the roll-ups (readings_1m, readings_1h: the readings stored, summed per community grid, metric and device type) are written, in milliseconds: each flush writes the minutes that ended at least 10 s before, each minute once. The roll-ups lag the readings by up to a minute and this much more, and 10 s.'),
  }),
)

export type WriterConfig = ReturnType<typeof writerConfig.schema.parse>
