/** Every option of `CaracalAuth` is validated in the constructor: a bad value is a TypeError naming it. */
import { describe, expect, it } from 'vitest'
import { CaracalAuth, InMemoryRevocationStore } from '../src/index.js'
import { isBackendAvailable } from '../src/backends/index.js'
import { TEST_BACKENDS } from './support/backends.js'
import { AUDIENCE, ISSUER, esKey, mint, staticJwks } from './support/mandates.js'
import { testClock } from './support/test-clock.js'

const revocations = new InMemoryRevocationStore()
const minimal = { issuer: ISSUER, audience: AUDIENCE, revocations }
const make = (options: unknown) => () => new CaracalAuth(options as never)

/** [option name as the message must show it, options object]. */
const bad: [string, Record<string, unknown>][] = [
  ['issuer', { audience: AUDIENCE, revocations }],
  ['issuer', { ...minimal, issuer: '' }],
  ['issuer', { ...minimal, issuer: 5 }],
  ['issuer', { ...minimal, issuer: 'not a url' }],
  ['audience', { issuer: ISSUER, revocations }],
  ['audience', { ...minimal, audience: '' }],
  ['audience', { ...minimal, audience: [] }],
  ['audience', { ...minimal, audience: [''] }],
  ['audience', { ...minimal, audience: [AUDIENCE, 5] }],
  ['audience', { ...minimal, audience: 5 }],
  ['revocations', { issuer: ISSUER, audience: AUDIENCE }],
  ['revocations', { ...minimal, revocations: {} }],
  ['revocations', { ...minimal, revocations: { isRevoked: () => false } }],
  ['revocations', { ...minimal, revocations: { isRevoked: true, markRevoked: () => {} } }],
  ['revocations', { ...minimal, revocations: null }],
  ['requiredScopes', { ...minimal, requiredScopes: 'tool:call' }],
  ['requiredScopes', { ...minimal, requiredScopes: [''] }],
  ['requiredScopes', { ...minimal, requiredScopes: [1] }],
  ['requiredScopes', { ...minimal, requiredScopes: ['tool:call documents:read'] }],
  ['expectedZoneId', { ...minimal, expectedZoneId: '' }],
  ['expectedZoneId', { ...minimal, expectedZoneId: 5 }],
  ['requireAgent', { ...minimal, requireAgent: 'yes' }],
  ['requireAgent', { ...minimal, requireAgent: 1 }],
  ['requireDelegation', { ...minimal, requireDelegation: 'true' }],
  ['requireChainContains', { ...minimal, requireChainContains: 'app-a' }],
  ['requireChainContains', { ...minimal, requireChainContains: [1] }],
  ['maxHopCount', { ...minimal, maxHopCount: 1.5 }],
  ['maxHopCount', { ...minimal, maxHopCount: -0.5 }],
  ['maxHopCount', { ...minimal, maxHopCount: null }],
  ['maxHopCount', { ...minimal, maxHopCount: '3' }],
  ['maxHopCount', { ...minimal, maxHopCount: Number.NaN }],
  ['maxHopCount', { ...minimal, maxHopCount: Number.POSITIVE_INFINITY }],
  ['maxHopCount', { ...minimal, maxHopCount: Number.NEGATIVE_INFINITY }],
  ['requiredTargets', { ...minimal, requiredTargets: 'resource://x' }],
  ['requiredTargets', { ...minimal, requiredTargets: [''] }],
  ['requiredUse', { ...minimal, requiredUse: 'admin' }],
  ['requiredUse', { ...minimal, requiredUse: 5 }],
  ['algorithms', { ...minimal, algorithms: [] }],
  ['algorithms', { ...minimal, algorithms: ['HS256'] }],
  ['algorithms', { ...minimal, algorithms: ['none'] }],
  ['algorithms', { ...minimal, algorithms: ['ES256', 'PS256'] }],
  ['algorithms', { ...minimal, algorithms: 'ES256' }],
  ['clockToleranceSec', { ...minimal, clockToleranceSec: -1 }],
  ['clockToleranceSec', { ...minimal, clockToleranceSec: Number.NaN }],
  ['clockToleranceSec', { ...minimal, clockToleranceSec: Number.POSITIVE_INFINITY }],
  ['clockToleranceSec', { ...minimal, clockToleranceSec: '60' }],
  ['clockToleranceSec', { ...minimal, clockToleranceSec: null }],
  ['cache', { ...minimal, cache: true }],
  ['cache', { ...minimal, cache: 5 }],
  ['cache', { ...minimal, cache: null }],
  ['cache.max', { ...minimal, cache: { max: 0 } }],
  ['cache.max', { ...minimal, cache: { max: -1 } }],
  ['cache.max', { ...minimal, cache: { max: 1.5 } }],
  ['cache.max', { ...minimal, cache: { max: '10' } }],
  ['backend', { ...minimal, backend: 'openssl' }],
  ['backend', { ...minimal, backend: 5 }],
  ['backend', { ...minimal, backend: 'AUTO' }],
  ['jwks', { ...minimal, jwks: 'https://sts.example/jwks.json' }],
  ['jwks', { ...minimal, jwks: null }],
  ['jwks.bogus', { ...minimal, jwks: { bogus: 1 } }],
  ['jwks.url', { ...minimal, jwks: { url: '' } }],
  ['jwks.url', { ...minimal, jwks: { url: 5 } }],
  ['jwks.url', { ...minimal, jwks: { url: 'not a url' } }],
  ['jwks.url', { ...minimal, jwks: { url: 'http://example.com/jwks.json' } }],
  ['jwks.keys', { ...minimal, jwks: { keys: 'x' } }],
  ['jwks.keys', { ...minimal, jwks: { keys: { keys: 'x' } } }],
  ['jwks.keys', { ...minimal, jwks: { keys: 5 } }],
  ['jwks.keys', { ...minimal, jwks: { keys: null } }],
  ['jwks', { ...minimal, jwks: { keys: staticJwks, url: `${ISSUER}/.well-known/jwks.json` } }],
  ['jwks.ttlMs', { ...minimal, jwks: { ttlMs: -1 } }],
  ['jwks.ttlMs', { ...minimal, jwks: { ttlMs: Number.NaN } }],
  ['jwks.ttlMs', { ...minimal, jwks: { ttlMs: '1000' } }],
  ['jwks.cooldownMs', { ...minimal, jwks: { cooldownMs: -5 } }],
  ['jwks.cooldownMs', { ...minimal, jwks: { cooldownMs: Number.POSITIVE_INFINITY } }],
  ['jwks.timeoutMs', { ...minimal, jwks: { timeoutMs: -1 } }],
  ['jwks.timeoutMs', { ...minimal, jwks: { timeoutMs: 'fast' } }],
  ['jwks.maxBytes', { ...minimal, jwks: { maxBytes: 10 } }],
  ['jwks.maxBytes', { ...minimal, jwks: { maxBytes: 1.5 } }],
  ['jwks.fetch', { ...minimal, jwks: { fetch: 'fetch' } }],
  ['maxTokenLength', { ...minimal, maxTokenLength: 0 }],
  ['maxTokenLength', { ...minimal, maxTokenLength: 15 }],
  ['maxTokenLength', { ...minimal, maxTokenLength: 1.5 }],
  ['maxTokenLength', { ...minimal, maxTokenLength: '8192' }],
  ['resourceMetadataUrl', { ...minimal, resourceMetadataUrl: '' }],
  ['resourceMetadataUrl', { ...minimal, resourceMetadataUrl: 5 }],
  ['now', { ...minimal, now: 'Date.now' }],
  ['now', { ...minimal, now: 5 }],
  ['tokenLength', { ...minimal, tokenLength: 100 }],
  ['audiences', { ...minimal, audiences: [AUDIENCE] }],
]

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

describe('CaracalAuth options', () => {
  it.each(bad)('a bad %s is a TypeError naming it', (name, options) => {
    expect(make(options)).toThrow(TypeError)
    expect(make(options)).toThrow(new RegExp(`"${escapeRegExp(name)}"`))
  })

  it.each([undefined, null, 'options', 5])('options %s is a TypeError', (options) => {
    expect(make(options)).toThrow(TypeError)
  })

  it('the minimal options construct', () => {
    expect(new CaracalAuth(minimal)).toBeInstanceOf(CaracalAuth)
  })

  it('every option at once constructs, and the defaults are the README ones', () => {
    const auth = new CaracalAuth({
      issuer: ISSUER,
      audience: [AUDIENCE, 'resource://other'],
      revocations,
      requiredScopes: ['tool:call'],
      expectedZoneId: 'zone-1',
      requireAgent: true,
      requireDelegation: false,
      requireChainContains: [],
      maxHopCount: 3,
      requiredTargets: [],
      requiredUse: 'resource',
      algorithms: ['ES256'],
      clockToleranceSec: 0,
      cache: { max: 10 },
      backend: 'noble',
      maxTokenLength: 4096,
      resourceMetadataUrl: 'https://mcp.example/.well-known/oauth-protected-resource',
      now: () => 0,
      jwks: {
        url: `${ISSUER}/keys.json`,
        ttlMs: 1000,
        cooldownMs: 0,
        timeoutMs: 100,
        maxBytes: 4096,
        fetch: globalThis.fetch,
      },
    })
    expect(auth.stats().backend).toEqual({ ES256: 'noble', RS256: 'noble' })
    const defaults = new CaracalAuth(minimal).options
    expect(defaults.policy.maxHopCount).toBe(10)
    expect(defaults.claimRules.expLeewaySec).toBe(0)
    expect(defaults.claimRules.futureLeewaySec).toBe(60)
    expect(defaults.claimRules.requiredUse).toBe('resource')
    expect([...defaults.algorithms].sort()).toEqual(['ES256', 'RS256'])
    expect(defaults.maxTokenLength).toBe(8192)
    expect(defaults.cacheMax).toBeGreaterThan(0)
    expect(defaults.jwks.url).toBe(`${ISSUER}/.well-known/jwks.json`)
  })

  it.each([
    [0, 10],
    [-1, 10],
    [-100, 10],
    [Number.MIN_SAFE_INTEGER, 10],
    [1, 1],
    [3, 3],
    [10, 10],
    [50, 50],
  ])('maxHopCount %s means %s (0 or less is the default, as in the plain Caracal verifier)', (given, effective) => {
    expect(new CaracalAuth({ ...minimal, maxHopCount: given }).options.policy.maxHopCount).toBe(effective)
  })

  it.each([
    [undefined, 0, 60],
    [0, 0, 0],
    [5, 5, 5],
    [2.5, 2.5, 2.5],
    [300, 300, 300],
  ])('clockToleranceSec %s: leeway %s s for exp, %s s for nbf and iat ahead', (given, exp, future) => {
    const { claimRules } = new CaracalAuth({ ...minimal, clockToleranceSec: given }).options
    expect([claimRules.expLeewaySec, claimRules.futureLeewaySec]).toEqual([exp, future])
  })

  it('the JWKS URL is built from the issuer without doubling a trailing slash', () => {
    expect(new CaracalAuth({ ...minimal, issuer: `${ISSUER}/` }).options.jwks.url).toBe(
      `${ISSUER}/.well-known/jwks.json`,
    )
  })

  it('jwks.keys takes a JWKS object or a bare array of JWKs', async () => {
    for (const keys of [staticJwks, staticJwks.keys]) {
      const auth = new CaracalAuth({ ...minimal, now: testClock().now, jwks: { keys } })
      await expect(auth.verify(mint({}, esKey))).resolves.toBeDefined()
    }
  })

  it.each([...new Set(['auto', ...TEST_BACKENDS] as const)])(
    'backend %s is accepted and reported by stats()',
    (backend) => {
      const auth = new CaracalAuth({ ...minimal, backend })
      const names = Object.values(auth.stats().backend)
      if (backend === 'auto') for (const n of names) expect(['node', 'wasm', 'noble']).toContain(n)
      else expect(names).toEqual([backend, backend])
    },
  )

  it('backend "wasm" is refused with a TypeError only when this build has no wasm module', () => {
    if (isBackendAvailable('wasm'))
      expect(new CaracalAuth({ ...minimal, backend: 'wasm' }).stats().backend.ES256).toBe('wasm')
    else expect(make({ ...minimal, backend: 'wasm' })).toThrow(/"backend"/)
  })

  it('options are read once: changing the object afterwards changes nothing', async () => {
    const audience = [AUDIENCE]
    const requiredScopes = ['tool:call']
    const auth = new CaracalAuth({
      ...minimal,
      audience,
      requiredScopes,
      now: testClock().now,
      jwks: { keys: staticJwks },
    })
    audience[0] = 'resource://other'
    requiredScopes.push('admin')
    await expect(auth.verify(mint())).resolves.toBeDefined()
  })
})
