// The MQTT ingest stage assembled: dead letters, the readings and events
// writers, and the gateway in front of them. Returned in start order;
// stop them in reverse (the gateway first, the dead letters last).
import type { Bus, IngestSource } from '../../lib/bus/bus.ts'
import { PositionClock } from '../../lib/bus/position.ts'
import type { Component } from '../../lib/component.ts'
import { loadConfig, type ConfigSources } from '../../lib/config.ts'
import { DeadLetterWriter, Rollups, StoreWriter, type Store, type WriterConfig } from '../../store/index.ts'
import { mqttConfig, type MqttConfig } from './config.ts'
import { BacklogReporter } from './backlog.ts'
import { HandOverClient } from './hand-over.ts'
import { loadDevices } from './devices.ts'
import { EVENTS_COLUMNS, MqttGateway } from './gateway.ts'
import { DenyList } from './deny-list.ts'
import { PrimaryDenials } from './denial-sync.ts'
import { RegistryWatch } from './registry-watch.ts'
import { followPrimaryRegistry } from './registry-sync.ts'
import { deviceLogPosition } from '../../registry/provision.ts'
import { LastSeqLookup } from './last-seq.ts'
import { RelayClient } from './relay.ts'
import { READINGS_COLUMNS } from './telemetry.ts'
import { resolveDeviceSecret } from './tokens.ts'
import { workerSlot } from './worker-slot.ts'

/** The ingest stage in one process; as an IngestSource, what the twin asks of it. */
export interface MqttIngest extends IngestSource {
  gateway: MqttGateway
  /** Ms data may have been waiting in this process at `now`: in the gateway, or in its writers (a worker's primary counts the writers). */
  backlogMs(now: number): number
  /** Start order: dead letters, writers, the deny list, gateway. */
  components: Component[]
  config: MqttConfig
}

/**
 * The gateway and its writers. A gateway worker of a cluster passes
 * `relayed`: its rows then go to the primary's writers (see relay.ts)
 * instead.
 */
export async function createMqttIngest(store: Store, writerCfg: WriterConfig, sources: ConfigSources, overrides: Partial<MqttConfig> = {}, relayed = false, bus?: Bus, positions?: PositionClock): Promise<MqttIngest> {
  const config = loadConfig(mqttConfig, { ...sources, overrides: { ...sources.overrides, ...overrides } })
  const relay = relayed ? new RelayClient({ lingerMs: config.relayLingerMs }) : undefined
  const secret = resolveDeviceSecret(config.deviceSecret, store.dataDir)
  // The log's position first, then the registry: a device provisioned in between is read twice, never missed.
  const since = await deviceLogPosition(store.client)
  const devices = await loadDevices(store.client)
  const lastSeq = new LastSeqLookup({ client: store.client, lookbackMs: config.dupLookbackMs })
  // Read before the gateway starts, and every denyListRefreshMs after; the devices it denies lose their connections.
  // In a cluster's worker the primary reads it and hands it over, and says when connections end, once every worker has it (denial-sync.ts).
  let gatewayRef: MqttGateway | undefined
  const onDenied = (ids: readonly string[]): void => void gatewayRef?.disconnectDevices(ids)
  const denyList = relayed ? new PrimaryDenials({ onDenied }) : new DenyList({ client: store.client, refreshMs: config.denyListRefreshMs, onDenied })
  const denied = (id: string): boolean => denyList.has(id)
  // Devices provisioned while it runs (registry/provision.ts), followed as often as the deny list.
  // In a cluster's worker the primary says when connections end, once every worker has the change (registry-sync.ts).
  const endChanged = (ids: readonly string[]): void => void gatewayRef?.disconnectDevices(ids, 'changed')
  const registryWatch = new RegistryWatch({ client: store.client, registry: devices, since, refreshMs: config.denyListRefreshMs, ...(relayed ? {} : { onChanged: endChanged }) })
  if (relayed) followPrimaryRegistry(registryWatch, endChanged)
  if (relay) {
    const gateway = new MqttGateway({ config, devices, secret, readings: relay.sink('readings'), events: relay.sink('events'), deadLetters: relay.deadLetters(), lastSeq, denied, handOver: new HandOverClient(),
      // One worker (the first slot, replacements included) speaks for all about the kernel's listen queue, which they share.
      adviseListenQueue: workerSlot() === 0 })
    gatewayRef = gateway
    // The primary counts this worker's backlog in its twin's lag (backlog.ts).
    return { gateway, config, components: [relay, denyList, registryWatch, gateway, new BacklogReporter(gateway)], backlogMs: (now) => gateway.backlogMs(now), shedding: () => gateway.shedding() }
  }
  const writers = createIngestWriters(store, writerCfg, positions, config.maxPastMs)
  const { deadLetters, rollups, readings, events } = writers
  const gateway = new MqttGateway({ config, devices, secret, readings, events, deadLetters, lastSeq, denied, ...(bus ? { bus } : {}) })
  gatewayRef = gateway
  return {
    gateway, config, components: [deadLetters, rollups, readings, events, denyList, registryWatch, gateway],
    backlogMs: (now) => Math.max(gateway.backlogMs(now), writers.oldestPendingMs(now)),
    shedding: () => gateway.shedding(),
  }
}

export interface IngestWriters {
  deadLetters: DeadLetterWriter
  /** What the readings writer stores, summed per minute and hour (start it before that writer, stop it after). */
  rollups: Rollups
  readings: StoreWriter
  events: StoreWriter
  /** How long the oldest row not yet stored has waited, in ms at `now` (it counts in the gateway's backlog). */
  oldestPendingMs(now: number): number
}

/**
 * The writers behind a gateway: readings with their roll-ups, events and
 * dead letters (start them in the order of IngestWriters: dead letters
 * first). `positions` stamps each write
 * with its bus position (default: a clock of this process's own), so the
 * rules can replay what they had not judged and a twin can load what was
 * stored after its checkpoint, also what a gateway stored with no bus
 * behind it.
 */
export function createIngestWriters(store: Store, writerCfg: WriterConfig, positions: PositionClock = new PositionClock(), maxPastMs?: number): IngestWriters {
  const deadLetters = new DeadLetterWriter(store.client, writerCfg)
  const rollups = new Rollups({ client: store.client, columns: READINGS_COLUMNS, intervalMs: writerCfg.rollupIntervalMs, ...(maxPastMs === undefined ? {} : { maxPastMs }) })
  const readings = new StoreWriter({ client: store.client, table: 'readings', columns: READINGS_COLUMNS, config: writerCfg, deadLetters, positions, onStored: rollups.onStored })
  const events = new StoreWriter({ client: store.client, table: 'events', columns: EVENTS_COLUMNS, config: writerCfg, deadLetters, positions })
  return { deadLetters, rollups, readings, events, oldestPendingMs: (now) => Math.max(readings.oldestPendingMs(now), events.oldestPendingMs(now)) }
}

export { mqttConfig } from './config.ts'
