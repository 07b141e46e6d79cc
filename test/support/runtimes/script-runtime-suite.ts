/**
 * The suite both script runtimes (Deno, Bun) run: the driver's server as a user's script started
 * once, every case in one round trip, then the runtime's own server (`Deno.serve`, `Bun.serve`)
 * answering through `withCaracalAuth` as the Node adapters do.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { describeWithRuntime } from './describe-runtime.js'
import type { CaseResults } from './driver/protocol.js'
import { linkedApp, type LinkedApp } from './linked-app.js'
import {
  expectCaseResults,
  expectServedAnswers,
  startRuntimeFixture,
  type ExpectedBackends,
  type RuntimeFixture,
} from './runtime-fixture.js'
import type { RunningScript } from './script-runtimes.js'
import type { RuntimeBinary } from './runtime-binaries.js'

export interface ScriptRuntime {
  readonly binary: RuntimeBinary
  /** As the runtime names itself: `Deno`, `Bun` (its user agent starts with it). */
  readonly name: string
  readonly start: (app: LinkedApp) => Promise<RunningScript>
  /** What `auto` must pick per algorithm, and the `node` backend's state, in this runtime. */
  readonly backends: ExpectedBackends
  /** The title of the case that checks every backend (it says what auto picks). */
  readonly casesTitle: string
}

export function describeScriptRuntime(runtime: ScriptRuntime): void {
  const { name } = runtime
  describeWithRuntime(runtime.binary, `caracal-fastmcp in ${name}`, () => {
    let app: LinkedApp
    let fixture: RuntimeFixture
    let server: Promise<RunningScript>
    let results: Promise<CaseResults>

    beforeAll(async () => {
      app = linkedApp(name.toLowerCase())
      server = runtime.start(app)
      fixture = await startRuntimeFixture()
      results = server.then(async ({ url }) => {
        const response = await fetch(`${url}/cases`, { method: 'POST', body: JSON.stringify(fixture.input) })
        if (!response.ok) throw new Error(`${name} answered ${response.status}: ${await response.text()}`)
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

    it(`runs in ${name}`, async () => {
      const { runtime: seen } = await results
      expect(seen.userAgent.startsWith(`${name}/`)).toBe(true)
    })

    it(runtime.casesTitle, async () => {
      expectCaseResults(await results, fixture, runtime.backends)
    })

    it(`${name}.serve with withCaracalAuth answers 200 / 401 / 403 as the Node adapters`, async () => {
      const { url } = await server
      await results
      await expectServedAnswers(url, fixture)
    })
  })
}
