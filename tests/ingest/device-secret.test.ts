// The generated device secret: processes that start together (gateway
// workers, the CLI) all get the one secret, never an empty one; a file left
// empty is refused with a way out.
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { resolveDeviceSecret } from '../../ingest/mqtt/tokens.ts'
import { tempDir } from '../helpers.ts'

const TOKENS = join(import.meta.dirname, '..', '..', 'ingest', 'mqtt', 'tokens.ts')

/** Runs resolveDeviceSecret in a fresh Node process; resolves with what it printed. */
function resolveInChild(dataDir: string): Promise<string> {
  const code = `const { resolveDeviceSecret } = await import(${JSON.stringify(TOKENS)}); process.stdout.write(resolveDeviceSecret('', ${JSON.stringify(dataDir)}))`
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    child.on('exit', (c) => (c === 0 ? resolve(out) : reject(new Error(`exit ${c}: ${err}`))))
  })
}

describe('device secret', () => {
  it('is one secret for processes that make it at the same moment, and is kept', async () => {
    const dataDir = join(tempDir(), 'db')
    const got = await Promise.all(Array.from({ length: 8 }, () => resolveInChild(dataDir)))
    expect(got[0]).toMatch(/^[\w-]{43}$/)
    expect(new Set(got).size).toBe(1)
    expect(readFileSync(join(dataDir, 'device-secret'), 'utf8').trim()).toBe(got[0])
    expect(resolveDeviceSecret('', dataDir)).toBe(got[0])
    // No temporary file is left behind.
    expect(readdirSync(dataDir)).toEqual(['device-secret'])
  })

  it('refuses an empty secret file, saying how to recover', () => {
    const dataDir = tempDir()
    writeFileSync(join(dataDir, 'device-secret'), '\n')
    expect(() => resolveDeviceSecret('', dataDir)).toThrow(/device-secret is empty: delete it/)
  })

  it('uses the configured secret over the file', () => {
    expect(resolveDeviceSecret('configured-secret', tempDir())).toBe('configured-secret')
  })
})
