/**
 * Turns a JWK into checked public-key material for exactly one algorithm (README "What is checked" and "Keys (JWKS)"). Every
 * backend imports from this material, so a key that one backend accepts, all accept. The algorithm
 * is never inferred from the key bytes: the caller names it, the key must fit it.
 */
import { p256 } from '@noble/curves/nist.js'
import { ALGORITHMS, algorithmForKeyType, type Algorithm } from './algorithms.js'
import { decodeBase64url, encodeBase64url } from './base64url.js'
import { weakModulusReason } from './weak-rsa.js'

export interface EcPublicKeyMaterial {
  readonly alg: 'ES256'
  readonly kty: 'EC'
  /** Affine coordinates, 32 bytes each, big-endian; checked to be a point on P-256. */
  readonly x: Uint8Array
  readonly y: Uint8Array
  readonly jwk: { readonly kty: 'EC'; readonly crv: 'P-256'; readonly x: string; readonly y: string }
}

export interface RsaPublicKeyMaterial {
  readonly alg: 'RS256'
  readonly kty: 'RSA'
  /** Modulus without leading zero bytes; `modulusBytes` is also the required signature length. */
  readonly n: Uint8Array
  readonly e: Uint8Array
  readonly modulusBits: number
  readonly modulusBytes: number
  readonly jwk: { readonly kty: 'RSA'; readonly n: string; readonly e: string }
}

export type PublicKeyMaterial = EcPublicKeyMaterial | RsaPublicKeyMaterial

/** Members that only a private (or symmetric) key has: such a JWK is never used to verify. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const

/**
 * Why a JWK may not verify for `alg` — or undefined when it may. These are the JWKS filters of
 * README "Keys (JWKS)" (use, key_ops, alg, private members) plus the key type the algorithm table demands.
 */
export function keyUnusableReason(alg: Algorithm, jwk: unknown): string | undefined {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return 'not a JWK object'
  const k = jwk as Record<string, unknown>
  for (const m of PRIVATE_MEMBERS) if (k[m] !== undefined) return 'contains private key members'
  if (k.use !== undefined && k.use !== 'sig') return 'use is not "sig"'
  if (k.key_ops !== undefined && !(Array.isArray(k.key_ops) && k.key_ops.includes('verify'))) {
    return 'key_ops does not allow "verify"'
  }
  if (k.alg !== undefined && k.alg !== alg) return 'alg does not match'
  if (algorithmForKeyType(k.kty, k.crv) !== alg) return `key type does not fit ${alg}`
  return undefined
}

/** Checked material for `alg`, or a string saying why the key cannot be used. */
export function readPublicKey(alg: Algorithm, jwk: unknown): PublicKeyMaterial | string {
  const unusable = keyUnusableReason(alg, jwk)
  if (unusable !== undefined) return unusable
  const k = jwk as Record<string, unknown>
  return ALGORITHMS[alg].kty === 'EC' ? readEcKey(k) : readRsaKey(k)
}

function readEcKey(k: Record<string, unknown>): EcPublicKeyMaterial | string {
  if (typeof k.x !== 'string' || typeof k.y !== 'string') return 'x and y must be strings'
  const x = decodeBase64url(k.x)
  const y = decodeBase64url(k.y)
  // RFC 7518 §6.2.1.2: coordinates are the full field size, 32 bytes for P-256.
  if (x?.length !== 32 || y?.length !== 32) return 'x and y must be 32-byte base64url'
  try {
    // Invalid-curve attacks feed points off the curve: they are refused at import, once.
    p256.Point.fromAffine({ x: toBigInt(x), y: toBigInt(y) }).assertValidity()
  } catch {
    return 'point is not on P-256'
  }
  return { alg: 'ES256', kty: 'EC', x, y, jwk: { kty: 'EC', crv: 'P-256', x: k.x, y: k.y } }
}

/** Public exponents above 32 bits only make verification slower; real keys use 65537 (or 3). */
const MAX_EXPONENT_BYTES = 4

function readRsaKey(k: Record<string, unknown>): RsaPublicKeyMaterial | string {
  if (typeof k.n !== 'string' || typeof k.e !== 'string') return 'n and e must be strings'
  const nRaw = decodeBase64url(k.n)
  const eRaw = decodeBase64url(k.e)
  if (nRaw === undefined || eRaw === undefined) return 'n and e must be base64url'
  const n = stripLeadingZeros(nRaw)
  const e = stripLeadingZeros(eRaw)
  const modulusBits = bitLength(n)
  const spec = ALGORITHMS.RS256
  if (modulusBits < spec.minModulusBits! || modulusBits > spec.maxModulusBits!) {
    return `modulus must be ${spec.minModulusBits}–${spec.maxModulusBits} bits`
  }
  if ((n[n.length - 1]! & 1) === 0) return 'modulus must be odd'
  // e = 1 makes every message its own signature; even e is not an RSA exponent.
  if (
    e.length === 0 ||
    e.length > MAX_EXPONENT_BYTES ||
    (e[e.length - 1]! & 1) === 0 ||
    (e.length === 1 && e[0]! < 3)
  ) {
    return 'public exponent must be odd, at least 3 and at most 32 bits'
  }
  const weak = weakModulusReason(n)
  if (weak !== undefined) return weak
  return {
    alg: 'RS256',
    kty: 'RSA',
    n,
    e,
    modulusBits,
    modulusBytes: n.length,
    jwk: { kty: 'RSA', n: encodeBase64url(n), e: encodeBase64url(e) },
  }
}

function stripLeadingZeros(b: Uint8Array): Uint8Array {
  let i = 0
  while (i < b.length && b[i] === 0) i++
  return b.subarray(i)
}

function bitLength(b: Uint8Array): number {
  if (b.length === 0) return 0
  return (b.length - 1) * 8 + (32 - Math.clz32(b[0]!))
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

export function toBigInt(bytes: Uint8Array): bigint {
  let hex = ''
  for (let i = 0; i < bytes.length; i++) hex += HEX[bytes[i]!]!
  return hex === '' ? 0n : BigInt(`0x${hex}`)
}
