/**
 * The contract every signature backend meets (SPEC §5). A backend turns checked key material into
 * a `VerifyingKey` once — KeyObject, noble point, wasm tables — and then answers `verify`
 * synchronously, so the hot path never awaits. Lengths are checked by the caller
 * (`verifyWithKey`); everything else about a signature (r, s in [1, n-1], s < modulus, padding) is
 * the backend's job, and every backend must give the same answer on every input.
 */
import type { Algorithm } from '../jws/algorithms.js'
import type { PublicKeyMaterial } from '../jws/public-key.js'

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
   * the hash from one backend and the curve arithmetic from another (SPEC §5: per stage).
   */
  verifyDigest?(digest: Uint8Array, signature: Uint8Array): boolean
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
