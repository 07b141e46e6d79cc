/** The length rules every backend shares (README "What is checked"), then the backend's own check. */
import { ALGORITHMS } from './algorithms.js'
import type { VerifyingKey } from '../backends/types.js'

export function verifyWithKey(key: VerifyingKey, signingInput: Uint8Array, signature: Uint8Array): boolean {
  const material = key.material
  // ES256 is exactly r‖s; RS256 exactly the modulus length (RFC 8017 §8.2.2 step 1).
  const expected = material.alg === 'RS256' ? material.modulusBytes : ALGORITHMS.ES256.signatureBytes
  if (signature.length !== expected) return false
  return key.verify(signingInput, signature)
}
