/**
 * The one way into the verification pool (README "Several cores in one process"): `VerifierEngine`
 * calls `createVerifierPool` and nothing else of this folder but its types, so that on runtimes
 * without `node:worker_threads` this module alone is swapped out.
 */
import type { VerifierPool, VerifierPoolOptions } from './types.js'
import { WorkerPool } from './worker-pool.js'

export function createVerifierPool(options: VerifierPoolOptions): VerifierPool {
  return new WorkerPool(options)
}
