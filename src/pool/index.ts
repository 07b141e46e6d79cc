/**
 * The one way into the verification pool (README "Several cores in one process"): `VerifierEngine`
 * calls `createVerifierPool` and nothing else of this folder but its types, so that on runtimes
 * without `node:worker_threads` this module alone is swapped out.
 */
import { availableParallelism } from 'node:os'
import { MAX_WORKERS } from '../options.js'
import type { VerifierPool, VerifierPoolOptions } from './types.js'
import { WorkerPool } from './worker-pool.js'

/** Undefined when `workers` comes to none: 0, or `'auto'` on a single core. */
export function createVerifierPool(
  options: Omit<VerifierPoolOptions, 'workers'> & { readonly workers: number | 'auto' },
): VerifierPool | undefined {
  const workers = options.workers === 'auto' ? autoWorkers(availableParallelism()) : options.workers
  return workers > 0 ? new WorkerPool({ ...options, workers }) : undefined
}

/**
 * One worker per core but the main thread's: the main thread verifies too once the workers are
 * full (src/pool/worker-pool.ts), so on 2 cores one worker beats two (README "Several cores in
 * one process").
 */
export function autoWorkers(cores: number): number {
  return Math.max(0, Math.min(MAX_WORKERS, cores - 1))
}
