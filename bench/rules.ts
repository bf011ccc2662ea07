// npm run bench:rules: scenario accuracy at city load. Starts `citytwin
// start` on a fresh full-scale city, then `citytwin sim scenario` (the
// shipped city-incidents scenario by default) with a slice of the city's
// devices at their normal intervals, and prints per incident and overall:
// precision, recall, time from incident to ticket after the rule's own
// duration (p50/p99), and tickets per incident. Figures go to bench/results.
//
//   npm run bench:rules [-- --devices N] [--workers W] [--warmup-s S] [--scenario FILE] [--seed S]
//   (the full city: --devices 219300 --workers 13 --warmup-s 400, as its devices take minutes to connect)
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { formatReport } from '../simulators/scenarios/cli.ts'
import type { ScenarioReport } from '../simulators/scenarios/evaluate.ts'
import { waitForLine } from './ingest-city.ts'

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '20000' },
    workers: { type: 'string', default: '2' },
    scenario: { type: 'string' },
    seed: { type: 'string', default: '1' },
    'warmup-s': { type: 'string', default: '30' },
  },
})

const dir = mkdtempSync(join(tmpdir(), 'citytwin-bench-rules-'))
const cli = join(REPO, 'bin', 'citytwin.js')
const env = { ...process.env, CITYTWIN_LOG_LEVEL: 'warn', CITYTWIN_DATA_DIR: join(dir, 'db') }
const at = new Date().toISOString()
console.log(`bench:rules: citytwin start --full --workers ${values.workers}; citytwin sim scenario --limit ${values.devices}`)
const system = spawn(process.execPath, [cli, 'start', '--full', '--workers', values.workers, '--port', '0', '--mqtt-port', '0'], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'inherit'] })
try {
  const ready = await waitForLine(system, /MQTT\s+port (\d+)[\s\S]*API\s+(http:\/\/\S+)\/api\/city/)
  const out = join(dir, 'report.json')
  const args = [cli, 'sim', 'scenario', '--limit', values.devices, '--mqtt-port', ready[1] ?? '', '--api', ready[2] ?? '', '--seed', values.seed, '--warmup-s', values['warmup-s'], '--out', out,
    ...(values.scenario ? ['--file', values.scenario] : [])]
  const sim = spawn(process.execPath, args, { cwd: REPO, env, stdio: ['ignore', 'inherit', 'inherit'] })
  const code = await new Promise<number | null>((r) => sim.once('exit', (c) => r(c)))
  if (code !== 0) throw new Error(`citytwin sim scenario exited with ${String(code)}`)
  const result = JSON.parse(readFileSync(out, 'utf8')) as { scenario: string; report: ScenarioReport; simulator: Record<string, number> }
  const health = (await (await fetch(`${ready[2] ?? ''}/healthz`)).json())
  const saved = {
    bench: 'rules', at, command: `npm run bench:rules -- --devices ${values.devices} --workers ${values.workers} --warmup-s ${values['warmup-s']}`,
    machine: { cpu: cpus()[0]?.model ?? '', cpus: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
    ...result, health,
  }
  mkdirSync(join(REPO, 'bench', 'results'), { recursive: true })
  const file = join(REPO, 'bench', 'results', `rules-${at.replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify(saved, null, 2))
  console.log(formatReport(result.scenario, result.report))
  console.log(`simulator: ${JSON.stringify(result.simulator)}`)
  console.log(`results: ${file}`)
} finally {
  await new Promise<void>((r) => {
    system.once('exit', () => r())
    system.kill('SIGTERM')
    setTimeout(() => system.kill('SIGKILL'), 30_000).unref()
  })
  rmSync(dir, { recursive: true, force: true })
}
