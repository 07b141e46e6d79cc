/**
 * workerd (the Cloudflare Workers runtime, npm package `workerd`): the application bundled as
 * wrangler bundles it (test/support/runtimes/bundle.ts), once without nodejs_compat and once with
 * it, both Workers served by one workerd from a Cap'n Proto config on 127.0.0.1. In each: every
 * backend accepts valid ES256 and RS256 mandates and refuses tampered ones exactly as Node does,
 * keys come from the STS's JWKS on loopback, and the Fetch adapter — the Worker's own `fetch` —
 * answers as the Node adapters do.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { bundleForWorkerd } from './support/runtimes/bundle.js'
import { describeWithRuntime } from './support/runtimes/describe-runtime.js'
import type { CaseResults } from './support/runtimes/driver/protocol.js'
import { linkedApp, type LinkedApp } from './support/runtimes/linked-app.js'
import {
  expectCaseResults,
  expectServedAnswers,
  NODE_CRYPTO_EXCLUDED,
  startRuntimeFixture,
  type RuntimeFixture,
} from './support/runtimes/runtime-fixture.js'
import { startWorkerd, WORKERD, type RunningWorkerd } from './support/runtimes/workerd.js'

const MODES = [
  { label: 'without nodejs_compat', name: 'plain', nodejsCompat: false },
  { label: 'with nodejs_compat', name: 'compat', nodejsCompat: true },
] as const

describeWithRuntime(WORKERD, 'caracal-fastmcp in workerd', () => {
  let app: LinkedApp
  let fixture: RuntimeFixture
  let server: Promise<RunningWorkerd>
  const results = new Map<string, Promise<CaseResults>>()

  beforeAll(async () => {
    app = linkedApp('workerd')
    const bundles = Promise.all(
      MODES.map(async ({ name, nodejsCompat }) => ({
        name,
        nodejsCompat,
        bundle: await bundleForWorkerd(app, 'worker.ts', `worker-${name}.js`, { nodejsCompat }),
      })),
    )
    server = bundles.then((workers) => startWorkerd(workers, 'workerd.capnp'))
    fixture = await startRuntimeFixture()
    for (const { name } of MODES) {
      results.set(
        name,
        server.then(async ({ urls }) => {
          const response = await fetch(`${urls[name]}/cases`, { method: 'POST', body: JSON.stringify(fixture.input) })
          if (!response.ok) throw new Error(`workerd (${name}) answered ${response.status}: ${await response.text()}`)
          return (await response.json()) as CaseResults
        }),
      )
    }
    // Failures surface in the tests that need them, with the runtime's output.
    for (const p of [server, ...results.values()]) p.catch(() => {})
  })

  afterAll(async () => {
    await server?.then(
      (s) => s.stop(),
      () => {},
    )
    await fixture?.close()
    app?.remove()
  })

  for (const { label, name, nodejsCompat } of MODES) {
    it(`${label}: the mode is what the config says`, async () => {
      const { runtime } = await results.get(name)!
      expect(runtime.userAgent).toBe('Cloudflare-Workers')
      expect([runtime.buffer, runtime.process]).toEqual([nodejsCompat, nodejsCompat])
    })

    // With nodejs_compat too, node:crypto is not a candidate: the workerd condition selects the
    // module without it (its verify throws on an ES256 KeyObject, issue 14), so auto takes wasm for
    // both algorithms and nothing is refused.
    it(`${label}: auto (wasm for ES256 and RS256), wasm and noble verify ES256 and RS256, refuse tampered mandates; remote JWKS; Fetch adapter`, async () => {
      expectCaseResults(await results.get(name)!, fixture, {
        auto: { ES256: 'wasm', RS256: 'wasm' },
        node: NODE_CRYPTO_EXCLUDED,
      })
    })

    it(`${label}: the Worker's fetch, wrapped by withCaracalAuth, answers 200 / 401 / 403 as the Node adapters`, async () => {
      const { urls } = await server
      await results.get(name)
      await expectServedAnswers(urls[name]!, fixture)
    })
  }
})
