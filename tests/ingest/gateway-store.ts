// What a gateway test writes to: a city in chDB in a temp dir, its device
// registry, and the writers the gateway hands rows to, flushing often.
import { join } from 'node:path'
import { loadConfig } from '../../lib/config.ts'
import { mqttConfig, type MqttConfig } from '../../ingest/mqtt/config.ts'
import { loadDevices, type DeviceRegistry } from '../../ingest/mqtt/devices.ts'
import { EVENTS_COLUMNS, MqttGateway } from '../../ingest/mqtt/gateway.ts'
import { READINGS_COLUMNS } from '../../ingest/mqtt/telemetry.ts'
import { generateCity } from '../../simulators/city/generate.ts'
import { writeCity } from '../../registry/city-store.ts'
import { DeadLetterWriter, openMigratedStore, StoreWriter, type Store } from '../../store/index.ts'
import { tempDir } from '../helpers.ts'

export interface GatewayStore {
  store: Store
  devices: DeviceRegistry
  dead: DeadLetterWriter
  readings: StoreWriter
  events: StoreWriter
  /** Flushes and stops the writers, then closes the store. */
  close(): Promise<void>
}

export async function openGatewayStore(seed: number, flushIntervalMs: number): Promise<GatewayStore> {
  const { store, writerCfg } = await openMigratedStore({ env: {} }, { dataDir: join(tempDir(), 'db') })
  await writeCity(store.client, generateCity({ seed, scale: 0.01 }), writerCfg)
  const devices = await loadDevices(store.client)
  const fast = { ...writerCfg, flushIntervalMs }
  const dead = new DeadLetterWriter(store.client, fast)
  const readings = new StoreWriter({ client: store.client, table: 'readings', columns: READINGS_COLUMNS, config: fast, deadLetters: dead })
  const events = new StoreWriter({ client: store.client, table: 'events', columns: EVENTS_COLUMNS, config: fast, deadLetters: dead })
  for (const c of [dead, readings, events]) await c.start()
  return {
    store, devices, dead, readings, events,
    async close() {
      for (const c of [readings, events, dead]) await c.stop(Date.now() + 5_000)
      await store.close()
    },
  }
}

/** A gateway on a random loopback port over the fixture's registry and writers, with the configuration's `overrides` (not started). */
export function gatewayOn(fixture: GatewayStore, secret: string, overrides: Partial<MqttConfig> = {}): MqttGateway {
  return new MqttGateway({
    config: loadConfig(mqttConfig, { env: {}, overrides: { port: 0, host: '127.0.0.1', ...overrides } }),
    devices: fixture.devices, secret, readings: fixture.readings, events: fixture.events, deadLetters: fixture.dead,
  })
}
