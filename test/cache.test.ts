/**
 * The verified-token cache (README "What is checked") with the injectable clock: what a hit skips (signature, claim
 * parsing) and what it never skips (byte identity, exp, policy, revocation).
 */
import { LRUCache } from 'lru-cache'
import { describe, expect, it } from 'vitest'
import { type CachedMandate, VerifiedTokenCache } from '../src/cache/verified-token-cache.js'
import { generateSigningKey } from '../src/dev/sign-jws.js'
import { TEST_BACKENDS } from './support/backends.js'
import { b64u, headerSegment, signSegments, splitToken } from './support/compact-tokens.js'
import { startJwksServer } from './support/jwks-server.js'
import { NOW_SEC, esKey, mandateClaims, mint, rsKey } from './support/mandates.js'
import { rejection, testVerifier } from './support/verifiers.js'

const attacker = generateSigningKey('ES256', 'es-1') // same kid as the real key, different key

describe.each(TEST_BACKENDS)('verified-token cache on %s', (backend) => {
  it('a second verification of the same token is a hit, and stats() count hits and misses', async () => {
    const { auth } = testVerifier(backend)
    const token = mint()
    const first = await auth.verify(token)
    const second = await auth.verify(token)
    expect(second).toEqual(first)
    expect(auth.stats().cache).toMatchObject({ enabled: true, hits: 1, misses: 1, size: 1 })
    await auth.verify(mint({}, rsKey))
    await auth.verify(token)
    expect(auth.stats().cache).toMatchObject({ hits: 2, misses: 2, size: 2 })
    expect(auth.stats().verifications.accepted).toBe(4)
  })

  it('a forged token reusing a cached jti is verified in full and rejected', async () => {
    const { auth } = testVerifier(backend)
    const claims = mandateClaims({ jti: 'jti-shared', sub: 'alice' })
    const genuine = signSegments(esKey, headerSegment(esKey), b64u(JSON.stringify(claims)))
    await auth.verify(genuine)
    // Same jti, other claims, signed by an attacker key under the real kid.
    const forgedPayload = b64u(JSON.stringify({ ...claims, sub: 'mallory', scope: 'admin' }))
    const forged = signSegments(attacker, headerSegment(attacker), forgedPayload)
    expect((await rejection(auth.verify(forged))).code).toBe('invalid_token')
    // The genuine signature pasted onto the forged payload.
    const [h, , s] = splitToken(genuine)
    expect((await rejection(auth.verify(`${h}.${forgedPayload}.${s}`))).code).toBe('invalid_token')
    // The genuine header and payload with the attacker's signature.
    const [, p] = splitToken(genuine)
    const attackerSig = splitToken(signSegments(attacker, h, p))[2]
    expect((await rejection(auth.verify(`${h}.${p}.${attackerSig}`))).code).toBe('invalid_token')
    expect(auth.stats().cache).toMatchObject({ hits: 0, misses: 4 })
    // The genuine token is still served from the cache.
    await expect(auth.verify(genuine)).resolves.toMatchObject({ sub: 'alice' })
    expect(auth.stats().cache.hits).toBe(1)
  })

  it('a cached token is rejected once exp passes (no leeway for exp by default; re-checked on every hit)', async () => {
    const { auth, clock } = testVerifier(backend)
    const token = mint({ exp: NOW_SEC + 100 })
    await auth.verify(token)
    clock.set((NOW_SEC + 100) * 1000 - 1) // 1 ms before exp: still valid, from the cache
    await expect(auth.verify(token)).resolves.toBeDefined()
    expect(auth.stats().cache.hits).toBe(1)
    clock.set((NOW_SEC + 100) * 1000) // exp = now: expired
    expect((await rejection(auth.verify(token))).description).toBe('token expired')
    expect((await rejection(auth.verify(token))).code).toBe('invalid_token')
    expect(auth.stats().cache.size).toBe(0)
  })

  it('clockToleranceSec applies to hits too', async () => {
    const { auth, clock } = testVerifier(backend, { clockToleranceSec: 30 })
    const token = mint({ exp: NOW_SEC + 10 })
    await auth.verify(token)
    clock.set((NOW_SEC + 10 + 30) * 1000 - 1) // 1 ms before exp + tolerance
    await expect(auth.verify(token)).resolves.toBeDefined()
    expect(auth.stats().cache.hits).toBe(1)
    clock.set((NOW_SEC + 10 + 30) * 1000) // exp = now - tolerance: expired
    expect((await rejection(auth.verify(token))).description).toBe('token expired')
  })

  it('clockToleranceSec 0 on hits: expired at exp', async () => {
    const { auth, clock } = testVerifier(backend, { clockToleranceSec: 0 })
    const token = mint({ exp: NOW_SEC + 10 })
    await auth.verify(token)
    clock.set((NOW_SEC + 10) * 1000 - 1)
    await expect(auth.verify(token)).resolves.toBeDefined()
    clock.set((NOW_SEC + 10) * 1000)
    expect((await rejection(auth.verify(token))).code).toBe('invalid_token')
  })

  it('a clock moved back before nbf/iat - 60 s rejects a cached token', async () => {
    const { auth, clock } = testVerifier(backend)
    const token = mint({ nbf: NOW_SEC, iat: NOW_SEC })
    await auth.verify(token)
    clock.set((NOW_SEC - 60) * 1000) // nbf and iat 60 s ahead: still valid
    await expect(auth.verify(token)).resolves.toBeDefined()
    clock.set((NOW_SEC - 61) * 1000)
    expect((await rejection(auth.verify(token))).code).toBe('invalid_token')
  })

  it('revoked after caching: session_revoked on the next call, for every anchor', async () => {
    for (const anchor of ['sid', 'root_sid', 'agent_session_id', 'delegation_edge_id'] as const) {
      const { auth, revocations } = testVerifier(backend)
      const values = {
        sid: `s-${anchor}`,
        root_sid: `r-${anchor}`,
        agent_session_id: `a-${anchor}`,
        delegation_edge_id: `d-${anchor}`,
      }
      const token = mint(values)
      await auth.verify(token)
      await auth.verify(token)
      revocations.markRevoked(values[anchor])
      const e = await rejection(auth.verify(token))
      expect(e.code, anchor).toBe('session_revoked')
      expect(auth.stats().cache.hits, anchor).toBe(2)
      // A revocation that lapses lets the (still cached) token through again.
      revocations.delete(values[anchor])
      await expect(auth.verify(token)).resolves.toBeDefined()
    }
  })

  it('a refusal is never cached: a token refused by policy is verified in full each time and refused again', async () => {
    const { auth } = testVerifier(backend, { requiredScopes: ['admin'], maxHopCount: 1 })
    const noScope = mint({ scope: 'tool:call' })
    expect((await rejection(auth.verify(noScope))).code).toBe('insufficient_scope')
    expect((await rejection(auth.verify(noScope))).code).toBe('insufficient_scope')
    const tooFar = mint({ scope: 'admin', hop_count: 2 })
    expect((await rejection(auth.verify(tooFar))).code).toBe('hop_count_exceeded')
    expect((await rejection(auth.verify(tooFar))).code).toBe('hop_count_exceeded')
    expect(auth.stats().cache).toMatchObject({ hits: 0, misses: 4, size: 0 })
    expect(auth.stats().verifications.rejected).toMatchObject({ insufficient_scope: 2, hop_count_exceeded: 2 })
  })

  it('a token accepted under a policy is cached: its second call is a hit', async () => {
    const { auth } = testVerifier(backend, { requiredScopes: ['admin'] })
    const token = mint({ scope: 'admin' })
    await auth.verify(token)
    await auth.verify(token)
    expect(auth.stats().cache).toMatchObject({ hits: 1, size: 1 })
  })

  it('is bounded by cache.max (least recently used goes first)', async () => {
    const { auth } = testVerifier(backend, { cache: { max: 3 } })
    const tokens = Array.from({ length: 5 }, () => mint())
    for (const t of tokens) await auth.verify(t)
    expect(auth.stats().cache.size).toBe(3)
    await auth.verify(tokens[4]!) // newest: still there
    expect(auth.stats().cache.hits).toBe(1)
    await auth.verify(tokens[0]!) // oldest: evicted, verified again
    expect(auth.stats().cache).toMatchObject({ hits: 1, misses: 6, size: 3 })
  })

  it('two genuine tokens sharing a jti are cached apart: each hit is only ever its own token', async () => {
    const { auth } = testVerifier(backend)
    const older = mint({ jti: 'jti-same', sub: 'v1' })
    const newer = mint({ jti: 'jti-same', sub: 'v2' })
    await auth.verify(older)
    await auth.verify(newer)
    await expect(auth.verify(older)).resolves.toMatchObject({ sub: 'v1' })
    await expect(auth.verify(newer)).resolves.toMatchObject({ sub: 'v2' })
    expect(auth.stats().cache).toMatchObject({ hits: 2, misses: 2, size: 2 })
  })

  it('two concurrent misses of the same token leave one entry', async () => {
    const sts = await startJwksServer({ keys: [esKey.publicJwk] })
    try {
      const { auth } = testVerifier(backend, { issuer: sts.issuer, jwks: {} })
      // A cold remote key set makes both calls miss and both store the token.
      const token = mint({ iss: sts.issuer, jti: 'jti-race', sub: 'v1' })
      await Promise.all([auth.verify(token), auth.verify(token)])
      expect(auth.stats().cache).toMatchObject({ misses: 2, size: 1 })
      await expect(auth.verify(token)).resolves.toMatchObject({ sub: 'v1' })
      expect(auth.stats().cache).toMatchObject({ hits: 1, size: 1 })
    } finally {
      await sts.close()
    }
  })

  it('cache: false verifies every time and still checks revocation', async () => {
    const { auth, revocations } = testVerifier(backend, { cache: false })
    const token = mint({ sid: 'sid-nc' })
    await auth.verify(token)
    await auth.verify(token)
    expect(auth.stats().cache).toEqual({ enabled: false, hits: 0, misses: 0, size: 0, admission: 'first' })
    revocations.markRevoked('sid-nc')
    expect((await rejection(auth.verify(token))).code).toBe('session_revoked')
    expect(auth.stats().verifications).toMatchObject({ accepted: 2, rejected: { session_revoked: 1 } })
  })

  it('rejected tokens are not served from the cache as accepted', async () => {
    const { auth } = testVerifier(backend)
    const expired = mint({ exp: NOW_SEC - 3600 })
    expect((await rejection(auth.verify(expired))).code).toBe('invalid_token')
    expect((await rejection(auth.verify(expired))).code).toBe('invalid_token')
    expect(auth.stats().cache).toMatchObject({ hits: 0, size: 0 })
  })

  it('the claims of a hit are frozen: one caller cannot change what the next one sees', async () => {
    const { auth } = testVerifier(backend)
    const token = mint({ sub: 'frozen' })
    const claims = await auth.verify(token)
    expect(Object.isFrozen(claims)).toBe(true)
    expect(() => {
      ;(claims as { sub: string }).sub = 'changed'
    }).toThrow(TypeError)
    await expect(auth.verify(token)).resolves.toMatchObject({ sub: 'frozen' })
  })

  it('close() drops the cache: a cached token is no longer accepted', async () => {
    const { auth } = testVerifier(backend)
    const token = mint()
    await auth.verify(token)
    await auth.close()
    expect((await rejection(auth.verify(token))).code).toBe('invalid_token')
    expect(auth.stats().cache.size).toBe(0)
  })
})

describe('verified-token cache capacity', () => {
  // The cache starts small and grows (lru-cache allocates its capacity up front): a user who set
  // cache.max must see exactly the entries and evictions of one LRU of that size all along.
  const token = (i: number) => `header.payload.${String(i).padStart(40, '0')}`
  const entries = new Map<number, Omit<CachedMandate, 'token'>>()
  const entry = (i: number) => {
    const known = entries.get(i)
    if (known !== undefined) return known
    const e = { mandate: { i } } as unknown as Omit<CachedMandate, 'token'>
    entries.set(i, e)
    return e
  }

  it('keeps recency across a growth: the least recently used still goes first once full', () => {
    const cache = new VerifiedTokenCache(300)
    for (let i = 0; i < 256; i++) cache.set(token(i), entry(i)) // the first capacity, full
    expect(cache.get(token(0))).toBeDefined() // now the most recent
    for (let i = 256; i < 310; i++) cache.set(token(i), entry(i)) // grows at 256, then 10 past max
    expect(cache.size).toBe(300)
    expect(cache.get(token(0))).toBeDefined()
    for (let i = 1; i <= 10; i++) expect(cache.get(token(i)), `entry ${i}`).toBeUndefined()
    for (const i of [11, 255, 256, 309]) expect(cache.get(token(i)), `entry ${i}`).toBeDefined()
  })

  it.each([1, 200, 256, 257, 3000, 20_000])('holds what one LRU of max %i holds, through every growth', (max) => {
    const cache = new VerifiedTokenCache(max)
    const reference = new LRUCache<string, number>({ max })
    let seed = 7
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed
    }
    const universe = Math.max(8, Math.round(max * 1.5))
    for (let step = 0; step < 20_000; step++) {
      const i = next() % universe
      const op = next() % 10
      if (op < 5) {
        cache.set(token(i), entry(i))
        reference.set(token(i), i)
      } else if (op < 9) {
        expect(cache.get(token(i))?.mandate).toBe(reference.get(token(i)) === undefined ? undefined : entry(i).mandate)
      } else {
        cache.delete(token(i))
        reference.delete(token(i))
      }
      expect(cache.size).toBe(reference.size)
    }
    for (let i = 0; i < universe; i++)
      expect(cache.get(token(i)) !== undefined, `entry ${i}`).toBe(reference.peek(token(i)) !== undefined)
  })
})

describe('verified-token cache admission', () => {
  // What the cache does with traffic of tokens that never come back (Caracal mints one per request):
  // past a window of 1024 stores that found almost none of them again, a token is stored on its
  // second verification, and once tokens come back it goes back to storing them on the first.
  const token = (i: number) => `header.payload.${String(i).padStart(40, '0')}`
  const entry = { mandate: {} } as unknown as Omit<CachedMandate, 'token'>
  // What CaracalAuth does with a presented token: a hit, or a verification and then a store.
  const present = (cache: VerifiedTokenCache, i: number) => {
    if (cache.get(token(i)) === undefined) cache.set(token(i), entry)
  }
  const coldWindow = (cache: VerifiedTokenCache, from: number) => {
    for (let i = from; i < from + 1024; i++) present(cache, i)
  }

  it('stores every token at once while tokens come back', () => {
    const cache = new VerifiedTokenCache(10_000)
    for (let i = 0; i < 3000; i++) {
      cache.set(token(i), entry)
      expect(cache.get(token(i)), `token ${i}`).toBeDefined()
    }
    expect(cache.secondSight).toBe(false)
    expect(cache.size).toBe(3000)
  })

  it('after a window in which no token came back, stores a token on its second verification only', () => {
    const cache = new VerifiedTokenCache(10_000)
    coldWindow(cache, 0)
    expect(cache.size).toBe(1023) // the window's last store opens the second-sight mode
    expect(cache.secondSight).toBe(true)
    cache.set(token(5000), entry)
    expect(cache.get(token(5000))).toBeUndefined()
    expect(cache.size).toBe(1023)
    cache.set(token(5000), entry) // verified a second time: stored
    expect(cache.get(token(5000))).toBeDefined()
    expect(cache.size).toBe(1024)
  })

  it('goes back to storing on the first verification once a window sees tokens come back', () => {
    const cache = new VerifiedTokenCache(10_000)
    coldWindow(cache, 0)
    expect(cache.secondSight).toBe(true)
    // Each token verified twice (a gateway checking two routes' policies): every one comes back.
    for (let i = 2000; i < 2000 + 1024; i++) {
      present(cache, i)
      present(cache, i)
    }
    expect(cache.secondSight).toBe(false)
    present(cache, 9000)
    expect(cache.get(token(9000))).toBeDefined()
    // and stays there while they keep coming back
    for (let i = 10_000; i < 10_000 + 3000; i++) {
      present(cache, i)
      present(cache, i)
    }
    expect(cache.secondSight).toBe(false)
  })

  it('clear() starts over: stores on the first verification', () => {
    const cache = new VerifiedTokenCache(10_000)
    coldWindow(cache, 0)
    cache.clear()
    expect(cache.secondSight).toBe(false)
    cache.set(token(1), entry)
    expect(cache.get(token(1))).toBeDefined()
  })

  it('CaracalAuth under per-request minting: stats() say so, a token then hits from its third presentation', async () => {
    const { auth } = testVerifier('auto')
    const tokens = Array.from({ length: 1100 }, (_, i) => mint({ jti: `cold-${i}` }))
    for (const t of tokens) await auth.verify(t)
    expect(auth.stats().cache).toMatchObject({ admission: 'second', hits: 0, misses: 1100, size: 1023 })
    const again = mint({ jti: 'comes-back' })
    const first = await auth.verify(again)
    await expect(auth.verify(again)).resolves.toEqual(first)
    await expect(auth.verify(again)).resolves.toEqual(first)
    // Two signature checks, then a hit: the same answer each time.
    expect(auth.stats().cache).toMatchObject({ hits: 1, misses: 1102, size: 1024 })
  })
})
