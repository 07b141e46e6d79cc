/**
 * Conformance of `caracal-fastmcp/compat/fastmcp` with `@caracalai/fastmcp`: written the way that
 * package's docs and tests use it (`createMandateVerifier` + `verifyFastMcpToken(token, verifier,
 * route)`, or the dependencies of `authenticate` directly), with only the import specifiers changed.
 * Every error code's `FastMcpAuthError` (code, message, hint) is compared with the values the Caracal
 * sources define, written out below; the Caracal-deployment rules (zone-scoped keys, hop names,
 * exp, empty claims, epochs) run against the stand-in STS; and a real fastmcp server whose
 * `authenticate` calls `verifyFastMcpToken` is driven by the MCP SDK client.
 *
 * The error table and the deployment rules run on every backend (issue 12: the same results on the
 * same inputs on each): a user chooses nothing but passes a `jwksCache` in the dependencies, so each
 * backend's run passes one made by `createJwksCacheOn(backend)`, the hook behind `createJwksCache`.
 * The docs-style calls above them use the default cache, as the docs do.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { FastMCP } from 'fastmcp'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { extractBearer, FastMcpAuthError, verifyFastMcpToken, type FastMcpContext } from '../src/compat/fastmcp.js'
import { CaracalError, type JwksCache } from '../src/compat/identity.js'
import { createJwksCacheOn, registryOf } from '../src/compat/identity-core.js'
import { InMemoryRevocationStore } from '../src/compat/revocation.js'
import {
  createMandateVerifier,
  unauthorizedResponse,
  type AuthDeps,
  type AuthErrorCode,
  type AuthOverrides,
  type MandateVerifier,
} from '../src/compat/verify.js'
import { quietLogger } from '../src/demo/documents.js'
import { freePort } from '../src/demo/listen.js'
import { connectClient, tamper, type ObservedResponse } from '../src/demo/tour.js'
import type { BackendChoice } from '../src/backends/types.js'
import { TEST_BACKENDS } from './support/backends.js'
import { startCaracalSts, type CaracalSts } from './support/caracal-sts.js'
import { HINT, STATUS } from './support/caracal-verify-values.js'

// ---------------------------------------------------------------------------------------------
// The values of the Caracal sources, written out: each code's hint and status in
// test/support/caracal-verify-values.ts; the default descriptions and the identity error messages
// that `authenticate` passes through (scope, session, delegation, chain, hops) in the rows below.

let sts: CaracalSts
let revocations: InMemoryRevocationStore
let verifier: MandateVerifier
let deps: AuthDeps

beforeAll(async () => {
  sts = await startCaracalSts('zone-compat-fastmcp')
})

afterAll(async () => {
  await sts.close()
})

beforeEach(() => {
  revocations = new InMemoryRevocationStore()
  deps = { issuer: sts.issuer, audience: sts.audience, zoneId: sts.zoneId, revocations }
  verifier = createMandateVerifier(deps)
})

const nowSec = (): number => Math.floor(Date.now() / 1000)

/** The error `verifyFastMcpToken` threw; fails the test when it resolved or threw anything else. */
async function refusal(promise: Promise<unknown>): Promise<FastMcpAuthError> {
  try {
    await promise
  } catch (error) {
    if (error instanceof FastMcpAuthError) return error
    throw new Error(`expected a FastMcpAuthError, got ${String(error)}`)
  }
  throw new Error('expected a refusal, but the mandate was accepted')
}

/**
 * How many mandates the engines behind `cache` accepted, checking on the way that each engine
 * verifies ES256 on `backend` (`auto` picks its own stages).
 */
function acceptedOn(cache: JwksCache, backend: BackendChoice): number {
  let accepted = 0
  for (const engine of registryOf(cache).engines()) {
    const stats = engine.stats()
    if (backend !== 'auto') expect(stats.backend.ES256).toBe(backend)
    accepted += stats.verifications.accepted
  }
  return accepted
}

describe('as the @caracalai/fastmcp docs use it', () => {
  it('extractBearer, then verifyFastMcpToken with a reusable verifier and route requirements', async () => {
    const minted = sts.mintDelegated({ overrides: { sub: 'richard', scope: 'mcp:tool:call', target: [sts.audience] } })
    const token = extractBearer(`Bearer ${minted}`)
    if (!token) throw new Error('missing bearer token')
    const context = await verifyFastMcpToken(token, verifier, {
      requiredScopes: ['mcp:tool:call'],
      requiredTargets: [sts.audience],
      requireSession: true,
    })
    expect(context).toEqual({ sub: 'richard', zoneId: sts.zoneId, scope: 'mcp:tool:call' })
  })

  it('the dependencies of authenticate directly, with every route requirement of the package tests', async () => {
    const token = sts.mintDelegated({ overrides: { scope: 'tool:call' } })
    const context = await verifyFastMcpToken(token, {
      ...deps,
      requiredScopes: ['tool:call'],
      requireSession: true,
      requireDelegation: true,
      requireChainContains: ['app-orchestrator'],
      maxHopCount: 3,
    })
    expect(context).toEqual({ sub: 'user-7', zoneId: sts.zoneId, scope: 'tool:call' })
  })

  it('dependencies plus a route argument: the route is merged over them', async () => {
    const token = sts.mintDelegated({ overrides: { scope: 'tool:call' } })
    await expect(verifyFastMcpToken(token, deps, { requiredScopes: ['tool:call'] })).resolves.toEqual({
      sub: 'user-7',
      zoneId: sts.zoneId,
      scope: 'tool:call',
    })
    const refused = await refusal(verifyFastMcpToken(token, deps, { requiredScopes: ['admin:write'] }))
    expect([refused.code, refused.message]).toEqual(['insufficient_scope', 'Missing scope: admin:write'])
  })

  it('a verifier-like object is asked with the route as its overrides, and its answer is projected', async () => {
    const asked: unknown[][] = []
    const custom: MandateVerifier = {
      defaults: deps,
      authenticate: async (...args) => {
        asked.push(args)
        return {
          ok: true,
          principal: {
            sub: 'user-1',
            zoneId: 'zone-1',
            clientId: 'app-1',
            authorityRecordId: 'sid-1',
            rootAuthorityRecordId: 'root-1',
            use: 'resource',
            subType: 'user',
            jti: 'jti-1',
            issuedAt: 1,
            expiresAt: 2,
            scope: 'tool:call',
          },
        }
      },
      authorization: async () => {
        throw new Error('not used')
      },
      require: () => custom,
      warmup: async () => {},
    }
    await expect(verifyFastMcpToken('opaque', custom, { requiredScopes: ['tool:call'] })).resolves.toEqual({
      sub: 'user-1',
      zoneId: 'zone-1',
      scope: 'tool:call',
    })
    await verifyFastMcpToken('opaque', custom)
    expect(asked).toEqual([
      ['opaque', { requiredScopes: ['tool:call'] }],
      ['opaque', {}],
    ])
  })

  it('FastMcpAuthError is a CaracalError with the fields of the original', async () => {
    const error = await refusal(verifyFastMcpToken('', verifier))
    expect(error).toBeInstanceOf(CaracalError)
    expect(error).toBeInstanceOf(Error)
    expect(error.name).toBe('FastMcpAuthError')
    expect(error.code).toBe('missing_token')
    expect(error.message).toBe('Missing bearer token')
    expect(error.hint).toBe(HINT.missing_token)
    expect(error.toJSON()).toEqual({ error: 'missing_token', error_description: 'Missing bearer token' })
    expect(error.isRetryable).toBe(false)
    expect(new FastMcpAuthError('invalid_token', 'Token validation failed').hint).toBeUndefined()
  })

  it('extractBearer is the verify package’s: any case of the scheme, whitespace after it, trimmed', () => {
    expect(extractBearer('Bearer token-1')).toBe('token-1')
    expect(extractBearer('bearer token-1')).toBe('token-1')
    expect(extractBearer('BEARER token-1')).toBe('token-1')
    expect(extractBearer('Bearer\t token-1  ')).toBe('token-1')
    expect(extractBearer('Bearer   ')).toBeNull()
    expect(extractBearer('Bearertoken-1')).toBeNull()
    expect(extractBearer('Basic abc')).toBeNull()
    expect(extractBearer(undefined)).toBeNull()
  })
})

// ---------------------------------------------------------------------------------------------
// Every code, with Caracal's values; each row also has a control that passes the same route, so
// the refusal is caused by what the row names.

interface Row {
  readonly name: string
  readonly code: AuthErrorCode
  readonly description: string
  readonly route?: AuthOverrides
  /** The mandate refused (undefined: an empty token). */
  readonly token: () => string | undefined
  /** A mandate accepted under the same route and store. */
  readonly control?: () => string
  readonly before?: () => void
}

const expired = (): Record<string, unknown> => ({ exp: nowSec() - 60, iat: nowSec() - 400 })

const ROWS: readonly Row[] = [
  { name: 'an empty token', code: 'missing_token', description: 'Missing bearer token', token: () => undefined },
  {
    name: 'a payload edited after signing',
    code: 'invalid_token',
    description: 'Token validation failed',
    token: () => tamper(sts.mintDelegated()),
    control: () => sts.mintDelegated(),
  },
  {
    name: 'an expired mandate',
    code: 'invalid_token',
    description: 'Token validation failed',
    token: () => sts.mintDelegated({ overrides: expired() }),
    control: () => sts.mintDelegated({ overrides: { exp: nowSec() + 60 } }),
  },
  {
    name: 'another audience',
    code: 'invalid_token',
    description: 'Token validation failed',
    token: () => sts.mintDelegated({ overrides: { aud: 'resource://elsewhere' } }),
    control: () => sts.mintDelegated({ overrides: { aud: [sts.audience, 'resource://elsewhere'] } }),
  },
  {
    name: 'a session mandate where a resource mandate is required',
    code: 'invalid_token',
    description: 'Token validation failed',
    token: () => sts.mintDelegated({ overrides: { use: 'session' } }),
    control: () => sts.mintDelegated({ overrides: { use: 'resource' } }),
  },
  {
    name: 'an RS256 mandate (the Caracal verifier accepts ES256 only)',
    code: 'invalid_token',
    description: 'Token validation failed',
    token: () => sts.mintDelegated({ alg: 'RS256' }),
    control: () => sts.mintDelegated({ alg: 'ES256' }),
  },
  {
    name: 'a required target the mandate does not name',
    code: 'invalid_token',
    description: 'Token validation failed',
    route: { requiredTargets: ['resource://documents'] },
    token: () => sts.mintDelegated({ overrides: { target: ['resource://files'] } }),
    control: () => sts.mintDelegated({ overrides: { target: ['resource://files', 'resource://documents'] } }),
  },
  {
    name: 'a mandate of another zone',
    code: 'invalid_zone',
    description: 'Token zone validation failed',
    token: () => sts.mintDelegated({ overrides: { zone_id: 'zone-other' } }),
    control: () => sts.mintDelegated({ overrides: { zone_id: 'zone-compat-fastmcp' } }),
  },
  {
    name: 'a mandate whose zone_id is empty (empty claims are absent)',
    code: 'invalid_zone',
    description: 'Token zone validation failed',
    token: () => sts.mintDelegated({ overrides: { zone_id: '' } }),
  },
  {
    name: 'a scope the route requires and the mandate lacks',
    code: 'insufficient_scope',
    description: 'Missing scope: admin:write',
    route: { requiredScopes: ['tool:call', 'admin:write'] },
    token: () => sts.mintDelegated({ overrides: { scope: 'tool:call admin:read' } }),
    control: () => sts.mintDelegated({ overrides: { scope: 'admin:write tool:call' } }),
  },
  {
    name: 'no agent session where the route requires a Session',
    code: 'session_required',
    description: 'Session required',
    route: { requireSession: true },
    token: () => sts.mintDelegated({ overrides: { agent_session_id: undefined } }),
    control: () => sts.mintDelegated(),
  },
  {
    name: 'an agent session sent as "" (empty claims are absent)',
    code: 'session_required',
    description: 'Session required',
    route: { requireSession: true },
    token: () => sts.mintDelegated({ overrides: { agent_session_id: '' } }),
  },
  {
    name: 'no delegation edge where the route requires a delegation (sent as null)',
    code: 'delegation_required',
    description: 'Delegation required',
    route: { requireDelegation: true },
    token: () => sts.mintDelegated({ overrides: { delegation_edge_id: null } }),
    control: () => sts.mintDelegated(),
  },
  {
    name: 'a chain without the required application (hop names as the STS writes them)',
    code: 'chain_mismatch',
    description: 'Delegation chain missing application: app-partner',
    route: { requireChainContains: ['app-orchestrator', 'app-partner'] },
    token: () => sts.mintDelegated(),
    control: () =>
      sts.mintDelegated({
        overrides: {
          delegation_chain: [
            { application_id: 'app-orchestrator', agent_session_id: 's-1', delegation_edge_id: 'e-1' },
            { application_id: 'app-partner' },
          ],
        },
      }),
  },
  {
    name: 'a hop count above maxHopCount',
    code: 'hop_count_exceeded',
    description: 'Hop count exceeded',
    route: { maxHopCount: 2 },
    token: () => sts.mintDelegated({ overrides: { hop_count: 3 } }),
    control: () => sts.mintDelegated({ overrides: { hop_count: 2 } }),
  },
  {
    name: 'a hop count above 10 when maxHopCount is 0 (0 or less means 10)',
    code: 'hop_count_exceeded',
    description: 'Hop count exceeded',
    route: { maxHopCount: 0 },
    token: () => sts.mintDelegated({ overrides: { hop_count: 11 } }),
    control: () => sts.mintDelegated({ overrides: { hop_count: 10 } }),
  },
  {
    name: 'a revoked authority record (sid)',
    code: 'session_revoked',
    description: 'Session revoked',
    before: () => revocations.markRevoked('sid-revoked'),
    token: () => sts.mintDelegated({ overrides: { sid: 'sid-revoked' } }),
    control: () => sts.mintDelegated({ overrides: { sid: 'sid-active' } }),
  },
  {
    name: 'a revoked root authority record (root_sid)',
    code: 'session_revoked',
    description: 'Session revoked',
    before: () => revocations.markRevoked('root-revoked'),
    token: () => sts.mintDelegated({ overrides: { root_sid: 'root-revoked' } }),
  },
  {
    name: 'a revoked agent session (agent_session_id)',
    code: 'session_revoked',
    description: 'Session revoked',
    before: () => revocations.markRevoked('agent-revoked'),
    token: () => sts.mintDelegated({ overrides: { agent_session_id: 'agent-revoked' } }),
  },
  {
    name: 'a revoked delegation edge (delegation_edge_id)',
    code: 'session_revoked',
    description: 'Session revoked',
    before: () => revocations.markRevoked('edge-revoked'),
    token: () => sts.mintDelegated({ overrides: { delegation_edge_id: 'edge-revoked' } }),
  },
  {
    name: 'a delegation epoch below the zone’s current one',
    code: 'delegation_stale',
    description: 'Delegation graph changed',
    before: () => revocations.markDelegationEpoch('zone-compat-fastmcp', 5),
    token: () => sts.mintDelegated({ epoch: 4 }),
    control: () => sts.mintDelegated({ epoch: 5 }),
  },
]

describe('the error table', () => {
  it('names every code of the verify package', () => {
    expect(new Set(ROWS.map((r) => r.code))).toEqual(new Set(Object.keys(STATUS)))
  })
})

describe.each(TEST_BACKENDS)('on the %s backend', (backend) => {
  let jwksCache: JwksCache
  beforeAll(() => {
    jwksCache = createJwksCacheOn(backend)
  })
  afterAll(() => {
    jwksCache.clear()
  })
  beforeEach(() => {
    // As a user passes a cache: in the dependencies, which the verifier and every direct call carry.
    deps = { ...deps, jwksCache }
    verifier = createMandateVerifier(deps)
  })

  describe('every error code as FastMcpAuthError, with the values of the Caracal sources', () => {
    it.each(ROWS)('$name → $code', async (row) => {
      row.before?.()
      const token = row.token() ?? ''
      const error = await refusal(verifyFastMcpToken(token, verifier, row.route))
      expect({ name: error.name, code: error.code, message: error.message, hint: error.hint }).toEqual({
        name: 'FastMcpAuthError',
        code: row.code,
        message: row.description,
        hint: HINT[row.code],
      })
      expect(error.toJSON()).toEqual({ error: row.code, error_description: row.description })
      // The original's class carries no httpStatus and no retryable code: never retryable.
      expect(error.isRetryable).toBe(false)
      // The same answer through the dependencies instead of a verifier.
      const direct = await refusal(verifyFastMcpToken(token, { ...deps, ...row.route }))
      expect([direct.code, direct.message, direct.hint]).toEqual([row.code, row.description, HINT[row.code]])
      if (row.control !== undefined) {
        const accepted = acceptedOn(jwksCache, backend)
        await expect(verifyFastMcpToken(row.control(), verifier, row.route)).resolves.toMatchObject({
          zoneId: sts.zoneId,
        })
        // Verified by this backend's engine, through the cache in the dependencies.
        expect(acceptedOn(jwksCache, backend)).toBe(accepted + 1)
      }
    })

    it('without a revocation store: invalid_token "Revocation store required"', async () => {
      const error = await refusal(
        verifyFastMcpToken(sts.mintDelegated(), {
          ...deps,
          revocations: undefined as unknown as AuthDeps['revocations'],
        }),
      )
      expect([error.code, error.message, error.hint]).toEqual([
        'invalid_token',
        'Revocation store required',
        HINT.invalid_token,
      ])
    })

    it('a revocation store that cannot be trusted: session_revoked, marked unavailable (not enumerable)', async () => {
      // What the Redis mirror answers while it cannot be trusted (README "Revocation"): revoked, with a reason.
      const store = { isRevoked: () => true, unavailableReason: () => 'redis unreachable' }
      const error = await refusal(verifyFastMcpToken(sts.mintDelegated(), { ...deps, revocations: store }))
      expect([error.code, error.message]).toEqual(['session_revoked', 'Session revoked'])
      expect((error as { unavailable?: unknown }).unavailable).toBe(true)
      expect(Object.keys(error)).not.toContain('unavailable')
      // `isRetryable` keeps the original's answer for its code (session_revoked, no httpStatus):
      // `unavailable` is what tells a temporary refusal apart.
      expect(error.isRetryable).toBe(false)
      // A store that throws is not trusted either: fail closed, and temporary.
      const throwing = {
        isRevoked: () => {
          throw new Error('connection reset')
        },
      }
      const thrown = await refusal(verifyFastMcpToken(sts.mintDelegated(), { ...deps, revocations: throwing }))
      expect([thrown.code, (thrown as { unavailable?: unknown }).unavailable]).toEqual(['session_revoked', true])
      // Signing keys that cannot be fetched (an STS nobody listens on): invalid_token, temporary too.
      const down = createServer()
      await new Promise<void>((resolve) => down.listen(0, '127.0.0.1', resolve))
      const issuer = `http://127.0.0.1:${(down.address() as AddressInfo).port}`
      await new Promise<void>((resolve) => down.close(() => resolve()))
      const keysDown = await refusal(verifyFastMcpToken(sts.mintDelegated(), { ...deps, issuer }))
      expect([keysDown.code, keysDown.message, (keysDown as { unavailable?: unknown }).unavailable]).toEqual([
        'invalid_token',
        'Token validation failed',
        true,
      ])
      // An ordinary refusal carries no such mark.
      const plain = await refusal(verifyFastMcpToken('', verifier))
      expect((plain as { unavailable?: unknown }).unavailable).toBeUndefined()
    })
  })

  describe('keys and claims as a Caracal deployment serves them', () => {
    it('keys come from the zone’s JWKS (?zone_id=), fetched once for many routes and both call forms', async () => {
      // A cache of its own that has fetched nothing yet; the STS's requests counted from here.
      const own = createJwksCacheOn(backend)
      const seen = sts.jwksRequests.length
      try {
        const base: AuthDeps = { ...deps, jwksCache: own }
        const v = createMandateVerifier(base)
        const routes: AuthOverrides[] = [
          {},
          { requiredScopes: ['tool:call'] },
          { requireSession: true },
          { requireDelegation: true, maxHopCount: 2 },
          { requireChainContains: ['app-orchestrator'] },
        ]
        for (let i = 0; i < 3; i++) {
          const token = sts.mintDelegated()
          for (const route of routes) {
            await verifyFastMcpToken(token, v, route)
            await verifyFastMcpToken(token, base, route)
          }
        }
        expect(sts.jwksRequests.slice(seen)).toEqual([`/.well-known/jwks.json?zone_id=${sts.zoneId}`])
        // Every call accepted on this backend, with one signature check per token.
        expect(acceptedOn(own, backend)).toBe(30)
        expect(
          registryOf(own)
            .engines()
            .reduce((n, e) => n + e.stats().cache.misses, 0),
        ).toBe(3)
      } finally {
        own.clear()
      }
    })

    it('hop names as the STS writes them, and the chain read from them', async () => {
      const token = sts.mintDelegated({
        overrides: {
          delegation_chain: [
            { application_id: 'app-orchestrator', agent_session_id: 'up-session', delegation_edge_id: 'up-edge' },
            { application_id: 'app-frontend', agent_session_id: '', delegation_edge_id: null },
          ],
        },
      })
      await expect(
        verifyFastMcpToken(token, verifier, { requireChainContains: ['app-frontend', 'app-orchestrator'] }),
      ).resolves.toEqual({ sub: 'user-7', zoneId: sts.zoneId, scope: 'tool:call documents:read' })
    })

    // The hop limit is the route's alone: the engine underneath must not apply a default of its own.
    it('a maxHopCount above 10 raises the limit: hop_count 20 passes with maxHopCount 50', async () => {
      const token = sts.mintDelegated({ overrides: { hop_count: 20 } })
      await expect(verifyFastMcpToken(token, verifier, { maxHopCount: 50 })).resolves.toMatchObject({
        zoneId: sts.zoneId,
      })
      const refused = await refusal(verifyFastMcpToken(token, verifier, { maxHopCount: 19 }))
      expect([refused.code, refused.message]).toEqual(['hop_count_exceeded', 'Hop count exceeded'])
    })

    it('an absent scope reads as the empty scope string', async () => {
      const token = sts.mintDelegated({ overrides: { scope: undefined } })
      await expect(verifyFastMcpToken(token, verifier)).resolves.toEqual({
        sub: 'user-7',
        zoneId: sts.zoneId,
        scope: '',
      })
    })
  })
})

// ---------------------------------------------------------------------------------------------
// A real fastmcp server whose authenticate hook calls verifyFastMcpToken, as a @caracalai/fastmcp
// user writes it: the context becomes the session, a refusal is rendered with the verify package's
// unauthorizedResponse (a thrown Response is what fastmcp passes through unchanged).

describe('a fastmcp server authenticating with verifyFastMcpToken', () => {
  let url: URL
  let server: FastMCP<FastMcpContext>
  let toolRuns = 0
  let lastSession: FastMcpContext | undefined

  beforeAll(async () => {
    const serverStore = new InMemoryRevocationStore()
    const serverVerifier = createMandateVerifier({
      issuer: sts.issuer,
      audience: sts.audience,
      zoneId: sts.zoneId,
      revocations: serverStore,
    })
    server = new FastMCP<FastMcpContext>({
      name: 'compat-fastmcp',
      version: '1.0.0',
      logger: quietLogger,
      authenticate: async (request) => {
        const token = extractBearer(request?.headers.authorization)
        if (!token) throw unauthorizedResponse({ code: 'missing_token', description: 'Missing bearer token' })
        try {
          return await verifyFastMcpToken(token, serverVerifier, {
            requiredScopes: ['tool:call'],
            requireSession: true,
          })
        } catch (error) {
          if (error instanceof FastMcpAuthError)
            throw unauthorizedResponse({
              code: error.code as AuthErrorCode,
              description: error.message,
              hint: error.hint,
            })
          throw error
        }
      },
    })
    server.addTool({
      name: 'whoami',
      description: 'who is calling',
      execute: async (_args, { session }) => {
        toolRuns++
        lastSession = session
        return JSON.stringify(session ?? null)
      },
    })
    const port = await freePort()
    await server.start({
      transportType: 'httpStream',
      httpStream: { host: '127.0.0.1', port, endpoint: '/mcp', stateless: true },
    })
    url = new URL(`http://127.0.0.1:${port}/mcp`)
  })

  afterAll(async () => {
    await server.stop()
  })

  async function attempt(
    credential: string | { authorization: string } | undefined,
  ): Promise<ObservedResponse | undefined> {
    let client: Awaited<ReturnType<typeof connectClient>> | undefined
    try {
      client = await connectClient(url, credential)
      await client.client.callTool({ name: 'whoami', arguments: {} })
      return undefined
    } catch (error) {
      return (error as { observed?: ObservedResponse }).observed ?? client?.lastError()
    } finally {
      await client?.close().catch(() => {})
    }
  }

  it('an accepted mandate: the tool runs with { sub, zoneId, scope } as its session', async () => {
    const runs = toolRuns
    const client = await connectClient(url, sts.mintDelegated({ overrides: { sub: 'alice', scope: 'tool:call' } }))
    try {
      const result = await client.client.callTool({ name: 'whoami', arguments: {} })
      expect(toolRuns).toBe(runs + 1)
      const text = (result.content as { text: string }[])[0]!.text
      expect(JSON.parse(text)).toEqual({ sub: 'alice', zoneId: sts.zoneId, scope: 'tool:call' })
      expect(lastSession).toEqual({ sub: 'alice', zoneId: sts.zoneId, scope: 'tool:call' })
    } finally {
      await client.close()
    }
  })

  const httpCases: readonly {
    name: string
    code: AuthErrorCode
    description: string
    credential: () => string | { authorization: string } | undefined
  }[] = [
    {
      name: 'no Authorization header',
      code: 'missing_token',
      description: 'Missing bearer token',
      credential: () => undefined,
    },
    {
      name: 'another scheme',
      code: 'missing_token',
      description: 'Missing bearer token',
      credential: () => ({ authorization: 'Basic ZGV2OmRldg==' }),
    },
    {
      name: 'a payload edited after signing',
      code: 'invalid_token',
      description: 'Token validation failed',
      credential: () => tamper(sts.mintDelegated()),
    },
    {
      name: 'a mandate of another zone',
      code: 'invalid_zone',
      description: 'Token zone validation failed',
      credential: () => sts.mintDelegated({ overrides: { zone_id: 'zone-other' } }),
    },
    {
      name: 'no tool:call scope',
      code: 'insufficient_scope',
      description: 'Missing scope: tool:call',
      credential: () => sts.mintDelegated({ overrides: { scope: 'documents:read' } }),
    },
    {
      name: 'no agent session',
      code: 'session_required',
      description: 'Session required',
      credential: () => sts.mintDelegated({ overrides: { scope: 'tool:call', agent_session_id: undefined } }),
    },
  ]

  it.each(httpCases)('$name → the status and body of the verify package, and no tool runs', async (c) => {
    const runs = toolRuns
    const observed = await attempt(c.credential())
    expect(toolRuns).toBe(runs)
    expect(observed?.status).toBe(STATUS[c.code])
    const expected: Record<string, string> = { error: c.code, error_description: c.description }
    if (c.code !== 'missing_token') expected.error_hint = HINT[c.code]
    expect(observed?.body).toEqual(expected)
    expect(observed?.wwwAuthenticate).toBeNull()
  })
})
