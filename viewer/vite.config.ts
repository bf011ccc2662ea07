// The viewer's build: `npm run build:viewer` writes viewer/dist, which the
// API server serves at /. `npm run dev:viewer` serves it with reload,
// proxying the API to a running `citytwin start`.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { defineConfig, type Plugin } from 'vite'

/**
 * MapLibre, for the optional base map, is copied beside the viewer as its
 * own files, not bundled: most deployments have no tile server and never
 * load it, and its module finds its worker by name next to itself.
 */
function maplibreFiles(): Plugin {
  const dist = dirname(createRequire(import.meta.url).resolve('maplibre-gl/package.json'))
  return {
    name: 'citytwin-maplibre-files',
    generateBundle() {
      for (const f of ['maplibre-gl.mjs', 'maplibre-gl-worker.mjs', 'maplibre-gl.css']) {
        this.emitFile({ type: 'asset', fileName: `vendor/maplibre/${f}`, source: readFileSync(join(dist, 'dist', f)) })
      }
    },
  }
}

export default defineConfig({
  root: new URL('.', import.meta.url).pathname,
  plugins: [maplibreFiles()],
  // One bundle: luma.gl's lazy imports would otherwise split into chunks that import each other.
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 2_000, rollupOptions: { output: { inlineDynamicImports: true } } },
  server: { proxy: { '/api': { target: 'http://127.0.0.1:8080', ws: true }, '/open311': 'http://127.0.0.1:8080' } },
})
