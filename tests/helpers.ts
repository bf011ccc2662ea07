// Shared test helpers: temp data directories and running the real CLI.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll } from 'vitest'
import { CitytwinError } from '../lib/errors.ts'

export const REPO = resolve(import.meta.dirname, '..')
export const CLI = join(REPO, 'bin', 'citytwin.js')

/** A fresh directory removed after the file's tests. */
export function tempDir(prefix = 'citytwin-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs `citytwin <args>` as a separate process, as a user would. */
export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<CliResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: REPO,
      env: { ...process.env, CITYTWIN_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      fail(new Error(`citytwin ${args.join(' ')} did not finish in ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`))
    }, timeoutMs)
    child.on('error', fail)
    child.on('close', (code) => {
      clearTimeout(timer)
      done({ code, stdout, stderr })
    })
  })
}

/** Runs one SQL statement through `citytwin store query` against a store (a running system's, through its owner), its rows as objects. */
export async function storeQuery<T>(dataDir: string, sql: string): Promise<T[]> {
  const r = await runCli(['store', 'query', sql, '--data-dir', dataDir])
  if (r.code !== 0) throw new Error(`query failed: ${r.stderr}`)
  return r.stdout.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as T)
}

export interface RunningCli {
  child: ChildProcess
  /** The first match of the awaited line. */
  match: RegExpExecArray
  stdout: () => string
  /** Resolves with the exit code once the process has ended. */
  exited: Promise<number | null>
}

/**
 * Starts a long-running `citytwin <args>` (start, gateway mqtt...) and
 * resolves once its stdout matches `ready`; rejects with its output if it
 * exits first. Stop it with `child.kill('SIGTERM')` and await `exited`.
 */
export async function spawnCli(args: string[], ready: RegExp, env: Record<string, string> = {}): Promise<RunningCli> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO, env: { ...process.env, CITYTWIN_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve))
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString()
      const m = ready.exec(stdout)
      if (m) resolve(m)
    })
    void exited.then((code) => reject(new Error(`citytwin ${args.join(' ')} exited with ${code} before printing ${ready}:\n${stdout}${stderr}`)))
  })
  return { child, match, stdout: () => stdout, exited }
}

/**
 * The store's client with an outage injected in front of it: while
 * `down()`, the named methods fail as the store would when away. Real chDB
 * underneath; only the calls the test names are refused.
 */
export function faultyClient<C extends object>(client: C, down: () => boolean, methods: readonly (keyof C & string)[]): C {
  return new Proxy(client, {
    get(target, prop, receiver) {
      const v: unknown = Reflect.get(target, prop, receiver)
      if (typeof v !== 'function') return v
      const f = (v as (...a: unknown[]) => unknown).bind(target)
      if (!methods.includes(prop as keyof C & string)) return f
      return (...args: unknown[]) => down() ? Promise.reject(new CitytwinError('STORE_UNAVAILABLE', 'the store is away (fault injected by the test)')) : f(...args)
    },
  })
}
