/**
 * Signing keys derived from a seed, and deterministic signatures: the fuzz campaign (test/fuzz.test.ts)
 * replays exactly — same keys, same tokens — from the seed it prints. node:crypto cannot generate
 * from a seed, so the key material is drawn here and imported as a JWK; RS256 stays PKCS#1 v1.5 by
 * node:crypto (deterministic by construction), ES256 is signed with a deterministic nonce
 * (RFC 6979) so that re-running a case while shrinking sees the same signature bytes.
 */
import { type JsonWebKeyInput, checkPrimeSync, createPrivateKey, createPublicKey, sign } from 'node:crypto'
import { p256 } from '@noble/curves/nist.js'
import type { SigningKey } from '../../src/dev/sign-jws.js'
import { P256_N } from './compact-tokens.js'
import { seededRandom } from './prng.js'

/** A signing key that also keeps its P-256 scalar, for the deterministic ES256 signer. */
export interface SeededKey extends SigningKey {
  readonly secret?: Uint8Array
}

const b64u = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url')

function bigintBytes(v: bigint, length?: number): Buffer {
  let hex = v.toString(16)
  if (hex.length % 2 === 1) hex = `0${hex}`
  const bytes = Buffer.from(hex, 'hex')
  return length === undefined ? bytes : Buffer.concat([Buffer.alloc(Math.max(0, length - bytes.length)), bytes])
}

function randomBits(random: () => number, bits: number): bigint {
  let x = 0n
  for (let i = 0; i < bits; i += 32) x = (x << 32n) | BigInt(Math.floor(random() * 2 ** 32))
  return x & ((1n << BigInt(bits)) - 1n)
}

function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [a % m, m, 1n, 0n]
  while (r1 !== 0n) {
    const q = r0 / r1
    ;[r0, r1] = [r1, r0 - q * r1]
    ;[s0, s1] = [s1, s0 - q * s1]
  }
  return ((s0 % m) + m) % m
}

const SMALL_PRIMES: bigint[] = []
for (let i = 3; SMALL_PRIMES.length < 300; i += 2)
  if (SMALL_PRIMES.every((p) => i % Number(p) !== 0)) SMALL_PRIMES.push(BigInt(i))

const E = 65_537n

/** A `bits`-bit prime with its top two bits set (so p·q has exactly 2·bits bits) and p − 1 prime to e. */
function seededPrime(random: () => number, bits: number): bigint {
  for (;;) {
    const candidate = randomBits(random, bits) | (3n << BigInt(bits - 2)) | 1n
    if ((candidate - 1n) % E === 0n) continue
    if (SMALL_PRIMES.some((p) => candidate % p === 0n)) continue
    if (checkPrimeSync(candidate, { checks: 32 })) return candidate
  }
}

function finish(alg: 'ES256' | 'RS256', kid: string, jwk: JsonWebKeyInput['key'], secret?: Uint8Array): SeededKey {
  const privateKey = createPrivateKey({ key: jwk, format: 'jwk' })
  const publicKey = createPublicKey(privateKey)
  return {
    alg,
    kid,
    privateKey,
    publicKey,
    publicJwk: { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' },
    ...(secret === undefined ? {} : { secret }),
  }
}

/** A P-256 key whose scalar is drawn from `seed`. */
export function seededEsKey(seed: number, kid: string): SeededKey {
  const random = seededRandom(seed)
  const d = (randomBits(random, 256) % (P256_N - 1n)) + 1n
  const secret = new Uint8Array(bigintBytes(d, 32))
  const point = p256.getPublicKey(secret, false)
  return finish(
    'ES256',
    kid,
    { kty: 'EC', crv: 'P-256', d: b64u(secret), x: b64u(point.subarray(1, 33)), y: b64u(point.subarray(33)) },
    secret,
  )
}

/** An RSA key (e = 65537) whose primes are drawn from `seed`: about 0.1–0.5 s for 2048 bits. */
export function seededRsKey(seed: number, kid: string, modulusBits = 2048): SeededKey {
  const random = seededRandom(seed)
  const p = seededPrime(random, modulusBits / 2)
  let q = seededPrime(random, modulusBits / 2)
  while (q === p) q = seededPrime(random, modulusBits / 2)
  const lambda = ((p - 1n) * (q - 1n)) / gcd(p - 1n, q - 1n)
  const d = modInverse(E, lambda)
  return finish('RS256', kid, {
    kty: 'RSA',
    n: b64u(bigintBytes(p * q)),
    e: b64u(bigintBytes(E)),
    d: b64u(bigintBytes(d)),
    p: b64u(bigintBytes(p)),
    q: b64u(bigintBytes(q)),
    dp: b64u(bigintBytes(d % (p - 1n))),
    dq: b64u(bigintBytes(d % (q - 1n))),
    qi: b64u(bigintBytes(modInverse(q, p))),
  })
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b]
  return a
}

/**
 * The signature of `input` (latin1, as the JWS signing input is defined, RFC 7515 §5.1): ES256 as
 * r‖s with an RFC 6979 nonce, high S left as it falls (RFC 7518 accepts both); RS256 PKCS#1 v1.5.
 */
export function signDeterministic(key: SeededKey, input: string): Buffer {
  const bytes = Buffer.from(input, 'latin1')
  if (key.alg === 'RS256') return sign('sha256', bytes, key.privateKey)
  if (key.secret === undefined) throw new Error('ES256 key without its scalar')
  return Buffer.from(p256.sign(bytes, key.secret, { lowS: false, prehash: true }))
}
