/**
 * `caracal-fastmcp/compat/verify` against the contract of `@caracalai/verify`: the calls as the
 * Caracal package's tests make them (a mocked revocation store, a stubbed global fetch, keys from
 * WebCrypto), every code's result object, description, hint, status and body as its source defines
 * them (written out here), the fetch-standard helpers, the Caracal-deployment rules against the
 * stand-in STS on every backend, and issue 12's requirement: many per-route overrides cost one JWKS
 * fetch and one signature check per token.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  authErrorBody,
  authenticate,
  authenticateRequest,
  checkActiveAuthority,
  createMandateVerifier,
  extractBearer,
  httpStatusForAuthError,
  unauthorizedResponse,
  type AuthError,
  type AuthErrorCode,
  type AuthResult,
  type Principal,
} from '../src/compat/verify.js'
import * as verifyModule from '../src/compat/verify.js'
import { clearJwksCache, createJwksCache } from '../src/compat/identity.js'
import { createJwksCacheOn, registryOf } from '../src/compat/identity-core.js'
import { InMemoryRevocationStore } from '../src/index.js'
import { RedisRevocationStore } from '../src/redis.js'
import { TEST_BACKENDS } from './support/backends.js'
import { CaracalCoordinator } from './support/caracal-coordinator.js'
import { startCaracalSts, type CaracalSts } from './support/caracal-sts.js'
import {
  closeClients,
  connectedClient,
  describeWithRedis,
  dropNamespace,
  eventually,
  redisClient,
  uniqueNames,
} from './support/redis.js'
import { caracalTestIssuers } from './support/caracal-test-issuers.js'

// ---------------------------------------------------------------------------------------------
// As the Caracal verify tests set up: a mocked store, a fetch that serves each issuer's key.

/** The real fetch, for the loopback STS: the Caracal-style tests below stub the global one. */
const realFetch = globalThis.fetch

const revocations = {
  isRevoked: vi.fn(),
  markRevoked: vi.fn(),
  currentDelegationEpoch: vi.fn(),
  markDelegationEpoch: vi.fn(),
}
const AUD = 'resource://api'
const issuers = caracalTestIssuers(AUD)

beforeEach(() => {
  issuers.stubFetch()
})
afterEach(() => {
  for (const m of Object.values(revocations)) m.mockReset()
  issuers.keys.clear()
  clearJwksCache()
  vi.unstubAllGlobals()
})

async function mintToken(
  claims: Record<string, unknown> = {},
  scopes = 'mcp:call',
): Promise<{ token: string; issuer: string; audience: string }> {
  return { ...(await issuers.mint({ scope: scopes, ...claims })), audience: AUD }
}

const principal = (extra: Partial<Principal> = {}): Principal => ({
  sub: 'user-1',
  zoneId: 'zone-1',
  clientId: 'app-1',
  authorityRecordId: 'sid-1',
  rootAuthorityRecordId: 'root-1',
  use: 'resource',
  subType: 'user',
  jti: 'jti-1',
  issuedAt: 10,
  expiresAt: 20,
  scope: 'mcp:call',
  ...extra,
})

const errorOf = (r: AuthResult): AuthError => {
  if (r.ok) throw new Error('expected a refusal, but the mandate was accepted')
  return r.error
}

describe('authenticate, called as the Caracal verify tests call it', () => {
  it('extracts bearer tokens in any case, trimmed, in linear time', () => {
    expect(extractBearer('Bearer token-1')).toBe('token-1')
    expect(extractBearer('bearer token-1')).toBe('token-1')
    expect(extractBearer('BEARER token-1')).toBe('token-1')
    expect(extractBearer('Bearer\t token-1  ')).toBe('token-1')
    expect(extractBearer('Bearer   ')).toBeNull()
    expect(extractBearer('Bearertoken-1')).toBeNull()
    expect(extractBearer('Basic abc')).toBeNull()
    expect(extractBearer(undefined)).toBeNull()
    const started = performance.now()
    expect(extractBearer(`Bearer ${' '.repeat(100_000)}token-1`)).toBe('token-1')
    expect(extractBearer(`Bearer ${' '.repeat(100_000)}`)).toBeNull()
    expect(performance.now() - started).toBeLessThan(200)
  })

  it('a missing token is refused without asking the store', async () => {
    const result = await authenticate('', {
      issuer: 'https://issuer.example.com',
      audience: AUD,
      zoneId: 'zone-1',
      revocations,
    })
    expect(result).toEqual({
      ok: false,
      error: {
        code: 'missing_token',
        description: 'Missing bearer token',
        hint: 'Send Authorization: Bearer <Caracal mandate>.',
      },
    })
    expect(revocations.isRevoked).not.toHaveBeenCalled()
  })

  it('a verified mandate without a revocation store is refused', async () => {
    const { token, issuer, audience } = await mintToken()
    expect(
      errorOf(await authenticate(token, { issuer, audience, zoneId: 'zone-1', revocations: undefined as never })),
    ).toMatchObject({
      code: 'invalid_token',
      description: 'Revocation store required',
    })
  })

  it('returns the principal under the Caracal names and asks the store for every anchor', async () => {
    const { token, issuer, audience } = await mintToken({
      agent_session_id: 'agent-1',
      delegation_edge_id: 'edge-1',
      delegation_chain: [{ application_id: 'app-parent' }],
      hop_count: 2,
      target: [AUD],
    })
    revocations.isRevoked.mockResolvedValue(false)
    const result = await authenticate(token, {
      issuer,
      audience,
      zoneId: 'zone-1',
      requiredScopes: ['mcp:call'],
      requiredTargets: [AUD],
      requireSession: true,
      requireDelegation: true,
      requireChainContains: ['app-parent'],
      maxHopCount: 4,
      revocations,
    })
    expect(result).toMatchObject({
      ok: true,
      principal: {
        sub: 'user-1',
        zoneId: 'zone-1',
        clientId: 'app-1',
        authorityRecordId: 'sid-1',
        rootAuthorityRecordId: 'root-1',
        subType: 'user',
        scope: 'mcp:call',
        sessionId: 'agent-1',
        delegationId: 'edge-1',
        hopCount: 2,
      },
    })
    expect(revocations.isRevoked.mock.calls.map((c) => c[0])).toEqual(['sid-1', 'root-1', 'agent-1', 'edge-1'])
  })

  it('a revoked anchor — any of the four — is session_revoked', async () => {
    for (const [claims, anchor] of [
      [{}, 'sid-1'],
      [{ root_sid: 'root-9' }, 'root-9'],
      [{ agent_session_id: 'agent-1' }, 'agent-1'],
      [{ delegation_edge_id: 'edge-1' }, 'edge-1'],
    ] as const) {
      const { token, issuer, audience } = await mintToken(claims)
      revocations.isRevoked.mockImplementation(async (a: string) => a === anchor)
      expect(errorOf(await authenticate(token, { issuer, audience, zoneId: 'zone-1', revocations }))).toEqual({
        code: 'session_revoked',
        description: 'Session revoked',
        hint: 'Refresh the mandate or start a new authorized session.',
      })
    }
  })

  it('a mandate from an older delegation graph is delegation_stale; the epoch is asked per zone', async () => {
    const { token, issuer, audience } = await mintToken({ delegation_edge_id: 'edge-1', delegation_graph_epoch: 7 })
    revocations.isRevoked.mockResolvedValue(false)
    revocations.currentDelegationEpoch.mockResolvedValue(8)
    expect(errorOf(await authenticate(token, { issuer, audience, zoneId: 'zone-1', revocations }))).toMatchObject({
      code: 'delegation_stale',
      description: 'Delegation graph changed',
    })
    expect(revocations.currentDelegationEpoch).toHaveBeenCalledWith('zone-1')
    revocations.currentDelegationEpoch.mockResolvedValue(7)
    expect((await authenticate(token, { issuer, audience, zoneId: 'zone-1', revocations })).ok).toBe(true)
  })

  it.each([
    [
      'a missing required scope',
      { requiredScopes: ['admin:call'] },
      {},
      'insufficient_scope',
      'Missing scope: admin:call',
    ],
    [
      'a missing required target',
      { requiredTargets: ['resource://tools/calendar'] },
      { target: ['resource://tools/files'] },
      'invalid_token',
      'Token validation failed',
    ],
    ['a session mandate', {}, { use: 'session' }, 'invalid_token', 'Token validation failed'],
    ['no governed session', { requireSession: true }, {}, 'session_required', 'Session required'],
    ['no delegation', { requireDelegation: true }, {}, 'delegation_required', 'Delegation required'],
    [
      'a chain without the application',
      { requireChainContains: ['app-parent'] },
      { delegation_chain: [{ application_id: 'app-child' }] },
      'chain_mismatch',
      'Delegation chain missing application: app-parent',
    ],
    ['too many hops', { maxHopCount: 1 }, { hop_count: 2 }, 'hop_count_exceeded', 'Hop count exceeded'],
    ['another zone', { zoneId: 'zone-2' }, {}, 'invalid_zone', 'Token zone validation failed'],
    ['another zone claimed by the token', {}, { zone_id: 'zone-evil' }, 'invalid_zone', 'Token zone validation failed'],
  ] as const)('maps %s', async (_n, deps, claims, code, description) => {
    const { token, issuer, audience } = await mintToken(claims)
    revocations.isRevoked.mockResolvedValue(false)
    expect(
      errorOf(await authenticate(token, { issuer, audience, zoneId: 'zone-1', revocations, ...(deps as object) })),
    ).toMatchObject({ code, description })
  })

  it('a malformed token is invalid_token', async () => {
    expect(
      errorOf(
        await authenticate('invalid.jwt.token', {
          issuer: 'https://issuer.example.com',
          audience: AUD,
          zoneId: 'zone-1',
          revocations,
        }),
      ),
    ).toMatchObject({
      code: 'invalid_token',
      description: 'Token validation failed',
    })
  })

  it('reuses verifier defaults and takes route-level requirements', async () => {
    const { token, issuer, audience } = await mintToken({ target: [AUD] })
    revocations.isRevoked.mockResolvedValue(false)
    const verifier = createMandateVerifier({ issuer, audience, zoneId: 'zone-1', revocations })
    expect(
      await verifier.authorization(`Bearer ${token}`, { requiredScopes: ['mcp:call'], requiredTargets: [AUD] }),
    ).toMatchObject({
      ok: true,
      principal: { authorityRecordId: 'sid-1' },
    })
    expect(errorOf(await verifier.require({ requiredScopes: ['admin:call'] }).authenticate(token))).toEqual({
      code: 'insufficient_scope',
      description: 'Missing scope: admin:call',
      hint: 'Request a mandate that includes every required scope for this route.',
    })
    expect(errorOf(await verifier.authorization(undefined))).toMatchObject({ code: 'missing_token' })
    expect(verifier.defaults.issuer).toBe(issuer)
  })

  it('warmup warms an injected JWKS cache, or fetches the zone keyset into the default one', async () => {
    const cache = { warm: vi.fn(async () => undefined), getKeySet: vi.fn(), clear: vi.fn() }
    await createMandateVerifier({
      issuer: 'https://issuer-cache.example.com',
      audience: AUD,
      zoneId: 'zone-1',
      revocations,
      jwksCache: cache,
    }).warmup()
    expect(cache.warm).toHaveBeenCalledWith('https://issuer-cache.example.com', 'zone-1')
    const { token, issuer, audience } = await mintToken()
    const verifier = createMandateVerifier({ issuer, audience, zoneId: 'zone-1', revocations })
    await expect(verifier.warmup()).resolves.toBeUndefined()
    expect(fetch).toHaveBeenCalledWith(`${issuer}/.well-known/jwks.json?zone_id=zone-1`, expect.anything())
    revocations.isRevoked.mockResolvedValue(false)
    expect((await verifier.authenticate(token)).ok).toBe(true)
    expect(fetch).toHaveBeenCalledTimes(1)
  })

  it('checkActiveAuthority: expired during execution, no sid, revoked, active', async () => {
    revocations.isRevoked.mockResolvedValue(false)
    expect(await checkActiveAuthority(principal(), revocations, 21_000)).toEqual({
      code: 'invalid_token',
      description: 'Token expired during execution',
      hint: 'Check issuer, audience, signature, expiry, token use, scopes, and targets.',
    })
    expect(
      await checkActiveAuthority(principal({ authorityRecordId: '', rootAuthorityRecordId: '' }), revocations, 10_000),
    ).toMatchObject({
      code: 'invalid_token',
      description: 'Token validation failed',
    })
    expect(await checkActiveAuthority(principal(), revocations, 10_000)).toBeNull()
    revocations.isRevoked.mockResolvedValue(true)
    expect(await checkActiveAuthority(principal(), revocations, 10_000)).toMatchObject({ code: 'session_revoked' })
    expect(checkActiveAuthority(principal(), { isRevoked: () => false }, 10_000)).toBeInstanceOf(Promise)
  })
})

describe('codes, descriptions, hints, statuses and bodies as the Caracal source defines them', () => {
  // Every AuthErrorCode of @caracalai/verify with its default description, hint and status.
  const CODES: [AuthErrorCode, string, string, number][] = [
    ['missing_token', 'Missing bearer token', 'Send Authorization: Bearer <Caracal mandate>.', 401],
    [
      'invalid_token',
      'Token validation failed',
      'Check issuer, audience, signature, expiry, token use, scopes, and targets.',
      401,
    ],
    ['invalid_zone', 'Token zone validation failed', 'Check the configured zoneId and the mandate zone_id claim.', 401],
    [
      'insufficient_scope',
      'Required scope is missing',
      'Request a mandate that includes every required scope for this route.',
      403,
    ],
    ['session_revoked', 'Session revoked', 'Refresh the mandate or start a new authorized session.', 401],
    [
      'delegation_stale',
      'Delegation graph changed',
      'Refresh the mandate so delegated authority is evaluated against the latest graph.',
      401,
    ],
    ['session_required', 'Session required', 'Use a resource mandate issued for a governed Session.', 403],
    ['delegation_required', 'Delegation required', 'Use a mandate produced by a delegated grant flow.', 403],
    [
      'chain_mismatch',
      'Delegation chain validation failed',
      'Check requireChainContains and the mandate delegation chain.',
      403,
    ],
    ['hop_count_exceeded', 'Hop count exceeded', 'Reduce delegation depth or raise maxHopCount deliberately.', 403],
  ]

  it('exports exactly the runtime names of @caracalai/verify', () => {
    expect(Object.keys(verifyModule).sort()).toEqual(
      [
        'authErrorBody',
        'authenticate',
        'authenticateRequest',
        'checkActiveAuthority',
        'createMandateVerifier',
        'extractBearer',
        'httpStatusForAuthError',
        'unauthorizedResponse',
      ].sort(),
    )
  })

  it.each(CODES)('%s: status, body and response', async (code, description, hint, status) => {
    expect(httpStatusForAuthError(code)).toBe(status)
    expect(authErrorBody({ code, description, hint })).toEqual({
      error: code,
      error_description: description,
      error_hint: hint,
    })
    const response = unauthorizedResponse({ code, description, hint })
    expect(response.status).toBe(status)
    expect(response.headers.get('content-type')).toBe('application/json')
    expect(await response.json()).toEqual({ error: code, error_description: description, error_hint: hint })
  })

  it('the result of each code, reached through authenticate, carries its description and hint', async () => {
    const { token, issuer, audience } = await mintToken({ delegation_graph_epoch: 1, hop_count: 3 })
    const deps = { issuer, audience, zoneId: 'zone-1', revocations }
    const reach: Partial<Record<AuthErrorCode, () => Promise<AuthResult>>> = {
      missing_token: () => authenticate('', deps),
      invalid_token: () => authenticate(`${token}x`, deps),
      invalid_zone: () => authenticate(token, { ...deps, zoneId: 'zone-2' }),
      insufficient_scope: () => authenticate(token, { ...deps, requiredScopes: ['admin'] }),
      session_revoked: () => {
        revocations.isRevoked.mockResolvedValue(true)
        return authenticate(token, deps)
      },
      delegation_stale: () => {
        revocations.isRevoked.mockResolvedValue(false)
        revocations.currentDelegationEpoch.mockResolvedValue(2)
        return authenticate(token, deps)
      },
      session_required: () => authenticate(token, { ...deps, requireSession: true }),
      delegation_required: () => authenticate(token, { ...deps, requireDelegation: true }),
      chain_mismatch: () => authenticate(token, { ...deps, requireChainContains: ['app-x'] }),
      hop_count_exceeded: () => authenticate(token, { ...deps, maxHopCount: 2 }),
    }
    const overridden: Partial<Record<AuthErrorCode, string>> = {
      insufficient_scope: 'Missing scope: admin',
      chain_mismatch: 'Delegation chain missing application: app-x',
    }
    for (const [code, description, hint] of CODES) {
      const error = errorOf(await reach[code]!())
      expect(error, code).toEqual({ code, description: overridden[code] ?? description, hint })
    }
  })

  it('an unknown code answers 401 and the body of what it was given', () => {
    expect(httpStatusForAuthError('agent_required' as AuthErrorCode)).toBe(401)
    expect(authErrorBody({ code: 'invalid_token', description: 'd' })).toEqual({
      error: 'invalid_token',
      error_description: 'd',
    })
  })
})

describe('fetch-standard helpers', () => {
  it('authenticateRequest: no header and a non-bearer header are missing_token; a valid one is accepted, a tampered one not', async () => {
    const { token, issuer, audience } = await mintToken()
    const deps = { issuer, audience, zoneId: 'zone-1', revocations }
    revocations.isRevoked.mockResolvedValue(false)
    revocations.currentDelegationEpoch.mockResolvedValue(null)
    const req = (authorization?: string) =>
      new Request('https://api.example/tools', authorization === undefined ? {} : { headers: { authorization } })
    expect(errorOf(await authenticateRequest(req(), deps)).code).toBe('missing_token')
    expect(errorOf(await authenticateRequest(req('Basic abc123'), deps)).code).toBe('missing_token')
    const ok = await authenticateRequest(req(`Bearer ${token}`), deps)
    expect(ok.ok && ok.principal.sub).toBe('user-1')
    expect(errorOf(await authenticateRequest(req(`Bearer ${token}x`), deps)).code).toBe('invalid_token')
  })

  it('unauthorizedResponse leaves error_hint out when there is none', async () => {
    const response = unauthorizedResponse({ code: 'invalid_token', description: 'Token validation failed' })
    expect(response.status).toBe(401)
    expect(await response.json()).toEqual({ error: 'invalid_token', error_description: 'Token validation failed' })
  })
})

describe('stricter than the original, same shapes', () => {
  it('a store that throws or answers a non-boolean fails closed as session_revoked, marked unavailable (not enumerable)', async () => {
    const { token, issuer, audience } = await mintToken()
    for (const isRevoked of [
      () => {
        throw new Error('redis down')
      },
      async () => Promise.reject(new Error('redis down')),
      () => undefined,
    ]) {
      const error = errorOf(
        await authenticate(token, { issuer, audience, zoneId: 'zone-1', revocations: { isRevoked } as never }),
      )
      expect(error).toEqual({
        code: 'session_revoked',
        description: 'Session revoked',
        hint: 'Refresh the mandate or start a new authorized session.',
      })
      expect((error as { unavailable?: boolean }).unavailable).toBe(true)
      expect(Object.keys(error)).toEqual(['code', 'description', 'hint'])
    }
  })

  it('an epoch that is not a number fails closed', async () => {
    const { token, issuer, audience } = await mintToken({ delegation_graph_epoch: 3 })
    const store = { isRevoked: () => false, currentDelegationEpoch: () => null }
    expect(
      errorOf(await authenticate(token, { issuer, audience, zoneId: 'zone-1', revocations: store as never })),
    ).toMatchObject({ code: 'session_revoked' })
  })

  it('a JWKS that cannot be fetched is invalid_token, marked unavailable', async () => {
    const { token, audience } = await mintToken()
    const error = errorOf(
      await authenticate(token, {
        issuer: 'https://issuer-unknown.example.com',
        audience,
        zoneId: 'zone-1',
        revocations,
      }),
    )
    expect(error).toMatchObject({ code: 'invalid_token', description: 'Token validation failed' })
    expect((error as { unavailable?: boolean }).unavailable).toBe(true)
  })

  it("this library's InMemoryRevocationStore, and any object with isRevoked, serve as the store", async () => {
    const { token, issuer, audience } = await mintToken({ agent_session_id: 'agent-7' })
    const store = new InMemoryRevocationStore()
    const deps = { issuer, audience, zoneId: 'zone-1', revocations: store }
    expect((await authenticate(token, deps)).ok).toBe(true)
    store.markRevoked('agent-7')
    expect(errorOf(await authenticate(token, deps)).code).toBe('session_revoked')
    expect((await authenticate(token, { ...deps, revocations: { isRevoked: () => false } })).ok).toBe(true)
  })
})

describe.each(TEST_BACKENDS)('a Caracal deployment through compat/verify on %s', (backend) => {
  let sts: CaracalSts
  beforeAll(async () => {
    sts = await startCaracalSts('zone-prod')
  })
  afterAll(async () => {
    await sts.close()
  })

  it('many per-route overrides: one JWKS fetch, one signature check per token, each route decides on its own', async () => {
    const jwksCache = createJwksCacheOn(backend, { fetchImpl: realFetch })
    const store = new InMemoryRevocationStore()
    const verifier = createMandateVerifier({
      issuer: sts.issuer,
      audience: sts.audience,
      zoneId: sts.zoneId,
      revocations: store,
      jwksCache,
    })
    await verifier.warmup()
    const routes: [Record<string, unknown>, AuthErrorCode | 'ok'][] = [
      [{}, 'ok'],
      [{ requiredScopes: ['documents:read'] }, 'ok'],
      [{ requiredScopes: ['admin'] }, 'insufficient_scope'],
      [{ requireSession: true, requireDelegation: true }, 'ok'],
      [{ requireChainContains: ['app-orchestrator'] }, 'ok'],
      [{ requireChainContains: ['app-billing'] }, 'chain_mismatch'],
      [{ maxHopCount: 1 }, 'ok'],
      [{ requiredTargets: ['resource://documents'] }, 'invalid_token'],
      [{ requiredUse: 'resource' }, 'ok'],
    ]
    const tokens = Array.from({ length: 12 }, () => sts.mintDelegated())
    // The first route a token meets refuses it: nothing about a refusal may cost a second check later.
    for (const [overrides, want] of [...routes.slice(2), ...routes.slice(0, 2)]) {
      for (const t of tokens) {
        const r = await verifier.authenticate(t, overrides)
        expect(r.ok ? 'ok' : r.error.code, JSON.stringify(overrides)).toBe(want)
      }
    }
    const engines = registryOf(jwksCache).engines()
    expect(engines).toHaveLength(1)
    expect(engines[0]!.stats().cache).toMatchObject({
      misses: tokens.length,
      hits: tokens.length * (routes.length - 1),
    })
    expect(sts.jwksRequests).toEqual(['/.well-known/jwks.json?zone_id=zone-prod'])
    jwksCache.clear()
  })

  it('revocation, epochs, zone, hop names and exp, as a Caracal resource server sees them', async () => {
    const jwksCache = createJwksCacheOn(backend, { fetchImpl: realFetch })
    const store = new InMemoryRevocationStore()
    const deps = { issuer: sts.issuer, audience: sts.audience, zoneId: sts.zoneId, revocations: store, jwksCache }
    const token = sts.mintDelegated({ epoch: 5 })
    const ok = await authenticate(token, { ...deps, requireSession: true })
    if (!ok.ok) throw new Error(`expected acceptance, got ${ok.error.code}`)
    expect(ok.principal.delegationChain?.[0]).toMatchObject({ applicationId: 'app-orchestrator' })
    store.markDelegationEpoch('zone-prod', 5)
    expect((await authenticate(token, deps)).ok).toBe(true)
    store.markDelegationEpoch('zone-prod', 6)
    expect(errorOf(await authenticate(token, deps)).code).toBe('delegation_stale')
    const next = sts.mintDelegated({ epoch: 6 })
    expect((await authenticate(next, deps)).ok).toBe(true)
    await sts.dev.revoke(ok.principal.delegationId!, store)
    expect(
      errorOf(
        await authenticate(
          sts.mintDelegated({ epoch: 6, overrides: { delegation_edge_id: ok.principal.delegationId } }),
          deps,
        ),
      ).code,
    ).toBe('session_revoked')
    expect(errorOf(await authenticate(sts.mintDelegated({ overrides: { zone_id: 'zone-b' } }), deps)).code).toBe(
      'invalid_zone',
    )
    const now = Math.floor(Date.now() / 1000)
    expect(
      errorOf(await authenticate(sts.mintDelegated({ epoch: 6, overrides: { iat: now - 60, exp: now } }), deps)),
    ).toMatchObject({
      code: 'invalid_token',
      description: 'Token validation failed',
    })
    expect(errorOf(await authenticate(sts.mintDelegated({ epoch: 6, overrides: { hop_count: 11 } }), deps)).code).toBe(
      'hop_count_exceeded',
    )
    jwksCache.clear()
  })
})

describe('a cache of createJwksCache in the defaults', () => {
  it('is the one the verifier verifies with: its fetchImpl is used, and warmup fills it', async () => {
    const { token, issuer, audience } = await mintToken()
    const calls: string[] = []
    const jwksCache = createJwksCache({
      fetchImpl: (input, init) => {
        calls.push(String(input))
        return fetch(input, init)
      },
    })
    revocations.isRevoked.mockReturnValue(false)
    const verifier = createMandateVerifier({ issuer, audience, zoneId: 'zone-1', revocations, jwksCache })
    await verifier.warmup()
    expect((await verifier.authenticate(token, { requiredScopes: ['mcp:call'] })).ok).toBe(true)
    expect(calls).toEqual([`${issuer}/.well-known/jwks.json?zone_id=zone-1`])
  })
})

describeWithRedis("compat/verify with RedisRevocationStore fed by Caracal's coordinator", () => {
  it('a coordinator revocation and an epoch bump reach authenticate within 1 s; the mirror answers synchronously', async () => {
    const admin = await connectedClient()
    const n = uniqueNames('compat-verify')
    const sts = await startCaracalSts('zone-prod')
    const store = new RedisRevocationStore(redisClient(), { failClosed: true, ...n.store })
    try {
      await store.ready()
      const coordinator = new CaracalCoordinator(admin, {
        revokeStream: n.stream,
        delegationStream: n.delegationStream,
      })
      const jwksCache = createJwksCache({ fetchImpl: realFetch })
      const verifier = createMandateVerifier({
        issuer: sts.issuer,
        audience: sts.audience,
        zoneId: sts.zoneId,
        revocations: store,
        jwksCache,
      })
      const token = sts.mintDelegated({ epoch: 1 })
      const first = await verifier.authenticate(token, { requireSession: true })
      if (!first.ok) throw new Error(`expected acceptance, got ${first.error.code}`)
      // No round trip per check: the anchors and the epoch are answered from the local mirror.
      expect(checkActiveAuthority(first.principal, { isRevoked: (a) => store.isRevoked(a) as boolean })).toBeInstanceOf(
        Promise,
      )
      expect(store.isRevoked(first.principal.sessionId!)).toBe(false)
      await coordinator.createEdge({ zoneId: 'zone-prod', edgeId: 'e-1', sourceSessionId: 'a', targetSessionId: 'b' })
      await eventually(() => store.currentDelegationEpoch('zone-prod') === 1, 1_000, 'epoch 1')
      expect((await verifier.authenticate(token)).ok).toBe(true)
      await coordinator.createEdge({ zoneId: 'zone-prod', edgeId: 'e-2', sourceSessionId: 'a', targetSessionId: 'c' })
      await eventually(() => store.currentDelegationEpoch('zone-prod') === 2, 1_000, 'epoch 2')
      expect(errorOf(await verifier.authenticate(token)).code).toBe('delegation_stale')
      const current = sts.mintDelegated({ epoch: 2 })
      const ok = await verifier.authenticate(current)
      if (!ok.ok) throw new Error(`expected acceptance, got ${ok.error.code}`)
      await coordinator.revokeSession({ zoneId: 'zone-prod', sessionId: ok.principal.sessionId! })
      await eventually(() => store.isRevoked(ok.principal.sessionId!) === true, 1_000, 'the revocation')
      expect(errorOf(await verifier.authenticate(current))).toEqual({
        code: 'session_revoked',
        description: 'Session revoked',
        hint: 'Refresh the mandate or start a new authorized session.',
      })
      jwksCache.clear()
    } finally {
      await store.close()
      await sts.close()
      await dropNamespace(admin, n.namespace)
      closeClients()
    }
  })
})
