// The camera gateway put together: its store writers, the keyframe decoder
// and the gateway, in the order they start (stop them in reverse). Used by
// `citytwin gateway rtsp` and by `citytwin start`.
import type { Bus } from '../../lib/bus/bus.ts'
import { PositionClock } from '../../lib/bus/position.ts'
import type { Component } from '../../lib/component.ts'
import { loadConfig, type ConfigSources } from '../../lib/config.ts'
import { readCameras } from '../../registry/city-store.ts'
import type { Camera } from '../../registry/city.ts'
import { EVENTS_COLUMNS } from '../../store/events.ts'
import { DeadLetterWriter, StoreWriter, type Store, type WriterConfig } from '../../store/index.ts'
import { rtspConfig, type RtspConfig } from './config.ts'
import { DEFAULT_JUDGE_POLICY } from './camera-state.ts'
import { CameraGateway } from './gateway.ts'
import { KeyframeDecoder } from './keyframe-decoder.ts'
import { SnapshotStore } from './snapshots.ts'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Shard } from './shard.ts'

export interface CameraIngest {
  gateway: CameraGateway
  config: RtspConfig
  /** The snapshots kept, for the API that serves them; undefined when rtsp.snapshots is off. */
  snapshots: SnapshotStore | undefined
  components: Component[]
}

/** `url` with its host and port replaced by `hostPort`, the path kept. */
export function streamAt(url: string, hostPort: string): string {
  const u = new URL(url)
  const [host, port] = hostPort.includes(']') ? [hostPort.slice(0, hostPort.lastIndexOf(':')), hostPort.slice(hostPort.lastIndexOf(':') + 1)] : hostPort.split(':')
  u.hostname = host ?? u.hostname
  u.port = port ?? ''
  return u.toString()
}

export function createCameraIngest(store: Store, writerCfg: WriterConfig, sources: ConfigSources, o: { shard: Shard; bus?: Bus; positions?: PositionClock; cameras?: () => Promise<readonly Camera[]> }): CameraIngest {
  const config = loadConfig(rtspConfig, sources)
  const deadLetters = new DeadLetterWriter(store.client, writerCfg)
  const events = new StoreWriter({ client: store.client, table: 'events', columns: EVENTS_COLUMNS, config: writerCfg, deadLetters, positions: o.positions ?? new PositionClock() })
  const decoder = new KeyframeDecoder({ concurrency: config.decodes, maxBatch: config.decodeBatch })
  const credentials = config.username ? { username: config.username, password: config.password } : undefined
  const snapshots = config.snapshots ? new SnapshotStore({ dir: config.snapshotDir || join(store.dataDir, 'snapshots'), maxAgeDays: config.snapshotMaxAgeDays, maxBytes: config.snapshotMaxMb * 1_048_576 }) : undefined
  const gateway = new CameraGateway({
    cameras: o.cameras ?? (() => readCameras(store.client)), shard: o.shard, events, decoder, ...(o.bus ? { bus: o.bus } : {}),
    schedule: { reachEveryS: config.reachEveryS, picturesEveryS: config.picturesEveryS, watchPicturesEveryS: config.watchPicturesEveryS, retryAfterS: config.retryAfterS },
    policy: { ...DEFAULT_JUDGE_POLICY, failuresToOffline: config.failuresToOffline, statusEveryS: Math.max(config.picturesEveryS, config.reachEveryS) },
    refreshMs: config.registryRefreshS * 1000,
    concurrency: config.concurrency, timeoutMs: config.timeoutMs, windowMs: config.windowMs, pictures: config.pictures,
    ...(config.streamHost ? { urlOf: (c: Camera) => streamAt(c.rtspUrl, config.streamHost) } : {}),
    ...(credentials ? { credentials: () => credentials } : {}), ...(snapshots ? { snapshots } : {}),
    ...(config.tlsCaFile || config.tlsInsecure ? { tls: { ...(config.tlsCaFile ? { ca: readFileSync(config.tlsCaFile) } : {}), insecure: config.tlsInsecure } } : {}),
  })
  return { gateway, config, snapshots, components: [deadLetters, events, decoder, ...(snapshots ? [snapshots] : []), gateway] }
}
