// The viewer's files (the Vite build in viewer/dist), served at / by the API
// server so one port serves the map and its data. Paths are resolved inside
// the folder only; an unknown path gets index.html (the viewer routes in
// the browser); a missing build says how to make it.
import { readFile, stat } from 'node:fs/promises'
import { extname, join, normalize, resolve, sep } from 'node:path'
import type { Reply } from '../../lib/http/router.ts'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png', '.jpg': 'image/jpeg',
  '.woff2': 'font/woff2', '.wasm': 'application/wasm', '.map': 'application/json; charset=utf-8', '.ico': 'image/x-icon',
}

/** Path prefixes the API keeps for itself, so an unknown API path is a 404, never the viewer's page. */
export function isApiPath(pathname: string): boolean {
  return pathname === '/api' || pathname.startsWith('/api/') || pathname.startsWith('/open311/')
}

export async function serveStatic(dir: string, pathname: string): Promise<Reply & { cache?: string }> {
  const root = resolve(dir)
  let rel: string
  try {
    rel = normalize(decodeURIComponent(pathname)).replace(/^[/\\]+/, '')
  } catch {
    return { status: 400, body: 'bad path\n', contentType: 'text/plain; charset=utf-8' }
  }
  const file = resolve(join(root, rel || 'index.html'))
  if (file !== root && !file.startsWith(root + sep)) return { status: 404, body: 'not found\n', contentType: 'text/plain; charset=utf-8' }
  const found = await stat(file).then((s) => s.isFile()).catch(() => false)
  // A missing file (a script, an image) is a 404; a path without an extension is the viewer's own route.
  if (!found && extname(rel) !== '') return { status: 404, body: 'not found\n', contentType: 'text/plain; charset=utf-8' }
  const target = found ? file : join(root, 'index.html')
  try {
    const body = await readFile(target)
    // Vite names built assets by their content: they never change under one name.
    const immutable = found && rel.startsWith('assets/')
    return { status: 200, body, contentType: TYPES[extname(target)] ?? 'application/octet-stream', cache: immutable ? 'public, max-age=31536000, immutable' : 'no-cache' }
  } catch {
    return { status: 503, body: 'The viewer is not built. Run: npm run build:viewer\n', contentType: 'text/plain; charset=utf-8' }
  }
}
