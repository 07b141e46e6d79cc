/**
 * Bun (npm package `bun`): the driver's server as a user's script, `caracal-fastmcp` resolved by
 * Bun from the app's node_modules through the package's `exports` (test/support/runtimes/
 * script-runtimes.ts). Every backend accepts valid ES256 and RS256 mandates and refuses tampered
 * ones exactly as Node does, keys come from the STS's JWKS on loopback, and the Fetch adapter
 * answers as the Node adapters do — as a handler of `Bun.serve` too.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { describeWithRuntime } from './support/runtimes/describe-runtime.js'
import type { CaseResults } from './support/runtimes/driver/protocol.js'
import { linkedApp, type LinkedApp } from './support/runtimes/linked-app.js'
import {
  expectCaseResults,
  expectServedAnswers,
  startRuntimeFixture,
  type RuntimeFixture,
} from './support/runtimes/runtime-fixture.js'
import { BUN, startBunServer, type RunningScript } from './support/runtimes/script-runtimes.js'

describeWithRuntime(BUN, 'caracal-fastmcp in Bun', () => {
  let app: LinkedApp
  let fixture: RuntimeFixture
  let server: Promise<RunningScript>
  let results: Promise<CaseResults>

  beforeAll(async () => {
    app = linkedApp('bun')
    server = startBunServer(app)
    fixture = await startRuntimeFixture()
    results = server.then(async ({ url }) => {
      const response = await fetch(`${url}/cases`, { method: 'POST', body: JSON.stringify(fixture.input) })
      if (!response.ok) throw new Error(`Bun answered ${response.status}: ${await response.text()}`)
      return (await response.json()) as CaseResults
    })
    results.catch(() => {})
  })

  afterAll(async () => {
    await server?.then(
      (s) => s.stop(),
      () => {},
    )
    await fixture?.close()
    app?.remove()
  })

  it('runs in Bun', async () => {
    const { runtime } = await results
    expect(runtime.userAgent).toMatch(/^Bun\//)
  })

  it('auto (ES256 wasm, RS256 node:crypto), wasm and noble verify ES256 and RS256, refuse tampered mandates; remote JWKS; Fetch adapter', async () => {
    expectCaseResults(await results, fixture, { auto: { ES256: 'wasm', RS256: 'node' }, node: { state: 'ready' } })
  })

  it('Bun.serve with withCaracalAuth answers 200 / 401 / 403 as the Node adapters', async () => {
    const { url } = await server
    await results
    await expectServedAnswers(url, fixture)
  })
})
