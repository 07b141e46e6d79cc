/**
 * The JWKS fetch deadline under forced garbage collection. It needs `gc()`, so vitest.config.ts
 * runs this file alone in a forked process started with --expose-gc (the "expose-gc" project);
 * no other test shares that process or its flag.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { CaracalAuth, InMemoryRevocationStore } from '../src/index.js'
import { generateSigningKey } from '../src/dev/sign-jws.js'
import { TEST_BACKENDS } from './support/backends.js'
import { sleep, startJwksServer } from './support/jwks-server.js'
import { AUDIENCE, mint } from './support/mandates.js'
import { testClock } from './support/test-clock.js'
import { rejection } from './support/verifiers.js'

const keyA = generateSigningKey('ES256', 'kid-a')

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c()
})

describe('JWKS responses that are refused, with garbage collection forced', () => {
  const backend = TEST_BACKENDS[0]!

  it('gives up on a stalled body even when garbage collection runs meanwhile', async () => {
    // On Node 20 a fetch deadline made only of AbortSignal.timeout() can be collected mid-flight,
    // and the read then never ends: force collections while the body stalls.
    const gc = globalThis.gc
    if (gc === undefined)
      throw new Error(
        'gc() is not exposed: this file must run in the vitest project with execArgv --expose-gc (vitest.config.ts)',
      )
    const s = await startJwksServer({ keys: [] })
    cleanups.push(() => s.close())
    s.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"keys":[')
    }
    const collector = setInterval(() => gc(), 10)
    try {
      for (let i = 0; i < 3; i++) {
        const auth = new CaracalAuth({
          issuer: s.issuer,
          audience: AUDIENCE,
          revocations: new InMemoryRevocationStore(),
          backend: backend as never,
          now: testClock().now,
          jwks: { timeoutMs: 100 },
        })
        cleanups.push(() => auth.close())
        const outcome = await Promise.race([
          rejection(auth.verify(mint({ iss: s.issuer }, keyA))).then((e) => e.code),
          sleep(5_000).then(() => 'hung'),
        ])
        expect(outcome).toBe('invalid_token')
      }
    } finally {
      clearInterval(collector)
    }
  })
})
