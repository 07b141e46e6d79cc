/**
 * What `CaracalAuth` sees of a verification pool (README "Several cores in one process"): nothing of
 * `node:worker_threads`, which stays inside `src/pool/worker-pool.ts` and `worker.ts`.
 */
import type { BackendChoice, BackendForAlgorithm, VerifyingKey } from '../backends/types.js'
import type { SplitJws } from '../jws/compact.js'
import type { ClaimRules, VerifiedMandate } from '../policy/claims.js'

export interface VerifierPoolOptions {
  readonly workers: number
  readonly backend: BackendChoice
  /** One set per engine: `withPolicy` cannot change them (src/caracal-auth.ts). */
  readonly claimRules: ClaimRules
}

export interface VerifierPool {
  /** What its workers were started with. */
  readonly backend: BackendChoice
  readonly claimRules: ClaimRules
  /**
   * The backends, wrapped so that every key imported on the main thread is imported by every
   * worker too, under a number of its own, and dropped there when it is released here.
   */
  track(backendFor: BackendForAlgorithm): BackendForAlgorithm
  /**
   * Signature and claim rules of a token whose compact form the main thread checked, in a worker
   * (no policy: the main thread applies it). Undefined when the main thread must verify it itself:
   * the worker does not hold the key, or the key was released here meanwhile. Rejects with the
   * token's `CaracalAuthError`, or with `invalid_token` marked `unavailable` when the workers failed.
   */
  verify(token: string, jws: SplitJws, key: VerifyingKey, nowSec: number): Promise<VerifiedMandate | undefined>
  /** Terminates the workers; what is still waiting is refused as `invalid_token` (verifier is closed). */
  close(): Promise<void>
  /** For the tests only: the workers' thread ids, and ways to make one fail. */
  readonly internals: VerifierPoolInternals
}

export interface VerifierPoolInternals {
  threadIds(): number[]
  /** Tokens the workers answered (not those sent back to the main thread for lack of a key). */
  tokensAnswered(): number
  /** Keys the workers hold (one per distinct key, whatever number of key sets hold it). */
  workerKeys(): number
  /** Tokens the main thread verified itself while every worker had its batches. */
  tokensHere(): number
  /** Terminates worker `i`, as a crash would end it. */
  crash(i: number): void
  /** Makes worker `i` stop answering (it blocks its thread), as a hung worker would. */
  hang(i: number): void
  /** How long a batch may take before its worker is taken for hung. */
  timeoutMs: number
}

/** `auth[verifierPool]`: the pool of a `CaracalAuth` made with `workers`, for the tests. Not exported from the package. */
export const verifierPool: unique symbol = Symbol('caracal-fastmcp.verifierPool')
