import { defineConfig } from 'vitest/config'

// Each test file runs in its own process (`forks`): chDB allows one data
// directory per process, and every integration test opens its own.
export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts', '**/*.test.ts'],
    exclude: ['node_modules/**', 'data/**'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
})
