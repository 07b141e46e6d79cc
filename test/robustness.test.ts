/**
 * `verify` never throws anything but CaracalAuthError, whatever it is given (README "Verifying a mandate"), and the
 * policy-free layer keeps its own promises (`verifyJws` throws only CaracalAuthError,
 * `verifySignature` only answers booleans). Random inputs come from a seeded generator, so a
 * failure is reproducible from the seed printed with it.
 */
import { describe, expect, it } from 'vitest'
import { CaracalAuthError } from '../src/index.js'
import { verifyJws, verifySignature } from '../src/jws/index.js'
import { TEST_BACKENDS } from './support/backends.js'
import { b64u, headerSegment, segment, signSegments, splitToken } from './support/compact-tokens.js'
import { esKey, mandateClaims, mint, rsKey, staticJwks } from './support/mandates.js'
import { testVerifier } from './support/verifiers.js'
import { seededRandom } from './support/prng.js'

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

interface Inputs {
  readonly input: string
  /** True when the input is a changed copy of a valid token: it must never verify. */
  readonly mutated: boolean
}

function generator(seed: number): () => Inputs {
  const rand = seededRandom(seed)
  const int = (n: number): number => Math.floor(rand() * n)
  const pick = <T>(list: readonly T[]): T => list[int(list.length)]!
  const chars = (alphabet: string, n: number): string =>
    Array.from({ length: n }, () => alphabet[int(alphabet.length)]).join('')
  const units = (n: number): string => String.fromCharCode(...Array.from({ length: n }, () => int(0x10000)))
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)))
  const valid = [
    mint(),
    mint({}, rsKey),
    mint({ delegation_chain: [{ application_id: 'a' }], hop_count: 1 }),
    mint({ aud: ['x', 'resource://documents'] }),
  ]
  const jsonValues = (): unknown =>
    pick([null, true, 0, -1, 1.5, 1e308, '', 'x', [], {}, [1, 'a'], { alg: 'ES256' }, 'ES256', '\u0000', 2 ** 53])

  const mutate = (token: string): string => {
    const i = int(token.length)
    switch (int(9)) {
      case 0:
        return (
          token.slice(0, i) +
          pick([...B64URL, '.', '=', '+', '/', ' ', '\n', '\u0000', 'é', '\u0141', '\ud800']) +
          token.slice(i + 1)
        )
      case 1:
        return token.slice(0, i) + token.slice(i + 1)
      case 2:
        return token.slice(0, i) + pick([...B64URL, '.']) + token.slice(i)
      case 3:
        return token.slice(0, i)
      case 4: {
        const [h, p, s] = splitToken(token)
        return pick([`${p}.${h}.${s}`, `${h}.${h}.${s}`, `${h}.${p}.${p}`, `${s}.${p}.${h}`])
      }
      case 5: {
        const parts = splitToken(token)
        parts[int(3)] = chars(B64URL, int(120))
        return parts.join('.')
      }
      case 6:
        return token.slice(0, i) + token[i]!.toUpperCase() + token.slice(i + 1)
      case 7: {
        const parts = splitToken(token)
        const k = int(3)
        parts[k] = parts[k]!.slice(0, -1) + pick([...B64URL])
        return parts.join('.')
      }
      default:
        return token + pick(['.', '..', '.AAAA', '=', '==', ' ', '\r\n'])
    }
  }

  return () => {
    switch (int(8)) {
      case 0:
        return { input: chars(`${B64URL}..`, int(400)), mutated: false }
      case 1:
        return { input: chars(' !"#$%&\'()*+,-./0123456789:;<=>?@ABCXYZ[\\]^_`abcxyz{|}~', int(300)), mutated: false }
      case 2:
        return { input: units(int(200)), mutated: false }
      case 3:
        return {
          input: bytes(int(300)).toString(pick(['latin1', 'utf8', 'base64', 'base64url', 'hex'] as const)),
          mutated: false,
        }
      case 4: {
        // Well-formed segments of random JSON: reaches the header and payload readers.
        const header =
          rand() < 0.5
            ? headerSegment(pick([esKey, rsKey]))
            : segment(rand() < 0.5 ? jsonValues() : { alg: pick(['ES256', 'RS256', 'none']), kid: jsonValues() })
        const payload = segment(
          rand() < 0.3
            ? jsonValues()
            : {
                ...mandateClaims(),
                [pick(['exp', 'aud', 'iss', 'sub', 'scope', 'target', 'hop_count'])]: jsonValues(),
              },
        )
        return {
          input: `${header}.${payload}.${b64u(bytes(pick([0, 1, 64, 255, 256, 257, int(300)])))}`,
          mutated: false,
        }
      }
      case 5: {
        // Validly signed random payloads: reach the claim reader with real signatures.
        const key = pick([esKey, rsKey])
        const payload =
          rand() < 0.5
            ? b64u(bytes(int(200)))
            : segment({
                ...mandateClaims(),
                [pick(['exp', 'iat', 'nbf', 'aud', 'delegation_chain', 'delegation_path', 'use'])]: jsonValues(),
              })
        return { input: signSegments(key, headerSegment(key), payload), mutated: false }
      }
      default: {
        const original = pick(valid)
        let out = original
        for (let n = 1 + int(3); n > 0; n--)
          out = out.length > 0 && out.split('.').length === 3 ? mutate(out) : out + pick(['A', '.'])
        return { input: out, mutated: out !== original }
      }
    }
  }
}

const SEED = 0x5eed_2026
const RANDOM_INPUTS = 3000

describe.each(TEST_BACKENDS)('verify never throws anything but CaracalAuthError, on %s', (backend) => {
  async function outcome(
    verify: (t: string) => Promise<unknown>,
    input: unknown,
  ): Promise<{ code?: string; other?: unknown }> {
    let promise: Promise<unknown>
    try {
      promise = verify(input as string)
    } catch (error) {
      // Callers chain .catch() on the promise: even a CaracalAuthError must not be thrown synchronously.
      return { other: `thrown synchronously: ${String(error)}` }
    }
    try {
      await promise
      return {}
    } catch (error) {
      return error instanceof CaracalAuthError ? { code: error.code } : { other: error }
    }
  }

  const throwing = new Proxy(
    {},
    {
      get() {
        throw new Error('trap')
      },
      has() {
        throw new Error('trap')
      },
      ownKeys() {
        throw new Error('trap')
      },
      getPrototypeOf() {
        throw new Error('trap')
      },
      getOwnPropertyDescriptor() {
        throw new Error('trap')
      },
    },
  )
  const hostile = {
    toString() {
      throw new Error('toString')
    },
    valueOf() {
      throw new Error('valueOf')
    },
    [Symbol.toPrimitive]() {
      throw new Error('toPrimitive')
    },
  }

  // Factories: the table itself must not hold values that explode when vitest prints a row.
  const nonStrings: [string, () => unknown, string][] = [
    ['undefined', () => undefined, 'missing_token'],
    ['null', () => null, 'missing_token'],
    ['0', () => 0, 'invalid_token'],
    ['NaN', () => Number.NaN, 'invalid_token'],
    ['a bigint', () => 123n, 'invalid_token'],
    ['true', () => true, 'invalid_token'],
    ['false', () => false, 'invalid_token'],
    ['{}', () => ({}), 'invalid_token'],
    ['Object.create(null)', () => Object.create(null), 'invalid_token'],
    ['[]', () => [], 'invalid_token'],
    ['[valid token]', () => [mint()], 'invalid_token'],
    ['a Symbol', () => Symbol('token'), 'invalid_token'],
    ['a function returning a token', () => () => mint(), 'invalid_token'],
    ['new String(valid token)', () => new String(mint()), 'invalid_token'],
    ['Buffer of a valid token', () => Buffer.from(mint()), 'invalid_token'],
    ['a Promise of a valid token', () => Promise.resolve(mint()), 'invalid_token'],
    ['a Date', () => new Date(), 'invalid_token'],
    ['a Proxy whose every trap throws', () => throwing, 'invalid_token'],
    ['an object whose conversions throw', () => hostile, 'invalid_token'],
    ['an object with a token toString', () => ({ toString: () => mint() }), 'invalid_token'],
  ]

  it.each(nonStrings)('%s → %s', async (_name, input, expected) => {
    const { auth } = testVerifier(backend)
    const r = await outcome(auth.verify, input())
    expect(r.other).toBeUndefined()
    expect(r.code).toBe(expected)
  })

  it('huge strings are refused at the length cap, quickly', async () => {
    const { auth } = testVerifier(backend)
    const valid = mint()
    const [h, p, s] = splitToken(valid)
    const inputs = [
      'a'.repeat(10 * 1024 * 1024),
      `${h}.${p}${'A'.repeat(10 * 1024 * 1024)}.${s}`,
      '.'.repeat(10 * 1024 * 1024),
      '\ud800'.repeat(10 * 1024 * 1024),
    ]
    for (const input of inputs) {
      const started = performance.now()
      const r = await outcome(auth.verify, input)
      expect(r).toEqual({ code: 'invalid_token' })
      expect(performance.now() - started).toBeLessThan(2000) // wide margin: it is one comparison
    }
  })

  it('a 10 MB input under a raised maxTokenLength goes through the parser and is refused cleanly', async () => {
    const { auth } = testVerifier(backend, { maxTokenLength: 16 * 1024 * 1024 })
    const [h, , s] = splitToken(mint())
    const bigPayload = b64u(JSON.stringify({ ...mandateClaims(), pad: 'x'.repeat(8 * 1024 * 1024) }))
    for (const input of [
      `${'A'.repeat(10 * 1024 * 1024 - 2)}..`,
      `${h}.${bigPayload}.${s}`,
      `${h}.${'A'.repeat(10 * 1024 * 1024)}.${s}`,
    ]) {
      expect(await outcome(auth.verify, input)).toEqual({ code: 'invalid_token' })
    }
  })

  it('deeply nested JSON in a validly signed payload is refused cleanly', async () => {
    const { auth } = testVerifier(backend, { maxTokenLength: 8 * 1024 * 1024 })
    const depth = 500_000
    const nested = signSegments(esKey, headerSegment(esKey), b64u('['.repeat(depth) + ']'.repeat(depth)))
    const nestedClaim = signSegments(
      esKey,
      headerSegment(esKey),
      b64u(JSON.stringify(mandateClaims()).replace(/}$/, `,"deep":${'['.repeat(depth)}${']'.repeat(depth)}}`)),
    )
    expect(await outcome(auth.verify, nested)).toEqual({ code: 'invalid_token' })
    const r = await outcome(auth.verify, nestedClaim)
    expect(r.other).toBeUndefined()
  })

  it('__proto__ and other prototype names in the payload give no claims', async () => {
    const { auth } = testVerifier(backend)
    const claims = mandateClaims()
    const { sub, iss, ...withoutSubIss } = claims
    const text = JSON.stringify(withoutSubIss).replace(
      /}$/,
      `,"__proto__":{"sub":${JSON.stringify(sub)},"iss":${JSON.stringify(iss)}}}`,
    )
    expect(await outcome(auth.verify, signSegments(esKey, headerSegment(esKey), b64u(text)))).toEqual({
      code: 'invalid_token',
    })
    const header = b64u(`{"__proto__":{"alg":"ES256"},"kid":"es-1"}`)
    expect(await outcome(auth.verify, signSegments(esKey, header, segment(mandateClaims())))).toEqual({
      code: 'invalid_token',
    })
    const ok = mint({ constructor: 'x', hasOwnProperty: 'y', toString: 'z' })
    expect(await outcome(auth.verify, ok)).toEqual({})
  })

  it('a clock answering NaN or Infinity rejects every token (fresh and cached) instead of accepting expired ones', async () => {
    let now = Date.UTC(2026, 10, 26, 12, 0, 0)
    const { auth } = testVerifier(backend, { now: () => now })
    const token = mint()
    await auth.verify(token)
    for (const broken of [Number.NaN, Number.POSITIVE_INFINITY]) {
      now = broken
      expect(await outcome(auth.verify, token)).toEqual({ code: 'invalid_token' })
      expect(await outcome(auth.verify, mint())).toEqual({ code: 'invalid_token' })
    }
  })

  it('two-, four- and empty-segment tokens', async () => {
    const { auth } = testVerifier(backend)
    const [h, p, s] = splitToken(mint())
    for (const input of [
      `${h}.${p}`,
      `${h}.${p}.${s}.${s}`,
      `${h}.${p}.${s}.`,
      '.',
      '..',
      '...',
      `${h}..`,
      `.${p}.`,
      `..${s}`,
      `${h}..${s}`,
      `.${p}.${s}`,
      `${h}.${p}.`,
      'a',
      'a.b',
      'a.b.c',
      'e30.e30.e30',
    ]) {
      expect(await outcome(auth.verify, input), JSON.stringify(input.slice(0, 12))).toEqual({ code: 'invalid_token' })
    }
  })

  it(`${RANDOM_INPUTS} seeded random inputs: only CaracalAuthError, and no changed token verifies`, async () => {
    const { auth } = testVerifier(backend)
    const next = generator(SEED)
    const problems: string[] = []
    const codes = new Map<string, number>()
    for (let i = 0; i < RANDOM_INPUTS; i++) {
      const { input, mutated } = next()
      const r = await outcome(auth.verify, input)
      if (r.other !== undefined) problems.push(`#${i} (seed ${SEED}): threw ${String(r.other)}`)
      else if (r.code === undefined && mutated) problems.push(`#${i} (seed ${SEED}): a changed token verified`)
      else codes.set(r.code ?? 'accepted', (codes.get(r.code ?? 'accepted') ?? 0) + 1)
    }
    expect(problems).toEqual([])
    // The mix reached more than the parser: some inputs got past the signature to the claim rules.
    expect(codes.get('invalid_token')).toBeGreaterThan(RANDOM_INPUTS / 2)
    expect(
      auth.stats().verifications.accepted +
        Object.values(auth.stats().verifications.rejected).reduce((a, b) => a + (b ?? 0), 0),
    ).toBe(RANDOM_INPUTS)
  })

  it('verifyJws throws only CaracalAuthError (invalid_token) for junk tokens and junk key sets', async () => {
    const next = generator(SEED + 1)
    const problems: string[] = []
    const junkSets: unknown[] = [
      staticJwks,
      { keys: [] },
      {},
      null,
      undefined,
      { keys: [null, 5, { kty: 'EC' }, { kty: 'RSA', n: 'AQAB', e: 'AQAB' }] },
      { keys: 'x' },
    ]
    for (let i = 0; i < 500; i++) {
      const { input } = next()
      const set = junkSets[i % junkSets.length]
      try {
        await verifyJws(input, set as never, { backend })
      } catch (error) {
        if (!(error instanceof CaracalAuthError) || error.code !== 'invalid_token')
          problems.push(`#${i}: ${String(error)}`)
      }
    }
    for (const token of [undefined, null, 5, {}, Symbol('x')]) {
      try {
        await verifyJws(token as never, staticJwks, { backend })
        problems.push('a non-string verified')
      } catch (error) {
        if (!(error instanceof CaracalAuthError) || error.code !== 'invalid_token') problems.push(String(error))
      }
    }
    expect(problems).toEqual([])
  })

  it('verifySignature answers false, never throws, for bad input', async () => {
    const msg = new Uint8Array([1, 2, 3])
    const sig64 = new Uint8Array(64)
    const ecJwk = esKey.publicJwk
    const junk: [unknown, unknown, unknown, unknown][] = [
      ['ES256', ecJwk, msg, sig64],
      ['ES256', ecJwk, 'message', sig64],
      ['ES256', ecJwk, msg, 'signature'],
      ['ES256', ecJwk, [1, 2, 3], Array.from(sig64)],
      ['ES256', ecJwk, msg, new Uint8Array(0)],
      ['ES256', ecJwk, msg, new Uint8Array(1 << 20)],
      ['ES256', null, msg, sig64],
      ['ES256', undefined, msg, sig64],
      ['ES256', 'jwk', msg, sig64],
      ['ES256', { kty: 'EC' }, msg, sig64],
      ['ES256', { kty: 'EC', crv: 'P-256', x: 5, y: [] }, msg, sig64],
      ['ES256', { kty: 'EC', crv: 'P-256', x: 'A'.repeat(10_000), y: '!' }, msg, sig64],
      ['ES256', rsKey.publicJwk, msg, sig64],
      ['RS256', { kty: 'RSA', n: 'A'.repeat(100_000), e: 'AQAB' }, msg, new Uint8Array(256)],
      ['RS256', { kty: 'RSA', n: rsKey.publicJwk.n, e: 'A'.repeat(1000) }, msg, new Uint8Array(256)],
      ['RS256', { ...rsKey.publicJwk, e: '' }, msg, new Uint8Array(256)],
      ['RS256', rsKey.publicJwk, msg, new Uint8Array(256).fill(0xff)],
      ['none', ecJwk, msg, sig64],
      ['HS256', { kty: 'oct', k: 'c2VjcmV0' }, msg, sig64],
      [undefined, ecJwk, msg, sig64],
      [{ toString: () => 'ES256' }, ecJwk, msg, sig64],
      ['ES256', throwingJwk(), msg, sig64],
    ]
    for (const [alg, jwk, m, s] of junk) {
      await expect(verifySignature(alg as never, jwk as never, m as never, s as never, { backend })).resolves.toBe(
        false,
      )
    }
  })
})

function throwingJwk(): unknown {
  return new Proxy(
    {},
    {
      get() {
        throw new Error('trap')
      },
    },
  )
}
