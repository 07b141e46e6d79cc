/**
 * Bun (npm package `bun`): the driver's server as a user's script, `caracal-fastmcp` resolved by
 * Bun from the app's node_modules through the package's `exports` (test/support/runtimes/
 * script-runtimes.ts). Every backend accepts valid ES256 and RS256 mandates and refuses tampered
 * ones exactly as Node does, keys come from the STS's JWKS on loopback, and the Fetch adapter
 * answers as the Node adapters do — as a handler of `Bun.serve` too.
 */
import { describeScriptRuntime } from './support/runtimes/script-runtime-suite.js'
import { BUN, startBunServer } from './support/runtimes/script-runtimes.js'

describeScriptRuntime({
  binary: BUN,
  name: 'Bun',
  start: (app) => startBunServer(app),
  backends: { auto: { ES256: 'wasm', RS256: 'node' }, node: { state: 'ready' } },
  casesTitle:
    'auto (ES256 wasm, RS256 node:crypto), wasm and noble verify ES256 and RS256, refuse tampered mandates; remote JWKS; Fetch adapter',
})
