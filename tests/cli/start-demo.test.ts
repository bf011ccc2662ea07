// `npm start` on a fresh data directory is alive by itself: the demo city's
// devices report through the real MQTT gateway, and an injected incident
// (a gas leak first) raises a ticket with its SLA clock running, with no
// set-up and no other process (issue 15).
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runCli, spawnCli, tempDir } from '../helpers.ts'

interface TicketView { type: string; status: string; origin: string; slaLeftMs: number | null; subject?: { deviceId?: string } }

async function waitFor<T>(what: string, read: () => Promise<T | undefined>, withinMs: number): Promise<T> {
  const until = Date.now() + withinMs
  for (;;) {
    const found = await read()
    if (found !== undefined) return found
    if (Date.now() > until) throw new Error(`${what} did not happen within ${withinMs} ms`)
    await new Promise((r) => setTimeout(r, 1_000))
  }
}

describe('citytwin start with the demo city', () => {
  it('runs its devices and raises a ticket by itself within a minute', async () => {
    const dataDir = join(tempDir(), 'db')
    const run = await spawnCli(['start', '--port', '0', '--mqtt-port', '0', '--data-dir', dataDir], /API\s+(http:\/\/\S+)\/api\/city/)
    const api = run.match[1] ?? ''
    const startedAt = Date.now()
    try {
      expect(run.stdout()).toMatch(/demo\s+2193 simulated devices reporting/)
      // Devices report: the city's online count rises from nothing without anyone sending.
      const online = await waitFor('devices online', async () => {
        const body = await (await fetch(`${api}/api/city`)).json() as { city: { devices: { online: number } } }
        const n = body.city.devices.online
        return n > 1_000 ? n : undefined
      }, 60_000)
      expect(online).toBeGreaterThan(1_000)
      // The first incident, a gas leak, becomes a proactive ticket with an SLA clock, within a minute of the system being up.
      const ticket = await waitFor('a gas-leak ticket', async () => {
        const page = await (await fetch(`${api}/api/tickets?type=gas_leak`)).json() as { items: TicketView[] }
        return page.items[0]
      }, Math.max(5_000, 60_000 - (Date.now() - startedAt)))
      expect(ticket).toMatchObject({ type: 'gas_leak', origin: 'proactive' })
      expect(ticket.slaLeftMs).toBeGreaterThan(0)
      // It says so on /healthz, and a scenario, which would drive the same devices and score the demo's tickets, is refused.
      const health = await (await fetch(`${api}/healthz`)).json() as { checks: Record<string, { ok: boolean; detail?: string }> }
      expect(health.checks.demo).toMatchObject({ ok: true, detail: expect.stringMatching(/demo fleet: 2193 simulated devices/) as unknown })
      const scenario = await runCli(['sim', 'scenario', '--api', api, '--warmup-s', '1', '--data-dir', dataDir])
      expect(scenario.code).toBe(2) // a usage error: the command was pointed at the wrong kind of system
      expect(scenario.stderr).toMatch(/runs its demo fleet, whose devices and incidents would mix with the scenario's: start it with citytwin start --no-demo/)
    } finally {
      run.child.kill('SIGTERM')
      await run.exited
    }
  }, 120_000)
})
