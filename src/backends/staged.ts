/**
 * A backend composed per stage (docs/architecture.md "Backends", `auto`): the SHA-256 of the signing input from one
 * implementation, the signature arithmetic from another. On Node, OpenSSL hashes a token's
 * signing input in ~0.8 µs where the wasm SHA-256 takes ~1.9 µs, while the wasm P-256 check is
 * ~2× OpenSSL's (bench/README.md). With `oneCall`, the key also offers the curve backend's whole-
 * mandate check (wasm), fed the digest from `sha256`; without, its tokens go step by step.
 */
import type { PublicKeyMaterial } from '../jws/public-key.js'
import type { MandateRules, SignatureBackend, VerifyingKey } from './types.js'

export function withHashStage(
  curve: SignatureBackend,
  sha256: (message: Uint8Array) => Uint8Array,
  options: { readonly oneCall: boolean },
): SignatureBackend {
  return {
    name: curve.name,
    supports: (alg) => curve.supports(alg),
    importKey(material: PublicKeyMaterial): VerifyingKey {
      const key = curve.importKey(material)
      const verifyDigest = key.verifyDigest
      if (verifyDigest === undefined) return key
      const verifyMandate = options.oneCall ? key.verifyMandate : undefined
      return {
        alg: key.alg,
        backend: key.backend,
        material: key.material,
        verify: (signingInput, signature) => verifyDigest(sha256(signingInput), signature),
        verifyDigest,
        ...(verifyMandate === undefined
          ? {}
          : {
              verifyMandate: (token: string, dot1: number, dot2: number, rules: MandateRules, nowSec: number) =>
                verifyMandate(token, dot1, dot2, rules, nowSec, sha256),
            }),
        release: () => key.release(),
      }
    },
  }
}
