/**
 * `describe` for the suites that need a runtime: like the Redis suites (test/support/redis.ts), a
 * runtime that cannot start fails under CI=true (a green CI must not hide a runtime that was never
 * tested) and is skipped, loudly, everywhere else.
 */
import { describe, it } from 'vitest'
import type { RuntimeBinary } from './runtime-binaries.js'

export function describeWithRuntime(binary: RuntimeBinary, suite: string, body: () => void): void {
  if (binary.problem === undefined) {
    describe(`${suite} (${binary.version})`, body)
  } else if (process.env.CI === 'true') {
    describe(suite, () => {
      it(`needs ${binary.name}`, () => {
        throw new Error(`${binary.name} cannot start (${binary.problem}); CI=true requires it for "${suite}"`)
      })
    })
  } else {
    console.warn(`\n*** SKIPPED "${suite}": ${binary.name} cannot start (${binary.problem}). ***\n`)
    describe.skip(suite, body)
  }
}
