/**
 * A real Caracal deployment, unchanged: the seed's options only, against an STS that serves its keys
 * per zone; claims as the STS writes them; expiry at `exp`; delegation epochs; and the Caracal
 * TypeScript packages' option names beside the seed's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CaracalAuth, CaracalAuthError, InMemoryRevocationStore, type RevocationStore } from '../src/index.js'
import { startDevSts } from '../src/dev/index.js'
import { TEST_BACKENDS } from './support/backends.js'
import { startCaracalSts, type CaracalSts } from './support/caracal-sts.js'
import { rejection } from './support/verifiers.js'

let sts: CaracalSts
beforeAll(async () => {
  sts = await startCaracalSts('zone-prod')
})
afterAll(async () => {
  await sts.close()
})

/** The seed's configuration, nothing else. */
function seedAuth(
  revocations: RevocationStore = new InMemoryRevocationStore(),
  extra: Record<string, unknown> = {},
): CaracalAuth {
  return new CaracalAuth({
    issuer: sts.issuer,
    audience: sts.audience,
    revocations,
    requiredScopes: ['tool:call'],
    expectedZoneId: sts.zoneId,
    requireAgent: true,
    ...extra,
  })
}

describe('keys per zone', () => {
  it.each(TEST_BACKENDS)(
    'with the seed options only, a valid mandate is accepted (%s, ES256 and RS256)',
    async (backend) => {
      const auth = seedAuth(undefined, { backend })
      for (const alg of ['ES256', 'RS256'] as const) {
        const claims = await auth.verify(sts.mintDelegated({ alg }))
        expect(claims.zoneId).toBe('zone-prod')
      }
      expect(auth.stats().jwks.fetches).toBeGreaterThan(0)
      await auth.close()
      expect(sts.jwksRequests.every((path) => path === '/.well-known/jwks.json?zone_id=zone-prod')).toBe(true)
    },
  )

  it('the STS answers 400 without zone_id, so a verifier without a zone finds no key, and says so', async () => {
    const response = await fetch(`${sts.issuer}/.well-known/jwks.json`)
    expect(response.status).toBe(400)
    expect(((await response.json()) as { error_description: string }).error_description).toMatch(/^zone_id required/)
    const auth = new CaracalAuth({
      issuer: sts.issuer,
      audience: sts.audience,
      revocations: new InMemoryRevocationStore(),
    })
    const error = await rejection(auth.verify(sts.mintDelegated()))
    expect(error).toMatchObject({ code: 'invalid_token' })
    expect(error.description).toMatch(/^no usable key: .*400/)
    await auth.close()
  })

  it('another zone has no keyset at this STS', async () => {
    expect((await fetch(`${sts.issuer}/.well-known/jwks.json?zone_id=zone-other`)).status).toBe(404)
  })

  it('the zone is URL-encoded into the query; an explicit jwks.url still wins', () => {
    const store = new InMemoryRevocationStore()
    const zoned = new CaracalAuth({
      issuer: 'https://sts.example.com/',
      audience: 'a',
      revocations: store,
      zoneId: 'zone a&b',
    })
    expect(zoned.options.jwks.url).toBe('https://sts.example.com/.well-known/jwks.json?zone_id=zone+a%26b')
    const plain = new CaracalAuth({ issuer: 'https://sts.example.com', audience: 'a', revocations: store })
    expect(plain.options.jwks.url).toBe('https://sts.example.com/.well-known/jwks.json')
    const explicit = new CaracalAuth({
      issuer: 'https://sts.example.com',
      audience: 'a',
      revocations: store,
      expectedZoneId: 'z',
      jwks: { url: 'https://keys.example.com/jwks' },
    })
    expect(explicit.options.jwks.url).toBe('https://keys.example.com/jwks')
  })

  it('the development STS without a zone option serves both forms', async () => {
    const dev = await startDevSts()
    try {
      expect(dev.jwksUrl).toBe(`${dev.url}/.well-known/jwks.json`)
      for (const path of ['/.well-known/jwks.json', '/.well-known/jwks.json?zone_id=dev-zone']) {
        const response = await fetch(`${dev.url}${path}`)
        expect(response.status).toBe(200)
        expect(((await response.json()) as { keys: unknown[] }).keys).toHaveLength(2)
      }
    } finally {
      await dev.close()
    }
  })
})

describe('claims as the STS writes them', () => {
  it('reads the hop ids of the delegation chain', async () => {
    const auth = seedAuth()
    const claims = await auth.verify(sts.mintDelegated())
    expect(claims.delegationChain).toHaveLength(1)
    const [hop] = claims.delegationChain!
    expect(hop!.applicationId).toBe('app-orchestrator')
    expect(hop!.sessionId).toMatch(/^upstream-\d+$/)
    expect(hop!.delegationId).toMatch(/^up-edge-\d+$/)
    expect(claims.graphEpoch).toBe(1)
    expect(claims.hopCount).toBe(1)
    await auth.close()
  })

  it('refuses a mandate at its exp, with no leeway unless clockToleranceSec is set', async () => {
    const nowSec = Math.floor(Date.now() / 1000)
    const token = sts.mintDelegated({ overrides: { exp: nowSec, iat: nowSec - 60 } })
    const strict = seedAuth()
    expect(await rejection(strict.verify(token))).toMatchObject({ code: 'invalid_token', description: 'token expired' })
    const lenient = seedAuth(undefined, { clockToleranceSec: 30 })
    await expect(lenient.verify(token)).resolves.toMatchObject({ expiresAt: nowSec })
    await strict.close()
    await lenient.close()
  })
})

describe('delegation epochs', () => {
  it('a mandate below its zone epoch is delegation_stale (401, refresh hint); equal and above pass', async () => {
    const store = new InMemoryRevocationStore()
    store.markDelegationEpoch('zone-prod', 5)
    const auth = seedAuth(store)
    const error = await rejection(auth.verify(sts.mintDelegated({ epoch: 4 })))
    expect(error).toMatchObject({ code: 'delegation_stale', status: 401, unavailable: false })
    expect(error.description).toBe('the delegation graph changed after this mandate was issued')
    expect(error.hint).toMatch(/^Refresh the mandate/)
    await expect(auth.verify(sts.mintDelegated({ epoch: 5 }))).resolves.toMatchObject({ graphEpoch: 5 })
    await expect(auth.verify(sts.mintDelegated({ epoch: 6 }))).resolves.toMatchObject({ graphEpoch: 6 })
    // Another zone's epoch does not apply.
    store.markDelegationEpoch('zone-other', 99)
    await expect(auth.verify(sts.mintDelegated({ epoch: 5 }))).resolves.toMatchObject({ graphEpoch: 5 })
    await auth.close()
  })

  it('checks cache hits too: a token accepted once is stale after the epoch is raised', async () => {
    const store = new InMemoryRevocationStore()
    const auth = seedAuth(store)
    const token = sts.mintDelegated({ epoch: 3 })
    await auth.verify(token)
    await auth.verify(token)
    expect(auth.stats().cache.hits).toBe(1)
    store.markDelegationEpoch('zone-prod', 4)
    expect(await rejection(auth.verify(token))).toMatchObject({ code: 'delegation_stale' })
    expect(auth.stats().cache.hits).toBe(2)
    await auth.close()
  })

  it('a mandate without delegation_graph_epoch is not asked about; revocation is checked first', async () => {
    const asked: string[] = []
    const inner = new InMemoryRevocationStore()
    const store: RevocationStore = {
      isRevoked: (anchor) => inner.isRevoked(anchor),
      markRevoked: (anchor, ttl) => inner.markRevoked(anchor, ttl),
      currentDelegationEpoch: (zone) => {
        asked.push(zone)
        return 10
      },
    }
    const auth = seedAuth(store)
    await auth.verify(sts.mintDelegated({ overrides: { delegation_graph_epoch: undefined } }))
    expect(asked).toEqual([])
    const token = sts.mintDelegated({ epoch: 1 })
    inner.markRevoked('root-dev')
    expect(await rejection(auth.verify(token))).toMatchObject({ code: 'session_revoked' })
    expect(asked).toEqual([])
    await auth.close()
  })

  it('an asynchronous store is awaited; a failing or nonsensical one fails closed as unavailable', async () => {
    let answer: () => unknown = () => Promise.resolve(7)
    const inner = new InMemoryRevocationStore()
    const store = {
      isRevoked: (anchor: string) => Promise.resolve(inner.isRevoked(anchor)),
      markRevoked: (anchor: string) => inner.markRevoked(anchor),
      currentDelegationEpoch: () => answer() as number,
    }
    const auth = seedAuth(store)
    expect(await rejection(auth.verify(sts.mintDelegated({ epoch: 6 })))).toMatchObject({ code: 'delegation_stale' })
    await expect(auth.verify(sts.mintDelegated({ epoch: 7 }))).resolves.toMatchObject({ graphEpoch: 7 })
    for (const broken of [
      () => Promise.reject(new Error('redis down')),
      () => {
        throw new Error('redis down')
      },
      () => undefined,
      () => Number.NaN,
    ]) {
      answer = broken
      const error = await rejection(auth.verify(sts.mintDelegated({ epoch: 7 })))
      expect(error).toMatchObject({ code: 'session_revoked', unavailable: true })
      expect(error.description).toBe('revocation state unavailable: the store failed')
    }
    await auth.close()
  })

  it('a synchronous store keeps verify synchronous: the promise is settled when returned', async () => {
    const store = new InMemoryRevocationStore()
    store.markDelegationEpoch('zone-prod', 2)
    const auth = seedAuth(store)
    const token = sts.mintDelegated({ epoch: 2 })
    await auth.verify(token) // fetches the keys
    let settled = false
    void auth.verify(token).then(() => {
      settled = true
    })
    await Promise.resolve()
    expect(settled).toBe(true)
    await auth.close()
  })
})

describe('names of the Caracal TypeScript packages', () => {
  const base = { issuer: 'https://sts.example.com', audience: 'a', revocations: new InMemoryRevocationStore() }

  it('zoneId is expectedZoneId and requireSession is requireAgent', () => {
    const auth = new CaracalAuth({ ...base, zoneId: 'z1', requireSession: true })
    expect(auth.options.policy).toMatchObject({ expectedZoneId: 'z1', requireAgent: true })
    const both = new CaracalAuth({
      ...base,
      zoneId: 'z1',
      expectedZoneId: 'z1',
      requireSession: false,
      requireAgent: false,
    })
    expect(both.options.policy).toMatchObject({ expectedZoneId: 'z1', requireAgent: false })
  })

  it.each([
    [
      { zoneId: 'z1', expectedZoneId: 'z2' },
      'CaracalAuth option "zoneId" is another name for "expectedZoneId"; they are set to different values',
    ],
    [
      { requireSession: true, requireAgent: false },
      'CaracalAuth option "requireSession" is another name for "requireAgent"; they are set to different values',
    ],
    [{ zoneId: '' }, 'CaracalAuth option "zoneId" must be a non-empty string'],
    [{ requireSession: 'yes' }, 'CaracalAuth option "requireSession" must be a boolean'],
  ])('%o is a TypeError that names the option', (extra, message) => {
    expect(() => new CaracalAuth({ ...base, ...extra } as never)).toThrow(new TypeError(message))
  })

  it('requireSession refuses a mandate without an agent session as agent_required', async () => {
    const auth = new CaracalAuth({
      issuer: sts.issuer,
      audience: sts.audience,
      revocations: new InMemoryRevocationStore(),
      zoneId: sts.zoneId,
      requireSession: true,
    })
    const error = await rejection(auth.verify(sts.mintDelegated({ overrides: { agent_session_id: undefined } })))
    expect(error).toMatchObject({ code: 'agent_required', status: 403 })
    expect(error).toBeInstanceOf(CaracalAuthError)
    await auth.close()
  })
})

describe('InMemoryRevocationStore epochs', () => {
  it('only ever raise, per zone, and expire with their TTL', () => {
    let now = 1_000_000
    const store = new InMemoryRevocationStore({ now: () => now })
    expect(store.currentDelegationEpoch('z')).toBe(0)
    store.markDelegationEpoch('z', 3, 1000)
    store.markDelegationEpoch('z', 2, 5000)
    expect(store.currentDelegationEpoch('z')).toBe(3)
    store.markDelegationEpoch('z', 4, 1000)
    expect(store.currentDelegationEpoch('z')).toBe(4)
    expect(store.currentDelegationEpoch('y')).toBe(0)
    now += 1000
    expect(store.currentDelegationEpoch('z')).toBe(0)
  })

  it.each([
    [['', 1], 'zoneId must be a non-empty string'],
    [['z', -1], 'epoch must be a non-negative integer'],
    [['z', 1.5], 'epoch must be a non-negative integer'],
    [['z', 1, 0], 'ttlMs must be a positive number'],
  ])('markDelegationEpoch(%o) is a TypeError', (args, message) => {
    const store = new InMemoryRevocationStore()
    expect(() => store.markDelegationEpoch(...(args as [string, number, number?]))).toThrow(new TypeError(message))
  })
})
