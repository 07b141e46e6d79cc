/**
 * Conformance vectors through the policy-free layer (`caracal-fastmcp/jws`), on every backend:
 * Wycheproof ECDSA P-256 (P1363) and RSA-2048 PKCS#1 v1.5, and the RFC 7515 A.2/A.3 examples.
 */
import { createHmac, sign } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { verifyJws, verifySignature } from '../src/jws/index.js'
import type { Algorithm } from '../src/jws/algorithms.js'
import { TEST_BACKENDS } from './support/backends.js'
import { seededRandom } from './support/prng.js'
import { generateSigningKey } from '../src/dev/sign-jws.js'
import {
  P256_N,
  es256Signature,
  flipBit,
  headerSegment,
  segment,
  signSegments,
  signatureBytes,
  splitToken,
  withSignature,
  withStrayBits,
} from './support/compact-tokens.js'
import { esKey, mint, rsKey, staticJwks } from './support/mandates.js'
import { rejection } from './support/verifiers.js'
import { type Case, VECTORS, ecdsaCases, ecdsaFile, readJson, rsaCases, rsaFile } from './support/wycheproof.js'

function countBy(list: Case[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const c of list) out[c.result] = (out[c.result] ?? 0) + 1
  return out
}

describe('Wycheproof files as read', () => {
  it('hold every test the files declare (nothing silently skipped)', () => {
    expect(ecdsaFile.numberOfTests).toBe(262)
    expect(ecdsaCases).toHaveLength(262)
    expect(countBy(ecdsaCases)).toEqual({ valid: 173, invalid: 89 })
    expect(ecdsaFile.testGroups.filter((g) => g.publicKeyJwk === undefined)).toHaveLength(9)
    expect(rsaFile.numberOfTests).toBe(259)
    expect(rsaCases).toHaveLength(259)
    expect(countBy(rsaCases)).toEqual({ valid: 9, invalid: 249, acceptable: 1 })
    // The two e = 3 groups are usable keys under our rules (odd, ≥ 3).
    expect(rsaFile.testGroups.map((g) => g.keyJwk!.e)).toEqual(['AQAB', 'Aw', 'Aw'])
  })
})

async function runCases(alg: Algorithm, list: Case[], backend: string): Promise<{ checked: number; wrong: string[] }> {
  const wrong: string[] = []
  let checked = 0
  for (const c of list) {
    const accepted = await verifySignature(alg, c.jwk, c.msg, c.sig, { backend: backend as never })
    checked++
    // Only "valid" may verify: "acceptable" (legacy encodings) is rejected by a strict verifier.
    if (accepted !== (c.result === 'valid')) wrong.push(`tcId ${c.tcId} (${c.result}, ${c.comment}): got ${accepted}`)
  }
  return { checked, wrong }
}

describe.each(TEST_BACKENDS)('Wycheproof through verifySignature on %s', (backend) => {
  it('ECDSA P-256 SHA-256 P1363: all 262 tests correct', async () => {
    const { checked, wrong } = await runCases('ES256', ecdsaCases, backend)
    expect(wrong).toEqual([])
    expect(checked).toBe(262)
  })

  it('RSA-2048 PKCS#1 v1.5 SHA-256: all 259 tests correct', async () => {
    const { checked, wrong } = await runCases('RS256', rsaCases, backend)
    expect(wrong).toEqual([])
    expect(checked).toBe(259)
  })

  it('never accepts a vector under the other algorithm', async () => {
    const ecValid = ecdsaCases.find((c) => c.result === 'valid')!
    const rsaValid = rsaCases.find((c) => c.result === 'valid')!
    expect(await verifySignature('ES256', ecValid.jwk, ecValid.msg, ecValid.sig, { backend })).toBe(true)
    expect(await verifySignature('RS256', ecValid.jwk, ecValid.msg, ecValid.sig, { backend })).toBe(false)
    expect(await verifySignature('RS256', rsaValid.jwk, rsaValid.msg, rsaValid.sig, { backend })).toBe(true)
    expect(await verifySignature('ES256', rsaValid.jwk, rsaValid.msg, rsaValid.sig, { backend })).toBe(false)
  })
})

const rfc = {
  RS256: {
    token: readFileSync(new URL('rfc/rfc7515_A2_RS256.jws', VECTORS), 'utf8'),
    jwk: readJson<JsonWebKey>('rfc/rfc7515_A2_RS256.public.jwk.json'),
    signatureBits: 2048,
  },
  ES256: {
    token: readFileSync(new URL('rfc/rfc7515_A3_ES256.jws', VECTORS), 'utf8'),
    jwk: readJson<JsonWebKey>('rfc/rfc7515_A3_ES256.public.jwk.json'),
    signatureBits: 512,
  },
} as const

const RFC_PAYLOAD = '{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}'

describe.each(TEST_BACKENDS)('RFC 7515 examples through verifyJws on %s', (backend) => {
  describe.each(['RS256', 'ES256'] as const)('%s', (alg) => {
    const { token, jwk, signatureBits } = rfc[alg]

    it('verifies and returns the header and the exact payload bytes', async () => {
      const out = await verifyJws(token, { keys: [jwk] }, { backend })
      expect(out.header).toEqual({ alg })
      expect(Buffer.from(out.payload).toString('latin1')).toBe(RFC_PAYLOAD)
    })

    it('is rejected when the algorithm is not allowed', async () => {
      const other = alg === 'ES256' ? 'RS256' : 'ES256'
      expect((await rejection(verifyJws(token, { keys: [jwk] }, { backend, algorithms: [other] }))).code).toBe(
        'invalid_token',
      )
    })

    // Bits across the signature (first, last, and a stride through the middle), the payload and the header.
    const signaturePositions = [0, 1, 7, 8, 255, 256, signatureBits - 9, signatureBits - 2, signatureBits - 1]
    for (let b = 13; b < signatureBits; b += 97) signaturePositions.push(b)

    it.each(signaturePositions)('fails with signature bit %i flipped (invalid_token)', async (bit) => {
      const bad = flipBit(token, 2, bit)
      expect(bad).not.toBe(token)
      expect((await rejection(verifyJws(bad, { keys: [jwk] }, { backend }))).code).toBe('invalid_token')
    })

    it.each([0, 9, 100, 300, 8 * 70 - 1])('fails with payload bit %i flipped (invalid_token)', async (bit) => {
      const bad = flipBit(token, 1, bit)
      expect((await rejection(verifyJws(bad, { keys: [jwk] }, { backend }))).code).toBe('invalid_token')
    })

    it.each([0, 40, 8 * 15 - 1])('fails with header bit %i flipped (invalid_token)', async (bit) => {
      const bad = flipBit(token, 0, bit)
      expect((await rejection(verifyJws(bad, { keys: [jwk] }, { backend }))).code).toBe('invalid_token')
    })

    it('fails when the header gains a member (the signature covers the header text)', async () => {
      const [, p, s] = splitToken(token)
      const h = Buffer.from(JSON.stringify({ alg, x: 1 })).toString('base64url')
      expect((await rejection(verifyJws(`${h}.${p}.${s}`, { keys: [jwk] }, { backend }))).code).toBe('invalid_token')
    })

    it('fails against a different key of the same type', async () => {
      const other =
        alg === 'ES256' ? { ...rfc.ES256.jwk, x: ecdsaCases[0]!.jwk.x, y: ecdsaCases[0]!.jwk.y } : rsaCases[0]!.jwk
      expect((await rejection(verifyJws(token, { keys: [other] }, { backend }))).code).toBe('invalid_token')
    })
  })
})

describe.each(TEST_BACKENDS)(
  'verifyJws applies the header and encoding rules of README "What is checked" on %s',
  (backend) => {
    const attacker = generateSigningKey('ES256', 'es-1')
    const valid = mint()
    const [h, p, s] = splitToken(valid)
    const pem = rsKey.publicKey.export({ type: 'spki', format: 'pem' }) as string
    const hsHeader = segment({ alg: 'HS256', kid: 'rs-1' })
    const rows: [string, string][] = [
      ['alg none', `${segment({ alg: 'none' })}.${p}.`],
      [
        'HS256 keyed with the RSA public key PEM',
        `${hsHeader}.${p}.${createHmac('sha256', pem).update(`${hsHeader}.${p}`).digest('base64url')}`,
      ],
      ['crit', mint({}, esKey, { crit: ['exp'] })],
      ['b64 false', mint({}, esKey, { b64: false })],
      ['an embedded attacker jwk', mint({}, attacker, { jwk: attacker.publicJwk })],
      ['ES256 header, RSA kid', signSegments(esKey, headerSegment(esKey, { kid: 'rs-1' }), p)],
      ['stray bits in the signature', `${h}.${p}.${withStrayBits(s)!}`],
      ['padding', `${valid}==`],
      ['whitespace', `${valid}\n`],
      [
        'a non-ASCII alias of a base64url character',
        `${h}.${p}.${String.fromCharCode(0x100 | s.charCodeAt(0))}${s.slice(1)}`,
      ],
      ['r = 0', withSignature(valid, Buffer.concat([Buffer.alloc(32), signatureBytes(valid).subarray(32)]))],
      ['longer than 8192 characters', signSegments(esKey, headerSegment(esKey), segment({ pad: 'x'.repeat(9000) }))],
    ]

    it('accepts the untouched token (control)', async () => {
      await expect(verifyJws(valid, staticJwks, { backend })).resolves.toMatchObject({
        header: { alg: 'ES256', kid: 'es-1' },
      })
    })

    it.each(rows)('%s → invalid_token', async (_name, token) => {
      expect((await rejection(verifyJws(token, staticJwks, { backend }))).code).toBe('invalid_token')
    })
  },
)

describe('every backend gives the same answer on the same input (docs/architecture.md "Backends")', () => {
  const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn
  const MAX = 2n ** 256n - 1n
  const rand = seededRandom(0x1234abcd)
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)))

  interface Probe {
    alg: Algorithm
    jwk: JsonWebKey
    msg: Uint8Array
    sig: Uint8Array
    valid: boolean
    what: string
  }
  const probes: Probe[] = []
  for (let i = 0; i < 40; i++) {
    const msg = bytes(Math.floor(rand() * 100))
    const sig = sign('sha256', msg, { key: esKey.privateKey, dsaEncoding: 'ieee-p1363' })
    const r = BigInt(`0x${sig.subarray(0, 32).toString('hex')}`)
    const s = BigInt(`0x${sig.subarray(32).toString('hex')}`)
    const es = (what: string, rr: bigint, ss: bigint, valid = false) =>
      probes.push({ alg: 'ES256', jwk: esKey.publicJwk, msg, sig: es256Signature(rr, ss), valid, what })
    es('valid', r, s, true)
    es('other-S twin', r, P256_N - s, true)
    const flipped = Buffer.from(sig)
    flipped[Math.floor(rand() * 64)]! ^= 1 << Math.floor(rand() * 8)
    probes.push({ alg: 'ES256', jwk: esKey.publicJwk, msg, sig: flipped, valid: false, what: 'bit flipped' })
    for (const [what, rr, ss] of [
      ['r=0', 0n, s],
      ['s=0', r, 0n],
      ['r=n', P256_N, s],
      ['s=n', r, P256_N],
      ['r=n-1', P256_N - 1n, s],
      ['s=n-1', r, P256_N - 1n],
      ['r=s=1', 1n, 1n],
      ['r=p', P, s],
      ['r=2^256-1', MAX, s],
      ['s=2^256-1', r, MAX],
      ['r+n', r + P256_N <= MAX ? r + P256_N : MAX, s],
      ['s+n', r, s + P256_N <= MAX ? s + P256_N : MAX],
    ] as const)
      es(what, rr, ss)
    if (i < 10) {
      const rsSig = sign('sha256', msg, rsKey.privateKey)
      const n = BigInt(`0x${Buffer.from(rsKey.publicJwk.n!, 'base64url').toString('hex')}`)
      const sigInt = BigInt(`0x${rsSig.toString('hex')}`)
      const rs = (what: string, v: bigint | Uint8Array, valid = false) =>
        probes.push({
          alg: 'RS256',
          jwk: rsKey.publicJwk,
          msg,
          sig: typeof v === 'bigint' ? Buffer.from(v.toString(16).padStart(512, '0'), 'hex') : v,
          valid,
          what,
        })
      rs('valid', rsSig, true)
      const rsFlipped = Buffer.from(rsSig)
      rsFlipped[Math.floor(rand() * 256)]! ^= 1 << Math.floor(rand() * 8)
      rs('bit flipped', rsFlipped)
      rs('s=0', 0n)
      rs('s=1', 1n)
      rs('s=n-1', n - 1n)
      rs('s=n', n)
      rs('s+n (257 bytes)', Buffer.from((sigInt + n).toString(16).padStart(514, '0'), 'hex'))
      rs('255 bytes', rsSig.subarray(1))
    }
  }

  it.each(TEST_BACKENDS)('%s answers every probe as expected', async (backend) => {
    const wrong: string[] = []
    for (const p of probes) {
      const got = await verifySignature(p.alg, p.jwk, p.msg, p.sig, { backend })
      if (got !== p.valid) wrong.push(`${p.alg} ${p.what}: got ${got}`)
    }
    expect(wrong).toEqual([])
    expect(probes.length).toBe(40 * 15 + 10 * 8)
  })
})
