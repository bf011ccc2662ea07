// `citytwin camera probe <rtsp-url>`: one camera, JSON out, for an operator
// chasing a camera that misbehaves. The exit status says whether the probe
// succeeded (0) or the camera failed it (1), so scripts can loop over a list.
// `citytwin gateway rtsp --shard i/n`: the camera gateway for one shard of
// the city's cameras, until stopped.
import { readFileSync } from 'node:fs'
import type { Command } from '../../lib/command.ts'
import { numberOption, UsageError } from '../../lib/command.ts'
import { startAll, stopAll, type Component } from '../../lib/component.ts'
import { logger } from '../../lib/log.ts'
import { guardUnhandledRejections } from '../../lib/process-guard.ts'
import { openMigratedStore, StoreOwner } from '../../store/index.ts'
import { untilSignal } from '../mqtt/cli.ts'
import { createCameraIngest } from './index.ts'
import { probeCamera } from './probe.ts'
import { parseShard, type Shard } from './shard.ts'

const log = logger('rtsp-cli')

export const cameraCommands: Command[] = [
  {
    name: 'camera probe',
    summary: "Probe one camera's RTSP stream: reachability, codec, size, and a window of stream health (JSON)",
    args: '<rtsp-url>',
    options: {
      'window-s': { type: 'string', description: 'seconds of RTP to measure after PLAY; 0 for reachability only (default 2)', valueName: 's' },
      'timeout-ms': { type: 'string', description: 'for connecting and for each answer (default 5000)', valueName: 'ms' },
      transport: { type: 'string', description: 'auto (TCP interleaved, UDP when refused), tcp or udp (default auto)', valueName: 'kind' },
      'tls-ca': { type: 'string', description: 'for rtsps:// cameras: a PEM file of the authority to trust instead of the system\'s', valueName: 'file' },
      'tls-insecure': { type: 'boolean', description: 'for rtsps:// cameras: take any certificate (cameras with self-signed ones; the stream is still encrypted, but not to a known camera)' },
      pictures: { type: 'string', description: 'keyframes to decode with ffmpeg and check for black, frozen, obstructed, scene change and motion (default 0)', valueName: 'n' },
      user: { type: 'string', description: 'user name, when not in the URL; the password comes from CITYTWIN_CAMERA_PASSWORD', valueName: 'name' },
    },
    async run({ values, positionals, stdout }) {
      const url = positionals[0]
      if (!url || positionals.length > 1) throw new UsageError('give one rtsp:// URL, e.g. citytwin camera probe rtsp://127.0.0.1:8554/live/C000001')
      const windowS = numberOption(values, 'window-s') ?? 2
      const timeoutMs = numberOption(values, 'timeout-ms') ?? 5_000
      if (windowS < 0 || windowS > 600) throw new UsageError('--window-s must be from 0 to 600')
      if (timeoutMs <= 0) throw new UsageError('--timeout-ms must be above 0')
      const pictures = numberOption(values, 'pictures') ?? 0
      if (!Number.isInteger(pictures) || pictures < 0 || pictures > 32) throw new UsageError('--pictures must be a whole number from 0 to 32')
      if (pictures > 0 && windowS === 0) throw new UsageError('--pictures needs a window: give --window-s above 0')
      const transport = (values.transport ?? 'auto') as string
      if (transport !== 'auto' && transport !== 'tcp' && transport !== 'udp') throw new UsageError(`--transport must be auto, tcp or udp, not "${transport}"`)
      const user = values.user
      if (typeof user === 'string' && process.env.CITYTWIN_CAMERA_PASSWORD === undefined) throw new UsageError('--user needs the password in CITYTWIN_CAMERA_PASSWORD (kept off the command line, which other users can read)')
      const result = await probeCamera(url, {
        windowMs: windowS * 1000, timeoutMs, transport, pictures,
        ...(typeof values['tls-ca'] === 'string' || values['tls-insecure'] === true ? { tls: { ...(typeof values['tls-ca'] === 'string' ? { ca: readFileSync(values['tls-ca']) } : {}), insecure: values['tls-insecure'] === true } } : {}),
        ...(typeof user === 'string' ? { credentials: { username: user, password: process.env.CITYTWIN_CAMERA_PASSWORD ?? '' } } : {}),
      })
      // The baseline is the camera's reference picture, for the gateway to keep: bytes, not for a terminal.
      stdout.write(JSON.stringify({ ...result, baseline: undefined, keyframe: undefined }, null, 2) + '\n')
      return result.ok ? 0 : 1
    },
  },
  {
    name: 'gateway rtsp',
    summary: "Run the camera gateway for a shard of the city's cameras: probe each on a schedule, write statuses and events to the store",
    options: {
      shard: { type: 'string', description: 'this process\'s shard, i/n counted from 0 (default 0/1: every camera); adding a shard moves only the cameras it takes', valueName: 'i/n' },
      'stream-host': { type: 'string', description: 'pull every stream from this host:port, keeping each camera\'s path (e.g. the camera simulator); also rtsp.streamHost', valueName: 'host:port' },
    },
    async run({ values, configFile, stdout }) {
      let shard: Shard
      try {
        shard = parseShard((values.shard as string | undefined) ?? '0/1')
      } catch (e) {
        throw new UsageError(`--shard: ${(e as Error).message}`)
      }
      guardUnhandledRejections()
      const streamHost = values['stream-host'] as string | undefined
      const file = streamHost ? { ...configFile, rtsp: { ...(configFile.rtsp as Record<string, unknown> | undefined), streamHost } } : configFile
      const { store, writerCfg } = await openMigratedStore({ file })
      // A long-running process that opened the embedded store serves it, so other commands can use it meanwhile.
      const owner = store.mode === 'embedded' ? new StoreOwner(store, { cityHeldBy: 'citytwin gateway rtsp' }) : undefined
      const started: Component[] = []
      try {
        await owner?.start()
        const ingest = createCameraIngest(store, writerCfg, { file }, { shard })
        await startAll(ingest.components, started)
        stdout.write(`camera gateway: shard ${shard.index}/${shard.count}, ${ingest.gateway.size} cameras, ${ingest.config.concurrency} probes at once (${store.mode} store)\n`)
        log.info({ signal: await untilSignal() }, 'stopping')
      } finally {
        await stopAll(started, Date.now() + 20_000)
        await owner?.stop(Date.now() + 5_000)
        await store.close()
      }
    },
  },
]
