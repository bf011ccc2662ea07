// What the browser tests and the viewer benchmark share: Debian's Chromium
// with the flags this machine needs, and a build of the viewer.
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'vite'

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const CHROMIUM = '/usr/bin/chromium'
export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking']

/** Builds the viewer into `outDir` (its own folder per test run) and returns it. */
export async function buildViewer(outDir: string): Promise<string> {
  await build({ configFile: join(REPO, 'viewer', 'vite.config.ts'), logLevel: 'warn', build: { outDir, emptyOutDir: true } })
  return outDir
}
