// Device credentials. A device's password is derived from its id under the
// deployment secret (HMAC-SHA256), so checking 219k devices needs no table
// of passwords and no lookup per CONNECT; rotating the secret rotates them all.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { CitytwinError, messageOf } from '../../lib/errors.ts'

export function deviceToken(secret: string, deviceId: string): string {
  return createHmac('sha256', secret).update(deviceId).digest('base64url').slice(0, 32)
}

export function tokenMatches(secret: string, deviceId: string, presented: string | Buffer | undefined): boolean {
  if (presented === undefined) return false
  const want = Buffer.from(deviceToken(secret, deviceId))
  const got = Buffer.isBuffer(presented) ? presented : Buffer.from(presented)
  return got.length === want.length && timingSafeEqual(got, want)
}

/**
 * The deployment secret: the configured one, or else one generated once and
 * kept (mode 0600) in the data directory, so a demo needs no set-up and
 * tokens stay valid across restarts.
 */
export function resolveDeviceSecret(configured: string, dataDir: string): string {
  if (configured) return configured
  const file = join(resolve(dataDir), 'device-secret')
  try {
    return readFileSync(file, 'utf8').trim()
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new CitytwinError('CONFIG_INVALID', `cannot read ${file}: ${messageOf(e)}`, { cause: e })
  }
  mkdirSync(resolve(dataDir), { recursive: true })
  const secret = randomBytes(32).toString('base64url')
  // 'wx': if another process wrote it first, use theirs.
  try {
    writeFileSync(file, secret + '\n', { mode: 0o600, flag: 'wx' })
    return secret
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return readFileSync(file, 'utf8').trim()
    throw new CitytwinError('CONFIG_INVALID', `cannot write ${file}: ${messageOf(e)}`, { cause: e })
  }
}
