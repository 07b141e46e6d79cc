/** `node:crypto` (OpenSSL) backend: one KeyObject per key, created at import. */
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto'
import type { Algorithm } from '../jws/algorithms.js'
import type { PublicKeyMaterial } from '../jws/public-key.js'
import type { SignatureBackend, VerifyingKey } from './types.js'

function importKey(material: PublicKeyMaterial): VerifyingKey {
  const keyObject: KeyObject = createPublicKey({ key: material.jwk, format: 'jwk' })
  // Allocated once: the options object is otherwise rebuilt on every call.
  const keyArg = material.alg === 'ES256' ? { key: keyObject, dsaEncoding: 'ieee-p1363' as const } : keyObject
  let released = false
  return {
    alg: material.alg,
    backend: 'node',
    material,
    verify(signingInput, signature) {
      if (released) return false
      try {
        return cryptoVerify('sha256', signingInput, keyArg, signature)
      } catch {
        return false
      }
    },
    release() {
      released = true
    },
  }
}

export const nodeBackend: SignatureBackend = {
  name: 'node',
  supports: (_alg: Algorithm) => typeof cryptoVerify === 'function',
  importKey,
}
