import { z } from 'zod'
import { defineConfig } from '../../lib/config.ts'

export const rtspConfig = defineConfig(
  'rtsp',
  z.strictObject({
    concurrency: z.number().int().min(1).max(5_000).default(64).describe('Camera probes one camera gateway process runs at once; each holds a connection (and, when deep, a stream for windowMs plus the wait for its keyframes). 64 carried 3,700 reachability probes a second here (bench:cameras); the city at the default schedule needs about 430.'),
    timeoutMs: z.number().int().min(100).default(5_000).describe('For connecting to a camera and for each of its answers, in milliseconds; past it the probe fails as "timeout".'),
    reachEveryS: z.number().int().min(10).default(300).describe('Seconds between two reachability probes of a camera (connect, OPTIONS, DESCRIBE). Each camera\'s falls at a phase from its id, so the probes of a period are spread evenly over it.'),
    picturesEveryS: z.number().int().min(10).default(900).describe('Seconds between two deep probes of a camera: a window of RTP measured (frame rate, bitrate, loss) and keyframes decoded for the picture checks.'),
    watchPicturesEveryS: z.number().int().min(10).default(120).describe('The same for a camera being watched (an open ticket, a recent event); watched cameras are also taken first when more is due than the gateway can run.'),
    retryAfterS: z.number().int().min(1).default(15).describe('After a failed probe the camera is tried again this soon, then twice as long after each further failure (with jitter), up to reachEveryS.'),
    windowMs: z.number().int().min(100).default(2_000).describe('RTP measured in a deep probe, in milliseconds.'),
    pictures: z.number().int().min(0).max(16).default(3).describe('Keyframes a deep probe decodes and checks (black, frozen, obstructed, scene change, motion). Frozen needs two at least. 0: no picture checks.'),
    decodes: z.number().int().min(1).max(64).default(1).describe('ffmpeg runs one camera gateway process has at once: its budget of decoding. Each run decodes the keyframes of many cameras (up to decodeBatch); one run decodes about 200 keyframes a core-second here.'),
    decodeBatch: z.number().int().min(1).max(1_024).default(64).describe('Most keyframes in one ffmpeg run. Starting ffmpeg costs about as much as decoding 70 keyframes, so runs are shared by the cameras probed within 50 ms.'),
    registryRefreshS: z.number().int().min(0).default(300).describe('How often the camera gateway reads the city\'s cameras again, in seconds, to probe cameras added, follow changed URLs and drop decommissioned ones. 0: at start only.'),
    failuresToOffline: z.number().int().min(1).default(2).describe('Failed probes in a row before a camera is reported offline.'),
    streamHost: z.string().default('').describe('Pull every camera\'s stream from this host:port instead of the one in its URL, keeping the path (a test rig, a local relay, the camera simulator). Empty: each camera\'s own URL.'),
    snapshots: z.boolean().default(true).describe('Keep a JPEG of the keyframe in which a picture condition (black, frozen, obstructed, scene change) was first seen, as the ticket\'s evidence.'),
    snapshotDir: z.string().default('').describe('Where snapshots are kept, a folder a camera. Empty: snapshots/ in the store\'s data directory.'),
    snapshotMaxAgeDays: z.number().min(0.01).default(30).describe('Snapshots older than this are removed.'),
    snapshotMaxMb: z.number().min(1).default(1_024).describe('When all snapshots together pass this many MB, the oldest are removed until they fit.'),
    tlsCaFile: z.string().default('').describe('For rtsps:// cameras: a PEM file of the authority that signs their certificates, trusted instead of the system\'s. Empty: the system\'s authorities.'),
    tlsInsecure: z.boolean().default(false).describe('For rtsps:// cameras: take any certificate (self-signed ones). The stream stays encrypted, but not to a camera whose identity is checked.'),
    username: z.string().default('').describe('User name for cameras that ask for credentials and have none in their URL. Empty: none.'),
    password: z.string().default('').describe('Password that goes with username (also CITYTWIN_CAMERA_PASSWORD).'),
  }).refine((c) => c.decodeBatch >= c.pictures, { message: 'decodeBatch must be at least pictures: a deep probe\'s keyframes go to ffmpeg in one run', path: ['decodeBatch'] }),
  { password: ['CITYTWIN_CAMERA_PASSWORD'] },
)

export type RtspConfig = ReturnType<typeof rtspConfig.schema.parse>
