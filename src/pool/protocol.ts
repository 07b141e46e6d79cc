/** The messages between the main thread and a pool's workers (src/pool/worker-pool.ts, worker.ts). */
import type { BackendChoice } from '../backends/types.js'
import type { PublicKeyMaterial } from '../jws/public-key.js'
import type { ClaimRules, Claims } from '../policy/claims.js'
import type { CaracalErrorCode } from '../errors.js'

/** What a worker starts with: the backend choice, the claim rules and the keys live at its start. */
export interface WorkerSetup {
  readonly backend: BackendChoice
  readonly claimRules: ClaimRules
  readonly keys: readonly (readonly [number, PublicKeyMaterial])[]
}

export type ToWorker =
  /** Keys imported (or released) on the main thread, in the order it did so. */
  | { readonly t: 'keys'; readonly add: readonly (readonly [number, PublicKeyMaterial])[]; readonly drop: number[] }
  /** Tokens with the number of their key and the time of their request, in seconds. */
  | {
      readonly t: 'batch'
      readonly id: number
      readonly tokens: string[]
      readonly keys: Int32Array
      readonly now: Float64Array
    }
  /** Tests only: block the thread, as a hung worker would. */
  | { readonly t: 'hang' }

/** Per token, in batch order: accepted (claims, nbf), refused (code, description, scope), or no such key. */
export type Answer =
  | readonly [0, Claims, number | undefined]
  | readonly [1, CaracalErrorCode, string, readonly string[] | undefined]
  | readonly [2]

export type FromWorker =
  /** Set up (keys imported): from now on a batch's time is the worker's own. */
  { readonly t: 'ready' } | { readonly t: 'answers'; readonly id: number; readonly answers: Answer[] }
