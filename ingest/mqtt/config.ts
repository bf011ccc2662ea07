import { z } from 'zod'
import { defineConfig } from '../../lib/config.ts'

export const mqttConfig = defineConfig(
  'mqtt',
  z.strictObject({
    host: z.string().default('0.0.0.0').describe('Address the MQTT listener binds.'),
    port: z.number().int().min(0).max(65_535).default(1883).describe('MQTT (TCP) port. 0 picks a free port.'),
    tlsPort: z.number().int().min(0).max(65_535).default(8883).describe('MQTT over TLS port; the TLS listener runs only when tlsCertFile and tlsKeyFile are set. 0 picks a free port.'),
    tlsCertFile: z.string().default('').describe('PEM certificate (chain) for the TLS listener. Empty: no TLS listener.'),
    tlsKeyFile: z.string().default('').describe('PEM private key for the TLS listener.'),
    tlsClientCaFile: z.string().default('').describe('PEM certificate(s) of the authority that signs device certificates. Set: the TLS listener asks each device for a certificate, and one this authority signed whose common name is a device id logs that device in without a token (a user name, if given, must be that id). Empty: devices log in with tokens only.'),
    tlsClientCerts: z.enum(['optional', 'required']).default('optional').describe('With tlsClientCaFile: "optional" lets a device without a certificate log in with its token; "required" ends the TLS handshake of any device without a valid certificate.'),
    wsPort: z.number().int().min(-1).max(65_535).default(-1).describe('MQTT over WebSocket port (path /mqtt). -1: no WebSocket listener; 0 picks a free port.'),
    deviceSecret: z.string().default('').describe('Deployment secret from which device tokens are derived. Empty: generated once into <dataDir>/device-secret.'),
    maxPayloadBytes: z.number().int().min(64).default(16_384).describe('Largest PUBLISH payload accepted, in bytes; larger ones are dead-lettered.'),
    maxTopicBytes: z.number().int().min(16).default(256).describe('Longest topic accepted, in bytes.'),
    maxReadingsPerMessage: z.number().int().min(1).default(100).describe('Most readings in one batched telemetry message.'),
    maxFutureMs: z.number().int().min(0).default(300_000).describe('How far ahead of the gateway clock a reading timestamp may be, in milliseconds.'),
    maxPastMs: z.number().int().min(0).default(86_400_000).describe('How far behind the gateway clock a reading timestamp may be, in milliseconds.'),
    maxInFlight: z.number().int().min(1).default(20_000).describe('Most PUBLISH packets the gateway works on at once, from arrival to acknowledgement (with --workers, each worker holds its share). A packet that finds no room waits, and its connection is not read until it goes on (TCP pushes back on the device); waiting connections take turns as room frees. Bounds memory when the store falls behind.'),
    maxInFlightWhileConnecting: z.number().int().min(1).default(64).describe('Most PUBLISH packets a gateway process works on at once while any device is connecting to it (between its accept and its CONNACK): connections come first. A process short of CPU otherwise answers CONNECTs with what the data of the devices it has leaves over, and under the city\'s full load half the city could not connect. The data of connected devices slows meanwhile (TCP pushes back on them; ingest may turn degraded).'),
    maxInFlightPerConnection: z.number().int().min(1).default(8).describe('Most PUBLISH packets of one connection in flight at once; more wait, and the connection is not read meanwhile, so one busy device cannot take the room of many.'),
    listenBacklog: z.number().int().min(1).max(65_535).default(4_096).describe('Connections the kernel queues for the MQTT listeners before they are accepted (capped by net.core.somaxconn). In a reconnect storm every device comes back within a minute: with Node\'s default of 511 the queue overflowed and devices were refused and retried.'),
    maxConnectionsPerAddress: z.number().int().min(0).default(5_000).describe('Most connections one client address may hold on one gateway process (with --workers, on each worker); more are closed at once, before CONNECT. Devices behind a carrier\'s NAT share an address: raise it for them. 0: no limit.'),
    maxConnections: z.number().int().min(1).default(19_000).describe('Most connections one gateway process holds on each listener. With --workers, a full worker passes a new TCP connection, unread, to the worker holding the fewest (through the primary); one over on TLS or WebSocket, or with every worker full, is closed and the device retries. A process may hold 20,000 open files here, and needs some for itself.'),
    workerHeapMb: z.number().int().min(64).default(384).describe('Heap limit of each gateway worker process (with --workers above 1), in MB. Without it V8 lets garbage grow to twice what a worker holds; a worker holds about 100 MB plus 4 KB per connection.'),
    workerSemiSpaceMb: z.number().int().min(1).max(256).default(8).describe('V8 semi-space of each gateway worker (with --workers above 1), in MB. 32 carried about a tenth more messages per CPU-second on 2026-11-29, when a packet was kept as an object until its PUBACK; since the fast lane holds only bytes and a message id, 32, 16 and 8 cost the same CPU per message (alternated pairs, 2026-11-30, docs/benchmarks.md), and each halving keeps about 16 MB less per worker (some 200 MB at the city\'s 13 workers).'),
    shedHeapRatio: z.number().min(0.5).max(1).default(0.85).describe('Share of its heap limit above which a gateway process refuses new connections (CONNACK 3, server unavailable) until it is 0.1 below; the devices already connected keep being served, and a refused device retries, with --workers usually on another worker. 1: never refuse.'),
    workerNice: z.number().int().min(0).max(19).default(10).describe('How much lower than the primary process the gateway workers (with --workers above 1) run in the CPU scheduler (nice). The primary holds the store every worker waits for; at the same priority, many busy workers starve it and every PUBACK waits longer. 0: the same priority.'),
    fastLane: z.boolean().default(true).describe('Read connected devices\' PUBLISH packets (QoS 0 and 1) on the gateway\'s fast lane instead of through aedes\' generic parser and handlers: the same checks, admission and acknowledgement after store, at a fraction of the CPU. CONNECT, every other packet type and anything unusual (QoS 2, malformed, above the size limits) stay with aedes. false: aedes reads everything, as before 2026-11-30.'),
    dupLookbackMs: z.number().int().min(0).default(3_600_000).describe('A DUP (retransmitted) PUBLISH at the start of a session is checked against the readings stored in this window, in milliseconds, so a message stored by another worker or before a restart is stored once.'),
    ratePerDevicePerS: z.number().positive().default(2).describe('Average messages per second a device may publish (token bucket).'),
    burstPerDevice: z.number().int().min(1).default(20).describe('Messages a device may publish in a burst above its rate.'),
    relayLingerMs: z.number().int().min(0).max(1_000).default(10).describe('With --workers above 1: how long a worker gathers the rows it takes before it sends them to the primary, which stores them, in milliseconds. Every message a worker sends costs both processes a serialisation, a pipe write and an answer, whatever it carries; longer gathers fewer, larger messages and adds up to this to a PUBACK\'s latency (the store\'s own writer waits up to store.flushIntervalMs after it).'),
    denyListRefreshMs: z.number().int().min(100).default(5_000).describe('How often each gateway (with --workers, its primary, which hands every change to the workers) reads the device deny list (citytwin devices deny, POST /api/admin/devices/{id}/deny) and the devices provisioned since (citytwin devices add, move, ...), in milliseconds: a device denied or decommissioned is refused and its connections end within this time, a device added may connect.'),
  }),
  { deviceSecret: ['CITYTWIN_DEVICE_SECRET'] },
)

export type MqttConfig = ReturnType<typeof mqttConfig.schema.parse>
