// `citytwin camera probe <rtsp-url>`: one camera, JSON out, for an operator
// chasing a camera that misbehaves. The exit status says whether the probe
// succeeded (0) or the camera failed it (1), so scripts can loop over a list.
import type { Command } from '../../lib/command.ts'
import { numberOption, UsageError } from '../../lib/command.ts'
import { probeCamera } from './probe.ts'

export const cameraCommands: Command[] = [
  {
    name: 'camera probe',
    summary: "Probe one camera's RTSP stream: reachability, codec, size, and a window of stream health (JSON)",
    args: '<rtsp-url>',
    options: {
      'window-s': { type: 'string', description: 'seconds of RTP to measure after PLAY; 0 for reachability only (default 2)', valueName: 's' },
      'timeout-ms': { type: 'string', description: 'for connecting and for each answer (default 5000)', valueName: 'ms' },
      transport: { type: 'string', description: 'auto (TCP interleaved, UDP when refused), tcp or udp (default auto)', valueName: 'kind' },
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
        ...(typeof user === 'string' ? { credentials: { username: user, password: process.env.CITYTWIN_CAMERA_PASSWORD ?? '' } } : {}),
      })
      // The baseline is the camera's reference picture, for the gateway to keep: bytes, not for a terminal.
      stdout.write(JSON.stringify({ ...result, baseline: undefined }, null, 2) + '\n')
      return result.ok ? 0 : 1
    },
  },
]
