// npm run fix:lock: puts back into package-lock.json the platform packages
// that `npm install` here leaves out. Packages such as chdb and rollup ship
// native code as one optional package per platform; the registry reachable
// here serves only some of them, `npm install` drops the rest from the lock,
// and `npm ci` on a fresh machine then refuses the lock. For each missing
// optional dependency this writes the entry npm would have written (version,
// os, cpu, libc from the registry's metadata), marked optional.
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO } from '../helpers.ts'

interface LockEntry {
  version?: string
  optional?: boolean
  optionalDependencies?: Record<string, string>
  [k: string]: unknown
}

export function missingOptional(lock: { packages: Record<string, LockEntry> }): { name: string; range: string; parent: string }[] {
  const out: { name: string; range: string; parent: string }[] = []
  for (const [path, entry] of Object.entries(lock.packages)) {
    for (const [name, range] of Object.entries(entry.optionalDependencies ?? {})) {
      // npm looks for the package next to its parent, then up the tree.
      const nested = `${path}/node_modules/${name}`
      if (!lock.packages[nested] && !lock.packages[`node_modules/${name}`]) out.push({ name, range, parent: path })
    }
  }
  return out
}

/** The registry's metadata of a version; undefined when the registry here does not have it. */
function registryMeta(name: string, range: string): Record<string, unknown> | undefined {
  try {
    const meta = JSON.parse(execFileSync('npm', ['view', `${name}@${range}`, 'version', 'os', 'cpu', 'libc', 'license', '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as Record<string, unknown> | Record<string, unknown>[]
    return Array.isArray(meta) ? meta[meta.length - 1] : meta
  } catch {
    return undefined
  }
}

const OSES = ['android', 'darwin', 'freebsd', 'linux', 'netbsd', 'openbsd', 'openharmony', 'sunos', 'win32', 'aix']
const CPUS = ['arm', 'arm64', 'ia32', 'loong64', 'mips64el', 'ppc64', 'riscv64', 's390x', 'x64']

/** os, cpu and libc read from a platform package's name (rollup-linux-arm64-musl, lib-darwin-x64...). */
export function platformOf(name: string): { os?: string[]; cpu?: string[]; libc?: string[] } {
  const parts = (name.split('/').pop() ?? name).split('-')
  const os = parts.find((p) => OSES.includes(p))
  const cpu = parts.find((p) => CPUS.includes(p))
  const abi = parts.find((p) => p.startsWith('gnu') || p.startsWith('musl'))
  return { ...(os ? { os: [os] } : {}), ...(cpu ? { cpu: [cpu] } : {}), ...(abi ? { libc: [abi.startsWith('gnu') ? 'glibc' : 'musl'] } : {}) }
}

if (process.argv[1]?.endsWith('fill-lock.ts')) {
  const file = join(REPO, 'package-lock.json')
  const lock = JSON.parse(readFileSync(file, 'utf8')) as { packages: Record<string, LockEntry> }
  const missing = missingOptional(lock)
  for (const m of missing) {
    const v = registryMeta(m.name, m.range) ?? { version: m.range.replace(/^[~^]/, ''), ...platformOf(m.name) }
    const entry: LockEntry = { version: String(v.version) }
    for (const k of ['cpu', 'libc'] as const) if (v[k] !== undefined) entry[k] = [v[k]].flat()
    if (v.license !== undefined) entry.license = v.license
    entry.optional = true
    if (v.os !== undefined) entry.os = [v.os].flat()
    lock.packages[`node_modules/${m.name}`] = entry
    console.log(`added node_modules/${m.name}@${entry.version}`)
  }
  // Keep npm's order: the keys sorted.
  const sorted = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))))
  writeFileSync(file, JSON.stringify({ ...lock, packages: sorted }, null, 2) + '\n')
  console.log(`${missing.length} entries added`)
}
