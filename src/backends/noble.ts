/**
 * Pure-TypeScript backend: `@noble/curves` P-256 and `@noble/hashes` SHA-256, with RSA PKCS#1 v1.5
 * on BigInt. It runs wherever JavaScript runs; it is the fallback, not the fast path.
 */
import { p256 } from '@noble/curves/nist.js'
import { sha256 } from '@noble/hashes/sha2.js'
import type { EcPublicKeyMaterial, PublicKeyMaterial, RsaPublicKeyMaterial } from '../jws/public-key.js'
import { toBigInt } from '../jws/public-key.js'
import { emsaPkcs1v15Sha256 } from './pkcs1.js'
import type { SignatureBackend, VerifyingKey } from './types.js'

function importEc(material: EcPublicKeyMaterial): VerifyingKey {
  const publicKey = new Uint8Array(65)
  publicKey[0] = 0x04
  publicKey.set(material.x, 1)
  publicKey.set(material.y, 33)
  let released = false
  return {
    alg: 'ES256',
    backend: 'noble',
    material,
    verify(signingInput, signature) {
      if (released) return false
      try {
        // noble v2 defaults to lowS: true; RFC 7518 accepts high-S (RFC 7515 A.3 is high-S).
        return p256.verify(signature, signingInput, publicKey, { lowS: false, prehash: true, format: 'compact' })
      } catch {
        return false
      }
    },
    release() {
      released = true
    },
  }
}

function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n
  let b = base % modulus
  let e = exponent
  while (e > 0n) {
    if (e & 1n) result = (result * b) % modulus
    e >>= 1n
    if (e > 0n) b = (b * b) % modulus
  }
  return result
}

function importRsa(material: RsaPublicKeyMaterial): VerifyingKey {
  const n = toBigInt(material.n)
  const e = toBigInt(material.e)
  const k = material.modulusBytes
  let released = false
  return {
    alg: 'RS256',
    backend: 'noble',
    material,
    verify(signingInput, signature) {
      if (released || signature.length !== k) return false
      const s = toBigInt(signature)
      if (s >= n) return false // RFC 8017 §5.2.2: the representative must be below the modulus
      // Compare the whole encoded block with the one we build: never parse ASN.1 out of it. As
      // integers: m < n fits in k bytes, so equal numbers are equal k-byte blocks.
      return modPow(s, e, n) === toBigInt(emsaPkcs1v15Sha256(sha256(signingInput), k))
    },
    release() {
      released = true
    },
  }
}

export const nobleBackend: SignatureBackend = {
  name: 'noble',
  supports: () => true,
  importKey: (material: PublicKeyMaterial) => (material.alg === 'ES256' ? importEc(material) : importRsa(material)),
}
