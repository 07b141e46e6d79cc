/**
 * What is particular to the wasm backend: RSA moduli of every accepted size, messages longer than
 * the staging buffer, the on-curve check at import, release, and bounded linear memory (docs/architecture.md "Backends").
 * The conformance vectors and the error table run on wasm through test/vectors.test.ts and
 * test/error-table.test.ts; test/differential.test.ts compares it with node and noble.
 */
import { checkPrimeSync, generatePrimeSync, randomBytes, sign } from 'node:crypto'
import { p256 } from '@noble/curves/nist.js'
import { describe, expect, it } from 'vitest'
import { nobleBackend } from '../src/backends/noble.js'
import { resolveBackends } from '../src/backends/index.js'
import { nodeBackend } from '../src/backends/node.js'
import { emsaPkcs1v15Sha256 } from '../src/backends/pkcs1.js'
import type { VerifyingKey } from '../src/backends/types.js'
import { wasmBackend, wasmInternalsForTests, wasmMemoryBytes } from '../src/backends/wasm.js'
import type { EcPublicKeyMaterial, PublicKeyMaterial } from '../src/jws/public-key.js'
import { readPublicKey } from '../src/jws/public-key.js'
import { decodeBase64url } from '../src/jws/base64url.js'
import { verifySignature } from '../src/jws/index.js'
import { generateSigningKey, signJws, type SigningKey } from '../src/dev/sign-jws.js'
import { splitToken } from './support/compact-tokens.js'
import { mandateClaims } from './support/mandates.js'
import { createHash } from 'node:crypto'

function material(key: SigningKey): PublicKeyMaterial {
  const m = readPublicKey(key.alg, key.publicJwk)
  if (typeof m === 'string') throw new Error(m)
  return m
}

/** A mandate signed by `key`, as the backend sees it: the signing input and the signature bytes. */
function signedMandate(key: SigningKey): { input: Buffer; signature: Buffer } {
  const [h, p, sig] = splitToken(signJws(key, mandateClaims()))
  return { input: Buffer.from(`${h}.${p}`, 'latin1'), signature: Buffer.from(sig, 'base64url') }
}

function signWith(key: SigningKey, message: Uint8Array): Buffer {
  return key.alg === 'ES256'
    ? sign('sha256', message, { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
    : sign('sha256', message, key.privateKey)
}

const es = generateSigningKey('ES256', 'es')
const rs = generateSigningKey('RS256', 'rs')

// ---- RSA keys of any size without slow key generation: a modulus made of several primes still
// verifies exactly like a two-prime one (only n and e enter verification), and its signatures are
// cheap to make by CRT.

function modPow(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n
  b %= m
  while (e > 0n) {
    if (e & 1n) r = (r * b) % m
    b = (b * b) % m
    e >>= 1n
  }
  return r
}

function modInv(a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [a % m, m, 1n, 0n]
  while (r1 !== 0n) {
    const q = r0 / r1
    ;[r0, r1] = [r1, r0 - q * r1]
    ;[s0, s1] = [s1, s0 - q * s1]
  }
  if (r0 !== 1n) throw new Error('not invertible')
  return ((s0 % m) + m) % m
}

const bitLen = (x: bigint) => x.toString(2).length
const toBytes = (x: bigint, len: number) => Buffer.from(x.toString(16).padStart(len * 2, '0'), 'hex')
const fromBytes = (b: Uint8Array) => BigInt(`0x${Buffer.from(b).toString('hex') || '0'}`)
const E = 65537n

interface TestRsaKey {
  readonly n: bigint
  readonly jwk: JsonWebKey
  readonly bytes: number
  sign(message: Uint8Array): Buffer
}

/** An RSA public key of exactly `bits` bits whose private operation we can do by CRT. */
function multiPrimeRsa(bits: number): TestRsaKey {
  const primes: bigint[] = []
  let product = 1n
  while (bits - bitLen(product) > 1024) {
    const p = generatePrimeSync(512, { bigint: true })
    if ((p - 1n) % E === 0n) continue
    primes.push(p)
    product *= p
  }
  // The last prime is chosen so that the product has exactly `bits` bits.
  const lo = (1n << BigInt(bits - 1)) / product + 1n
  const hi = ((1n << BigInt(bits)) - 1n) / product
  for (;;) {
    const r = lo + (fromBytes(randomBytes(Math.ceil(bitLen(hi) / 8) + 8)) % (hi - lo))
    if ((r & 1n) === 0n || (r - 1n) % E === 0n || !checkPrimeSync(r)) continue
    primes.push(r)
    product *= r
    break
  }
  const n = product
  if (bitLen(n) !== bits) throw new Error('test modulus has the wrong size')
  const bytes = Math.ceil(bits / 8)
  const jwk = { kty: 'RSA', n: toBytes(n, bytes).toString('base64url'), e: 'AQAB' }
  return {
    n,
    jwk,
    bytes,
    sign(message) {
      const em = fromBytes(emsaPkcs1v15Sha256(createHash('sha256').update(message).digest(), bytes))
      // CRT: s ≡ em^(e⁻¹ mod p-1) (mod p) for every prime p.
      let s = 0n
      for (const p of primes) {
        const sp = modPow(em, modInv(E, p - 1n), p)
        const m = n / p
        s = (s + sp * m * modInv(m % p, p)) % n
      }
      return toBytes(s, bytes)
    },
  }
}

describe('wasm backend', () => {
  it('is available after the build and serves both algorithms', () => {
    expect(wasmBackend.supports('ES256')).toBe(true)
    expect(wasmBackend.supports('RS256')).toBe(true)
  })

  it('is what auto picks for ES256, while RS256 stays on node:crypto (bench/README.md)', () => {
    const auto = resolveBackends('auto')
    expect(auto('ES256').name).toBe('wasm')
    expect(auto('RS256').name).toBe('node')
  })

  it('accepts valid signatures whose s sits on the edges of the scalar inverse (powers of two, small, near n)', () => {
    // With a chosen nonce k and a chosen s, the digest e = s·k − r·d (mod n) makes (r, s) valid:
    // the prehashed path then checks s values that random signatures almost never produce.
    const n = p256.Point.Fn.ORDER
    const mod = (x: bigint) => ((x % n) + n) % n
    const d = mod(BigInt(`0x${randomBytes(32).toString('hex')}`)) || 1n
    const Q = p256.Point.BASE.multiply(d).toAffine()
    const hex = (x: bigint) => x.toString(16).padStart(64, '0')
    const key = wasmBackend.importKey({
      alg: 'ES256',
      kty: 'EC',
      x: Buffer.from(hex(Q.x), 'hex'),
      y: Buffer.from(hex(Q.y), 'hex'),
      jwk: {
        kty: 'EC',
        crv: 'P-256',
        x: Buffer.from(hex(Q.x), 'hex').toString('base64url'),
        y: Buffer.from(hex(Q.y), 'hex').toString('base64url'),
      },
    })
    const edges: bigint[] = [1n, 2n, 3n, 5n, n - 1n, n - 2n, n - 3n, (n - 1n) / 2n, (n + 1n) / 2n]
    for (let j = 0; j < 256; j++) if (1n << BigInt(j) < n) edges.push(1n << BigInt(j))
    for (const sv of edges) {
      const k = mod(BigInt(`0x${randomBytes(32).toString('hex')}`)) || 7n
      // r = 0 (probability 2^-256) would make the signature invalid and fail the test loudly.
      const r = mod(p256.Point.BASE.multiply(k).toAffine().x)
      const e = mod(sv * k - r * d)
      const signature = Buffer.from(hex(r) + hex(sv), 'hex')
      const digest = Buffer.from(hex(e), 'hex')
      expect(key.verifyDigest!(digest, signature), `s = ${sv.toString(16)}`).toBe(true)
      const other = Buffer.from(digest)
      other[31]! ^= 1
      expect(key.verifyDigest!(other, signature), `s = ${sv.toString(16)}, digest changed`).toBe(false)
    }
    key.release()
  })

  it('under auto, ES256 hashes with node:crypto and checks the curve in wasm: same answers as wasm alone', () => {
    const signer = generateSigningKey('ES256', 'staged')
    const m = readPublicKey('ES256', signer.publicJwk)
    if (typeof m === 'string') throw new Error(m)
    const staged = resolveBackends('auto')('ES256').importKey(m)
    const plain = wasmBackend.importKey(m)
    expect(staged.verifyDigest).toBeTypeOf('function')
    for (let i = 0; i < 50; i++) {
      const message = randomBytes(1 + i * 40)
      const good = sign('sha256', message, { key: signer.privateKey, dsaEncoding: 'ieee-p1363' })
      const bad = Buffer.from(good)
      bad[i % 64]! ^= 1 << (i % 8)
      for (const [sig, expected] of [
        [good, true],
        [bad, false],
      ] as const) {
        expect(staged.verify(message, sig)).toBe(expected)
        expect(plain.verify(message, sig)).toBe(expected)
      }
    }
    // A digest of the wrong length is never a valid check.
    expect(staged.verifyDigest!(new Uint8Array(31), new Uint8Array(64))).toBe(false)
    staged.release()
    plain.release()
    expect(staged.verify(randomBytes(10), new Uint8Array(64))).toBe(false)
  })

  it.each([2048, 2049, 3072, 4096, 6000, 8192])('verifies RS256 with a %i-bit modulus like node and noble', (bits) => {
    const key = multiPrimeRsa(bits)
    const m = readPublicKey('RS256', key.jwk)
    if (typeof m === 'string' || m.alg !== 'RS256') throw new Error(`not an RSA key: ${String(m)}`)
    expect(m.modulusBits).toBe(bits)
    const keys = [wasmBackend, nodeBackend, nobleBackend].map((b) => b.importKey(m))
    const message = randomBytes(100)
    const good = key.sign(message)
    const flipped = Buffer.from(good)
    flipped[flipped.length - 1]! ^= 1
    const atModulus = toBytes(key.n, key.bytes)
    const belowModulus = toBytes(key.n - 1n, key.bytes)
    const cases: Array<[Uint8Array, Uint8Array, boolean]> = [
      [message, good, true],
      [message, flipped, false],
      [Buffer.concat([message, Buffer.from([0])]), good, false],
      [message, atModulus, false],
      [message, belowModulus, false],
      [message, Buffer.alloc(key.bytes), false],
    ]
    for (const [msg, sig, want] of cases) {
      expect(keys.map((k) => k.verify(msg, sig))).toEqual([want, want, want])
    }
    for (const k of keys) k.release()
  })

  it('interleaves RSA keys of different sizes (shared scratch buffers hold no stale limbs)', () => {
    const sized = [2048, 8192, 3072, 2080].map(multiPrimeRsa)
    const keys = sized.map((key) => {
      const m = readPublicKey('RS256', key.jwk)
      if (typeof m === 'string') throw new Error(m)
      return wasmBackend.importKey(m)
    })
    for (let round = 0; round < 3; round++) {
      sized.forEach((key, i) => {
        const message = randomBytes(40 + round)
        const good = key.sign(message)
        expect(keys[i]!.verify(message, good)).toBe(true)
        const bad = Buffer.from(good)
        bad[0]! ^= 0x01
        expect(keys[i]!.verify(message, bad)).toBe(false)
      })
    }
    for (const k of keys) k.release()
  })

  it('hashes messages longer than the staging buffer', () => {
    const ek = wasmBackend.importKey(material(es))
    const rk = wasmBackend.importKey(material(rs))
    for (const len of [0, 1, 55, 56, 64, 16383, 16384, 16385, 40000]) {
      const message = randomBytes(len)
      for (const [key, signer] of [
        [ek, es],
        [rk, rs],
      ] as const) {
        const sig = signWith(signer, message)
        expect(key.verify(message, sig)).toBe(true)
        if (len > 0) {
          const changed = Buffer.from(message)
          changed[len - 1]! ^= 0x01
          expect(key.verify(changed, sig)).toBe(false)
        }
      }
    }
    ek.release()
    rk.release()
  })

  it('refuses at import an EC point that is not on P-256', () => {
    const good = material(es) as EcPublicKeyMaterial
    const y = Uint8Array.from(good.y)
    y[31]! ^= 1
    expect(() => wasmBackend.importKey({ ...good, y })).toThrow(TypeError)
    // Coordinates ≥ p are not field elements even when they reduce onto the curve.
    const p = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn
    const xPlusP = toBytes(fromBytes(good.x) + p, 33)
    if (xPlusP.length === 32) expect(() => wasmBackend.importKey({ ...good, x: xPlusP })).toThrow(TypeError)
    expect(() => wasmBackend.importKey({ ...good, x: toBytes(p, 32) })).toThrow(TypeError)
  })

  it('accepts the high-S twin of a valid ES256 signature (RFC 7518 does not require low S)', () => {
    const n = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n
    const key = wasmBackend.importKey(material(es))
    const message = randomBytes(50)
    const sig = signWith(es, message)
    const twin = Buffer.concat([sig.subarray(0, 32), toBytes(n - fromBytes(sig.subarray(32)), 32)])
    expect(key.verify(message, sig)).toBe(true)
    expect(key.verify(message, twin)).toBe(true)
    key.release()
  })

  it('answers false after release, and release is idempotent', () => {
    for (const signer of [es, rs]) {
      const key = wasmBackend.importKey(material(signer))
      const message = randomBytes(20)
      const sig = signWith(signer, message)
      expect(key.verify(message, sig)).toBe(true)
      key.release()
      key.release()
      expect(key.verify(message, sig)).toBe(false)
    }
  })

  it('keeps working keys intact when other keys are released and their slots reused', () => {
    const keep = wasmBackend.importKey(material(es))
    const message = randomBytes(30)
    const sig = signWith(es, message)
    for (let i = 0; i < 5; i++) {
      const other = generateSigningKey('ES256', `other-${i}`)
      const k = wasmBackend.importKey(material(other))
      const m = randomBytes(10)
      expect(k.verify(m, signWith(other, m))).toBe(true)
      expect(k.verify(message, sig)).toBe(false)
      k.release()
      expect(keep.verify(message, sig)).toBe(true)
    }
    keep.release()
  })

  it('agrees with verifySignature on the wasm backend for a generated key', async () => {
    const message = randomBytes(64)
    expect(await verifySignature('ES256', es.publicJwk, message, signWith(es, message), { backend: 'wasm' })).toBe(true)
    expect(await verifySignature('RS256', rs.publicJwk, message, signWith(rs, message), { backend: 'wasm' })).toBe(true)
  })
})

const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn

/** 32-byte little-endian, as the module holds field elements. */
function le(x: bigint): Uint8Array {
  const out = new Uint8Array(32)
  for (let i = 0; i < 32; i++, x >>= 8n) out[i] = Number(x & 0xffn)
  return out
}
function fromLe(b: Uint8Array): bigint {
  let x = 0n
  for (let i = 31; i >= 0; i--) x = (x << 8n) | BigInt(b[i]!)
  return x
}

describe('wasm primitives against node:crypto and BigInt', () => {
  it('SHA-256 matches node:crypto at every length around the block boundaries', () => {
    for (const len of [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000, 16384, 16385, 50_000]) {
      const m = randomBytes(len)
      expect(Buffer.from(wasmInternalsForTests.sha256(m)).toString('hex')).toBe(
        createHash('sha256').update(m).digest('hex'),
      )
    }
  })

  it('base64url decoding refuses exactly what the JS decoder refuses (README "What is checked")', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const foreign = ['=', '+', '/', ' ', '.', '\n', '\u00e9', '\u0100', '\u2028', '\0']
    const texts: string[] = [
      '',
      'A',
      'AA',
      'AQ',
      'AR',
      'AAA',
      'AAE',
      'AAF',
      'AAAA',
      'AQ==',
      'AQ=',
      'eyJhbGciOiJFUzI1NiJ9',
    ]
    for (let len = 0; len < 200; len++) texts.push(Buffer.from(randomBytes(len)).toString('base64url'))
    for (let i = 0; i < 3000; i++) {
      const len = 1 + (i % 13)
      let t = ''
      for (let j = 0; j < len; j++) t += alphabet[randomBytes(1)[0]! & 63]
      if (i % 3 === 0) {
        const at = i % len
        t = t.slice(0, at) + foreign[i % foreign.length] + t.slice(at + 1)
      }
      texts.push(t)
    }
    let refused = 0
    for (const t of texts) {
      const want = decodeBase64url(t)
      const got = wasmInternalsForTests.base64url(t)
      if (want === undefined) refused++
      expect(got === undefined ? undefined : Buffer.from(got).toString('hex'), JSON.stringify(t)).toBe(
        want === undefined ? undefined : Buffer.from(want).toString('hex'),
      )
    }
    expect(refused).toBeGreaterThan(1000)
  })

  it('P-256 field multiply, square, add and subtract are exact, edge values included', () => {
    // Values near 0, p and 2^256 drive the rare carry and fold paths of the reduction.
    const edges = [
      0n,
      1n,
      2n,
      P - 1n,
      P - 2n,
      2n ** 255n,
      2n ** 224n,
      2n ** 192n - 1n,
      2n ** 96n,
      P - 2n ** 96n,
      2n ** 32n - 1n,
    ]
    const values = [...edges, ...Array.from({ length: 300 }, () => fromBytes(randomBytes(32)) % P)]
    const ops: Array<[0 | 1 | 2 | 3, (a: bigint, b: bigint) => bigint]> = [
      [0, (a, b) => (a * b) % P],
      [1, (a) => (a * a) % P],
      [2, (a, b) => (a + b) % P],
      [3, (a, b) => (((a - b) % P) + P) % P],
    ]
    const wrong: string[] = []
    for (let i = 0; i < values.length; i++) {
      for (const b of [values[(i * 7 + 3) % values.length]!, ...(i < edges.length ? edges : [])]) {
        const a = values[i]!
        for (const [op, f] of ops) {
          const got = fromLe(wasmInternalsForTests.field(op, le(a), le(b)))
          if (got !== f(a, b)) wrong.push(`op ${op} a=${a.toString(16)} b=${b.toString(16)}`)
        }
      }
    }
    expect(wrong).toEqual([])
  })
})

describe('wasm linear memory', () => {
  it('does not grow across 1 000 000 verifications once the keys are imported and hot', () => {
    const keys: Array<[VerifyingKey, SigningKey]> = [
      [wasmBackend.importKey(material(es)), es],
      [wasmBackend.importKey(material(rs)), rs],
    ]
    // An EC key's tables are built once it is hot (docs/architecture.md "Backends"); built here now.
    expect(wasmInternalsForTests.buildTables(keys[0]![0], Number.POSITIVE_INFINITY)).toEqual({
      key: 'complete',
      generator: 'complete',
    })
    const message = Buffer.from('eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UifQ')
    const before = wasmMemoryBytes()
    let accepted = 0
    for (const [key, signer] of keys) {
      const good = signWith(signer, message)
      const flipped = Buffer.from(good)
      flipped[20]! ^= 0x10
      // Every call crosses into wasm and hashes the input. Every 10th runs the whole check (a valid
      // signature, or one with a flipped bit: rejected only at the end); the others are rejected at
      // the range check (r = 0, or an RSA representative ≥ n), which keeps the test short.
      const cheap = Buffer.alloc(good.length, key.alg === 'ES256' ? 0 : 0xff)
      const count = key.alg === 'ES256' ? 600_000 : 400_000
      for (let i = 0; i < count; i++) {
        const sig = i % 10 !== 0 ? cheap : i % 20 === 0 ? good : flipped
        if (key.verify(message, sig)) accepted++
      }
    }
    // Exactly the valid signatures verified (one call in 20); every cheap and flipped one was refused.
    expect(accepted).toBe(50_000)
    expect(wasmMemoryBytes()).toBe(before)
    for (const [key] of keys) key.release()
  }, 300_000)

  it('stays bounded by the live keys across 1 000 key rotations of hot keys, and the surviving keys verify', () => {
    const esSigners = Array.from({ length: 3 }, (_, i) => generateSigningKey('ES256', `rot-es-${i}`))
    const rsSigners = Array.from({ length: 3 }, (_, i) => generateSigningKey('RS256', `rot-rs-${i}`))
    const esKeys = esSigners.map(material)
    const rsKeys = rsSigners.map(material)
    // Each EC key is made hot at once, so that every rotation takes and gives back a table as well
    // as a record (assembly/p256-tables.ts).
    const hotEs = (i: number) => {
      const key = wasmBackend.importKey(esKeys[i % 3]!)
      expect(wasmInternalsForTests.buildTables(key, Number.POSITIVE_INFINITY).key).toBe('complete')
      return { key, signer: esSigners[i % 3]! }
    }
    // Like a JWKS rotation: the new key is imported while the old one is still live, then released.
    let liveEs = hotEs(0)
    let liveRs = { key: wasmBackend.importKey(rsKeys[0]!), signer: rsSigners[0]! }
    let retiredEs = liveEs
    let retiredRs = liveRs
    const rotate = (i: number) => {
      const nextEs = hotEs(i)
      liveEs.key.release()
      retiredEs = liveEs
      liveEs = nextEs
      const nextRs = { key: wasmBackend.importKey(rsKeys[i % 3]!), signer: rsSigners[i % 3]! }
      liveRs.key.release()
      retiredRs = liveRs
      liveRs = nextRs
    }
    rotate(1) // reaches the peak: two keys of each kind live at once
    const after = wasmMemoryBytes()
    for (let i = 2; i <= 500; i++) rotate(i) // 499 more rotations of each kind: 1 000 in all
    expect(wasmMemoryBytes()).toBe(after)
    // What the last rotations left: each surviving key verifies a mandate its signer signed, and
    // nothing else (its slot holds no neighbour's key); the key it replaced, released, verifies nothing.
    for (const [live, retired] of [
      [liveEs, retiredEs],
      [liveRs, retiredRs],
    ] as const) {
      expect(live.signer.kid).not.toBe(retired.signer.kid)
      const own = signedMandate(live.signer)
      const other = signedMandate(retired.signer)
      // `other` is valid: a fresh import of the retired key's JWK verifies it.
      const fresh = wasmBackend.importKey(material(retired.signer))
      expect(fresh.verify(other.input, other.signature), retired.signer.kid).toBe(true)
      fresh.release()
      expect(live.key.verify(own.input, own.signature), live.signer.kid).toBe(true)
      expect(live.key.verify(other.input, other.signature), live.signer.kid).toBe(false)
      expect(retired.key.verify(other.input, other.signature), retired.signer.kid).toBe(false)
    }
    liveEs.key.release()
    liveRs.key.release()
  }, 120_000)
})
