// Starting and stopping the HTTP servers our components run (the API and
// the store owner) the same way: listen and fail loudly on a taken port;
// stop by letting requests in flight finish until the deadline, then cut.
import type { Server } from 'node:http'
import type { ListenOptions, Server as NetServer } from 'node:net'

/**
 * Listens on any TCP server (HTTP, TLS, raw); rejects with the bind error
 * (e.g. the port is taken). `backlog` is the kernel's queue of connections
 * not yet accepted (Node's default 511; the kernel caps it at
 * net.core.somaxconn).
 */
export async function listen(server: NetServer, port: number, host: string, backlog?: number): Promise<void> {
  await bind(server, { port, host, ...(backlog === undefined ? {} : { backlog }) })
}

/** Listens on a Unix socket at `path`; rejects with the bind error. */
export async function listenOnPath(server: NetServer, path: string): Promise<void> {
  await bind(server, { path })
}

function bind(server: NetServer, options: ListenOptions): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

export async function closeServer(server: Server, deadline: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  server.closeIdleConnections()
  const cut = setTimeout(() => server.closeAllConnections(), Math.max(0, deadline - Date.now()))
  await closed
  clearTimeout(cut)
}
