// Code that runs outside tsx's loader (a gateway worker process, the API's
// own thread) runs as one bundled JavaScript file: a process or thread that
// loads the TypeScript sources through tsx carries tsx's own thread and
// heap as well, and a worker thread does not inherit the loader at all.
// The bundle is written with esbuild when it is needed (a few hundred ms),
// into node_modules/.cache/citytwin so it finds the same packages, under a
// name of its own so processes starting at once never share one, and is
// removed when its user stops; those of processes that were killed before
// they could remove theirs are removed by the next bundling.
import { randomBytes } from 'node:crypto'
import { mkdirSync, readdirSync, rmSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { CitytwinError, messageOf } from './errors.ts'
import { processAlive } from './pid.ts'

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..')

export interface Bundle {
  /** The bundled entry. */
  file: string
  remove(): void
}

/** Bundles `entry` (a path inside the repository) into a file named after `name`. */
export async function bundleEntry(entry: string, name: string, repo = REPO): Promise<Bundle> {
  const dir = join(repo, 'node_modules', '.cache', 'citytwin')
  const file = join(dir, `${name}-${process.pid}-${randomBytes(4).toString('hex')}.mjs`)
  try {
    mkdirSync(dir, { recursive: true })
    removeOrphans(dir)
    // The asynchronous API shares esbuild's service process with tsx, which runs beside anyway.
    await build({
      entryPoints: [join(repo, entry)], outfile: file,
      bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external',
      sourcemap: 'inline', logLevel: 'silent',
    })
  } catch (e) {
    throw new CitytwinError('INTERNAL', `could not bundle ${entry} into ${dir}: ${messageOf(e)}`, { cause: e })
  }
  return { file, remove: () => rmSync(file, { force: true }) }
}

/** Removes the bundles (`<name>-<pid>-<hex>.mjs`) of processes that no longer run. */
function removeOrphans(dir: string): void {
  for (const f of readdirSync(dir)) {
    const pid = /-(\d+)-[0-9a-f]{8}\.mjs$/.exec(f)?.[1]
    if (pid !== undefined && !processAlive(Number(pid))) rmSync(join(dir, f), { force: true })
  }
}

/** This process's Node flags less those that load tsx: a bundle runs plain JavaScript. */
export function workerExecArgv(execArgv: readonly string[]): string[] {
  const loader = /^(--(import|loader|experimental-loader|require)|-r)$/
  const out: string[] = []
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i] as string
    if (loader.test(a) && /tsx/.test(execArgv[i + 1] ?? '')) i++ // the flag and its value
    else if (!/^--(import|loader|experimental-loader|require)=.*tsx/.test(a)) out.push(a)
  }
  return out
}
