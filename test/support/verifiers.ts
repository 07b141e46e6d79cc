/** A `CaracalAuth` on the static test JWKS, a settable clock and an in-memory store. */
import {
  CaracalAuth,
  CaracalAuthError,
  InMemoryRevocationStore,
  type CaracalAuthOptions,
  type RevocationStore,
} from '../../src/index.js'
import type { BackendChoice } from '../../src/backends/types.js'
import { AUDIENCE, ISSUER, staticJwks } from './mandates.js'
import { testClock, type TestClock } from './test-clock.js'

export interface TestVerifier {
  readonly auth: CaracalAuth
  readonly revocations: InMemoryRevocationStore
  readonly clock: TestClock
}

export function testVerifier(
  backend: BackendChoice,
  extra: Partial<Omit<CaracalAuthOptions, 'revocations'>> & { revocations?: RevocationStore } = {},
  clock: TestClock = testClock(),
): TestVerifier {
  const revocations = new InMemoryRevocationStore({ now: clock.now })
  const auth = new CaracalAuth({
    issuer: ISSUER,
    audience: AUDIENCE,
    revocations,
    backend,
    now: clock.now,
    jwks: { keys: staticJwks },
    ...extra,
  } as CaracalAuthOptions)
  return { auth, revocations, clock }
}

/** The error `verify` rejected with; fails the test when it resolved or threw something else. */
export async function rejection(promise: Promise<unknown>): Promise<CaracalAuthError> {
  try {
    await promise
  } catch (error) {
    if (error instanceof CaracalAuthError) return error
    throw new Error(`expected a CaracalAuthError, got ${String(error)}`)
  }
  throw new Error('expected a rejection, but verification succeeded')
}
