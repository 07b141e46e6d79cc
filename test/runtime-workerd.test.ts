/**
 * workerd (the Cloudflare Workers runtime, npm package `workerd`): the application bundled as
 * wrangler bundles it (test/support/runtimes/bundle.ts) and served from a Cap'n Proto config on
 * 127.0.0.1, once without nodejs_compat and once with it. In each: every backend accepts valid
 * ES256 and RS256 mandates and refuses tampered ones exactly as Node does, keys come from the
 * STS's JWKS on loopback, and the Fetch adapter — the Worker's own `fetch` — answers as the Node
 * adapters do.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { bundleForWorkerd } from './support/runtimes/bundle.js'
import { describeWithRuntime } from './support/runtimes/describe-runtime.js'
import type { CaseResults } from './support/runtimes/driver/protocol.js'
import { linkedApp, type LinkedApp } from './support/runtimes/linked-app.js'
import {
  expectCaseResults,
  expectServedAnswers,
  startRuntimeFixture,
  type RuntimeFixture,
} from './support/runtimes/runtime-fixture.js'
import { startWorkerd, WORKERD, type RunningWorkerd } from './support/runtimes/workerd.js'

describeWithRuntime(WORKERD, 'caracal-fastmcp in workerd', () => {
  let app: LinkedApp
  let fixture: RuntimeFixture
  const modes = [
    { label: 'without nodejs_compat', nodejsCompat: false },
    { label: 'with nodejs_compat', nodejsCompat: true },
  ]
  const servers = new Map<boolean, Promise<RunningWorkerd>>()
  const results = new Map<boolean, Promise<CaseResults>>()

  beforeAll(async () => {
    app = linkedApp('workerd')
    fixture = await startRuntimeFixture()
    // Both modes at once: one bundle, one workerd and one round trip each.
    for (const { nodejsCompat } of modes) {
      const server = bundleForWorkerd(app, 'worker.ts', `worker-${nodejsCompat ? 'compat' : 'plain'}.js`, {
        nodejsCompat,
      }).then((bundle) => startWorkerd(bundle, { nodejsCompat }))
      servers.set(nodejsCompat, server)
      results.set(
        nodejsCompat,
        server.then(async ({ url }) => {
          const response = await fetch(`${url}/cases`, { method: 'POST', body: JSON.stringify(fixture.input) })
          if (!response.ok) throw new Error(`workerd answered ${response.status}: ${await response.text()}`)
          return (await response.json()) as CaseResults
        }),
      )
    }
    // Failures surface in the tests that need them, with the runtime's output.
    for (const p of [...servers.values(), ...results.values()]) p.catch(() => {})
  })

  afterAll(async () => {
    for (const server of servers.values())
      await server.then(
        (s) => s.stop(),
        () => {},
      )
    await fixture?.close()
    app?.remove()
  })

  for (const { label, nodejsCompat } of modes) {
    it(`${label}: the mode is what the config says`, async () => {
      const { runtime } = await results.get(nodejsCompat)!
      expect(runtime.userAgent).toBe('Cloudflare-Workers')
      expect([runtime.buffer, runtime.process]).toEqual([nodejsCompat, nodejsCompat])
    })

    it(`${label}: auto, wasm and noble verify ES256 and RS256, refuse tampered mandates; remote JWKS; Fetch adapter`, async () => {
      expectCaseResults(await results.get(nodejsCompat)!, fixture)
    })

    it(`${label}: the Worker's fetch, wrapped by withCaracalAuth, answers 200 / 401 / 403 as the Node adapters`, async () => {
      const { url } = await servers.get(nodejsCompat)!
      await results.get(nodejsCompat)
      await expectServedAnswers(url, fixture)
    })
  }
})
