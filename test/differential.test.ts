/**
 * Differential test of the three backends (docs/architecture.md "Backends": they must agree on every input). Generated
 * tokens — valid ones with varied claims and keys, and random mutations of their header, payload
 * and signature — go through a CaracalAuth on wasm, node and noble with the same keys, options and
 * clock; every case must give the same claims or the same error code on all three.
 */
import { describe, expect, it } from 'vitest'
import { CaracalAuth, CaracalAuthError, InMemoryRevocationStore } from '../src/index.js'
import type { BackendChoice } from '../src/backends/types.js'
import { generateSigningKey, signJws, type SigningKey } from '../src/dev/sign-jws.js'
import { P256_N, b64u, signSegments, splitToken } from './support/compact-tokens.js'
import { AUDIENCE, ISSUER, NOW_MS, NOW_SEC } from './support/mandates.js'
import { seededRandom } from './support/prng.js'

const CASES = 10_000
const SEED = 0x5eed_caca

const random = seededRandom(SEED)
const int = (n: number) => Math.floor(random() * n)
const pick = <T>(list: readonly T[]): T => list[int(list.length)]!

const keys: SigningKey[] = [
  generateSigningKey('ES256', 'es-a'),
  generateSigningKey('ES256', 'es-b'),
  generateSigningKey('RS256', 'rs-a'),
  generateSigningKey('RS256', 'rs-b', 3072),
]
/** Signed by nobody in the JWKS: its tokens fail on the signature with a kid that exists. */
const strangers: SigningKey[] = [generateSigningKey('ES256', 'es-a'), generateSigningKey('RS256', 'rs-a')]
const jwks = { keys: keys.map((k) => k.publicJwk) }
const REVOKED = 'agent-revoked'

function makeAuth(backend: BackendChoice): CaracalAuth {
  const revocations = new InMemoryRevocationStore({ now: () => NOW_MS })
  revocations.markRevoked(REVOKED)
  return new CaracalAuth({
    issuer: ISSUER,
    audience: AUDIENCE,
    revocations,
    backend,
    now: () => NOW_MS,
    cache: false,
    requiredScopes: ['tool:call'],
    jwks: { keys: jwks },
  })
}

/** Claims as Caracal issues them, each run with a few random deviations. */
function claims(i: number): Record<string, unknown> {
  const c: Record<string, unknown> = {
    iss: ISSUER,
    aud: AUDIENCE,
    exp: NOW_SEC + 300,
    iat: NOW_SEC - 10,
    jti: `jti-${i}`,
    sub: `user-${int(5)}`,
    client_id: 'client-1',
    sid: `sid-${i}`,
    root_sid: 'root-1',
    use: 'resource',
    sub_type: 'user',
    scope: 'tool:call documents:read',
    zone_id: 'zone-1',
    agent_session_id: `agent-${i}`,
  }
  const deviations: Array<() => void> = [
    () => (c.aud = [AUDIENCE, 'resource://other']),
    () => (c.aud = 'resource://other'),
    () => (c.iss = `${ISSUER}/`),
    () => (c.exp = NOW_SEC - 1 - int(100)),
    () => (c.exp = NOW_SEC + int(3) - 1),
    () => (c.exp = `${NOW_SEC + 300}`),
    () => (c.exp = NOW_SEC + 300.5),
    () => delete c.exp,
    () => (c.nbf = NOW_SEC + int(200)),
    () => (c.iat = NOW_SEC + int(200)),
    () => (c.iat = -1),
    () => (c.scope = 'documents:read'),
    () => (c.scope = ['tool:call']),
    () => (c.sub = ''),
    () => (c.agent_session_id = REVOKED),
    () => (c.hop_count = int(4)),
    () => (c.target = ['a', ''].slice(0, 1 + int(2))),
    () => (c.delegation_path = ['app-1', 'app-2']),
    () => (c.delegation_graph_epoch = -int(2)),
    () => (c.note = 'ünïcødé ✓ \u2028'),
    () => (c.big = 2 ** 60),
  ]
  const n = random() < 0.5 ? 0 : 1 + int(2)
  for (let k = 0; k < n; k++) pick(deviations)()
  return c
}

function header(key: SigningKey): Record<string, unknown> {
  const variants: Array<Record<string, unknown>> = [
    {},
    {},
    {},
    { typ: undefined },
    { cty: 'JWT' },
    { kid: undefined },
    { kid: 'unknown' },
    { alg: key.alg === 'ES256' ? 'RS256' : 'ES256' },
    { alg: 'none' },
    { alg: 'HS256' },
    { crit: ['exp'] },
    { b64: false },
    { jku: 'https://attacker.example/jwks' },
    { kid: key.kid === 'es-a' ? 'es-b' : key.kid },
  ]
  return random() < 0.7 ? {} : pick(variants)
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

function bigToBytes(x: bigint, len: number): Buffer {
  return Buffer.from(
    x
      .toString(16)
      .padStart(len * 2, '0')
      .slice(-len * 2),
    'hex',
  )
}

/** One random change to a valid token; several kinds reach the signature check. */
function mutate(token: string, key: SigningKey): string {
  const parts = splitToken(token)
  const seg = int(3)
  switch (int(8)) {
    case 0: {
      // flip one bit of the decoded segment
      const bytes = Buffer.from(parts[seg]!, 'base64url')
      if (bytes.length === 0) return `${token}A`
      const bit = int(bytes.length * 8)
      bytes[bit >> 3]! ^= 0x80 >> (bit & 7)
      parts[seg] = b64u(bytes)
      return parts.join('.')
    }
    case 1: {
      // replace one character of the text (stray bits, foreign characters included)
      const s = parts[seg]!
      const at = int(s.length)
      parts[seg] = s.slice(0, at) + pick([...ALPHABET, '=', '+', '/', ' ', '.', '\u00e9']) + s.slice(at + 1)
      return parts.join('.')
    }
    case 2: {
      // one byte more or less
      const bytes = Buffer.from(parts[seg]!, 'base64url')
      parts[seg] = b64u(
        random() < 0.5
          ? bytes.subarray(0, Math.max(0, bytes.length - 1))
          : Buffer.concat([bytes, Buffer.from([int(256)])]),
      )
      return parts.join('.')
    }
    case 3: {
      // a byte of the signature set to a random value
      const bytes = Buffer.from(parts[2]!, 'base64url')
      bytes[int(bytes.length)] = int(256)
      parts[2] = b64u(bytes)
      return parts.join('.')
    }
    case 4: {
      // signature edge values
      const len = Buffer.from(parts[2]!, 'base64url').length
      let sig: Buffer
      if (key.alg === 'ES256') {
        const orig = Buffer.from(parts[2]!, 'base64url')
        const r = BigInt(`0x${orig.subarray(0, 32).toString('hex')}`)
        const s = BigInt(`0x${orig.subarray(32).toString('hex')}`)
        const values = [0n, 1n, P256_N - 1n, P256_N, P256_N + 1n, 2n ** 256n - 1n]
        const choice = int(5)
        if (choice === 0)
          sig = Buffer.concat([bigToBytes(r, 32), bigToBytes(P256_N - s, 32)]) // the high/low-S twin: valid
        else if (choice === 1) sig = Buffer.concat([bigToBytes(r + P256_N, 32), bigToBytes(s, 32)])
        else if (choice === 2) sig = Buffer.concat([bigToBytes(pick(values), 32), bigToBytes(s, 32)])
        else if (choice === 3) sig = Buffer.concat([bigToBytes(r, 32), bigToBytes(pick(values), 32)])
        else sig = Buffer.concat([bigToBytes(s, 32), bigToBytes(r, 32)])
      } else {
        const n = BigInt(`0x${Buffer.from(key.publicJwk.n!, 'base64url').toString('hex')}`)
        sig = bigToBytes(pick([0n, 1n, n - 1n, n, n + 1n, 2n ** BigInt(len * 8) - 1n]), len)
      }
      parts[2] = b64u(sig)
      return parts.join('.')
    }
    case 5: {
      // the signature of a stranger key with the same kid
      const stranger = strangers.find((k) => k.alg === key.alg)!
      return signSegments(stranger, parts[0]!, parts[1]!)
    }
    case 6: // segments swapped or dropped
      return pick([
        `${parts[1]}.${parts[0]}.${parts[2]}`,
        `${parts[0]}.${parts[1]}`,
        `${parts[0]}..${parts[2]}`,
        `${token}.`,
        ` ${token}`,
      ])
    default: {
      // payload re-encoded with a different but equivalent JSON spelling: signature fails
      const json = Buffer.from(parts[1]!, 'base64url').toString('utf8')
      parts[1] = b64u(json.replace(/,/, ', '))
      return parts.join('.')
    }
  }
}

async function outcome(auth: CaracalAuth, token: string): Promise<string> {
  try {
    const c = await auth.verify(token)
    return `ok ${JSON.stringify(c)}`
  } catch (error) {
    return error instanceof CaracalAuthError ? `error ${error.code}` : `threw ${String(error)}`
  }
}

/** `auto` is a composition (OpenSSL's SHA-256, wasm's P-256): it must agree as well. */
const COMPARED = ['wasm', 'node', 'noble', 'auto'] as const

describe('differential: wasm, node, noble and auto agree', () => {
  it(`on ${CASES} generated tokens`, async () => {
    const auths = COMPARED.map(makeAuth)
    const disagreements: string[] = []
    const tally = new Map<string, number>()
    let mutated = 0
    for (let i = 0; i < CASES; i++) {
      // RS256 is cheap everywhere; ES256 on noble costs ~2 ms, so it is a third of the cases.
      const key = random() < 0.33 ? pick(keys.slice(0, 2)) : pick(keys.slice(2))
      let token = signJws(key, claims(i), header(key))
      if (random() < 0.6) {
        token = mutate(token, key)
        mutated++
      }
      const results = await Promise.all(auths.map((a) => outcome(a, token)))
      const label = results[0]!.startsWith('ok') ? 'accepted' : results[0]!
      tally.set(label, (tally.get(label) ?? 0) + 1)
      if (results.some((r) => r !== results[0])) {
        disagreements.push(`case ${i} (${key.alg}): ${COMPARED.map((b, k) => `${b}=${results[k]}`).join(' ')}`)
      }
    }
    expect(disagreements).toEqual([])
    // The cases are not vacuous: many accepted, many rejected for several reasons.
    expect(mutated).toBeGreaterThan(CASES / 2)
    expect(tally.get('accepted') ?? 0).toBeGreaterThan(CASES / 10)
    expect(tally.get('error invalid_token') ?? 0).toBeGreaterThan(CASES / 3)
    expect(tally.get('error session_revoked') ?? 0).toBeGreaterThan(0)
    expect(tally.get('error insufficient_scope') ?? 0).toBeGreaterThan(0)
    for (const a of auths) await a.close()
  }, 300_000)
})
