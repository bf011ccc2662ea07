// The folders are stages, each above the ones it may use, so that a reading
// can be followed upwards (device -> ingest -> store -> twin -> rules) and
// no stage reaches into one above it. This rule fails the lint on an
// import that goes up, or across into the simulators or the viewer.
//
//   lib          shared helpers: errors, logs, metrics, config, the bus, HTTP routing, the command contract
//   store        the element tables: client, writers, migrations, the embedded store's owner
//   registry     the city model: grids, devices, cameras, device types, and the city's tables
//   ingest       gateways: a device's message becomes rows
//   twin/state   the live twin: rows become the city's state
//   twin/api     the twin's HTTP API and live feed
//   rules        rules, tickets, dispatch, modes, linkage, complaints
//   simulators   synthetic cities, device fleets, scenarios (load and accuracy tests)
//   app          the composition root: the `citytwin` command, `start`, the command table
//
// A stage may import its own files and those of any stage listed above it
// in this table. Only the composition root may import the simulators (it
// offers them as commands and runs the demo city). The viewer is its own
// program (a browser bundle) and imports nothing of the server's. bench/,
// tests/, bin/ and the tooling stand outside the stages: they may import
// any stage, and no stage may import them. A source file in any other
// folder fails the lint until its folder is given a place here, so a new
// folder cannot slip past the order.
import { existsSync, realpathSync } from 'node:fs'
import { basename, dirname, join, normalize, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

export const STAGES = ['lib', 'store', 'registry', 'ingest', 'twin/state', 'twin/api', 'rules', 'simulators', 'app']

/** Folders outside the stages, which may import any stage and which no stage may import. */
export const OUTSIDE = ['tests', 'bench', 'bin', 'eslint', 'node_modules']

/**
 * The stage of a repository-relative path: one of STAGES, 'viewer',
 * 'outside' (OUTSIDE folders, files at the root, paths out of the
 * repository), or undefined for a folder that has no place yet.
 */
export function stageOf(path) {
  const p = path.split(sep).join('/')
  if (p.startsWith('../') || !p.includes('/')) return 'outside'
  if (p.startsWith('viewer/')) return 'viewer'
  for (const s of STAGES) if (p === s || p.startsWith(`${s}/`)) return s
  for (const o of OUTSIDE) if (p.startsWith(`${o}/`)) return 'outside'
  return undefined
}

/** Why `from` may not import `to` (repository-relative paths), or undefined when it may. */
export function refusal(from, to) {
  const a = stageOf(from)
  const b = stageOf(to)
  if (a === undefined) return `${from} is in no stage: give its folder a place in eslint/stage-imports.js`
  if (b === undefined) return `${to} is in no stage: give its folder a place in eslint/stage-imports.js`
  if (a === 'outside' || a === b) return undefined
  if (b === 'outside') return `${a} may not import ${to}: tests, benchmarks and tooling stand outside the stages`
  if (a === 'viewer' || b === 'viewer') return `the viewer is a browser bundle of its own: ${a} may not import ${b}`
  if (b === 'simulators' && a !== 'app') return `only the composition root (app/) may import the simulators; ${a} may not`
  if (STAGES.indexOf(b) > STAGES.indexOf(a)) return `${a} may not import ${b}, a stage above it (stages, lowest first: ${STAGES.join(', ')})`
  return undefined
}

/** `p` with its symbolic links resolved, as far as it exists (a fixture linted from text need not). */
function real(p) {
  let head = p
  const tail = []
  while (!existsSync(head) && dirname(head) !== head) {
    tail.unshift(basename(head))
    head = dirname(head)
  }
  return join(realpathSync(head), ...tail)
}

// Both sides resolved: in a checkout reached through a symbolic link, the
// linted file's name and this file's URL would otherwise disagree and no
// file would be found in a stage.
const ROOT = real(normalize(join(dirname(fileURLToPath(import.meta.url)), '..')))

export default {
  rules: {
    'stage-imports': {
      meta: { type: 'problem', docs: { description: 'no import from a stage above (see eslint/stage-imports.js)' }, schema: [] },
      create(context) {
        const filename = real(context.filename)
        const file = relative(ROOT, filename)
        if (stageOf(file) === undefined) {
          return { Program: (node) => context.report({ node, message: `${file} is in no stage: give its folder a place in eslint/stage-imports.js.` }) }
        }
        const check = (node, source) => {
          if (!source || typeof source.value !== 'string') return
          const spec = source.value
          // Packages are not stages; a relative, absolute or file: path is a file of ours or not, as it resolves.
          if (!spec.startsWith('.') && !spec.startsWith('/') && !spec.startsWith('file:')) return
          const path = spec.startsWith('file:') ? fileURLToPath(spec) : spec.startsWith('/') ? spec : join(dirname(filename), spec)
          const why = refusal(file, relative(ROOT, real(normalize(path))))
          if (why) context.report({ node, message: `Upward import of ${spec}: ${why}.` })
        }
        return {
          ImportDeclaration: (node) => check(node, node.source),
          ExportAllDeclaration: (node) => check(node, node.source),
          ExportNamedDeclaration: (node) => check(node, node.source),
          ImportExpression: (node) => check(node, node.source),
          // typeof import('...') in a type
          TSImportType: (node) => check(node, node.argument?.literal ?? node.argument),
          // require('...'), createRequire's too
          CallExpression: (node) => {
            if (node.callee.type === 'Identifier' && node.callee.name === 'require' && node.arguments[0]?.type === 'Literal') check(node, node.arguments[0])
          },
        }
      },
    },
  },
}
