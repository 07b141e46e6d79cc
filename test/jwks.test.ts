/**
 * JWKS (README "Keys (JWKS)") against a real HTTP server on 127.0.0.1: rotation, cooldown, single flight, TTL
 * refresh, the STS going down, bounded and well-formed responses, https rules, and which keys of a
 * set may verify at all.
 */
import { createHash, generateKeyPairSync } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { CaracalAuth, type CaracalAuthError, InMemoryRevocationStore, type CaracalAuthOptions } from '../src/index.js'
import { generateSigningKey, signJws, type SigningKey } from '../src/dev/sign-jws.js'
import { emsaPkcs1v15Sha256 } from '../src/backends/pkcs1.js'
import { MAX_KEYS } from '../src/jwks/key-set.js'
import { TEST_BACKENDS } from './support/backends.js'
import { segment, splitToken } from './support/compact-tokens.js'
import { JWKS_PATH, eventually, sendJson, sleep, startJwksServer, type JwksServer } from './support/jwks-server.js'
import { AUDIENCE, mandateClaims, mint } from './support/mandates.js'
import { testClock, type TestClock } from './support/test-clock.js'
import { rejection } from './support/verifiers.js'

const keyA = generateSigningKey('ES256', 'kid-a')
const keyB = generateSigningKey('ES256', 'kid-b')
const rsaA = generateSigningKey('RS256', 'rsa-a')
const keyUnknown = generateSigningKey('ES256', 'kid-unpublished')

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c()
})

async function server(keys: unknown[]): Promise<JwksServer> {
  const s = await startJwksServer({ keys })
  cleanups.push(() => s.close())
  return s
}

function remoteAuth(
  s: JwksServer,
  backend: string,
  clock: TestClock,
  jwks: CaracalAuthOptions['jwks'] = {},
): CaracalAuth {
  const auth = new CaracalAuth({
    issuer: s.issuer,
    audience: AUDIENCE,
    revocations: new InMemoryRevocationStore(),
    backend: backend as never,
    now: clock.now,
    jwks,
  })
  cleanups.push(() => auth.close())
  return auth
}

function staticAuth(backend: string, keys: unknown[]): CaracalAuth {
  const auth = new CaracalAuth({
    issuer: 'https://sts.example',
    audience: AUDIENCE,
    revocations: new InMemoryRevocationStore(),
    backend: backend as never,
    now: testClock().now,
    jwks: { keys: keys as JsonWebKey[] },
  })
  cleanups.push(() => auth.close())
  return auth
}

const tokenFor = (s: JwksServer | string, key: SigningKey, header: Record<string, unknown> = {}): string =>
  mint({ iss: typeof s === 'string' ? s : s.issuer }, key, header)

const code = async (p: Promise<unknown>): Promise<string> => (await rejection(p)).code

describe.each(TEST_BACKENDS)('JWKS over HTTP on %s', (backend) => {
  it('fetches {issuer}/.well-known/jwks.json on first use, then verifies without fetching', async () => {
    const s = await server([keyA.publicJwk])
    const auth = remoteAuth(s, backend, testClock())
    await expect(auth.verify(tokenFor(s, keyA))).resolves.toMatchObject({ sub: 'user-1' })
    await expect(auth.verify(tokenFor(s, keyA))).resolves.toMatchObject({ sub: 'user-1' })
    expect(s.jwksHits).toBe(1)
    expect([...s.hits.keys()]).toEqual([JWKS_PATH])
  })

  it('warmup() fetches once, so the first request does not wait for the network', async () => {
    const s = await server([keyA.publicJwk])
    const auth = remoteAuth(s, backend, testClock())
    await auth.warmup()
    expect(s.jwksHits).toBe(1)
    await auth.verify(tokenFor(s, keyA))
    expect(s.jwksHits).toBe(1)
    expect(auth.stats().jwks).toMatchObject({ keys: 1, fetches: 1, fetchFailures: 0 })
  })

  it('key rotation: a new kid is picked up by an unknown-kid refetch once the cooldown allows', async () => {
    const s = await server([keyA.publicJwk])
    const clock = testClock()
    const auth = remoteAuth(s, backend, clock, { cooldownMs: 30_000 })
    const cachedA = tokenFor(s, keyA)
    await auth.verify(cachedA)
    s.keys = { keys: [keyB.publicJwk] } // the STS rotated: A out, B in
    // Within the cooldown of the first fetch: no refetch, the new kid is not known yet.
    expect(await code(auth.verify(tokenFor(s, keyB)))).toBe('invalid_token')
    expect(s.jwksHits).toBe(1)
    clock.advance(30_000)
    await expect(auth.verify(tokenFor(s, keyB))).resolves.toBeDefined()
    expect(s.jwksHits).toBe(2)
    // A fresh token under the retired key no longer verifies (and causes no fetch: cooldown)…
    expect(await code(auth.verify(tokenFor(s, keyA)))).toBe('invalid_token')
    expect(s.jwksHits).toBe(2)
    // …and neither does the token verified before the rotation: a key that left the JWKS vouches
    // for nothing, cached or not — with the very answer a fresh token of that key gets, every time.
    for (let call = 0; call < 2; call++) {
      const refused = await auth.verify(cachedA).catch((e: unknown) => e as CaracalAuthError)
      expect(refused).toMatchObject({ code: 'invalid_token', description: 'no usable key: unknown kid' })
    }
    expect(s.jwksHits).toBe(2)
  })

  it('a key pulled from the JWKS stops its cached mandates at the next request; a key still published keeps them', async () => {
    const s = await server([keyA.publicJwk, keyB.publicJwk])
    const clock = testClock()
    const auth = remoteAuth(s, backend, clock)
    const underA = tokenFor(s, keyA)
    const underB = tokenFor(s, keyB)
    await auth.verify(underA)
    await auth.verify(underB)
    expect(auth.stats().cache.size).toBe(2)
    s.keys = { keys: [keyB.publicJwk] } // A was compromised: the STS stops publishing it
    await auth.warmup() // the next refresh (TTL, unknown kid, or warmup) brings the new set
    const refused = await auth.verify(underA).catch((e: unknown) => e as CaracalAuthError)
    expect(refused).toMatchObject({ code: 'invalid_token', description: 'no usable key: unknown kid' })
    // B was fetched again in the same JWKS: the same key, so its cached mandate is still a hit.
    const hitsBefore = auth.stats().cache.hits
    await expect(auth.verify(underB)).resolves.toBeDefined()
    expect(auth.stats().cache.hits).toBe(hitsBefore + 1)
    // A is published again (a rollback): its tokens verify again, through a full verification.
    s.keys = { keys: [keyA.publicJwk, keyB.publicJwk] }
    await auth.warmup()
    await expect(auth.verify(underA)).resolves.toBeDefined()
  })

  it('a cached token gets the answer a fresh one would when its kid becomes ambiguous, or when a key that fits a kid-less token is added', async () => {
    const twinOfA = generateSigningKey('ES256', 'kid-a')
    const s = await server([keyA.publicJwk])
    const auth = remoteAuth(s, backend, testClock())
    const withKid = tokenFor(s, keyA)
    const withoutKid = signJws(keyA, { ...mandateClaims(), iss: s.issuer }, { kid: undefined })
    await auth.verify(withKid)
    await auth.verify(withoutKid)
    s.keys = { keys: [keyA.publicJwk, twinOfA.publicJwk] } // a second key under kid-a
    await auth.warmup()
    expect(await auth.verify(withKid).catch((e: unknown) => (e as CaracalAuthError).description)).toBe(
      'no usable key: kid names more than one key',
    )
    expect(await auth.verify(withoutKid).catch((e: unknown) => (e as CaracalAuthError).description)).toBe(
      'no usable key: token has no kid and several keys fit',
    )
    // The key pulled and published again (a new import): the token verifies again, in full.
    s.keys = { keys: [keyB.publicJwk] }
    await auth.warmup()
    s.keys = { keys: [keyA.publicJwk] }
    await auth.warmup()
    await expect(auth.verify(withKid)).resolves.toBeDefined()
  })

  it("calls the runtime's fetch without a `this` (browsers and workerd refuse any other: Illegal invocation)", async () => {
    const s = await server([keyA.publicJwk])
    const original = globalThis.fetch
    let calls = 0
    globalThis.fetch = function strictFetch(this: unknown, input: Parameters<typeof fetch>[0], init?: RequestInit) {
      calls++
      if (this !== undefined && this !== globalThis) throw new TypeError('Illegal invocation')
      return original(input, init)
    } as typeof fetch
    try {
      const auth = remoteAuth(s, backend, testClock())
      await expect(auth.verify(tokenFor(s, keyA))).resolves.toBeDefined()
      expect(calls).toBe(1)
    } finally {
      globalThis.fetch = original
    }
  })

  it('cooldown: a flood of unknown kids causes at most one fetch per cooldown', async () => {
    const s = await server([keyA.publicJwk])
    const clock = testClock()
    const auth = remoteAuth(s, backend, clock, { cooldownMs: 10_000 })
    await auth.warmup()
    expect(s.jwksHits).toBe(1)
    const flood = (n: number, tag: string) =>
      Promise.all(
        Array.from({ length: n }, (_, i) => code(auth.verify(tokenFor(s, keyUnknown, { kid: `${tag}-${i}` })))),
      )
    // Inside the cooldown of the warmup fetch: nothing.
    expect(new Set(await flood(100, 'a'))).toEqual(new Set(['invalid_token']))
    expect(s.jwksHits).toBe(1)
    clock.advance(10_000)
    expect(new Set(await flood(100, 'b'))).toEqual(new Set(['invalid_token']))
    expect(s.jwksHits).toBe(2)
    for (let i = 0; i < 50; i++)
      expect(await code(auth.verify(tokenFor(s, keyUnknown, { kid: `c-${i}` })))).toBe('invalid_token')
    clock.advance(9_999)
    expect(new Set(await flood(50, 'd'))).toEqual(new Set(['invalid_token']))
    expect(s.jwksHits).toBe(2)
    clock.advance(1)
    expect(new Set(await flood(50, 'e'))).toEqual(new Set(['invalid_token']))
    expect(s.jwksHits).toBe(3)
    // Known keys kept verifying all along.
    await expect(auth.verify(tokenFor(s, keyA))).resolves.toBeDefined()
    expect(s.jwksHits).toBe(3)
  })

  it('single flight: N concurrent verifications with a cold cache cause one fetch', async () => {
    const s = await server([keyA.publicJwk, rsaA.publicJwk])
    s.handler = async (_req, res) => {
      await sleep(100)
      sendJson(res, s.keys)
    }
    const auth = remoteAuth(s, backend, testClock())
    const tokens = Array.from({ length: 30 }, (_, i) => tokenFor(s, i % 3 === 0 ? rsaA : keyA))
    const results = await Promise.all(tokens.map((t) => auth.verify(t)))
    expect(results).toHaveLength(30)
    expect(s.jwksHits).toBe(1)
    expect(auth.stats().jwks.fetches).toBe(1)
  })

  it('TTL: an old set is refreshed in the background without holding up the request', async () => {
    const s = await server([keyA.publicJwk])
    const clock = testClock()
    const auth = remoteAuth(s, backend, clock, { ttlMs: 60_000, cooldownMs: 1_000 })
    await auth.warmup()
    s.keys = { keys: [keyB.publicJwk] }
    clock.advance(59_999)
    await auth.verify(tokenFor(s, keyA))
    expect(auth.stats().jwks.fetches).toBe(1) // not yet: the set is younger than the TTL
    let release!: () => void
    const held = new Promise<void>((r) => (release = r))
    s.handler = async (_req, res) => {
      await held
      sendJson(res, s.keys)
    }
    clock.advance(1)
    // Answered from the current set while the refresh it started is still waiting on the server.
    await expect(auth.verify(tokenFor(s, keyA))).resolves.toBeDefined()
    await eventually(() => s.jwksHits === 2)
    const loadedBefore = auth.stats().jwks.lastFetchAt
    release()
    await eventually(() => auth.stats().jwks.lastFetchAt !== loadedBefore)
    expect(auth.stats().jwks.fetches).toBe(2)
    // The refreshed set is in use: B verifies, a fresh A does not, and neither fetched again.
    await expect(auth.verify(tokenFor(s, keyB))).resolves.toBeDefined()
    expect(await code(auth.verify(tokenFor(s, keyA)))).toBe('invalid_token')
    expect(s.jwksHits).toBe(2)
  })

  it('STS down after the first fetch: cached keys still verify, failures are counted', async () => {
    const s = await server([keyA.publicJwk])
    const clock = testClock()
    const auth = remoteAuth(s, backend, clock, { ttlMs: 60_000, cooldownMs: 1_000 })
    await auth.warmup()
    await s.close()
    clock.advance(120_000)
    await expect(auth.verify(tokenFor(s, keyA))).resolves.toBeDefined()
    await eventually(() => auth.stats().jwks.fetchFailures >= 1)
    expect(auth.stats().jwks.lastError).toMatch(/JWKS/)
    // An unknown kid while down: a clean invalid_token, and known keys still work.
    clock.advance(1_000)
    expect(await code(auth.verify(tokenFor(s, keyB)))).toBe('invalid_token')
    clock.advance(120_000)
    await expect(auth.verify(tokenFor(s, keyA))).resolves.toBeDefined()
    expect(auth.stats().jwks.keys).toBe(1)
  })

  it('STS down from the start: invalid_token (no keys), never another error', async () => {
    const s = await server([keyA.publicJwk])
    await s.close()
    const auth = remoteAuth(s, backend, testClock())
    const e = await rejection(auth.verify(tokenFor(s, keyA)))
    expect(e.code).toBe('invalid_token')
    expect(e.description).toMatch(/keys unavailable/)
  })
})

describe('a JWKS with too many keys', () => {
  it(`imports at most ${MAX_KEYS} keys and ignores the rest, with a coded warning`, async () => {
    const keys = Array.from({ length: MAX_KEYS + 3 }, (_, i) => generateSigningKey('ES256', `many-${i}`))
    const warnings: string[] = []
    const onWarning = (w: Error & { code?: string }) => warnings.push(w.code ?? '')
    process.on('warning', onWarning)
    try {
      const auth = staticAuth(
        TEST_BACKENDS[0]!,
        keys.map((k) => k.publicJwk),
      )
      await expect(auth.verify(tokenFor('https://sts.example', keys[MAX_KEYS - 1]!))).resolves.toBeDefined()
      expect(await code(auth.verify(tokenFor('https://sts.example', keys[MAX_KEYS]!)))).toBe('invalid_token')
      expect(auth.stats().jwks.keys).toBe(MAX_KEYS)
      await new Promise((r) => setImmediate(r))
      expect(warnings).toContain('CARACAL_JWKS_TOO_MANY_KEYS')
    } finally {
      process.off('warning', onWarning)
    }
  })
})

describe('STS failing before the first load', () => {
  it('retries at most once a second, not once per request, and recovers when the STS does', async () => {
    const s = await server([keyA.publicJwk])
    s.handler = (_req, res) => {
      res.statusCode = 503
      res.end()
    }
    const clock = testClock()
    const auth = remoteAuth(s, TEST_BACKENDS[0]!, clock)
    const token = tokenFor(s, keyA)
    for (let i = 0; i < 20; i++) expect(await code(auth.verify(token))).toBe('invalid_token')
    expect(s.jwksHits).toBe(1)
    clock.advance(999)
    expect(await code(auth.verify(token))).toBe('invalid_token')
    expect(s.jwksHits).toBe(1)
    s.handler = undefined
    clock.advance(1)
    await expect(auth.verify(token)).resolves.toMatchObject({ sub: 'user-1' })
    expect(s.jwksHits).toBe(2)
  })
})

describe('JWKS responses that are refused', () => {
  const backend = TEST_BACKENDS[0]!

  async function coldFailure(
    s: JwksServer,
    jwks: CaracalAuthOptions['jwks'] = {},
  ): Promise<{ auth: CaracalAuth; ms: number }> {
    const auth = remoteAuth(s, backend, testClock(), jwks)
    const started = Date.now()
    expect(await code(auth.verify(tokenFor(s, keyA)))).toBe('invalid_token')
    return { auth, ms: Date.now() - started }
  }

  /** A JWKS of about `bytes` bytes that holds key A (padding in an ignored member). */
  const paddedJwks = (bytes: number) => {
    const base = JSON.stringify({ keys: [keyA.publicJwk], pad: '' }).length
    return { keys: [keyA.publicJwk], pad: 'x'.repeat(Math.max(0, bytes - base)) }
  }

  it('accepts a body just under jwks.maxBytes (control)', async () => {
    const s = await server([])
    s.keys = paddedJwks(2000) as never
    const auth = remoteAuth(s, backend, testClock(), { maxBytes: 2048 })
    await expect(auth.verify(tokenFor(s, keyA))).resolves.toBeDefined()
  })

  it('rejects a body over jwks.maxBytes announced by Content-Length', async () => {
    const s = await server([])
    s.keys = paddedJwks(4096) as never
    const { auth } = await coldFailure(s, { maxBytes: 2048 })
    expect(auth.stats().jwks.lastError).toMatch(/larger than 2048/)
  })

  it('rejects a chunked body (no Content-Length) that grows over jwks.maxBytes', async () => {
    const s = await server([])
    let written = 0
    s.handler = async (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"keys":[],"pad":"')
      for (let i = 0; i < 64 && !res.destroyed; i++) {
        res.write('x'.repeat(1024))
        written += 1024
        await sleep(1)
      }
      res.end('"}')
    }
    const { auth } = await coldFailure(s, { maxBytes: 8192 })
    expect(auth.stats().jwks.lastError).toMatch(/larger than 8192/)
    expect(written).toBeLessThan(64 * 1024)
  })

  it('rejects a body over the default cap (256 KiB)', async () => {
    const s = await server([])
    s.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(paddedJwks(300 * 1024)))
    }
    const { auth } = await coldFailure(s)
    expect(auth.stats().jwks.lastError).toMatch(/larger than/)
  })

  it('bounds the decoded size of a compressed body (a gzip bomb with a tiny Content-Length)', async () => {
    const s = await server([])
    const bomb = gzipSync(Buffer.from(JSON.stringify(paddedJwks(4 * 1024 * 1024))))
    s.handler = (_req, res) => {
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-encoding': 'gzip',
        'content-length': bomb.length,
      })
      res.end(bomb)
    }
    expect(bomb.length).toBeLessThan(64 * 1024)
    const { auth } = await coldFailure(s, { maxBytes: 64 * 1024 })
    expect(auth.stats().jwks.lastError).toMatch(/larger than/)
  })

  it('gives up on a server that does not answer within timeoutMs', async () => {
    const s = await server([])
    s.handler = () => {} // never answers
    const { auth, ms } = await coldFailure(s, { timeoutMs: 200 })
    expect(ms).toBeLessThan(3000)
    expect(auth.stats().jwks.lastError).toMatch(/timed out/)
  })

  it('gives up on a body that stalls past timeoutMs', async () => {
    const s = await server([])
    s.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"keys":[') // and nothing more
    }
    const { auth, ms } = await coldFailure(s, { timeoutMs: 200 })
    expect(ms).toBeLessThan(3000)
    expect(auth.stats().jwks.lastError).toMatch(/timed out/)
  })

  // 'gives up on a stalled body even when garbage collection runs meanwhile' is in jwks-gc.test.ts,
  // which runs in a process of its own with --expose-gc.

  it.each([500, 404, 204, 401])('rejects HTTP %i', async (status) => {
    const s = await server([])
    s.handler = (_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(status === 204 ? undefined : JSON.stringify({ keys: [keyA.publicJwk] }))
    }
    const { auth } = await coldFailure(s)
    expect(auth.stats().jwks.lastError).toContain(`HTTP ${status}`)
  })

  it('rejects a body that is not JSON', async () => {
    const s = await server([])
    s.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(`{"keys":[${JSON.stringify(keyA.publicJwk)}]`)
    }
    const { auth } = await coldFailure(s)
    expect(auth.stats().jwks.lastError).toMatch(/not JSON/)
  })

  it.each([301, 302, 307, 308])('does not follow a %i redirect', async (status) => {
    const s = await server([keyA.publicJwk])
    s.handler = (req, res) => {
      if (req.url === JWKS_PATH) res.writeHead(status, { location: '/elsewhere.json' }).end()
      else sendJson(res, { keys: [keyA.publicJwk] })
    }
    await coldFailure(s)
    expect(s.hits.get('/elsewhere.json')).toBeUndefined()
  })

  it.each([
    ['a JSON object without keys', { nope: 1 }],
    ['a JSON array', [keyA.publicJwk]],
    ['keys that is not an array', { keys: { a: keyA.publicJwk } }],
    ['JSON null', null],
  ])('keeps the current keys when a refresh returns %s', async (_name, body) => {
    const s = await server([keyA.publicJwk])
    const clock = testClock()
    const auth = remoteAuth(s, backend, clock, { cooldownMs: 1_000 })
    await auth.warmup()
    s.handler = (_req, res) => sendJson(res, body)
    clock.advance(1_000)
    expect(await code(auth.verify(tokenFor(s, keyB)))).toBe('invalid_token') // unknown kid: refetch
    expect(s.jwksHits).toBe(2)
    await expect(auth.verify(tokenFor(s, keyA))).resolves.toBeDefined()
  })

  it('drops every key when the STS publishes an empty set (a deliberate rotation)', async () => {
    const s = await server([keyA.publicJwk])
    const clock = testClock()
    const auth = remoteAuth(s, backend, clock, { cooldownMs: 1_000 })
    await auth.warmup()
    s.keys = { keys: [] }
    clock.advance(1_000)
    expect(await code(auth.verify(tokenFor(s, keyB)))).toBe('invalid_token')
    expect(await code(auth.verify(tokenFor(s, keyA)))).toBe('invalid_token')
  })

  it('uses jwks.url when given instead of the issuer path', async () => {
    const s = await server([])
    s.handler = (req, res) => {
      if (req.url === '/keys/custom.json') sendJson(res, { keys: [keyA.publicJwk] })
      else res.writeHead(404).end()
    }
    const auth = new CaracalAuth({
      issuer: s.issuer,
      audience: AUDIENCE,
      revocations: new InMemoryRevocationStore(),
      backend,
      now: testClock().now,
      jwks: { url: `${s.issuer}/keys/custom.json` },
    })
    cleanups.push(() => auth.close())
    await expect(auth.verify(tokenFor(s, keyA))).resolves.toBeDefined()
    expect([...s.hits.keys()]).toEqual(['/keys/custom.json'])
  })

  it('after close(), verify fails with invalid_token and nothing is fetched', async () => {
    const s = await server([keyA.publicJwk])
    const auth = remoteAuth(s, backend, testClock())
    await auth.close()
    expect(await code(auth.verify(tokenFor(s, keyA)))).toBe('invalid_token')
    expect(s.jwksHits).toBe(0)
  })
})

describe('https is required except on loopback', () => {
  const base = { audience: AUDIENCE, revocations: new InMemoryRevocationStore() }

  it.each([
    'http://example.com',
    'http://10.0.0.1:8080',
    'http://127.0.0.1.example.com',
    'http://localhost.example.com',
    'ftp://127.0.0.1',
  ])('issuer %s is a TypeError naming issuer', (issuer) => {
    expect(() => new CaracalAuth({ ...base, issuer })).toThrow(TypeError)
    expect(() => new CaracalAuth({ ...base, issuer })).toThrow(/"issuer"/)
  })

  it('jwks.url over http to a remote host is a TypeError naming jwks.url', () => {
    const make = () =>
      new CaracalAuth({ ...base, issuer: 'https://sts.example', jwks: { url: 'http://example.com/jwks.json' } })
    expect(make).toThrow(TypeError)
    expect(make).toThrow(/"jwks\.url"/)
  })

  it.each([
    'https://sts.example',
    'http://127.0.0.1:8080',
    'http://127.9.9.9',
    'http://localhost:1234',
    'http://[::1]:8080',
  ])('issuer %s is accepted', (issuer) => {
    const auth = new CaracalAuth({ ...base, issuer })
    cleanups.push(() => auth.close())
    expect(auth).toBeInstanceOf(CaracalAuth)
  })

  it('an http issuer is fine when the keys are static (nothing is fetched)', () => {
    const auth = new CaracalAuth({ ...base, issuer: 'http://sts.internal', jwks: { keys: [keyA.publicJwk] } })
    cleanups.push(() => auth.close())
    expect(auth).toBeInstanceOf(CaracalAuth)
  })
})

/** A JWK with one member changed (or removed when the value is undefined). */
function jwkWith(base: JsonWebKey, changes: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base, ...changes }
  for (const k of Object.keys(changes)) if (changes[k] === undefined) delete out[k]
  return out
}

/** The EC point with y nudged off the curve. */
function offCurve(jwk: JsonWebKey): Record<string, unknown> {
  const y = Buffer.from(jwk.y!, 'base64url')
  y[31] = y[31]! ^ 1
  return { ...jwk, y: y.toString('base64url') }
}

const rsa1024 = generateSigningKey('RS256', 'rsa-1024', 1024)
const rsaE3: SigningKey = (() => {
  // generateSigningKey always uses e = 65537; the e = 3 key is built here.
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 })
  return {
    alg: 'RS256',
    kid: 'rsa-e3',
    privateKey,
    publicKey,
    publicJwk: { ...publicKey.export({ format: 'jwk' }), kid: 'rsa-e3', alg: 'RS256', use: 'sig' },
  }
})()

/** With e = 1 the signature of any message is its own encoded block: a key that must never be used. */
function eOneForgery(): { jwk: Record<string, unknown>; token: string } {
  const jwk = { kty: 'RSA', kid: 'rsa-e1', alg: 'RS256', n: rsaA.publicJwk.n, e: 'AQ' }
  const h = segment({ alg: 'RS256', kid: 'rsa-e1' })
  const p = segment(mandateClaims({ iss: 'https://sts.example' }))
  const block = emsaPkcs1v15Sha256(createHash('sha256').update(`${h}.${p}`).digest(), 256)
  return { jwk, token: `${h}.${p}.${Buffer.from(block).toString('base64url')}` }
}

describe.each(TEST_BACKENDS)('which keys of a JWKS may verify, on %s', (backend) => {
  const ISS = 'https://sts.example'
  const tA = (header: Record<string, unknown> = {}) => tokenFor(ISS, keyA, header)
  const ecPrivate = { ...(keyA.privateKey.export({ format: 'jwk' }) as JsonWebKey), kid: 'kid-a' }
  const rsaPrivate = { ...(rsaA.privateKey.export({ format: 'jwk' }) as JsonWebKey), kid: 'rsa-a' }

  const cases: [string, unknown[], () => string, boolean][] = [
    ['control: the published key', [keyA.publicJwk], () => tA(), true],
    ['use "enc"', [jwkWith(keyA.publicJwk, { use: 'enc' })], () => tA(), false],
    ['use absent', [jwkWith(keyA.publicJwk, { use: undefined })], () => tA(), true],
    ['key_ops without verify', [jwkWith(keyA.publicJwk, { key_ops: ['encrypt'] })], () => tA(), false],
    ['key_ops empty', [jwkWith(keyA.publicJwk, { key_ops: [] })], () => tA(), false],
    ['key_ops a string "verify"', [jwkWith(keyA.publicJwk, { key_ops: 'verify' })], () => tA(), false],
    ['key_ops with verify', [jwkWith(keyA.publicJwk, { key_ops: ['verify'] })], () => tA(), true],
    ['alg RS256 on an EC key', [jwkWith(keyA.publicJwk, { alg: 'RS256' })], () => tA(), false],
    ['alg ES384 on a P-256 key', [jwkWith(keyA.publicJwk, { alg: 'ES384' })], () => tA(), false],
    ['alg absent', [jwkWith(keyA.publicJwk, { alg: undefined })], () => tA(), true],
    ['EC private key (d)', [ecPrivate], () => tA(), false],
    ['RSA private key (d, p, q, …)', [rsaPrivate], () => tokenFor(ISS, rsaA), false],
    ['a symmetric member k', [jwkWith(keyA.publicJwk, { k: 'c2VjcmV0' })], () => tA(), false],
    ['duplicate kid: both keys', [keyA.publicJwk, jwkWith(keyB.publicJwk, { kid: 'kid-a' })], () => tA(), false],
    ['duplicate kid: the same key twice', [keyA.publicJwk, keyA.publicJwk], () => tA(), false],
    [
      'duplicate kid does not spoil other kids',
      [jwkWith(keyA.publicJwk, { kid: 'x' }), jwkWith(keyB.publicJwk, { kid: 'x' }), rsaA.publicJwk],
      () => tokenFor(ISS, rsaA),
      true,
    ],
    ['no kid in the token, one fitting key', [keyA.publicJwk, rsaA.publicJwk], () => tA({ kid: undefined }), true],
    ['no kid in the token, two fitting keys', [keyA.publicJwk, keyB.publicJwk], () => tA({ kid: undefined }), false],
    [
      'no kid in the token, RS256, one RSA key among EC keys',
      [keyA.publicJwk, keyB.publicJwk, rsaA.publicJwk],
      () => tokenFor(ISS, rsaA, { kid: undefined }),
      true,
    ],
    ['no kid anywhere, one key', [jwkWith(keyA.publicJwk, { kid: undefined })], () => tA({ kid: undefined }), true],
    ['kid in the token, key published without kid', [jwkWith(keyA.publicJwk, { kid: undefined })], () => tA(), false],
    [
      'junk entries are ignored, good keys still used',
      [null, 5, 'x', [], { kty: 'oct', k: 'c2VjcmV0', kid: 'h' }, keyA.publicJwk],
      () => tA(),
      true,
    ],
    ['EC point not on the curve', [offCurve(keyA.publicJwk)], () => tA(), false],
    [
      'EC x of 31 bytes',
      [jwkWith(keyA.publicJwk, { x: Buffer.alloc(31, 1).toString('base64url') })],
      () => tA(),
      false,
    ],
    ['EC crv P-384', [jwkWith(keyA.publicJwk, { crv: 'P-384' })], () => tA(), false],
    [
      'EC point at x = y = 0',
      [
        jwkWith(keyA.publicJwk, {
          x: Buffer.alloc(32).toString('base64url'),
          y: Buffer.alloc(32).toString('base64url'),
        }),
      ],
      () => tA(),
      false,
    ],
    ['RSA 1024-bit modulus', [rsa1024.publicJwk], () => tokenFor(ISS, rsa1024), false],
    ['RSA e = 3 (odd, ≥ 3: fine)', [rsaE3.publicJwk], () => tokenFor(ISS, rsaE3), true],
    ['RSA e = 2 (even)', [jwkWith(rsaA.publicJwk, { e: 'Ag' })], () => tokenFor(ISS, rsaA), false],
    ['RSA e = 65536 (even)', [jwkWith(rsaA.publicJwk, { e: 'AQAA' })], () => tokenFor(ISS, rsaA), false],
    ['RSA e = 1, with a token that any e = 1 key would accept', [eOneForgery().jwk], () => eOneForgery().token, false],
  ]

  it.each(cases)('%s', async (_name, keys, token, accepted) => {
    const auth = staticAuth(backend, keys)
    if (accepted) await expect(auth.verify(token())).resolves.toBeDefined()
    else expect(await code(auth.verify(token()))).toBe('invalid_token')
  })

  it('the e = 1 forgery is a valid signature for a key that ignored the rule (the test can fail)', () => {
    const { token } = eOneForgery()
    const [h, p, s] = splitToken(token)
    const sig = BigInt(`0x${Buffer.from(s, 'base64url').toString('hex')}`)
    const block = BigInt(
      `0x${Buffer.from(emsaPkcs1v15Sha256(createHash('sha256').update(`${h}.${p}`).digest(), 256)).toString('hex')}`,
    )
    expect(sig ** 1n % BigInt(`0x${Buffer.from(rsaA.publicJwk.n!, 'base64url').toString('hex')}`)).toBe(block)
  })

  it('keys from the HTTP endpoint go through the same filters', async () => {
    const s = await server([jwkWith(keyA.publicJwk, { use: 'enc' }), offCurve(keyB.publicJwk), rsaA.publicJwk])
    const auth = remoteAuth(s, backend, testClock())
    expect(await code(auth.verify(tokenFor(s, keyA)))).toBe('invalid_token')
    expect(await code(auth.verify(tokenFor(s, keyB)))).toBe('invalid_token')
    await expect(auth.verify(tokenFor(s, rsaA))).resolves.toBeDefined()
    expect(s.jwksHits).toBe(1)
  })
})
