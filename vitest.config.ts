import { configDefaults, defineConfig } from 'vitest/config'

/** Tests that call gc(): alone in a forked process started with --expose-gc, shared with no other file. */
const EXPOSE_GC_TESTS = ['test/jwks-gc.test.ts']

export default defineConfig({
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
