/**
 * Headless Chromium (Debian's `chromium` through playwright-core): the application bundled for the
 * browser (platform browser; no `caracal.wasm` served: the browser build carries it inline) and loaded by a page served from the
 * issuer's loopback origin. Every backend accepts valid ES256 and RS256 mandates and refuses
 * tampered ones exactly as Node does, the STS's JWKS is fetched with the page's `fetch`, and the
 * Fetch adapter answers `Request`s as the Node adapters do.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { bundleForBrowser } from './support/runtimes/bundle.js'
import { CHROMIUM, launchChromium, openDriverPage, writeIndexHtml } from './support/runtimes/chromium.js'
import { describeWithRuntime } from './support/runtimes/describe-runtime.js'
import type { CaseInput, CaseResults } from './support/runtimes/driver/protocol.js'
import { linkedApp, type LinkedApp } from './support/runtimes/linked-app.js'
import {
  expectCaseResults,
  NODE_CRYPTO_EXCLUDED,
  startRuntimeFixture,
  type RuntimeFixture,
} from './support/runtimes/runtime-fixture.js'

declare const caracalDriver: { runCases(input: CaseInput): Promise<CaseResults> }

describeWithRuntime(CHROMIUM, 'caracal-fastmcp in Chromium', () => {
  let app: LinkedApp
  let fixture: RuntimeFixture
  let browser: Browser | undefined
  let results: Promise<CaseResults>

  beforeAll(async () => {
    app = linkedApp('chromium')
    const www = join(app.dir, 'www')
    mkdirSync(www)
    writeIndexHtml(www)
    const launched = launchChromium().then((b) => (browser = b))
    const bundled = bundleForBrowser(app, 'browser.ts', www)
    fixture = await startRuntimeFixture(www)
    results = Promise.all([launched, bundled]).then(async ([b]) => {
      const { page, errors } = await openDriverPage(b, fixture.origin)
      try {
        return await page.evaluate((input) => caracalDriver.runCases(input), fixture.input)
      } catch (error) {
        throw new Error(`${(error as Error).message}\npage errors: ${errors.join('; ')}`)
      }
    })
    results.catch(() => {})
  })

  afterAll(async () => {
    await browser?.close()
    await fixture?.close()
    app?.remove()
  })

  it('runs in a browser: no Node globals', async () => {
    const { runtime } = await results
    expect(runtime.userAgent).toContain('HeadlessChrome')
    expect([runtime.buffer, runtime.process]).toEqual([false, false])
  })

  it('auto (wasm for ES256 and RS256), wasm and noble verify ES256 and RS256, refuse tampered mandates; remote JWKS; Fetch adapter', async () => {
    expectCaseResults(await results, fixture, { auto: { ES256: 'wasm', RS256: 'wasm' }, node: NODE_CRYPTO_EXCLUDED })
  })
})
