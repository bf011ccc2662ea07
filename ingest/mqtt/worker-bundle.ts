// Gateway workers run one bundled JavaScript file (worker-main.ts), not the
// TypeScript sources through tsx: see worker-main.ts for why, and
// lib/bundle.ts for how and where it is written.
import { join } from 'node:path'
import { bundleEntry, REPO, type Bundle } from '../../lib/bundle.ts'

/** The CLI, which workers run (through tsx) where no bundle can be written. */
export const CLI_PATH = join(REPO, 'bin', 'citytwin.js')

export type WorkerBundle = Bundle

export function bundleGatewayWorker(repo = REPO): Promise<WorkerBundle> {
  return bundleEntry(join('ingest', 'mqtt', 'worker-main.ts'), 'gateway-worker', repo)
}
