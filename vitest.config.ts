import { fileURLToPath } from 'node:url'
import { configDefaults, defineConfig } from 'vitest/config'

/** Tests that call gc(): alone in a forked process started with --expose-gc, shared with no other file. */
const EXPOSE_GC_TESTS = ['test/jwks-gc.test.ts']

/**
 * package.json `imports` point into dist/ (what the published package runs); the tests run the
 * sources, with the modules the `node` condition selects (README "Runtimes"). Not tsconfig
 * `paths`: esbuild would apply them to every bundle made in this repository. Code run by tsx
 * outside vitest (a spawned script, the pool's worker threads) gets dist's modules for them.
 */
const NODE_IMPORTS: Record<string, string> = {
  '#bytes': 'src/platform/bytes.node.ts',
  '#node-crypto': 'src/backends/node-crypto.node.ts',
  '#wasm-source': 'src/backends/wasm-source.node.ts',
  '#verifier-pool': 'src/pool/index.ts',
  '#end-of-turn': 'src/platform/end-of-turn.node.ts',
}

export default defineConfig({
  resolve: {
    alias: Object.entries(NODE_IMPORTS).map(([find, path]) => ({
      find,
      replacement: fileURLToPath(new URL(path, import.meta.url)),
    })),
  },
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // The JSON report is what .ci/run reads to print its one "N passed, N failed" line.
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
    // Every test file is in exactly one project. The include lists live here, not above: a project
    // that extends the root config would add its include to the root's instead of replacing it.
    projects: [
      {
        extends: true,
        test: {
          name: 'main',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...EXPOSE_GC_TESTS],
        },
      },
      {
        extends: true,
        test: { name: 'expose-gc', include: EXPOSE_GC_TESTS, pool: 'forks', isolate: true, execArgv: ['--expose-gc'] },
      },
    ],
  },
})
