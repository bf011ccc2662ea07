// Builds the GPU points page into .gpu/page with the city's binary data
// (from make-data.ts, in .gpu/data) copied beside it.
import { resolve } from 'node:path'
import { defineConfig } from 'vite'

const repo = resolve(import.meta.dirname, '../..')

export default defineConfig({
  root: import.meta.dirname,
  base: './',
  publicDir: resolve(repo, '.gpu/data'),
  build: { outDir: resolve(repo, '.gpu/page'), emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 2_000, rollupOptions: { output: { inlineDynamicImports: true } } },
})
