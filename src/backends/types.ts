/**
 * The contract every signature backend meets (docs/architecture.md "Backends"). A backend turns checked key material into
 * a `VerifyingKey` once — KeyObject, noble point, wasm tables — and then answers `verify`
 * synchronously, so the hot path never awaits. Lengths are checked by the caller
 * (`verifyWithKey`); everything else about a signature (r, s in [1, n-1], s < modulus, padding) is
 * the backend's job, and every backend must give the same answer on every input.
 */
import type { Algorithm } from '../jws/algorithms.js'
import type { PublicKeyMaterial } from '../jws/public-key.js'
import type { ClaimRules, VerifiedMandate } from '../policy/claims.js'
import type { MandatePolicy } from '../policy/mandate-policy.js'

export type BackendName = 'wasm' | 'node' | 'noble'
export type BackendChoice = BackendName | 'auto'

export interface VerifyingKey {
  readonly alg: Algorithm
  readonly backend: BackendName
  /** The material it was imported from (signature length, fingerprint). */
  readonly material: PublicKeyMaterial
  /** `false` for every bad signature; never throws. */
  verify(signingInput: Uint8Array, signature: Uint8Array): boolean
  /**
   * Optional: the same check over a SHA-256 digest computed elsewhere, so that `auto` can take
   * the hash from one backend and the curve arithmetic from another (docs/architecture.md "Backends": per stage).
   */
  verifyDigest?(digest: Uint8Array, signature: Uint8Array): boolean
  /**
   * Optional (wasm): the rest of a token's cold path in one call — payload and signature decoding,
   * the signature, the claim rules and the policy options — for a token whose header and shape
   * `splitCompact` checked (dots at `dot1`, `dot2`). Throws `invalid_token` exactly where the JS
   * path would; `sha256`, when given, hashes the signing input instead of the backend (a stage).
   */
  verifyMandate?(
    token: string,
    dot1: number,
    dot2: number,
    rules: MandateRules,
    nowSec: number,
    sha256?: (bytes: Uint8Array) => Uint8Array,
  ): MandateVerdict
  /** Gives back what the key holds (wasm table space). Idempotent; the key is unusable after. */
  release(): void
}

export interface SignatureBackend {
  readonly name: BackendName
  /** False where the platform lacks what the backend needs for `alg`. */
  supports(alg: Algorithm): boolean
  /** Prepares a key once; throws only for material the backend cannot hold. */
  importKey(material: PublicKeyMaterial): VerifyingKey
}

/** Chooses the backend that serves each algorithm (the `backend` option, resolved once). */
export type BackendForAlgorithm = (alg: Algorithm) => SignatureBackend

/** What a whole-mandate check applies: one object per CaracalAuth, so its encoding is kept. */
export interface MandateRules {
  readonly claimRules: ClaimRules
  readonly policy: MandatePolicy
}

/**
 * `accepted`: the claims pass the rules and the policy options. `refused`: they pass the rules but
 * a policy option refuses them (`checkPolicy` words the error; nothing is cached). `defer`: this
 * implementation does not decide this token; the JS path does.
 */
export type MandateVerdict =
  | { readonly kind: 'accepted' | 'refused'; readonly mandate: VerifiedMandate }
  | { readonly kind: 'defer' }
