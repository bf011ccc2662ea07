// The `citytwin` command as a user runs it: help, the city, the store, config errors.
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runCli, tempDir } from '../helpers.ts'

const dir = tempDir()
const dataDir = join(dir, 'db')

describe('citytwin CLI', () => {
  it('lists its commands', async () => {
    const r = await runCli(['--help'])
    expect(r.code).toBe(0)
    for (const c of ['start', 'device-token', 'devices list', 'gateway mqtt', 'sim devices', 'city generate', 'city stats', 'city import', 'city export', 'devices add', 'devices update', 'devices move', 'devices decommission', 'devices rotate', 'store migrate', 'store status', 'store query', 'config docs', 'config check']) {
      expect(r.stdout).toContain(`  ${c} `)
    }
  })

  it('explains an unknown command or a bad option', async () => {
    const unknown = await runCli(['fly'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toMatch(/unknown command "fly"/)
    const bad = await runCli(['city', 'generate', '--scale', 'big', '--data-dir', dataDir])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--scale must be a number/)
    const extra = await runCli(['city', 'generate', '--colour', 'red'])
    expect(extra.code).toBe(2)
    expect(extra.stderr).toMatch(/Unknown option '--colour'/)
  })

  it('stops on a bad configuration value, naming the field', async () => {
    const r = await runCli(['city', 'stats', '--data-dir', dataDir], { CITYTWIN_WRITER_MAX_BATCH_ROWS: 'lots' })
    expect(r.code).toBe(78)
    expect(r.stderr).toMatch(/CONFIG_INVALID: invalid configuration:\s+writer\.maxBatchRows: .*number/)
    const file = await runCli(['config', 'check', '--config', join(dir, 'missing.json')])
    expect(file.code).toBe(78)
    expect(file.stderr).toMatch(/CONFIG_FILE_UNREADABLE: cannot read config file/)
  })

  it('generates a small city and reads it back', async () => {
    const gen = await runCli(['city', 'generate', '--seed', '2', '--scale', '0.01', '--data-dir', dataDir])
    expect(gen.code).toBe(0)
    expect(gen.stdout).toMatch(/community grids 191, micro-grids 468, special grids 48/)
    const stats = await runCli(['city', 'stats', '--json', '--data-dir', dataDir])
    expect(stats.code).toBe(0)
    const f = JSON.parse(stats.stdout) as { seed: number; grids: Record<string, number>; devices: number; cameras: number }
    expect(f).toMatchObject({ seed: 2, grids: { community: 191, micro: 468, special: 48 }, cameras: 1300 })
    const q = await runCli(['store', 'query', 'SELECT level, toUInt32(count()) AS n FROM grids GROUP BY level ORDER BY level', '--data-dir', dataDir])
    expect(q.code).toBe(0)
    expect(q.stdout.trim().split('\n').map((l) => JSON.parse(l) as unknown)).toContainEqual({ level: 'micro', n: 468 })
    const status = await runCli(['store', 'status', '--data-dir', dataDir])
    expect(status.stdout).toMatch(/devices\s+\d+ rows/)
  })

  it('prints a configuration reference generated from the schemas', async () => {
    const r = await runCli(['config', 'docs'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/## `store`/)
    expect(r.stdout).toMatch(/`CLICKHOUSE_URL`/)
    expect(r.stdout).toMatch(/## `writer`/)
  })
})

describe('config check', () => {
  it('prints the effective values with every secret as ***', async () => {
    const { writeFileSync } = await import('node:fs')
    const file = join(dir, 'secrets.json')
    const secrets = { api: { tokens: [{ name: 'op-wang', role: 'operator', token: 'operator-token-0123456789' }] }, rules: { open311ApiKeys: 'hotline-key-1,hotline-key-2' }, mqtt: { deviceSecret: 'device-secret-abcdef' } }
    writeFileSync(file, JSON.stringify(secrets))
    const r = await runCli(['config', 'check', '--config', file], { CITYTWIN_LINKAGE_TOKEN: 'linkage-token-xyz', CITYTWIN_STORE_PASSWORD: 'ch-password-123' })
    expect(r.code).toBe(0)
    for (const s of ['operator-token-0123456789', 'hotline-key-1', 'device-secret-abcdef', 'linkage-token-xyz', 'ch-password-123']) expect(r.stdout).not.toContain(s)
    const shown = JSON.parse(r.stdout) as { store: { password: string }; api: { tokens: { name: string; token: string }[] }; rules: { linkageWebhookToken: string; open311ApiKeys: string; linkageWebhookUrl: string }; mqtt: { deviceSecret: string } }
    expect(shown.store.password).toBe('***')
    expect(shown.api.tokens).toEqual([{ name: 'op-wang', role: 'operator', token: '***' }])
    expect(shown.rules).toMatchObject({ linkageWebhookToken: '***', open311ApiKeys: '***', linkageWebhookUrl: '' })
    expect(shown.mqtt.deviceSecret).toBe('***')
  })
})

describe('docs/configuration.md', () => {
  it('is the reference the schemas generate today', async () => {
    const { readFileSync } = await import('node:fs')
    const r = await runCli(['config', 'docs'])
    expect(readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'configuration.md'), 'utf8'), 'run: npx citytwin config docs > docs/configuration.md').toBe(r.stdout)
  })
})
