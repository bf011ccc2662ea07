// Device credentials. A device's password is derived from its id under the
// deployment secret (HMAC-SHA256), so checking 219k devices needs no table
// of passwords and no lookup per CONNECT; rotating the secret rotates them all.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { CitytwinError, messageOf } from '../../lib/errors.ts'

/**
 * A device's password. `version` is its credential version: 0 until its
 * credentials are first rotated (`citytwin devices rotate`, or the API),
 * each rotation one more, so a rotated device's old token stops working
 * without the deployment secret changing for everyone.
 */
export function deviceToken(secret: string, deviceId: string, version = 0): string {
  return createHmac('sha256', secret).update(version === 0 ? deviceId : `${deviceId}\n${version}`).digest('base64url').slice(0, 32)
}

export function tokenMatches(secret: string, deviceId: string, presented: string | Buffer | undefined, version = 0): boolean {
  if (presented === undefined) return false
  const want = Buffer.from(deviceToken(secret, deviceId, version))
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
  const existing = readSecret(file)
  if (existing !== undefined) return existing
  mkdirSync(resolve(dataDir), { recursive: true })
  // Written whole under another name, then linked into place: gateway
  // workers start together, and one that read the file between another's
  // create and write would take an empty secret and refuse every device.
  // A link fails if the name exists, so the first process wins and the
  // others read its secret.
  const secret = randomBytes(32).toString('base64url')
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  try {
    writeFileSync(tmp, secret + '\n', { mode: 0o600, flag: 'wx' })
    linkSync(tmp, file)
    return secret
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      const theirs = readSecret(file)
      if (theirs !== undefined) return theirs
    }
    throw new CitytwinError('CONFIG_INVALID', `cannot write ${file}: ${messageOf(e)}`, { cause: e })
  } finally {
    rmSync(tmp, { force: true })
  }
}

/** The secret in `file`; undefined when there is none. An empty file is an error: it would make every token the same. */
function readSecret(file: string): string | undefined {
  let text: string
  try {
    text = readFileSync(file, 'utf8').trim()
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new CitytwinError('CONFIG_INVALID', `cannot read ${file}: ${messageOf(e)}`, { cause: e })
  }
  if (text === '') throw new CitytwinError('CONFIG_INVALID', `${file} is empty: delete it to have a new device secret made (every device token changes), or set mqtt.deviceSecret`)
  return text
}
