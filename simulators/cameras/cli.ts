// `citytwin sim cameras`: the RTSP camera simulator as a command. It serves
// /live/<id> for every camera id of the city's form (C and six digits), or
// the first N of them, each playing the street unless told otherwise with
// --set, and prints its counters every 10 s until stopped.
import { readFileSync } from 'node:fs'
import type { Command } from '../../lib/command.ts'
import { numberOption, UsageError } from '../../lib/command.ts'
import { logger } from '../../lib/log.ts'
import { untilSignal } from '../../ingest/mqtt/cli.ts'
import { CLIP_NAMES, defaultClipDir, loadClips, type ClipName } from './clips.ts'
import { CAMERA_FAULTS, CameraSimulator, type CameraFault, type SimCamera } from './server.ts'

const log = logger('camera-sim')

/**
 * One --set value: ID=token[,token...], each token a clip name, a fault,
 * fps=N, basic=user:password or digest=user:password.
 */
export function parseCameraSetting(text: string): { id: string; camera: SimCamera } {
  const eq = text.indexOf('=')
  const id = text.slice(0, eq).trim()
  if (eq <= 0 || !id) throw new UsageError(`--set ${JSON.stringify(text)}: write ID=setting[,setting], e.g. C000001=black or C000002=street,fps=5`)
  const camera: { clip: ClipName; fault?: CameraFault; fps?: number; auth?: SimCamera['auth'] } = { clip: 'street' }
  for (const token of text.slice(eq + 1).split(',').map((t) => t.trim()).filter(Boolean)) {
    const [key, value] = token.split(/=(.*)/s) as [string, string | undefined]
    if (value === undefined && (CLIP_NAMES as readonly string[]).includes(key)) camera.clip = key as ClipName
    else if (value === undefined && (CAMERA_FAULTS as readonly string[]).includes(key)) camera.fault = key as CameraFault
    else if (key === 'fps' && value !== undefined && Number(value) > 0) camera.fps = Number(value)
    else if ((key === 'basic' || key === 'digest') && value?.includes(':')) {
      const colon = value.indexOf(':')
      camera.auth = { scheme: key, username: value.slice(0, colon), password: value.slice(colon + 1) }
    } else {
      throw new UsageError(`--set ${id}: "${token}" is not a clip (${CLIP_NAMES.join(', ')}), a fault (${CAMERA_FAULTS.join(', ')}), fps=N, basic=user:password or digest=user:password`)
    }
  }
  return { id, camera }
}

const CAMERA_ID = /^C(\d{6})$/

export const cameraSimCommands: Command[] = [
  {
    name: 'sim cameras',
    summary: 'Run the RTSP camera simulator: /live/<camera id> plays a clip, with faults on demand',
    options: {
      host: { type: 'string', description: 'address to listen on (default 127.0.0.1)', valueName: 'addr' },
      port: { type: 'string', description: 'RTSP port (default 8554; 0 for any free one)', valueName: 'port' },
      cameras: { type: 'string', description: 'serve only C000001 to this number (default: every id of that form)', valueName: 'n' },
      set: { type: 'string', multiple: true, description: 'a camera unlike the rest: ID=clip|fault|fps=N|basic=u:p|digest=u:p[,...] (repeatable)', valueName: 'id=...' },
      transports: { type: 'string', description: 'what SETUP accepts: tcp, udp or tcp,udp (default tcp,udp)', valueName: 'list' },
      'tls-cert': { type: 'string', description: 'serve rtsps:// with this certificate (PEM; with --tls-key): RTP inside the TLS connection only', valueName: 'file' },
      'tls-key': { type: 'string', description: 'the key of --tls-cert (PEM)', valueName: 'file' },
      'clips-dir': { type: 'string', description: `where rendered clips are cached (default ${defaultClipDir()})`, valueName: 'dir' },
    },
    async run({ values, stdout }) {
      const host = (values.host as string | undefined) ?? '127.0.0.1'
      const port = numberOption(values, 'port') ?? 8554
      const count = numberOption(values, 'cameras')
      const transports = ((values.transports as string | undefined) ?? 'tcp,udp').split(',').map((t) => t.trim())
      if (transports.length === 0 || transports.some((t) => t !== 'tcp' && t !== 'udp')) throw new UsageError('--transports must be tcp, udp or tcp,udp')
      const set = new Map<string, SimCamera>()
      for (const text of (values.set as unknown as string[] | undefined) ?? []) {
        const { id, camera } = parseCameraSetting(text)
        set.set(id, camera)
      }
      const certFile = values['tls-cert'] as string | undefined
      const keyFile = values['tls-key'] as string | undefined
      if ((certFile === undefined) !== (keyFile === undefined)) throw new UsageError('give --tls-cert and --tls-key together')
      const tls = certFile && keyFile ? { cert: readFileSync(certFile), key: readFileSync(keyFile) } : undefined
      const clips = await loadClips(CLIP_NAMES, (values['clips-dir'] as string | undefined) ?? defaultClipDir())
      const sim = new CameraSimulator({
        host, port, clips, transports: transports as ('tcp' | 'udp')[], ...(tls ? { tls } : {}),
        camera: (id) => {
          const m = CAMERA_ID.exec(id)
          if (!m || (count !== undefined && Number(m[1]) > count)) return undefined
          return { clip: 'street' }
        },
      })
      for (const [id, camera] of set) sim.set(id, camera)
      await sim.start()
      stdout.write(`camera simulator: ${tls ? 'rtsps' : 'rtsp'}://${host}:${sim.port}/live/<id> (${count !== undefined ? `C000001 to C${String(count).padStart(6, '0')}` : 'any C and six digits'}), ${set.size} set apart\n`)
      const timer = setInterval(() => log.info(sim.stats(), 'camera simulator'), 10_000)
      log.info({ signal: await untilSignal() }, 'stopping')
      clearInterval(timer)
      await sim.stop(Date.now() + 5_000)
      stdout.write(`${JSON.stringify(sim.stats())}\n`)
    },
  },
]
