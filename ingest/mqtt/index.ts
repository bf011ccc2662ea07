// The MQTT ingest stage assembled: dead letters, the readings and events
// writers, and the gateway in front of them. Returned in start order;
// stop them in reverse (the gateway first, the dead letters last).
import type { Bus } from '../../lib/bus/bus.ts'
import type { Component } from '../../lib/component.ts'
import { loadConfig, type ConfigSources } from '../../lib/config.ts'
import { DeadLetterWriter, StoreWriter, type Store, type WriterConfig } from '../../twin/store/index.ts'
import { mqttConfig, type MqttConfig } from './config.ts'
import { BacklogReporter } from './backlog.ts'
import { loadDevices } from './devices.ts'
import { EVENTS_COLUMNS, MqttGateway } from './gateway.ts'
import { LastSeqLookup } from './last-seq.ts'
import type { RelayClient } from './relay.ts'
import { READINGS_COLUMNS } from './telemetry.ts'
import { resolveDeviceSecret } from './tokens.ts'

export interface MqttIngest {
  gateway: MqttGateway
  /** Ms data may have been waiting in this process at `now`: in the gateway, or in its writers (0 for a worker, whose primary counts its writers). */
  backlogMs(now: number): number
  /** Start order: dead letters, writers, gateway. */
  components: Component[]
  config: MqttConfig
}

/**
 * The gateway and its writers. A gateway worker of a cluster passes `relay`:
 * its rows then go to the primary's writers (see relay.ts) instead.
 */
export async function createMqttIngest(store: Store, writerCfg: WriterConfig, sources: ConfigSources, overrides: Partial<MqttConfig> = {}, relay?: RelayClient, bus?: Bus): Promise<MqttIngest> {
  const config = loadConfig(mqttConfig, { ...sources, overrides: { ...sources.overrides, ...overrides } })
  const secret = resolveDeviceSecret(config.deviceSecret, store.dataDir)
  const devices = await loadDevices(store.client)
  const lastSeq = new LastSeqLookup({ client: store.client, lookbackMs: config.dupLookbackMs })
  if (relay) {
    const gateway = new MqttGateway({ config, devices, secret, readings: relay.sink('readings'), events: relay.sink('events'), deadLetters: relay.deadLetters(), lastSeq })
    // The primary counts this worker's backlog in its twin's lag (backlog.ts).
    return { gateway, config, components: [relay, gateway, new BacklogReporter(gateway)], backlogMs: (now) => gateway.backlogMs(now) }
  }
  const { deadLetters, readings, events } = createIngestWriters(store, writerCfg)
  const gateway = new MqttGateway({ config, devices, secret, readings, events, deadLetters, lastSeq, ...(bus ? { bus } : {}) })
  return {
    gateway, config, components: [deadLetters, readings, events, gateway],
    backlogMs: (now) => Math.max(gateway.backlogMs(now), readings.oldestPendingMs(now), events.oldestPendingMs(now)),
  }
}

/** The writers behind a gateway: readings, events and dead letters (start them in that order: dead letters first). */
export function createIngestWriters(store: Store, writerCfg: WriterConfig): { deadLetters: DeadLetterWriter; readings: StoreWriter; events: StoreWriter } {
  const deadLetters = new DeadLetterWriter(store.client, writerCfg)
  const readings = new StoreWriter({ client: store.client, table: 'readings', columns: READINGS_COLUMNS, config: writerCfg, deadLetters })
  const events = new StoreWriter({ client: store.client, table: 'events', columns: EVENTS_COLUMNS, config: writerCfg, deadLetters })
  return { deadLetters, readings, events }
}

export { mqttConfig } from './config.ts'
