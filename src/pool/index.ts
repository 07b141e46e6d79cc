/**
 * The one way into the verification pool (README "Several cores in one process"): `VerifierEngine`
 * calls `createVerifierPool` and nothing else of this folder but its types, so that on runtimes
 * without `node:worker_threads` this module alone is swapped out.
 */
import { availableParallelism } from 'node:os'
import type { BackendChoice } from '../backends/types.js'
import { MAX_WORKERS } from '../options.js'
import type { ClaimRules } from '../policy/claims.js'
import type { VerifierPool, VerifierPoolOptions } from './types.js'
import { WorkerPool } from './worker-pool.js'

/** Set by `sharingPool` for the verifiers it makes. */
let lent: { readonly pool: VerifierPool; readonly backend: BackendChoice; readonly claimRules: ClaimRules } | undefined

/** Undefined when `workers` comes to none: 0, or `'auto'` on a single core. */
export function createVerifierPool(
  options: Omit<VerifierPoolOptions, 'workers'> & { readonly workers: number | 'auto' },
): VerifierPool | undefined {
  if (lent !== undefined) return borrowed(lent, options)
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

/**
 * For the tests: the pooled verifiers `make` creates use the workers of `owner` (a verifier's pool,
 * `auth[verifierPool]`), which stays its owner's to close. A worker holds only the backend and the
 * claim rules (src/pool/protocol.ts), so verifiers that agree on both may share one — each with
 * its own stores, clock and policy on the main thread — instead of starting threads of their own.
 */
export function sharingPool<T>(owner: VerifierPool, make: () => T): T {
  lent = { pool: owner, backend: owner.backend, claimRules: owner.claimRules }
  try {
    return make()
  } finally {
    lent = undefined
  }
}

function borrowed(
  from: NonNullable<typeof lent>,
  options: Omit<VerifierPoolOptions, 'workers'> & { readonly workers: number | 'auto' },
): VerifierPool | undefined {
  if (options.workers === 0) return undefined
  if (options.backend !== from.backend || !sameClaimRules(options.claimRules, from.claimRules)) {
    throw new Error('sharingPool: the verifier’s backend or claim rules differ from the pool’s')
  }
  const { pool } = from
  return {
    backend: pool.backend,
    claimRules: pool.claimRules,
    track: (backendFor) => pool.track(backendFor),
    verify: (token, jws, key, nowSec) => pool.verify(token, jws, key, nowSec),
    close: async () => {},
    internals: pool.internals,
  }
}

function sameClaimRules(a: ClaimRules, b: ClaimRules): boolean {
  return (
    a.issuer === b.issuer &&
    a.requiredUse === b.requiredUse &&
    a.expLeewaySec === b.expLeewaySec &&
    a.futureLeewaySec === b.futureLeewaySec &&
    a.audiences.size === b.audiences.size &&
    [...a.audiences].every((x) => b.audiences.has(x))
  )
}
