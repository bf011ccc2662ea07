import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { configReference, defineConfig, envName, loadConfig } from '../../lib/config.ts'
import { CitytwinError } from '../../lib/errors.ts'
import { storeConfig, writerConfig } from '../../store/config.ts'

const demo = defineConfig('demo', z.strictObject({
  flushIntervalMs: z.number().int().positive().default(1000).describe('flush interval'),
  enabled: z.boolean().default(false).describe('on or off'),
  name: z.string().default('x').describe('a name'),
}), { name: ['DEMO_NAME'] })

describe('config', () => {
  it('derives environment variable names from the component and field', () => {
    expect(envName('writer', 'maxBatchRows')).toBe('CITYTWIN_WRITER_MAX_BATCH_ROWS')
    expect(envName('store', 'dataDir')).toBe('CITYTWIN_STORE_DATA_DIR')
  })

  it('uses defaults, then the file, then the environment, then overrides', () => {
    expect(loadConfig(demo, { env: {} })).toEqual({ flushIntervalMs: 1000, enabled: false, name: 'x' })
    expect(loadConfig(demo, { env: {}, file: { demo: { flushIntervalMs: 5 } } }).flushIntervalMs).toBe(5)
    const env = { CITYTWIN_DEMO_FLUSH_INTERVAL_MS: '7', CITYTWIN_DEMO_ENABLED: 'true', DEMO_NAME: 'alias' }
    expect(loadConfig(demo, { env, file: { demo: { flushIntervalMs: 5 } } })).toEqual({ flushIntervalMs: 7, enabled: true, name: 'alias' })
    expect(loadConfig(demo, { env, overrides: { flushIntervalMs: 9, name: undefined } })).toMatchObject({ flushIntervalMs: 9, name: 'alias' })
  })

  it('names the failing field and the reason', () => {
    const err = (() => {
      try {
        loadConfig(demo, { env: { CITYTWIN_DEMO_FLUSH_INTERVAL_MS: 'soon' } })
      } catch (e) {
        return e
      }
      return undefined
    })()
    expect(err).toBeInstanceOf(CitytwinError)
    expect((err as CitytwinError).code).toBe('CONFIG_INVALID')
    expect((err as CitytwinError).message).toMatch(/demo\.flushIntervalMs: .*number/)
  })

  it('refuses unknown fields in the config file', () => {
    expect(() => loadConfig(demo, { env: {}, file: { demo: { flushIntervalMS: 5 } } })).toThrow(/flushIntervalMS/)
  })

  it('honours the documented aliases CLICKHOUSE_URL and CITYTWIN_DATA_DIR', () => {
    const cfg = loadConfig(storeConfig, { env: { CLICKHOUSE_URL: 'http://127.0.0.1:8123', CITYTWIN_DATA_DIR: '/tmp/x' } })
    expect(cfg.url).toBe('http://127.0.0.1:8123')
    expect(cfg.dataDir).toBe('/tmp/x')
  })

  it('generates a reference with every option, its default and its variables', () => {
    const doc = configReference([storeConfig, writerConfig])
    expect(doc).toContain('| `maxBatchRows` | integer | `500000` | `CITYTWIN_WRITER_MAX_BATCH_ROWS` |')
    expect(doc).toContain('`CITYTWIN_DATA_DIR`')
  })
})
