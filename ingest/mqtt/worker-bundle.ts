// Gateway workers run one bundled JavaScript file (worker-main.ts), not the
// TypeScript sources through tsx: see worker-main.ts for why. The primary
// bundles it with esbuild when it starts the workers (a few hundred ms),
// into node_modules/.cache/citytwin so the bundle finds the same packages,
// under a name of its own so processes starting at once never share one,
// and removes it when the workers stop.
import { randomBytes } from 'node:crypto'
import { mkdirSync, rmSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { CitytwinError, messageOf } from '../../lib/errors.ts'

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** The CLI, which workers run (through tsx) where no bundle can be written. */
export const CLI_PATH = join(REPO, 'bin', 'citytwin.js')

export interface WorkerBundle {
  /** The bundled entry to fork. */
  file: string
  remove(): void
}

export async function bundleGatewayWorker(repo = REPO): Promise<WorkerBundle> {
  const dir = join(repo, 'node_modules', '.cache', 'citytwin')
  const file = join(dir, `gateway-worker-${process.pid}-${randomBytes(4).toString('hex')}.mjs`)
  try {
    mkdirSync(dir, { recursive: true })
    // The asynchronous API shares esbuild's service process with tsx, which runs beside the primary anyway.
    await build({
      entryPoints: [join(repo, 'ingest', 'mqtt', 'worker-main.ts')], outfile: file,
      bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external',
      sourcemap: 'inline', logLevel: 'silent',
    })
  } catch (e) {
    throw new CitytwinError('INTERNAL', `could not bundle the gateway worker into ${dir}: ${messageOf(e)}`, { cause: e })
  }
  return { file, remove: () => rmSync(file, { force: true }) }
}
