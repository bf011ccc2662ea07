// The gateway's aedes persistence and our patch of aedes' CONNECT
// (patches/aedes+1.2.0.patch): a clean session with nothing queued skips
// the outgoing-queue pipeline, a third of a CONNECT's CPU; a persistent
// session that was sent something while away still gets it. Real aedes on
// a random port, real MQTT clients.
import { createServer, type Server } from 'node:net'
import type { AddressInfo } from 'node:net'
import { Aedes } from 'aedes'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { isClientNotice } from '../../ingest/mqtt/gateway.ts'
import { leanPersistence, type LeanPersistence } from '../../ingest/mqtt/persistence.ts'

let broker: Aedes
let server: Server
let persistence: LeanPersistence
let port = 0
let streams = 0
const clients: MqttClient[] = []

beforeAll(async () => {
  persistence = leanPersistence()
  // Counted, not replaced: aedes' own memory persistence does the work.
  const outgoingStream = persistence.outgoingStream.bind(persistence)
  persistence.outgoingStream = (client) => {
    streams++
    return outgoingStream(client)
  }
  broker = await Aedes.createBroker({ persistence })
  server = createServer((socket) => broker.handle(socket))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  port = (server.address() as AddressInfo).port
})

afterAll(async () => {
  for (const c of clients) c.end(true)
  await new Promise<void>((r) => server.close(() => r()))
  await new Promise<void>((r) => broker.close(() => r()))
})

async function connect(clientId: string, clean: boolean): Promise<MqttClient> {
  const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId, clean, reconnectPeriod: 0, protocolVersion: 4 })
  clients.push(c)
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve())
    c.once('error', reject)
  })
  return c
}

it('a clean session with nothing queued connects without emptying a queue', async () => {
  const before = streams
  for (let i = 0; i < 3; i++) await (await connect(`clean-${i}`, true)).endAsync()
  expect(streams).toBe(before)
  expect(persistence.outgoingEmpty({ id: 'clean-0' })).toBe(true)
})

it('a persistent session gets what was queued for it while away', async () => {
  const first = await connect('dev-1', false)
  await first.subscribeAsync('devices/dev-1/commands/reboot', { qos: 1 })
  await first.endAsync()
  await new Promise<void>((resolve, reject) => broker.publish({ cmd: 'publish', topic: 'devices/dev-1/commands/reboot', payload: Buffer.from('now'), qos: 1, retain: false, dup: false }, (e) => (e ? reject(e) : resolve())))
  expect(persistence.outgoingEmpty({ id: 'dev-1' })).toBe(false)
  const before = streams
  const again = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: 'dev-1', clean: false, reconnectPeriod: 0, protocolVersion: 4 })
  clients.push(again)
  const got = await new Promise<string>((resolve) => again.once('message', (_topic, payload) => resolve(payload.toString())))
  expect(got).toBe('now')
  expect(streams).toBe(before + 1)
})

it('knows the broker\'s per-client notices, which no client may subscribe to', () => {
  expect(isClientNotice('$SYS/abc/new/clients')).toBe(true)
  expect(isClientNotice('$SYS/abc/disconnect/clients')).toBe(true)
  expect(isClientNotice('$SYS/abc/heartbeat')).toBe(false)
  expect(isClientNotice('devices/D1/commands/new/clients')).toBe(false)
})
