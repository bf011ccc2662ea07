// Devices that log in with a certificate (mqtt.tlsClientCaFile): the real
// gateway's TLS listener, certificates made with Debian's openssl, mqtt.js
// as the device. A certificate the client authority signed names its
// device (common name); one from another authority names nobody.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttGateway } from '../../ingest/mqtt/gateway.ts'
import { deviceToken } from '../../ingest/mqtt/tokens.ts'
import { tempDir } from '../helpers.ts'
import { gatewayOn, openGatewayStore, type GatewayStore } from './gateway-store.ts'

const SECRET = 'client-cert-secret'
let fixture: GatewayStore
let optional: MqttGateway
let required: MqttGateway
let dir: string
let ids: string[]
const clients: MqttClient[] = []

function openssl(args: string[]): void {
  const r = spawnSync('openssl', args, { encoding: 'utf8', cwd: dir })
  if (r.error || r.status !== 0) throw new Error(`openssl ${args[0] ?? ''} failed (${r.error?.message ?? r.stderr}); install it with: apt-get install -y openssl`)
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1']

/** A key and a certificate for `cn`, signed by the authority `ca` (ca.pem and ca.key in the folder). */
function deviceCert(name: string, cn: string, ca: string): { key: Buffer; cert: Buffer } {
  openssl(['req', ...EC.filter((a) => a !== '-days' && a !== '1'), '-subj', `/CN=${cn}`, '-keyout', `${name}.key`, '-out', `${name}.csr`])
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '1', '-out', `${name}.pem`])
  return { key: readFileSync(join(dir, `${name}.key`)), cert: readFileSync(join(dir, `${name}.pem`)) }
}

beforeAll(async () => {
  dir = tempDir('citytwin-certs-')
  openssl(['req', '-x509', ...EC, '-subj', '/CN=citytwin devices', '-keyout', 'ca.key', '-out', 'ca.pem'])
  openssl(['req', '-x509', ...EC, '-subj', '/CN=someone else', '-keyout', 'rogue.key', '-out', 'rogue.pem'])
  openssl(['req', '-x509', ...EC, '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', 'server.key', '-out', 'server.pem'])
  fixture = await openGatewayStore(6, 20)
  ids = [...fixture.devices.values()].filter((d) => d.type === 'smoke').slice(0, 3).map((d) => d.id)
  const gatewayOf = (mode: 'optional' | 'required'): MqttGateway =>
    gatewayOn(fixture, SECRET, { tlsPort: 0, tlsCertFile: join(dir, 'server.pem'), tlsKeyFile: join(dir, 'server.key'), tlsClientCaFile: join(dir, 'ca.pem'), tlsClientCerts: mode })
  optional = gatewayOf('optional')
  required = gatewayOf('required')
  await optional.start()
  await required.start()
})

afterAll(async () => {
  for (const c of clients) c.end(true)
  await optional?.stop(Date.now() + 5_000)
  await required?.stop(Date.now() + 5_000)
  await fixture?.close()
})

/** Connects over TLS; resolves with the client, or with the CONNACK code / error that refused it. */
async function connect(gateway: MqttGateway, o: IClientOptions): Promise<MqttClient | { code?: number; message: string }> {
  try {
    const c = await mqtt.connectAsync(`mqtts://127.0.0.1:${gateway.tlsPort}`, { ca: readFileSync(join(dir, 'server.pem')), rejectUnauthorized: true, reconnectPeriod: 0, connectTimeout: 5_000, ...o })
    clients.push(c)
    return c
  } catch (e) {
    return { code: (e as { code?: number }).code, message: (e as Error).message }
  }
}

describe('device certificates', () => {
  it('log a device in by its certificate, without a token, and its readings are its own', async () => {
    const id = ids[0] ?? ''
    const c = await connect(optional, { ...deviceCert('d0', id, 'ca'), clientId: id })
    if (!('publishAsync' in c)) throw new Error(`refused: ${c.message}`)
    await c.publishAsync(`devices/${id}/telemetry`, JSON.stringify({ ts: Date.now(), seq: 1, values: { obscuration_pct_m: 0.2 } }), { qos: 1 })
    await fixture.readings.stop(Date.now() + 5_000)
    await fixture.readings.start()
    const rs = await fixture.store.client.query({ query: 'SELECT count() AS n FROM readings WHERE device_id = {id:String}', query_params: { id }, format: 'JSONEachRow' })
    expect(Number((await rs.json<{ n: string }>())[0]?.n)).toBeGreaterThan(0)
    await c.endAsync()
  })

  it('refuse a user name other than the certificate\'s device, a certificate from another authority, and a wrong password', async () => {
    const [a, b] = [ids[0] ?? '', ids[1] ?? '']
    expect(await connect(optional, { ...deviceCert('d1', a, 'ca'), username: b, password: deviceToken(SECRET, b) })).toMatchObject({ code: 5 })
    expect(await connect(optional, { ...deviceCert('r1', a, 'rogue') })).toMatchObject({ code: 5 })
    expect(await connect(optional, { ...deviceCert('d2', a, 'ca'), username: a, password: 'not-the-token' })).toMatchObject({ code: 4 })
    // A certificate for an id that is no device.
    expect(await connect(optional, { ...deviceCert('d3', 'D9999999', 'ca') })).toMatchObject({ code: 5 })
  })

  it('let a device without a certificate in by its token when optional, and not at all when required', async () => {
    const id = ids[2] ?? ''
    const token = { username: id, password: deviceToken(SECRET, id) }
    expect('publishAsync' in (await connect(optional, token))).toBe(true)
    const refused = await connect(required, token)
    expect('publishAsync' in refused).toBe(false)
    expect('publishAsync' in (await connect(required, { ...deviceCert('d4', id, 'ca') }))).toBe(true)
  })
})
