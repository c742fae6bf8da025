import { defineConfig } from 'vitest/config'
import { resolve } from 'node:path'

const root = import.meta.dirname

export default defineConfig({
  resolve: {
    alias: {
      '@': resolve(root, 'src-renderer/src'),
      '@contract/errors': resolve(root, 'src-main/api/errors.ts'),
      '@contract': resolve(root, 'src-main/api/contract.ts'),
    },
  },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts', 'test/renderer/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          // the demo run trains for real on the CPU: minutes on a busy 2-core machine
          testTimeout: 420_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
})
