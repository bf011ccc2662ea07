// A failed promise nobody handled is one operation's fault: the process logs
// it and carries on, instead of Node's default of exiting.
import { spawn } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { REPO } from '../helpers.ts'

function run(script: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (out += d.toString()))
    child.on('exit', (code) => resolve({ code, out }))
  })
}

const failLater = `
  void Promise.reject(new Error('one request went wrong'))
  setTimeout(() => console.log('still running'), 200)
`

describe('unhandled rejections', () => {
  it('stop a process that is not guarded (the fault the guard is for)', async () => {
    const r = await run(failLater)
    expect(r.code).not.toBe(0)
    expect(r.out).not.toContain('still running')
  })

  it('are logged and counted by a guarded process, which carries on', async () => {
    const r = await run(`
      const { guardUnhandledRejections } = await import('./lib/process-guard.ts')
      const { metricsText } = await import('./lib/metrics.ts')
      guardUnhandledRejections()
      ${failLater}
      setTimeout(async () => console.log((await metricsText()).body.split('\\n').find((l) => l.startsWith('citytwin_unhandled_rejections_total'))), 300)
    `)
    expect(r.code).toBe(0)
    expect(r.out).toContain('still running')
    expect(r.out).toMatch(/one request went wrong.*carries on/)
    expect(r.out).toMatch(/citytwin_unhandled_rejections_total(\{[^}]*\})? 1\n/)
  })
})
