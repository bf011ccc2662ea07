// Three node:cluster workers share a port (SCHED_NONE, as the gateway's);
// the primary closes and opens their listeners (pausable-listener.ts) and
// counts where new connections land. Run by pausable-listener.test.ts; prints
// one JSON line with what it saw.
import cluster, { type Worker } from 'node:cluster'
import { connect, createServer, type Socket } from 'node:net'
import { PausableListener } from '../../../ingest/mqtt/pausable-listener.ts'

interface FromWorker { port?: number; accepted?: number; accepting?: boolean }

if (cluster.isPrimary) {
  cluster.schedulingPolicy = cluster.SCHED_NONE
  const workers: Worker[] = [0, 1, 2].map(() => cluster.fork())
  const accepted = [0, 0, 0]
  const next = (w: Worker): Promise<FromWorker> => new Promise((resolve) => w.once('message', (m: FromWorker) => resolve(m)))
  const ports = await Promise.all(workers.map(async (w) => (await next(w)).port))
  workers.forEach((w, i) => w.on('message', (m: FromWorker) => {
    if (m.accepted !== undefined) accepted[i] = m.accepted
  }))
  const set = async (i: number, on: boolean): Promise<FromWorker> => {
    const w = workers[i] as Worker
    const answer = new Promise<FromWorker>((resolve) => {
      const f = (m: FromWorker): void => {
        if (m.accepting === undefined) return
        w.off('message', f)
        resolve(m)
      }
      w.on('message', f)
    })
    w.send({ accept: on })
    return answer
  }
  const sockets: Socket[] = []
  const connectMany = async (n: number): Promise<number[]> => {
    const before = accepted.reduce((a, b) => a + b, 0)
    for (let k = 0; k < n; k++) sockets.push(connect(ports[0] ?? 0, '127.0.0.1').on('error', () => undefined))
    const until = Date.now() + 10_000
    while (accepted.reduce((a, b) => a + b, 0) < before + n && Date.now() < until) await new Promise((r) => setTimeout(r, 10))
    return [...accepted]
  }
  await set(0, false)
  await set(1, false)
  const first = await connectMany(10)
  const reopened = await set(0, true)
  await set(2, false)
  const second = await connectMany(10)
  process.stdout.write(JSON.stringify({ ports, first, reopenedPort: reopened.port, second }) + '\n')
  for (const s of sockets) s.destroy()
  for (const w of workers) w.kill()
} else {
  let accepted = 0
  const server = createServer((s) => {
    accepted++
    s.on('error', () => undefined)
    process.send?.({ accepted })
  })
  const listener = new PausableListener(server, { port: 0, host: '127.0.0.1', backlog: 64 })
  await listener.start()
  process.send?.({ port: listener.port })
  process.on('message', (m: { accept: boolean }) => {
    listener.set(m.accept)
    const answer = (): void => {
      if (listener.accepting !== m.accept) return void setTimeout(answer, 5)
      const port = listener.accepting ? ((server.address() as { port: number } | null)?.port ?? 0) : 0
      process.send?.({ accepting: listener.accepting, port })
    }
    answer()
  })
}
