/**
 * `#verifier-pool` everywhere but Node, Bun and Deno (package.json `imports`, README "Runtimes"):
 * no `node:worker_threads`, so no pool; the `workers` option is refused where it is asked for.
 */
import type { VerifierPool, VerifierPoolOptions } from './types.js'

/** `'auto'` asks for what the runtime can give: none here. */
export function createVerifierPool(
  options: Omit<VerifierPoolOptions, 'workers'> & { readonly workers: number | 'auto' },
): VerifierPool | undefined {
  if (options.workers === 'auto') return undefined
  throw new TypeError(
    'CaracalAuth option "workers" needs node:worker_threads, used only under the node, bun and deno conditions (README "Runtimes")',
  )
}
