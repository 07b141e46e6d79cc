/**
 * The one-call mandate path of the wasm module (assembly/mandate.ts, src/backends/wasm-mandate.ts):
 * that `backend: 'wasm'` really takes it, that what it leaves to the JS path (numbers with a
 * fraction or exponent, tokens and policies larger than its buffers) comes out the same, that its
 * string comparisons agree with JS string equality, and that it allocates nothing per call. The
 * agreement with the JS path on generated payloads is test/differential-json.test.ts.
 */
import { spawnSync } from 'node:child_process'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { CaracalAuth, type CaracalAuthError, InMemoryRevocationStore, type CaracalAuthOptions } from '../src/index.js'
import type { BackendChoice, MandateVerdict } from '../src/backends/types.js'
import { CLAIM_NAMES, MandateChannel, wtf8 } from '../src/backends/wasm-mandate.js'
import { HOP_MEMBERS, PAYLOAD_CLAIMS } from '../src/backends/claim-names.js'
import { wasmInternalsForTests, wasmMemoryBytes } from '../src/backends/wasm.js'
import { signSegments, b64u } from './support/compact-tokens.js'
import { AUDIENCE, ISSUER, NOW_MS, NOW_SEC, esKey, mandateClaims, mint, rsKey, staticJwks } from './support/mandates.js'
import { TEST_BACKENDS } from './support/backends.js'

function auth(backend: BackendChoice, extra: Partial<CaracalAuthOptions> = {}): CaracalAuth {
  return new CaracalAuth({
    issuer: ISSUER,
    audience: AUDIENCE,
    revocations: new InMemoryRevocationStore(),
    backend,
    cache: false,
    now: () => NOW_MS,
    jwks: { keys: staticJwks },
    ...extra,
  })
}

/** What the channel answered for each call made while `fn` ran. */
async function verdicts(fn: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = []
  const original = MandateChannel.prototype.verify
  const spy = vi.spyOn(MandateChannel.prototype, 'verify').mockImplementation(function (this: MandateChannel, ...args) {
    try {
      const v: MandateVerdict = original.apply(this, args)
      seen.push(v.kind)
      return v
    } catch (error) {
      seen.push(`threw ${(error as CaracalAuthError).code}`)
      throw error
    }
  })
  try {
    await fn()
  } finally {
    spy.mockRestore()
  }
  return seen
}

/** A token whose payload is exactly `json` (not re-serialized), signed by `key`. */
function rawToken(json: string, key = esKey): string {
  return signSegments(
    key,
    b64u(Buffer.from(JSON.stringify({ alg: key.alg, kid: key.kid }))),
    b64u(Buffer.from(json, 'utf8')),
  )
}

afterEach(() => vi.restoreAllMocks())

describe('wasm one-call path', () => {
  it('reads the claim names the host reads (the two tables agree)', () => {
    CLAIM_NAMES.forEach((name, i) => {
      expect(wasmInternalsForTests.claimIndex(name, false), name).toBe(PAYLOAD_CLAIMS.includes(name) ? i : -1)
      expect(wasmInternalsForTests.claimIndex(name, true), `${name} in a hop`).toBe(HOP_MEMBERS.includes(name) ? i : -1)
    })
    // Chain entries as the STS writes them; the old member names are nothing to the reader.
    expect([...HOP_MEMBERS].sort()).toEqual(['agent_session_id', 'application_id', 'delegation_edge_id'])
    for (const old of ['session_id', 'delegation_id']) {
      expect(wasmInternalsForTests.claimIndex(old, true)).toBe(-1)
      expect(wasmInternalsForTests.claimIndex(old, false)).toBe(-1)
    }
    expect(wasmInternalsForTests.claimIndex('constructor', false)).toBe(-1)
    expect(wasmInternalsForTests.claimIndex('iss', true)).toBe(-1)
  })

  it('has both claim tables as assembly/codegen/gen-claims.mjs emits them', () => {
    const run = spawnSync(process.execPath, ['assembly/codegen/gen-claims.mjs', '--check'], { encoding: 'utf8' })
    expect(run.stderr).toBe('')
    expect(run.status).toBe(0)
  })

  it('is what backend "wasm" runs for ES256 and RS256: accepted, refused by policy, rejected', async () => {
    const a = auth('wasm', { requiredScopes: ['tool:call'] })
    for (const key of [esKey, rsKey]) {
      const seen = await verdicts(async () => {
        expect((await a.verify(mint({ sub: 'user-7' }, key))).sub).toBe('user-7')
        await expect(a.verify(mint({ scope: 'documents:read' }, key))).rejects.toMatchObject({
          code: 'insufficient_scope',
          description: 'missing required scope: tool:call',
        })
        await expect(a.verify(mint({ exp: NOW_SEC - 120 }, key))).rejects.toMatchObject({
          code: 'invalid_token',
          description: 'token expired',
        })
      })
      expect(seen).toEqual(['accepted', 'refused', 'threw invalid_token'])
    }
  })

  it('fails closed when the module and checkPolicy disagree: refused on every call, never cached', async () => {
    // A module that refuses what checkPolicy accepts (a bug in one of them): neither is trusted.
    const original = MandateChannel.prototype.verify
    const spy = vi.spyOn(MandateChannel.prototype, 'verify').mockImplementation(function (
      this: MandateChannel,
      ...args
    ) {
      const v: MandateVerdict = original.apply(this, args)
      return v.kind === 'accepted' ? { kind: 'refused', mandate: v.mandate } : v
    })
    try {
      const a = auth('wasm', { cache: {} })
      const token = mint()
      for (let call = 1; call <= 3; call++) {
        const error = await a.verify(token).catch((e: unknown) => e as CaracalAuthError)
        expect(error, `call ${call}`).toMatchObject({
          code: 'invalid_token',
          description: 'token could not be verified',
        })
      }
      expect(a.stats().cache).toMatchObject({ hits: 0, misses: 3, size: 0 })
      expect(spy).toHaveBeenCalledTimes(3)
    } finally {
      spy.mockRestore()
    }
  })

  it('is what "auto" runs for ES256 (with the hash from node:crypto), not for RS256 (node:crypto)', async () => {
    const a = auth('auto')
    const seen = await verdicts(async () => {
      await a.verify(mint({}, esKey))
      await a.verify(mint({}, rsKey))
    })
    expect(seen).toEqual(['accepted'])
  })

  it('leaves numbers with a fraction or exponent to JSON.parse, with the same result', async () => {
    const body = (exp: string) => JSON.stringify(mandateClaims({ exp: 0 })).replace('"exp":0', `"exp":${exp}`)
    const cases: Array<[string, number | string]> = [
      [`${NOW_SEC + 300}.0`, NOW_SEC + 300],
      [`${(NOW_SEC + 300) / 100}e2`, NOW_SEC + 300],
      ['1e10', 1e10],
      [`${NOW_SEC + 300}.5`, 'exp must be a non-negative integer'],
      ['1e400', 'exp must be a non-negative integer'],
    ]
    for (const [literal, expected] of cases) {
      const token = rawToken(body(literal))
      for (const backend of TEST_BACKENDS) {
        const outcome = await auth(backend)
          .verify(token)
          .then(
            (c) => c.expiresAt,
            (e: CaracalAuthError) => e.description,
          )
        expect(outcome, `${backend} ${literal}`).toBe(expected)
      }
      expect(
        await verdicts(() =>
          auth('wasm')
            .verify(token)
            .catch(() => undefined),
        ),
      ).toEqual(['defer'])
    }
  })

  it('decides plain integers itself, -0 included (JSON.parse gives -0, which is ≥ 0)', async () => {
    const token = rawToken(JSON.stringify(mandateClaims({ hop_count: 0 })).replace('"hop_count":0', '"hop_count":-0'))
    const seen = await verdicts(async () => {
      const c = await auth('wasm').verify(token)
      expect(Object.is(c.hopCount, -0)).toBe(true)
    })
    expect(seen).toEqual(['accepted'])
    expect(Object.is((await auth('node').verify(token)).hopCount, -0)).toBe(true)
  })

  it('hands tokens longer than its buffer to the JS path, which accepts them', async () => {
    const token = mint({ note: 'x'.repeat(20_000) }, esKey)
    expect(token.length).toBeGreaterThan(16_384)
    const a = auth('wasm', { maxTokenLength: 64 * 1024 })
    const seen = await verdicts(async () => expect((await a.verify(token)).sub).toBe('user-1'))
    expect(seen).toEqual(['defer'])
  })

  it('hands a policy too large for its buffer to the JS path, which applies it', async () => {
    const audiences = Array.from({ length: 1000 }, (_, i) => `resource://other-${i}`)
    const a = auth('wasm', { audience: [...audiences, AUDIENCE] })
    const seen = await verdicts(async () => {
      expect((await a.verify(mint({}, esKey))).sub).toBe('user-1')
      await expect(a.verify(mint({ aud: 'resource://nobody' }, esKey))).rejects.toMatchObject({
        code: 'invalid_token',
        description: 'audience mismatch',
      })
    })
    expect(seen).toEqual(['defer', 'defer'])
  })

  it('compares strings as JS does: escapes, surrogate pairs and lone surrogates', async () => {
    const zone = 'zöne-\u{1F600}-\ud800'
    const options = { expectedZoneId: zone, requiredScopes: ['tool:\u00e9'], audience: [AUDIENCE, 'aud-\udc00'] }
    const claims = JSON.stringify(mandateClaims({ zone_id: 'Z', scope: 'S', aud: 'A' }))
    const spellings: Array<[string, string, string, boolean]> = [
      // zone_id, scope, aud (JSON literal text), accepted
      ['"zöne-😀-\\ud800"', '"a tool:é"', `"${AUDIENCE}"`, true],
      ['"z\\u00f6ne-\\ud83d\\ude00-\\uD800"', '"tool:\\u00e9 b"', '"aud-\\udc00"', true],
      ['"zöne-\\ud83d\\ude00-\\ud800"', '"tool:\\u00E9"', `["x", "aud-\\uDC00"]`, true],
      ['"zöne-😀-\\ud801"', '"tool:é"', `"${AUDIENCE}"`, false], // another lone surrogate
      ['"zöne-😀-"', '"tool:é"', `"${AUDIENCE}"`, false],
      ['"zöne-😀-\\ud800"', '"tool:e\\u0301"', `"${AUDIENCE}"`, false], // é decomposed is another string
      ['"zöne-😀-\\ud800"', '"tool:é"', '"aud-\\ud800"', false],
    ]
    for (const [z, s, au, accepted] of spellings) {
      const token = rawToken(claims.replace('"Z"', z).replace('"S"', s).replace('"A"', au))
      const outcomes = await Promise.all(
        TEST_BACKENDS.map((b) =>
          auth(b, options)
            .verify(token)
            .then(
              () => 'ok',
              (e: CaracalAuthError) => e.code,
            ),
        ),
      )
      expect(new Set(outcomes).size, `${z} ${s} ${au}: ${outcomes.join(' ')}`).toBe(1)
      expect(outcomes[0] === 'ok', `${z} ${s} ${au}: ${outcomes[0]}`).toBe(accepted)
    }
  })

  it('encodes option strings as WTF-8: UTF-8 where well formed, lone surrogates kept as three bytes', () => {
    for (const s of ['', 'resource://x', 'zöne', '\u{1F600}', '\u20ac'])
      expect(wtf8(s)).toEqual(new TextEncoder().encode(s))
    expect([...wtf8('a\ud800')]).toEqual([0x61, 0xed, 0xa0, 0x80])
    expect([...wtf8('\udfff\ud800')]).toEqual([0xed, 0xbf, 0xbf, 0xed, 0xa0, 0x80])
  })

  it('does not grow linear memory across 50 000 one-call verifications', async () => {
    const a = auth('wasm', { requiredScopes: ['tool:call'] })
    const tokens = [mint({}, esKey), mint({ scope: 'x' }, esKey), mint({ iss: 'other' }, esKey), mint({}, rsKey)]
    // The EC key's fixed-base tables are built once it is hot, a chunk per verification
    // (docs/architecture.md "Backends"): a thousand of them make it so, and after that nothing grows.
    for (let i = 0; i < 2_000; i++) await a.verify(tokens[i % tokens.length]!).catch(() => undefined)
    const before = wasmMemoryBytes()
    for (let i = 0; i < 50_000; i++) await a.verify(tokens[i % tokens.length]!).catch(() => undefined)
    expect(wasmMemoryBytes()).toBe(before)
    const stats = a.stats().verifications
    expect(stats.accepted).toBeGreaterThan(20_000)
    expect(stats.rejected.insufficient_scope).toBeGreaterThan(10_000)
  }, 60_000)
})
