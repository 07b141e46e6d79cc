/**
 * `caracal-fastmcp/compat/identity` against the contract of `@caracalai/identity`: the calls as the
 * Caracal package's own tests make them (keys from WebCrypto, a stubbed global fetch, an issuer per
 * test), the error classes with the fields and messages its source defines (written out here, not
 * read back), the scope helpers, the JWKS cache (one fetch per zone, warm, clear, getKeySet), and
 * the Caracal-deployment rules against the stand-in STS on every backend.
 */
import { jwtVerify } from 'jose'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  CaracalError,
  ChainMismatchError,
  DEFAULT_MAX_HOP_COUNT,
  DelegationRequiredError,
  HopCountExceededError,
  MANDATE_USE_RESOURCE,
  MANDATE_USE_SESSION,
  SUBJECT_TYPE_APPLICATION,
  SUBJECT_TYPE_USER,
  ScopeInsufficientError,
  SessionRequiredError,
  TokenInvalidError,
  ZoneInvalidError,
  clearJwksCache,
  createJwksCache,
  getKeySet,
  hasScope,
  parseScope,
  scopesAllowed,
  verify,
  verifyChainContains,
  warmJwks,
  type Claims,
} from '../src/compat/identity.js'
import * as identity from '../src/compat/identity.js'
import { createJwksCacheOn, registryOf } from '../src/compat/identity-core.js'
import type { CaracalAuthError } from '../src/errors.js'
import { TEST_BACKENDS } from './support/backends.js'
import { startCaracalSts, type CaracalSts } from './support/caracal-sts.js'
import { caracalTestIssuers } from './support/caracal-test-issuers.js'

// ---------------------------------------------------------------------------------------------
// A mandate as the Caracal tests mint one: a fresh P-256 key per issuer, served by a stubbed fetch.

const AUD = 'resource://api'
const issuers = caracalTestIssuers(AUD)
const stubFetch = (): ReturnType<typeof vi.fn> => issuers.stubFetch()

function mintToken(
  claims: Record<string, unknown> = {},
  scopes = 'read write',
): Promise<{ token: string; issuer: string }> {
  return issuers.mint({ scope: scopes, target: [AUD], ...claims })
}

const config = (issuer: string, extra: Record<string, unknown> = {}) => ({
  issuer,
  audience: AUD,
  zoneId: 'zone-1',
  ...extra,
})

/** The error `verify` rejected with; fails the test when it resolved. */
async function refusal(p: Promise<unknown>): Promise<CaracalError> {
  try {
    await p
  } catch (error) {
    return error as CaracalError
  }
  throw new Error('expected a rejection, but verification succeeded')
}

/** Why the engine refused, as it words it (the `cause` of a TokenInvalidError). */
const causeOf = (e: CaracalError): string | undefined => (e.cause as CaracalAuthError | undefined)?.description

afterEach(() => {
  clearJwksCache()
  issuers.keys.clear()
  vi.unstubAllGlobals()
})

describe('verify, called as the Caracal identity tests call it', () => {
  it('accepts a valid token and returns every claim under its Caracal name', async () => {
    stubFetch()
    const { token, issuer } = await mintToken({
      agent_session_id: 'agent-1',
      delegation_edge_id: 'edge-1',
      source_session_id: 'src-1',
      target_session_id: 'tgt-1',
      delegation_path: ['edge-0', 'edge-1'],
      delegation_chain: [{ application_id: 'app-parent', agent_session_id: 's1', delegation_edge_id: 'e1' }],
      hop_count: 2,
      delegation_graph_epoch: 7,
    })
    const claims = await verify(token, config(issuer))
    expect(claims).toMatchObject({
      sub: 'user-1',
      zoneId: 'zone-1',
      clientId: 'app-1',
      authorityRecordId: 'sid-1',
      rootAuthorityRecordId: 'root-1',
      use: 'resource',
      subType: 'user',
      jti: 'jti-1',
      scope: 'read write',
      targetResources: [AUD],
      sessionId: 'agent-1',
      delegationId: 'edge-1',
      sourceSessionId: 'src-1',
      targetSessionId: 'tgt-1',
      delegationPath: ['edge-0', 'edge-1'],
      hopCount: 2,
      graphEpoch: 7,
    })
    expect(claims.expiresAt).toBeGreaterThan(claims.issuedAt)
    expect(claims.delegationChain?.[0]).toEqual({ applicationId: 'app-parent', sessionId: 's1', delegationId: 'e1' })
  })

  it('fetches the zone keyset once, at the zone-scoped URL, for repeated calls', async () => {
    const fetchMock = stubFetch()
    const { token, issuer } = await mintToken()
    await verify(token, config(issuer))
    await verify(token, config(issuer, { requiredScopes: ['read'] }))
    expect(fetchMock).toHaveBeenCalledTimes(1)
    expect(fetchMock.mock.calls[0]![0]).toBe(`${issuer}/.well-known/jwks.json?zone_id=zone-1`)
  })

  it.each([
    ['a malformed token', undefined, {}, TokenInvalidError],
    ['a token without exp', { exp: undefined }, {}, TokenInvalidError],
    ['a token without sid', { sid: undefined }, {}, TokenInvalidError],
    ['a token without root_sid', { root_sid: undefined }, {}, TokenInvalidError],
    ['a token without sub_type', { sub_type: undefined }, {}, TokenInvalidError],
    [
      'a session mandate where resource is required',
      { use: 'session' },
      { requiredUse: 'resource' },
      TokenInvalidError,
    ],
    [
      'compact delegation chain keys',
      { delegation_chain: [{ app: 'app-child', session: 's1', edge: 'e1' }] },
      { requireChainContains: ['app-child'] },
      TokenInvalidError,
    ],
    [
      'an agent_session_id that is not a string',
      { agent_session_id: ['agent-1'] },
      { requireSession: true },
      TokenInvalidError,
    ],
    ['a token without zone_id', { zone_id: undefined }, {}, ZoneInvalidError],
    ['a token of another zone', {}, { zoneId: 'zone-99' }, ZoneInvalidError],
    ['no agent session where one is required', {}, { requireSession: true }, SessionRequiredError],
    ['no delegation where one is required', {}, { requireDelegation: true }, DelegationRequiredError],
    ['hop_count above maxHopCount', { hop_count: 5 }, { maxHopCount: 3 }, HopCountExceededError],
  ] as const)('refuses %s with the Caracal class', async (_name, claims, extra, cls) => {
    stubFetch()
    const minted = await mintToken(claims ?? {})
    const token = claims === undefined ? 'not.a.jwt' : minted.token
    const e = await refusal(verify(token, config(minted.issuer, extra)))
    expect(e).toBeInstanceOf(cls)
    expect(e).toBeInstanceOf(CaracalError)
  })

  it('a missing scope names the first one missing, a missing target says so, a chain names the application', async () => {
    stubFetch()
    const { token, issuer } = await mintToken({ delegation_chain: [{ application_id: 'app-child' }] }, 'read')
    const scope = await refusal(verify(token, config(issuer, { requiredScopes: ['read', 'admin', 'root'] })))
    expect(scope).toMatchObject({
      name: 'ScopeInsufficientError',
      missingScope: 'admin',
      message: 'Missing scope: admin',
    })
    const target = await refusal(verify(token, config(issuer, { requiredTargets: ['resource://tools/calendar'] })))
    expect(target).toMatchObject({ name: 'TokenInvalidError', message: 'Token target resource validation failed' })
    const chain = await refusal(verify(token, config(issuer, { requireChainContains: ['app-parent'] })))
    expect(chain).toMatchObject({ name: 'ChainMismatchError', missingApplicationId: 'app-parent' })
  })

  it('the checks run in Caracal order: zone, scopes, targets, session, delegation, hop count, chain', async () => {
    stubFetch()
    const { token, issuer } = await mintToken(
      { hop_count: 4, delegation_chain: [{ application_id: 'app-child' }] },
      'read',
    )
    const all = {
      requiredScopes: ['admin'],
      requiredTargets: ['x'],
      requireSession: true,
      requireDelegation: true,
      maxHopCount: 1,
      requireChainContains: ['app-parent'],
    }
    const order = [
      ZoneInvalidError,
      ScopeInsufficientError,
      TokenInvalidError,
      SessionRequiredError,
      DelegationRequiredError,
      HopCountExceededError,
      ChainMismatchError,
    ]
    const steps: Record<string, unknown>[] = [
      { ...all, zoneId: 'zone-2' },
      all,
      { ...all, requiredScopes: [] },
      { ...all, requiredScopes: [], requiredTargets: [] },
      { ...all, requiredScopes: [], requiredTargets: [], requireSession: false },
      { ...all, requiredScopes: [], requiredTargets: [], requireSession: false, requireDelegation: false },
      {
        ...all,
        requiredScopes: [],
        requiredTargets: [],
        requireSession: false,
        requireDelegation: false,
        maxHopCount: 0,
      },
    ]
    for (const [i, step] of steps.entries())
      expect(await refusal(verify(token, config(issuer, step)))).toBeInstanceOf(order[i])
  })

  it('maxHopCount 0 or less means 10, and a hop count equal to the limit passes', async () => {
    stubFetch()
    const { token, issuer } = await mintToken({ hop_count: 10 })
    await expect(verify(token, config(issuer, { maxHopCount: 0 }))).resolves.toMatchObject({ hopCount: 10 })
    await expect(verify(token, config(issuer, { maxHopCount: 10 }))).resolves.toMatchObject({ hopCount: 10 })
    expect(await refusal(verify(token, config(issuer, { maxHopCount: 9 })))).toBeInstanceOf(HopCountExceededError)
  })

  it('a session mandate is accepted with requiredUse "session" only (resource is the default here)', async () => {
    stubFetch()
    const { token, issuer } = await mintToken({ use: 'session' })
    await expect(verify(token, config(issuer, { requiredUse: 'session' }))).resolves.toMatchObject({ use: 'session' })
    const e = await refusal(verify(token, config(issuer)))
    expect([e.name, causeOf(e)]).toEqual(['TokenInvalidError', 'mandate use is not "resource"'])
  })

  it('no config at all is TokenInvalidError, never a throw', async () => {
    expect(await refusal(verify('a.b.c', undefined as never))).toBeInstanceOf(TokenInvalidError)
  })

  it('ignores the legacy graph_epoch claim', async () => {
    stubFetch()
    const { token, issuer } = await mintToken({ graph_epoch: 42 })
    expect((await verify(token, config(issuer))).graphEpoch).toBeUndefined()
  })

  it('a tampered signature is TokenInvalidError, and the engine says why in the cause', async () => {
    stubFetch()
    const { token, issuer } = await mintToken()
    const last = token.at(-2) === 'A' ? 'B' : 'A'
    const e = await refusal(verify(`${token.slice(0, -2)}${last}${token.at(-1)}`, config(issuer)))
    expect(e).toMatchObject({ name: 'TokenInvalidError', code: 'invalid_token', message: 'Token validation failed' })
    expect(causeOf(e)).toBe('signature verification failed')
  })

  it('an unusable config (an http issuer that is not loopback) is TokenInvalidError, not a throw', async () => {
    const e = await refusal(verify('a.b.c', { issuer: 'http://sts.example.com', audience: AUD, zoneId: 'zone-1' }))
    expect(e).toBeInstanceOf(TokenInvalidError)
    expect(e.cause).toBeInstanceOf(TypeError)
  })
})

describe('verifyChainContains', () => {
  const base: Claims = {
    sub: '',
    zoneId: '',
    clientId: 'app-1',
    authorityRecordId: '',
    rootAuthorityRecordId: 'root-1',
    use: 'resource',
    subType: 'user',
    jti: 'jti-1',
    issuedAt: 0,
    expiresAt: 0,
    scope: '',
  }
  it('matches the client id, a hop, or neither', () => {
    expect(verifyChainContains(base, 'app-1')).toBe(true)
    expect(
      verifyChainContains(
        { ...base, clientId: 'other', delegationChain: [{ applicationId: 'app-parent' }] },
        'app-parent',
      ),
    ).toBe(true)
    expect(verifyChainContains({ ...base, delegationChain: [{ applicationId: 'app-parent' }] }, 'app-unknown')).toBe(
      false,
    )
  })
})

describe('exports, constants and error classes as the Caracal source defines them', () => {
  it('exports exactly the runtime names of @caracalai/identity (and CaracalError of @caracalai/core, and the older AgentIdentityRequiredError)', () => {
    expect(identity.AgentIdentityRequiredError).toBe(identity.SessionRequiredError)
    expect(Object.keys(identity).sort()).toEqual(
      [
        'AgentIdentityRequiredError',
        'CaracalError',
        'ChainMismatchError',
        'DEFAULT_MAX_HOP_COUNT',
        'DelegationRequiredError',
        'HopCountExceededError',
        'MANDATE_USE_RESOURCE',
        'MANDATE_USE_SESSION',
        'SUBJECT_TYPE_APPLICATION',
        'SUBJECT_TYPE_USER',
        'ScopeInsufficientError',
        'SessionRequiredError',
        'TokenInvalidError',
        'ZoneInvalidError',
        'clearJwksCache',
        'createJwksCache',
        'getKeySet',
        'hasScope',
        'parseScope',
        'scopesAllowed',
        'verify',
        'verifyChainContains',
        'warmJwks',
      ].sort(),
    )
    expect([
      DEFAULT_MAX_HOP_COUNT,
      MANDATE_USE_SESSION,
      MANDATE_USE_RESOURCE,
      SUBJECT_TYPE_USER,
      SUBJECT_TYPE_APPLICATION,
    ]).toEqual([10, 'session', 'resource', 'user', 'application'])
  })

  const table: [
    string,
    () => CaracalError,
    { name: string; code: string; message: string; details?: unknown; extra?: Record<string, unknown> },
  ][] = [
    [
      'TokenInvalidError',
      () => new TokenInvalidError(),
      { name: 'TokenInvalidError', code: 'invalid_token', message: 'Token validation failed' },
    ],
    [
      'ZoneInvalidError',
      () => new ZoneInvalidError(),
      { name: 'ZoneInvalidError', code: 'zone_invalid', message: 'Token zone validation failed' },
    ],
    [
      'ScopeInsufficientError',
      () => new ScopeInsufficientError('admin'),
      {
        name: 'ScopeInsufficientError',
        code: 'scope_insufficient',
        message: 'Missing scope: admin',
        details: { missingScope: 'admin' },
        extra: { missingScope: 'admin' },
      },
    ],
    [
      'SessionRequiredError',
      () => new SessionRequiredError(),
      { name: 'SessionRequiredError', code: 'session_required', message: 'Session required' },
    ],
    [
      'DelegationRequiredError',
      () => new DelegationRequiredError(),
      { name: 'DelegationRequiredError', code: 'delegation_required', message: 'Delegation required' },
    ],
    [
      'ChainMismatchError',
      () => new ChainMismatchError('app-parent'),
      {
        name: 'ChainMismatchError',
        code: 'chain_mismatch',
        message: 'Delegation chain missing application: app-parent',
        details: { missingApplicationId: 'app-parent' },
        extra: { missingApplicationId: 'app-parent' },
      },
    ],
    [
      'HopCountExceededError',
      () => new HopCountExceededError(),
      { name: 'HopCountExceededError', code: 'hop_count_exceeded', message: 'Hop count exceeded' },
    ],
  ]
  it.each(table)('%s: name, code, message, details, toJSON, not retryable', (_n, make, want) => {
    const e = make()
    // A refusal of the mandate: presenting it again cannot succeed (@caracalai/core `isRetryable`).
    expect(e.isRetryable).toBe(false)
    expect(e).toBeInstanceOf(CaracalError)
    expect(e).toBeInstanceOf(Error)
    expect({ name: e.name, code: e.code, message: e.message, details: e.details }).toEqual({
      name: want.name,
      code: want.code,
      message: want.message,
      details: want.details,
    })
    expect(e).toMatchObject(want.extra ?? {})
    expect(e.toJSON()).toEqual({
      error: want.code,
      error_description: want.message,
      ...(want.details ? { details: want.details } : {}),
    })
  })

  it('CaracalError takes a requestId string or options; TokenInvalidError keeps its cause', () => {
    const a = new CaracalError('access_denied', 'no', 'req-1')
    expect(a).toMatchObject({ name: 'CaracalError', code: 'access_denied', requestId: 'req-1' })
    expect(a.toJSON()).toEqual({ error: 'access_denied', error_description: 'no', requestId: 'req-1' })
    const b = new CaracalError('x', 'y', { httpStatus: 409, details: { k: 1 } })
    expect([b.httpStatus, b.details, b.requestId]).toEqual([409, { k: 1 }, undefined])
    const cause = new Error('root')
    expect(new TokenInvalidError('bad', cause).cause).toBe(cause)
    expect('cause' in new TokenInvalidError()).toBe(false)
  })

  it('isRetryable: the STS down or a rate limit by code, else 408, 425, 429 or 5xx by httpStatus', () => {
    const retryable = (code: string, httpStatus?: number): boolean =>
      new CaracalError(code, 'm', httpStatus === undefined ? {} : { httpStatus }).isRetryable
    // By code, whatever the status says.
    expect([retryable('sts_unavailable'), retryable('provider_rate_limited')]).toEqual([true, true])
    expect([retryable('sts_unavailable', 400), retryable('provider_rate_limited', 403)]).toEqual([true, true])
    // By status, for any other code.
    for (const status of [408, 425, 429, 500, 502, 503, 504, 599])
      expect(retryable('http_request_failed', status), String(status)).toBe(true)
    for (const status of [400, 401, 403, 404, 409, 410, 413, 422, 428, 499])
      expect(retryable('http_request_failed', status), String(status)).toBe(false)
    // No status: a policy or validation outcome. A status of 0 is not recorded, so it counts as none.
    for (const code of ['access_denied', 'invalid_token', 'internal_error', 'http_request_failed', 'zone_invalid'])
      expect(retryable(code), code).toBe(false)
    expect(retryable('http_request_failed', 0)).toBe(false)
    // The requestId-string form of the constructor carries no status.
    expect(new CaracalError('internal_error', 'm', 'req-1').isRetryable).toBe(false)
  })

  it('isRetryable is a getter of the prototype: not an own field, not in toJSON, not assignable', () => {
    const e = new CaracalError('sts_unavailable', 'down', { httpStatus: 503 })
    expect(Object.keys(e)).not.toContain('isRetryable')
    expect(Object.hasOwn(e, 'isRetryable')).toBe(false)
    expect(e.toJSON()).toEqual({ error: 'sts_unavailable', error_description: 'down' })
    expect(typeof Object.getOwnPropertyDescriptor(CaracalError.prototype, 'isRetryable')?.get).toBe('function')
    expect(() => {
      ;(e as { isRetryable: boolean }).isRetryable = false
    }).toThrow(TypeError)
    expect(e.isRetryable).toBe(true)
  })

  it('refusals from verify are not retryable, the unreachable JWKS included (as in @caracalai/identity)', async () => {
    const { token, issuer } = await mintToken({}, 'read')
    stubFetch()
    const scope = await refusal(verify(token, config(issuer, { requiredScopes: ['admin'] })))
    expect([scope.name, scope.isRetryable]).toEqual(['ScopeInsufficientError', false])
    const zone = await refusal(verify(token, config(issuer, { zoneId: 'zone-2' })))
    expect([zone.name, zone.isRetryable]).toEqual(['ZoneInvalidError', false])
    vi.stubGlobal('fetch', async () => {
      throw new TypeError('fetch failed')
    })
    const { token: other, issuer: down } = await mintToken()
    const unreachable = await refusal(verify(other, config(down)))
    expect([unreachable.name, unreachable.message, unreachable.isRetryable]).toEqual([
      'TokenInvalidError',
      'Token validation failed',
      false,
    ])
  })
})

describe('scope helpers', () => {
  it('parseScope: distinct entries in order, split on any whitespace', () => {
    expect(parseScope('a b\ta  c\u00a0d')).toEqual(['a', 'b', 'c', 'd'])
    expect(parseScope('')).toEqual([])
    expect(parseScope(null)).toEqual([])
    expect(parseScope(undefined)).toEqual([])
  })

  it.each([
    ['tool:call documents:read', 'documents:read', true],
    ['tool:call documents:read', 'documents', false],
    ['tool:calls', 'tool:call', false],
    ['xtool:call tool:call', 'tool:call', true],
    ['a\u2003b', 'b', true],
    ['a b', 'a b', false],
    ['a b', '', false],
    ['', 'a', false],
    [null, 'a', false],
  ] as const)('hasScope(%j, %j) is %s', (scope, required, want) => {
    expect(hasScope(scope, required)).toBe(want)
  })

  it('scopesAllowed: every requested scope is available', () => {
    expect(scopesAllowed(['a', 'b'], ['b', 'a', 'c'])).toBe(true)
    expect(scopesAllowed(['a', 'd'], ['a'])).toBe(false)
    expect(scopesAllowed([], [])).toBe(true)
  })
})

describe('the JWKS cache', () => {
  let sts: CaracalSts
  beforeAll(async () => {
    sts = await startCaracalSts('zone-jwks')
  })
  afterAll(async () => {
    await sts.close()
  })
  const counting = () => {
    const urls: string[] = []
    const fetchImpl: typeof fetch = (input, init) => {
      urls.push(String(input))
      return fetch(input, init)
    }
    return { urls, fetchImpl }
  }

  it('one fetch per zone for every audience and call; warm first, and the first verify fetches nothing', async () => {
    const { urls, fetchImpl } = counting()
    const jwksCache = createJwksCache({ fetchImpl })
    await jwksCache.warm(sts.issuer, sts.zoneId)
    expect(urls).toEqual([`${sts.issuer}/.well-known/jwks.json?zone_id=zone-jwks`])
    const token = sts.mintDelegated({ overrides: { aud: ['resource://documents', 'resource://other'] } })
    await verify(token, { issuer: sts.issuer, audience: sts.audience, zoneId: sts.zoneId, jwksCache })
    await verify(token, { issuer: sts.issuer, audience: 'resource://other', zoneId: sts.zoneId, jwksCache })
    await jwksCache.warm(sts.issuer, sts.zoneId)
    expect(urls).toHaveLength(1)
  })

  it('engines of one zone share each refresh: after a rotation, one fetch serves every audience', async () => {
    const rotating = await startCaracalSts('zone-rotate')
    try {
      const { urls, fetchImpl } = counting()
      const jwksCache = createJwksCache({ ttlMs: 200, fetchImpl })
      const cfg = (audience: string) => ({ issuer: rotating.issuer, audience, zoneId: rotating.zoneId, jwksCache })
      const both = { aud: ['resource://documents', 'resource://other'] }
      await verify(rotating.mintDelegated({ overrides: both }), cfg('resource://documents'))
      await verify(rotating.mintDelegated({ overrides: both }), cfg('resource://other'))
      expect(urls).toHaveLength(1)
      await new Promise((r) => setTimeout(r, 250))
      rotating.dev.rotateKeys()
      const rotated = rotating.mintDelegated({ overrides: both })
      await expect(verify(rotated, cfg('resource://documents'))).resolves.toMatchObject({ zoneId: 'zone-rotate' })
      await expect(verify(rotated, cfg('resource://other'))).resolves.toMatchObject({ zoneId: 'zone-rotate' })
      expect(urls).toHaveLength(2)
      jwksCache.clear()
    } finally {
      await rotating.close()
    }
  })

  it('clear drops the zone: the next verification fetches again', async () => {
    const { urls, fetchImpl } = counting()
    const jwksCache = createJwksCache({ fetchImpl })
    const cfg = { issuer: sts.issuer, audience: sts.audience, zoneId: sts.zoneId, jwksCache }
    await verify(sts.mintDelegated(), cfg)
    jwksCache.clear(sts.issuer, sts.zoneId)
    await verify(sts.mintDelegated(), cfg)
    jwksCache.clear(sts.issuer)
    await verify(sts.mintDelegated(), cfg)
    jwksCache.clear()
    await verify(sts.mintDelegated(), cfg)
    expect(urls).toHaveLength(4)
  })

  it("a failed fetch rejects warm and getKeySet with Caracal's message", async () => {
    const jwksCache = createJwksCache({ fetchImpl: async () => new Response('unavailable', { status: 503 }) })
    await expect(jwksCache.warm('https://issuer-down.example', 'z')).rejects.toThrow('JWKS fetch failed: 503')
    await expect(jwksCache.getKeySet('https://issuer-down.example', 'z')).rejects.toThrow('JWKS fetch failed: 503')
  })

  it('getKeySet answers a key getter that jose verifies the STS mandates with', async () => {
    const jwksCache = createJwksCache()
    const getKey = await jwksCache.getKeySet(sts.issuer, sts.zoneId)
    expect(typeof getKey).toBe('function')
    const { payload } = await jwtVerify(sts.mintDelegated(), getKey as never, {
      issuer: sts.issuer,
      audience: sts.audience,
    })
    expect(payload.zone_id).toBe('zone-jwks')
    await expect(getKey({ alg: 'ES256', kid: 'no-such-kid' })).rejects.toThrow('no applicable key')
  })

  it('keys not refreshed for longer than maxStaleMs are refused once the STS fails', async () => {
    let up = true
    const jwksCache = createJwksCache({
      ttlMs: 0,
      maxStaleMs: 10,
      fetchImpl: (input, init) => (up ? fetch(input, init) : Promise.resolve(new Response('down', { status: 503 }))),
    })
    const cfg = { issuer: sts.issuer, audience: sts.audience, zoneId: sts.zoneId, jwksCache }
    await verify(sts.mintDelegated(), cfg)
    up = false
    await new Promise((r) => setTimeout(r, 30))
    const e = await refusal(verify(sts.mintDelegated(), cfg))
    expect(e).toBeInstanceOf(TokenInvalidError)
    expect(e.cause).toMatchObject({ code: 'invalid_token', unavailable: true })
    expect(causeOf(e)).toMatch(/^no usable key: signing keys are stale/)
  })

  it('the free functions use the default cache, through the global fetch read at call time', async () => {
    const fetchMock = stubFetch()
    const { token, issuer } = await mintToken()
    await warmJwks(issuer, 'zone-1')
    await verify(token, config(issuer))
    await getKeySet(issuer, 'zone-1')
    expect(fetchMock).toHaveBeenCalledTimes(1)
    expect(fetchMock).toHaveBeenCalledWith(
      `${issuer}/.well-known/jwks.json?zone_id=zone-1`,
      expect.objectContaining({ signal: expect.any(AbortSignal) }),
    )
    clearJwksCache(issuer, 'zone-1')
    await verify(token, config(issuer))
    expect(fetchMock).toHaveBeenCalledTimes(2)
  })
})

describe.each(TEST_BACKENDS)('a Caracal deployment through compat/identity on %s', (backend) => {
  let sts: CaracalSts
  let jwksCache: ReturnType<typeof createJwksCache>
  beforeAll(async () => {
    sts = await startCaracalSts('zone-prod')
    jwksCache = createJwksCacheOn(backend)
  })
  afterAll(async () => {
    jwksCache.clear()
    await sts.close()
  })
  const cfg = (extra: Record<string, unknown> = {}) => ({
    issuer: sts.issuer,
    audience: sts.audience,
    zoneId: sts.zoneId,
    jwksCache,
    ...extra,
  })

  it('keys come from the zone-scoped URL only; the hops read under their Caracal names', async () => {
    const claims = await verify(
      sts.mintDelegated({ epoch: 4 }),
      cfg({ requireSession: true, requireDelegation: true, requireChainContains: ['app-orchestrator'] }),
    )
    expect(claims.delegationChain).toEqual([
      {
        applicationId: 'app-orchestrator',
        sessionId: expect.stringMatching(/^upstream-/),
        delegationId: expect.stringMatching(/^up-edge-/),
      },
    ])
    expect([claims.graphEpoch, claims.hopCount, claims.zoneId]).toEqual([4, 1, 'zone-prod'])
    expect(sts.jwksRequests.length).toBeGreaterThan(0)
    expect(new Set(sts.jwksRequests)).toEqual(new Set(['/.well-known/jwks.json?zone_id=zone-prod']))
    expect(
      registryOf(jwksCache)
        .engines()
        .map((e) => e.stats().backend.ES256),
    ).toEqual([backend === 'auto' ? expect.any(String) : backend])
  })

  it('optional claims sent as "" or null are absent; a chain of [] is none', async () => {
    const claims = await verify(
      sts.mintDelegated({
        overrides: {
          agent_session_id: '',
          delegation_edge_id: null,
          source_session_id: '',
          delegation_chain: [],
          hop_count: null,
        },
      }),
      cfg(),
    )
    for (const name of ['sessionId', 'delegationId', 'sourceSessionId', 'delegationChain', 'hopCount'])
      expect(claims).not.toHaveProperty(name)
    expect(
      await refusal(verify(sts.mintDelegated({ overrides: { agent_session_id: '' } }), cfg({ requireSession: true }))),
    ).toBeInstanceOf(SessionRequiredError)
  })

  it('expired at exp; another zone is ZoneInvalidError; RS256 is refused as the Caracal verifier refuses it', async () => {
    const now = Math.floor(Date.now() / 1000)
    const expired = await refusal(verify(sts.mintDelegated({ overrides: { iat: now - 60, exp: now } }), cfg()))
    expect([expired.name, causeOf(expired)]).toEqual(['TokenInvalidError', 'token expired'])
    expect(await refusal(verify(sts.mintDelegated({ overrides: { zone_id: 'zone-other' } }), cfg()))).toBeInstanceOf(
      ZoneInvalidError,
    )
    const rs = await refusal(verify(sts.mintDelegated({ alg: 'RS256' }), cfg()))
    expect([rs.name, causeOf(rs)]).toEqual(['TokenInvalidError', 'alg not allowed'])
  })

  it('one signature check per token, whatever the policy asks', async () => {
    const token = sts.mintDelegated()
    const before = misses(jwksCache)
    for (const extra of [
      {},
      { requiredScopes: ['admin'] },
      { maxHopCount: 5 },
      { requireChainContains: ['x'] },
      { requiredScopes: ['tool:call'] },
    ])
      await verify(token, cfg(extra)).catch(() => undefined)
    expect(misses(jwksCache) - before).toBe(1)
  })
})

function misses(cache: object): number {
  return registryOf(cache)
    .engines()
    .reduce((n, e) => n + e.stats().cache.misses, 0)
}
