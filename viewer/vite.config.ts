// The viewer's build: `npm run build:viewer` writes viewer/dist, which the
// API server serves at /. `npm run dev:viewer` serves it with reload,
// proxying the API to a running `citytwin start`.
import { defineConfig } from 'vite'

export default defineConfig({
  root: new URL('.', import.meta.url).pathname,
  // One bundle: luma.gl's lazy imports would otherwise split into chunks that import each other.
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 2_000, rollupOptions: { output: { inlineDynamicImports: true } } },
  server: { proxy: { '/api': { target: 'http://127.0.0.1:8080', ws: true }, '/open311': 'http://127.0.0.1:8080' } },
})
