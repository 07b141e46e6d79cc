/**
 * `#verifier-pool` everywhere but Node, Bun and Deno (package.json `imports`, README "Runtimes"):
 * no `node:worker_threads`, so no pool; the `workers` option is refused where it is asked for.
 */
import type { VerifierPool, VerifierPoolOptions } from './types.js'

export function createVerifierPool(_options: VerifierPoolOptions): VerifierPool {
  throw new TypeError(
    'CaracalAuth option "workers" needs node:worker_threads, used only under the node, bun and deno conditions (README "Runtimes")',
  )
}
