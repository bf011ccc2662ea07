// What a gateway keeps of a message's rows while the store has not answered
// (gateway.ts #writeTurn). A cluster worker has no bus: its primary
// publishes what it stores, so once the rows are handed to the sink the
// worker must not keep them. Rows kept until the answer (half a second and
// more) were promoted to the old generation, and at the whole city the
// workers spent a third of their CPU in V8's collector. A gateway with a
// bus keeps them, to publish them once stored.
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MemoryBus } from '../../lib/bus/bus.ts'
import { loadConfig } from '../../lib/config.ts'
import { mqttConfig } from '../../ingest/mqtt/config.ts'
import { loadDevices, type DeviceRegistry } from '../../ingest/mqtt/devices.ts'
import { MqttGateway } from '../../ingest/mqtt/gateway.ts'
import { deviceToken } from '../../ingest/mqtt/tokens.ts'
import { writeCity } from '../../registry/city-store.ts'
import { generateCity } from '../../simulators/city/generate.ts'
import { openMigratedStore, type Row, type Store, type WriteOutcome } from '../../store/index.ts'
import { tempDir } from '../helpers.ts'

setFlagsFromString('--expose-gc')
const collect = runInNewContext('gc') as () => void

const SECRET = 'rows-held-secret'
let store: Store
let devices: DeviceRegistry

beforeAll(async () => {
  const opened = await openMigratedStore({ env: {} }, { dataDir: join(tempDir(), 'db') })
  store = opened.store
  await writeCity(store.client, generateCity({ seed: 7, scale: 0.01 }), opened.writerCfg)
  devices = await loadDevices(store.client)
})

afterAll(async () => {
  await store?.close()
})

/**
 * A gateway whose readings sink holds every write until told, and notes a
 * weak reference to the rows it was given (and keeps nothing else of them),
 * as the relay to a cluster's primary does once it has sent them.
 */
async function gatewayWithHeldStore(withBus: boolean): Promise<{ gateway: MqttGateway; given: WeakRef<Row>[]; answer: () => void }> {
  const given: WeakRef<Row>[] = []
  const waiting: ((o: WriteOutcome) => void)[] = []
  const readings = {
    write: (rows: readonly Row[]): Promise<WriteOutcome> => {
      for (const r of rows) given.push(new WeakRef(r))
      const count = rows.length
      return new Promise((resolve) => waiting.push(() => resolve({ inserted: count, deadLettered: 0 })))
    },
  }
  const nothing = { write: async (rows: readonly Row[]): Promise<WriteOutcome> => ({ inserted: rows.length, deadLettered: 0 }) }
  const gateway = new MqttGateway({
    config: loadConfig(mqttConfig, { env: {}, overrides: { port: 0, host: '127.0.0.1' } }),
    devices, secret: SECRET, readings, events: nothing, deadLetters: { deadLetter: async () => undefined },
    ...(withBus ? { bus: new MemoryBus() } : {}),
  })
  await gateway.start()
  return { gateway, given, answer: () => { for (const w of waiting.splice(0)) w({ inserted: 0, deadLettered: 0 }) } }
}

describe('rows held while the store answers', () => {
  for (const withBus of [false, true]) {
    it(withBus ? 'with a bus: keeps them, to publish them once stored' : 'without a bus (a cluster worker): keeps none once the sink has them, and acknowledges when the store answers', async () => {
      const { gateway, given, answer } = await gatewayWithHeldStore(withBus)
      // A smoke detector reports its temperature (registry/device-types.ts).
      const d = [...devices.values()].find((x) => x.type === 'smoke')
      if (!d) throw new Error('no smoke detector in the city')
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${gateway.port}`, { username: d.id, password: deviceToken(SECRET, d.id), reconnectPeriod: 0 })
      try {
        let acked = false
        const puback = c.publishAsync(`devices/${d.id}/telemetry`, JSON.stringify({ ts: Date.now(), seq: 1, values: { temperature_c: 20 } }), { qos: 1 }).then(() => (acked = true))
        while (given.length === 0) await new Promise((r) => setTimeout(r, 5))
        // A few turns for what the gateway does after handing the rows over, then a full collection.
        for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r))
        collect()
        const alive = given.filter((w) => w.deref() !== undefined).length
        expect(acked).toBe(false)
        expect(alive).toBe(withBus ? given.length : 0)
        answer()
        await puback
        expect(acked).toBe(true)
      } finally {
        // Whatever was asserted, the held write ends and the client does not wait for its PUBACK.
        answer()
        await c.endAsync(true)
        await gateway.stop(Date.now() + 2_000)
      }
    })
  }
})
