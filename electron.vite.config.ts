import { resolve } from 'node:path'
import { defineConfig } from 'electron-vite'
import vue from '@vitejs/plugin-vue'

const root = import.meta.dirname

export default defineConfig({
  main: {
    build: {
      outDir: 'out/main',
      rollupOptions: {
        input: {
          index: resolve(root, 'src-main/index.ts'), // Electron entry
          web: resolve(root, 'src-main/web.ts'), // web mode entry (no Electron)
          // datasets: the tokenizer worker thread, loaded by src-main/core/datasets/tokenize-pool.ts
          'dataset-tokenize-worker': resolve(root, 'src-main/core/datasets/tokenize-worker.ts'),
          // runs: the training worker process, forked by src-main/core/runs/worker-process.ts
          worker: resolve(root, 'src-main/worker/index.ts'),
          // chat: the GGUF host process (node-llama-cpp), forked by src-main/core/chat/gguf-client.ts
          'gguf-host': resolve(root, 'src-main/core/chat/gguf-host.ts'),
        },
      },
    },
  },
  preload: {
    build: {
      outDir: 'out/preload',
      rollupOptions: {
        input: { index: resolve(root, 'src-main/preload/index.ts') },
        // a sandboxed preload must be a single CommonJS file
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    root: resolve(root, 'src-renderer'),
    resolve: {
      alias: {
        '@': resolve(root, 'src-renderer/src'),
        '@contract/errors': resolve(root, 'src-main/api/errors.ts'),
        '@contract': resolve(root, 'src-main/api/contract.ts'),
      },
    },
    plugins: [vue()],
    build: {
      outDir: resolve(root, 'out/renderer'),
      rollupOptions: { input: resolve(root, 'src-renderer/index.html') },
    },
  },
})
