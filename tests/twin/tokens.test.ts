// Operators' bearer tokens (lib/http/tokens.ts), kept as themselves or as
// their SHA-256, from the config schema to a request over HTTP, and the
// command that makes them.
import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../lib/config.ts'
import { main } from '../../app/main.ts'
import { apiConfig } from '../../twin/api/config.ts'
import { ApiServer } from '../../twin/api/server.ts'
import { callerOf, hashToken } from '../../lib/http/tokens.ts'
import { openMigratedStore } from '../../store/index.ts'
import { join } from 'node:path'
import { tempDir } from '../helpers.ts'

const PLAIN = 'a-plain-token-of-the-desk'
const HASHED = 'the-token-only-its-hash-is-kept'

describe('bearer tokens', () => {
  it('names the caller of a plain or a hashed token, and nobody for another', () => {
    const entries = [{ name: 'desk-1', role: 'operator' as const, token: PLAIN }, { name: 'chief', role: 'admin' as const, sha256: hashToken(HASHED) }]
    expect(callerOf(entries, PLAIN)).toEqual({ name: 'desk-1', role: 'operator' })
    expect(callerOf(entries, HASHED)).toEqual({ name: 'chief', role: 'admin' })
    expect(callerOf(entries, hashToken(HASHED))).toBeUndefined() // the hash itself is not a token
    expect(callerOf(entries, 'nothing-like-it-at-all')).toBeUndefined()
  })

  it('takes either a token or its SHA-256 in the config, not both and not neither', () => {
    const load = (t: Record<string, unknown>) => () => loadConfig(apiConfig, { env: {}, overrides: { tokens: [{ name: 'x', role: 'viewer', ...t }] } })
    expect(load({ sha256: hashToken(HASHED) })).not.toThrow()
    expect(load({ token: PLAIN, sha256: hashToken(HASHED) })).toThrow(/either token or sha256/)
    expect(load({})).toThrow(/either token or sha256/)
    expect(load({ sha256: 'not-hex' })).toThrow(/64 lower-case hexadecimal/)
  })

  it('makes a token with `citytwin api-token new` whose printed entry lets it in, over HTTP', async () => {
    const out = new PassThrough()
    let text = ''
    out.on('data', (c: Buffer) => (text += c.toString()))
    expect(await main(['api-token', 'new', '--name', 'desk-7', '--role', 'operator'], out)).toBe(0)
    const token = /token \(shown once; give it to desk-7\): (\S+)/.exec(text)?.[1] ?? ''
    const entry = JSON.parse(/entry for api\.tokens[^:]*: (\{.*\})/.exec(text)?.[1] ?? '{}') as { name: string; role: string; sha256: string }
    expect(entry).toEqual({ name: 'desk-7', role: 'operator', sha256: hashToken(token) })
    expect(text).not.toContain(`"token"`)
    const { store } = await openMigratedStore({ env: {} }, { dataDir: join(tempDir(), 'db') })
    const api = new ApiServer({ config: loadConfig(apiConfig, { env: {}, overrides: { port: 0, tokens: [entry] } }), client: store.client })
    await api.start()
    try {
      const me = await fetch(`${api.url}/api/me`, { headers: { authorization: `Bearer ${token}` } })
      expect(await me.json()).toEqual({ name: 'desk-7', role: 'operator' })
      expect((await fetch(`${api.url}/api/me`, { headers: { authorization: `Bearer ${entry.sha256}` } })).status).toBe(401)
    } finally {
      await api.stop(Date.now() + 2_000)
      await store.close()
    }
  })
})
