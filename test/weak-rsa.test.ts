/**
 * Known-weak RSA public keys are never used (README "Keys (JWKS)"): a modulus with the ROCA
 * fingerprint (CVE-2017-15361) or with a small prime factor is ignored at import, with the reason
 * in `stats().jwks.ignoredKeys` and a coded warning — and a token it signed is refused like any
 * token of an unknown key. The ROCA key here is built the way the affected generator built its
 * primes (p = k·M + (65537^a mod M), M the product of the primes up to 167), so it is a real,
 * working RSA key that signs; strong keys — node's and Wycheproof's — must not be flagged.
 */
import { checkPrimeSync, createPrivateKey, createPublicKey, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { CaracalAuth, type CaracalAuthError, InMemoryRevocationStore } from '../src/index.js'
import { generateSigningKey, type SigningKey } from '../src/dev/sign-jws.js'
import { decodeBase64url } from '../src/jws/base64url.js'
import { weakModulusReason } from '../src/jws/weak-rsa.js'
import { TEST_BACKENDS } from './support/backends.js'
import { AUDIENCE, ISSUER, mint } from './support/mandates.js'
import { testClock } from './support/test-clock.js'

const toB64u = (v: bigint): string => {
  const hex = v.toString(16)
  return Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, 'hex').toString('base64url')
}
const fromBytes = (b: Uint8Array): bigint => BigInt(`0x${Buffer.from(b).toString('hex')}`)
const bitLength = (v: bigint): number => v.toString(2).length

function modPow(base: bigint, exp: bigint, m: bigint): bigint {
  let r = 1n
  let b = base % m
  for (let e = exp; e > 0n; e >>= 1n) {
    if (e & 1n) r = (r * b) % m
    b = (b * b) % m
  }
  return r
}

function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [a % m, m, 1n, 0n]
  while (r1 !== 0n) {
    const q = r0 / r1
    ;[r0, r1] = [r1, r0 - q * r1]
    ;[s0, s1] = [s1, s0 - q * s1]
  }
  if (r0 !== 1n) throw new Error('not invertible')
  return ((s0 % m) + m) % m
}

const randomBig = (bits: number): bigint => fromBytes(randomBytes(Math.ceil(bits / 8))) >> BigInt(8 - (bits % 8 || 8))

/** The primorial M of the primes up to 167: the affected library's M for its smallest key size divides it. */
const M = [
  2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107, 109,
  113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
].reduce((acc, p) => acc * BigInt(p), 1n)

/** A 1024-bit prime of the ROCA form, with 65537 invertible modulo p - 1 (so the key can sign). */
function rocaPrime(): bigint {
  for (;;) {
    const a = randomBig(64)
    const k = (1n << 1023n) / M + randomBig(1023 - bitLength(M))
    const p = k * M + modPow(65537n, a, M)
    if (bitLength(p) !== 1024 || (p - 1n) % 65537n === 0n) continue
    if (checkPrimeSync(p)) return p
  }
}

/** A working 2048-bit RS256 signing key whose primes are both of the ROCA form. */
function rocaSigningKey(kid: string): SigningKey {
  for (;;) {
    const p = rocaPrime()
    const q = rocaPrime()
    const n = p * q
    if (bitLength(n) !== 2048 || p === q) continue
    const e = 65537n
    const d = modInverse(e, (p - 1n) * (q - 1n))
    const jwk = {
      kty: 'RSA',
      n: toB64u(n),
      e: toB64u(e),
      d: toB64u(d),
      p: toB64u(p),
      q: toB64u(q),
      dp: toB64u(d % (p - 1n)),
      dq: toB64u(d % (q - 1n)),
      qi: toB64u(modInverse(q, p)),
    }
    const privateKey = createPrivateKey({ key: jwk, format: 'jwk' })
    const publicKey = createPublicKey(privateKey)
    return {
      alg: 'RS256',
      kid,
      privateKey,
      publicKey,
      publicJwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' },
    }
  }
}

const roca = rocaSigningKey('roca-1')
const strong = generateSigningKey('RS256', 'strong-1')
const modulusOf = (k: SigningKey): Uint8Array => decodeBase64url(k.publicJwk.n!)!

/** A 2048-bit odd modulus with the factor 32 749 (the largest prime below 2^15): no private key needed to refuse it. */
const smallFactorJwk = (() => {
  for (;;) {
    const n = (randomBig(2033) | 1n) * 32_749n
    if (bitLength(n) === 2048)
      return { kty: 'RSA', kid: 'small-factor', alg: 'RS256', use: 'sig', n: toB64u(n), e: 'AQAB' }
  }
})()

const warnings: Error[] = []
const onWarning = (w: Error): void => {
  warnings.push(w)
}
process.on('warning', onWarning)
afterEach(() => {
  warnings.length = 0
})

describe('the weak-modulus check', () => {
  it('flags the ROCA-form key, and a modulus with a small prime factor', () => {
    expect(weakModulusReason(modulusOf(roca))).toBe('modulus has the ROCA fingerprint (CVE-2017-15361)')
    expect(weakModulusReason(decodeBase64url(smallFactorJwk.n)!)).toBe('modulus has a small prime factor')
  })

  it('flags no strong key: freshly generated ones and every Wycheproof RSA-2048 test key', () => {
    for (let i = 0; i < 3; i++) {
      const k = i === 0 ? strong : generateSigningKey('RS256', `fresh-${i}`)
      expect(weakModulusReason(modulusOf(k))).toBeUndefined()
    }
    const file = JSON.parse(
      readFileSync(new URL('./vectors/wycheproof/rsa_signature_2048_sha256_test.json', import.meta.url), 'utf8'),
    ) as { testGroups: { keyJwk: { n: string } }[] }
    expect(file.testGroups.length).toBeGreaterThan(0)
    for (const g of file.testGroups) expect(weakModulusReason(decodeBase64url(g.keyJwk.n)!)).toBeUndefined()
  })
})

describe.each(TEST_BACKENDS)('weak RSA keys in a JWKS on %s', (backend) => {
  const authWith = (keys: unknown[]): CaracalAuth =>
    new CaracalAuth({
      issuer: ISSUER,
      audience: AUDIENCE,
      revocations: new InMemoryRevocationStore(),
      backend,
      now: testClock().now,
      jwks: { keys: { keys: keys as JsonWebKey[] } },
    })

  it('never uses a ROCA-fingerprinted key: its genuine signature is refused, the reason is in stats() and a warning', async () => {
    const auth = authWith([roca.publicJwk, smallFactorJwk, strong.publicJwk])
    const error = await auth.verify(mint({}, roca)).catch((e: unknown) => e as CaracalAuthError)
    expect(error).toMatchObject({ code: 'invalid_token', description: 'no usable key: unknown kid' })
    await expect(auth.verify(mint({}, strong))).resolves.toBeDefined()
    expect(auth.stats().jwks.keys).toBe(1)
    expect(auth.stats().jwks.ignoredKeys).toEqual([
      { kid: 'roca-1', reason: 'modulus has the ROCA fingerprint (CVE-2017-15361)' },
      { kid: 'small-factor', reason: 'modulus has a small prime factor' },
    ])
    await new Promise((r) => setImmediate(r))
    const coded = warnings.filter((w) => (w as { code?: string }).code === 'CARACAL_JWKS_WEAK_KEY')
    expect(coded.map((w) => w.message).sort()).toEqual([
      'JWKS key "roca-1" ignored: modulus has the ROCA fingerprint (CVE-2017-15361)',
      'JWKS key "small-factor" ignored: modulus has a small prime factor',
    ])
    await auth.close()
  })
})
