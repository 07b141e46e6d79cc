/**
 * Conformance of `caracal-fastmcp/compat/express` with `@caracalai/express` (Express `^5.0.0`, its
 * peer dependency): a real Express 5 app on 127.0.0.1, mounted the way that package's docs mount
 * it (`app.use('/mcp', caracalAuth({ verifier }, routeOverrides))`, or with the dependencies of
 * `authenticate`), with only the import specifiers changed. Every error code's status and body are
 * compared with the values the Caracal sources define, written out below; `req.caracal`,
 * `req.caracalClaims` and `req.caracalContext` (claims first, then the W3C Trace Context and Baggage
 * headers) as the original sets them; and the bound context, through this module and through
 * `@caracalai/sdk/advanced` when that package is present.
 *
 * The error table (with its deployment rules: zone, hop names, exp, empty claims, epochs) runs on
 * every backend (issue 12: the same results on the same inputs on each): its routes are mounted
 * once per backend, under `/<backend>/`, with dependencies carrying a `jwksCache` made by
 * `createJwksCacheOn(backend)`, the hook behind `createJwksCache`, as a user passes a cache. The
 * docs-style routes use the default cache, as the docs do.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { createRequire } from 'node:module'
import { request as httpRequest, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { caracalAuth, current, type CaracalContext, type CaracalRequest } from '../src/compat/express.js'
import type { JwksCache } from '../src/compat/identity.js'
import { createJwksCacheOn, registryOf } from '../src/compat/identity-core.js'
import { InMemoryRevocationStore } from '../src/compat/revocation.js'
import {
  createMandateVerifier,
  type AuthDeps,
  type AuthErrorCode,
  type AuthOverrides,
  type MandateVerifier,
} from '../src/compat/verify.js'
import { tamper } from '../src/demo/tour.js'
import type { BackendChoice } from '../src/backends/types.js'
import { TEST_BACKENDS } from './support/backends.js'
import { startCaracalSts, type CaracalSts } from './support/caracal-sts.js'
import { HINT, STATUS } from './support/caracal-verify-values.js'

// ---------------------------------------------------------------------------------------------
// The values of the Caracal sources, written out: @caracalai/verify `authenticate.ts` (default
// hints, `httpStatusForAuthError`: test/support/caracal-verify-values.ts) and `fetch.ts`
// (`authErrorBody`), and @caracalai/express
// `middleware.ts`, which answers a missing token itself with `{ code: 'missing_token',
// description: 'Missing bearer token' }` (no hint).

const MISSING_BODY = { error: 'missing_token', error_description: 'Missing bearer token' }

let sts: CaracalSts
let base: URL
let server: Server
let handlerRuns = 0
const closers: (() => Promise<void> | void)[] = []
/** The cache behind each backend's routes. */
const caches = new Map<BackendChoice, JwksCache>()

const nowSec = (): number => Math.floor(Date.now() / 1000)

function depsOf(revocations: AuthDeps['revocations'], jwksCache?: JwksCache): AuthDeps {
  const deps: AuthDeps = { issuer: sts.issuer, audience: sts.audience, zoneId: sts.zoneId, revocations }
  return jwksCache === undefined ? deps : { ...deps, jwksCache }
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

/** What a protected handler reports: the request fields the middleware set, and the bound context. */
function report(req: CaracalRequest, res: express.Response): void {
  handlerRuns++
  res.json({
    sub: req.caracal?.sub,
    sameObject: req.caracal !== undefined && req.caracal === req.caracalClaims,
    context: req.caracalContext,
    boundIsContext: current() === req.caracalContext,
  })
}

interface Answer {
  readonly status: number
  readonly body: unknown
  readonly contentType: string | null
  readonly wwwAuthenticate: string | null
  readonly retryAfter: string | null
}

async function get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  const response = await fetch(new URL(path, base), { method, headers })
  const text = await response.text()
  return {
    status: response.status,
    body: text === '' ? undefined : JSON.parse(text),
    contentType: response.headers.get('content-type'),
    wwwAuthenticate: response.headers.get('www-authenticate'),
    retryAfter: response.headers.get('retry-after'),
  }
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

// ---------------------------------------------------------------------------------------------
// The table: one route per row, each with its own store, so the revocations and epochs of one row
// touch no other.

interface Row {
  readonly name: string
  readonly code: AuthErrorCode
  readonly description: string
  readonly route?: AuthOverrides
  readonly headers: () => Record<string, string>
  /** Headers of a request the same route accepts: the refusal is caused by what the row names. */
  readonly control?: () => Record<string, string>
  readonly before?: (store: InMemoryRevocationStore) => void
}

const ROWS: readonly Row[] = [
  { name: 'no Authorization header', code: 'missing_token', description: 'Missing bearer token', headers: () => ({}) },
  {
    name: 'another scheme',
    code: 'missing_token',
    description: 'Missing bearer token',
    headers: () => ({ authorization: 'Basic ZGV2OmRldg==' }),
  },
  {
    name: 'Bearer with only whitespace after it',
    code: 'missing_token',
    description: 'Missing bearer token',
    headers: () => ({ authorization: 'Bearer    ' }),
  },
  {
    name: 'a scheme that runs on into the token',
    code: 'missing_token',
    description: 'Missing bearer token',
    headers: () => ({ authorization: `Bearer${sts.mintDelegated()}` }),
    control: () => ({ authorization: `bearer ${sts.mintDelegated()}` }),
  },
  {
    name: 'a payload edited after signing',
    code: 'invalid_token',
    description: 'Token validation failed',
    headers: () => bearer(tamper(sts.mintDelegated())),
    control: () => bearer(sts.mintDelegated()),
  },
  {
    name: 'an expired mandate',
    code: 'invalid_token',
    description: 'Token validation failed',
    headers: () => bearer(sts.mintDelegated({ overrides: { exp: nowSec() - 60, iat: nowSec() - 400 } })),
  },
  {
    name: 'a required target the mandate does not name',
    code: 'invalid_token',
    description: 'Token validation failed',
    route: { requiredTargets: ['resource://documents'] },
    headers: () => bearer(sts.mintDelegated({ overrides: { target: ['resource://files'] } })),
    control: () => bearer(sts.mintDelegated({ overrides: { target: ['resource://documents'] } })),
  },
  {
    name: 'a mandate of another zone',
    code: 'invalid_zone',
    description: 'Token zone validation failed',
    headers: () => bearer(sts.mintDelegated({ overrides: { zone_id: 'zone-other' } })),
  },
  {
    name: 'a scope the route requires and the mandate lacks',
    code: 'insufficient_scope',
    description: 'Missing scope: admin:write',
    route: { requiredScopes: ['admin:write'] },
    headers: () => bearer(sts.mintDelegated()),
    control: () => bearer(sts.mintDelegated({ overrides: { scope: 'admin:write' } })),
  },
  {
    name: 'no agent session where the route requires a Session',
    code: 'session_required',
    description: 'Session required',
    route: { requireSession: true },
    headers: () => bearer(sts.mintDelegated({ overrides: { agent_session_id: null } })),
    control: () => bearer(sts.mintDelegated()),
  },
  {
    name: 'no delegation edge where the route requires a delegation',
    code: 'delegation_required',
    description: 'Delegation required',
    route: { requireDelegation: true },
    headers: () => bearer(sts.mintDelegated({ overrides: { delegation_edge_id: '' } })),
    control: () => bearer(sts.mintDelegated()),
  },
  {
    name: 'a chain without the required application',
    code: 'chain_mismatch',
    description: 'Delegation chain missing application: app-partner',
    route: { requireChainContains: ['app-partner'] },
    headers: () => bearer(sts.mintDelegated()),
    control: () => bearer(sts.mintDelegated({ overrides: { delegation_chain: [{ application_id: 'app-partner' }] } })),
  },
  {
    name: 'a hop count above maxHopCount',
    code: 'hop_count_exceeded',
    description: 'Hop count exceeded',
    route: { maxHopCount: 2 },
    headers: () => bearer(sts.mintDelegated({ overrides: { hop_count: 3 } })),
    control: () => bearer(sts.mintDelegated({ overrides: { hop_count: 2 } })),
  },
  {
    name: 'a revoked agent session',
    code: 'session_revoked',
    description: 'Session revoked',
    before: (store) => store.markRevoked('agent-revoked'),
    headers: () => bearer(sts.mintDelegated({ overrides: { agent_session_id: 'agent-revoked' } })),
    control: () => bearer(sts.mintDelegated()),
  },
  {
    name: 'a delegation epoch below the zone’s current one',
    code: 'delegation_stale',
    description: 'Delegation graph changed',
    before: (store) => store.markDelegationEpoch('zone-compat-express', 7),
    headers: () => bearer(sts.mintDelegated({ epoch: 6 })),
    control: () => bearer(sts.mintDelegated({ epoch: 7 })),
  },
]

beforeAll(async () => {
  sts = await startCaracalSts('zone-compat-express')
  closers.push(() => sts.close())
  const app = express()
  app.use(express.json())

  // As the @caracalai/express docs mount it.
  const docsVerifier = createMandateVerifier(depsOf(new InMemoryRevocationStore()))
  app.use(
    '/mcp',
    caracalAuth(
      { verifier: docsVerifier },
      { requiredScopes: ['mcp:tool:call'], requiredTargets: [sts.audience], requireSession: true },
    ),
  )
  app.post('/mcp/tools/search', (req: CaracalRequest, res) => {
    handlerRuns++
    res.json({ subject: req.caracal?.sub })
  })

  // An STS nobody listens on: the signing keys cannot be fetched.
  const closed = await new Promise<Server>((resolve) => {
    const s = express().listen(0, '127.0.0.1', () => resolve(s))
  })
  const closedIssuer = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`
  await new Promise<void>((resolve) => closed.close(() => resolve()))

  for (const backend of TEST_BACKENDS) {
    const jwksCache = createJwksCacheOn(backend)
    caches.set(backend, jwksCache)
    closers.push(() => jwksCache.clear())
    ROWS.forEach((row, i) => {
      const store = new InMemoryRevocationStore()
      row.before?.(store)
      const verifier = createMandateVerifier(depsOf(store, jwksCache))
      app.get(`/${backend}/rows/${i}`, caracalAuth({ verifier }, row.route), report)
    })
    app.get(
      `/${backend}/unavailable`,
      caracalAuth(depsOf({ isRevoked: () => true, unavailableReason: () => 'redis unreachable' }, jwksCache)),
      report,
    )
    app.get(
      `/${backend}/jwks-down`,
      caracalAuth({ ...depsOf(new InMemoryRevocationStore(), jwksCache), issuer: closedIssuer }),
      report,
    )
  }

  // The dependencies of authenticate, one middleware per route (the "Per-route scope requirements" guide).
  const shared = depsOf(new InMemoryRevocationStore())
  app.get('/deps/read', caracalAuth({ ...shared, requiredScopes: ['documents:read'] }), report)
  app.get('/deps/write', caracalAuth({ ...shared, requiredScopes: ['documents:write'] }), report)
  app.get('/deps/route', caracalAuth(shared, { requiredScopes: ['tool:call'], requireSession: true }), report)
  app.get('/unbound', caracalAuth({ ...shared, bindContext: false }), report)
  app.get(
    '/later',
    caracalAuth({ verifier: createMandateVerifier(shared) }),
    async (req: CaracalRequest, _res, next) => {
      // The context stays bound across the handler's own awaits.
      await new Promise((resolve) => setTimeout(resolve, 5))
      await Promise.resolve()
      if (current() !== req.caracalContext) next(new Error('context lost across await'))
      else next()
    },
    report,
  )

  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s))
  })
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  )
  base = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)
})

afterAll(async () => {
  for (const close of closers.reverse()) await close()
})

describe('as the @caracalai/express docs use it', () => {
  it('targets Express 5, the peer dependency of the original', () => {
    const version = (createRequire(import.meta.url)('express/package.json') as { version: string }).version
    expect(Number(version.split('.')[0])).toBe(5)
  })

  it('caracalAuth({ verifier }, overrides) on /mcp: an accepted mandate reaches the handler as req.caracal', async () => {
    const token = sts.mintDelegated({ overrides: { sub: 'richard', scope: 'mcp:tool:call', target: [sts.audience] } })
    const runs = handlerRuns
    const answer = await get('/mcp/tools/search', bearer(token), 'POST')
    expect(answer).toMatchObject({ status: 200, body: { subject: 'richard' } })
    expect(handlerRuns).toBe(runs + 1)
  })

  it('the same route refuses what its overrides require, without calling the handler', async () => {
    const runs = handlerRuns
    const noTarget = await get(
      '/mcp/tools/search',
      bearer(sts.mintDelegated({ overrides: { scope: 'mcp:tool:call' } })),
      'POST',
    )
    expect(noTarget).toMatchObject({
      status: 401,
      body: { error: 'invalid_token', error_description: 'Token validation failed', error_hint: HINT.invalid_token },
    })
    const noScope = await get(
      '/mcp/tools/search',
      bearer(sts.mintDelegated({ overrides: { target: [sts.audience] } })),
      'POST',
    )
    expect(noScope).toMatchObject({
      status: 403,
      body: { error: 'insufficient_scope', error_description: 'Missing scope: mcp:tool:call' },
    })
    expect(handlerRuns).toBe(runs)
  })

  it('req.caracal and req.caracalClaims are the principal, with the claims’ names', async () => {
    const answer = await get('/deps/read', bearer(sts.mintDelegated({ overrides: { sub: 'alice' } })))
    expect(answer.status).toBe(200)
    expect(answer.body).toMatchObject({ sub: 'alice', sameObject: true })
  })

  it('per-route middlewares from the dependencies: each route applies its own scopes', async () => {
    const token = sts.mintDelegated({ overrides: { scope: 'documents:read tool:call' } })
    expect((await get('/deps/read', bearer(token))).status).toBe(200)
    expect(await get('/deps/write', bearer(token))).toMatchObject({
      status: 403,
      body: { error: 'insufficient_scope', error_description: 'Missing scope: documents:write' },
    })
    expect((await get('/deps/route', bearer(token))).status).toBe(200)
    const noSession = sts.mintDelegated({ overrides: { scope: 'tool:call', agent_session_id: undefined } })
    expect(await get('/deps/route', bearer(noSession))).toMatchObject({
      status: 403,
      body: { error: 'session_required', error_description: 'Session required', error_hint: HINT.session_required },
    })
  })
})

describe('the error table', () => {
  it('names every code of the verify package', () => {
    expect(new Set(ROWS.map((r) => r.code))).toEqual(new Set(Object.keys(STATUS)))
  })
})

describe.each(TEST_BACKENDS)(
  'every error code’s status and body on the %s backend, with the values of the Caracal sources',
  (backend) => {
    it.each(ROWS.map((row, i) => ({ ...row, i })))('$name → $code', async (row) => {
      const runs = handlerRuns
      const answer = await get(`/${backend}/rows/${row.i}`, row.headers())
      expect(handlerRuns).toBe(runs)
      const body =
        row.code === 'missing_token'
          ? MISSING_BODY
          : { error: row.code, error_description: row.description, error_hint: HINT[row.code] }
      expect(answer).toEqual({
        status: STATUS[row.code],
        body,
        contentType: 'application/json; charset=utf-8',
        wwwAuthenticate: null,
        retryAfter: null,
      })
      if (row.control !== undefined) {
        const verified = acceptedOn(caches.get(backend)!, backend)
        const accepted = await get(`/${backend}/rows/${row.i}`, row.control())
        expect(accepted.status).toBe(200)
        expect(handlerRuns).toBe(runs + 1)
        // Verified by this backend's engine, through the cache in the dependencies.
        expect(acceptedOn(caches.get(backend)!, backend)).toBe(verified + 1)
      }
    })

    it('two Authorization headers: refused as no token, even when one of them is valid', async () => {
      const valid = sts.mintDelegated()
      const runs = handlerRuns
      const answer = await new Promise<{ status: number; body: unknown }>((resolve, reject) => {
        const req = httpRequest(new URL(`/${backend}/rows/0`, base))
        // An array value is sent as two header lines.
        req.setHeader('authorization', [`Bearer ${valid}`, `Bearer ${sts.mintDelegated()}`])
        req.on('response', (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (chunk: string) => {
            text += chunk
          })
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }))
        })
        req.on('error', reject)
        req.end()
      })
      expect(answer).toEqual({ status: 401, body: MISSING_BODY })
      expect(handlerRuns).toBe(runs)
      expect((await get(`/${backend}/rows/0`, bearer(valid))).status).toBe(200)
    })

    it('a revocation store that cannot be trusted: 503 with Retry-After and the session_revoked body', async () => {
      const runs = handlerRuns
      const answer = await get(`/${backend}/unavailable`, bearer(sts.mintDelegated()))
      expect(answer).toEqual({
        status: 503,
        body: { error: 'session_revoked', error_description: 'Session revoked', error_hint: HINT.session_revoked },
        contentType: 'application/json; charset=utf-8',
        wwwAuthenticate: null,
        retryAfter: '5',
      })
      expect(handlerRuns).toBe(runs)
    })

    it('signing keys that cannot be fetched: 503 with Retry-After and the invalid_token body', async () => {
      const runs = handlerRuns
      const answer = await get(`/${backend}/jwks-down`, bearer(sts.mintDelegated()))
      expect(answer).toEqual({
        status: 503,
        body: { error: 'invalid_token', error_description: 'Token validation failed', error_hint: HINT.invalid_token },
        contentType: 'application/json; charset=utf-8',
        wwwAuthenticate: null,
        retryAfter: '5',
      })
      expect(handlerRuns).toBe(runs)
    })

    it('no answer carries any part of the token', async () => {
      const token = tamper(sts.mintDelegated())
      const answer = await get(`/${backend}/rows/0`, bearer(token))
      const text = JSON.stringify(answer)
      for (const part of token.split('.')) expect(text).not.toContain(part)
    })
  },
)

describe('req.caracalContext and the bound context', () => {
  const TRACEPARENT = '00-0123456789abcdef0123456789abcdef-0123456789abcdef-01'
  const BAGGAGE =
    'caracal.agent_session=agent-header,caracal.delegation_edge=edge-header,caracal.parent_edge=parent-header,caracal.hop=3,vendor.key=v%201;prop=x'

  it('signed claims win over the baggage; trace context and the other baggage members are kept', async () => {
    const minted = sts.dev.issue({
      iss: sts.issuer,
      client_id: 'app-frontend',
      agent_session_id: 'agent-claim',
      delegation_edge_id: 'edge-claim',
      hop_count: 1,
    })
    const answer = await get('/deps/read', {
      ...bearer(minted.token),
      traceparent: TRACEPARENT,
      tracestate: ' vendor=abc ',
      baggage: BAGGAGE,
    })
    expect(answer.status).toBe(200)
    const body = answer.body as { context: CaracalContext; boundIsContext: boolean }
    expect(body.context).toEqual({
      subjectToken: minted.token,
      zoneId: sts.zoneId,
      applicationId: 'app-frontend',
      sessionId: 'agent-claim',
      delegationId: 'edge-claim',
      parentDelegationId: 'parent-header',
      subjectAuthorityRecordId: minted.claims.sid,
      traceId: '0123456789abcdef0123456789abcdef',
      traceFlags: '01',
      traceState: 'vendor=abc',
      baggage: { 'vendor.key': 'v 1' },
      hop: 1,
    })
    expect(body.boundIsContext).toBe(true)
  })

  it('what the claims do not carry comes from the baggage', async () => {
    const minted = sts.dev.issue({ iss: sts.issuer, agent_session_id: undefined })
    const answer = await get('/deps/read', { ...bearer(minted.token), baggage: BAGGAGE })
    expect((answer.body as { context: CaracalContext }).context).toMatchObject({
      sessionId: 'agent-header',
      delegationId: 'edge-header',
      parentDelegationId: 'parent-header',
      hop: 3,
    })
  })

  it.each([
    ['a traceparent of version ff', 'ff-0123456789abcdef0123456789abcdef-0123456789abcdef-01', {}],
    ['an all-zero trace id', '00-00000000000000000000000000000000-0123456789abcdef-01', {}],
    ['a version 00 traceparent with a fifth field', `${TRACEPARENT}-extra`, {}],
    ['an upper-case trace id', '00-0123456789ABCDEF0123456789ABCDEF-0123456789abcdef-01', {}],
    [
      'a later version with a fifth field',
      '01-0123456789abcdef0123456789abcdef-0123456789abcdef-00-extra',
      { traceId: '0123456789abcdef0123456789abcdef', traceFlags: '00' },
    ],
  ])('%s', async (_name, traceparent, expected) => {
    const minted = sts.dev.issue({ iss: sts.issuer })
    const answer = await get('/deps/read', { ...bearer(minted.token), traceparent })
    const context = (answer.body as { context: CaracalContext }).context
    expect({ traceId: context.traceId, traceFlags: context.traceFlags }).toEqual({
      traceId: undefined,
      traceFlags: undefined,
      ...expected,
    })
  })

  it.each([
    ['a hop that is not a number', 'caracal.hop=x', 0],
    ['a hop above 10 (capped)', 'caracal.hop=99', 10],
    [
      'more than 64 members (the whole header ignored)',
      `caracal.hop=4,${Array.from({ length: 64 }, (_, i) => `k${i}=v`).join(',')}`,
      0,
    ],
  ])('baggage with %s', async (_name, baggage, hop) => {
    const minted = sts.dev.issue({ iss: sts.issuer })
    const answer = await get('/deps/read', { ...bearer(minted.token), baggage })
    expect((answer.body as { context: CaracalContext }).context.hop).toBe(hop)
  })

  it('a baggage member named __proto__ is an ordinary entry', async () => {
    const minted = sts.dev.issue({ iss: sts.issuer })
    const answer = await get('/deps/read', { ...bearer(minted.token), baggage: '__proto__=polluted,plain=1' })
    const context = (answer.body as { context: CaracalContext }).context
    expect(Object.entries(context.baggage ?? {})).toEqual([
      ['__proto__', 'polluted'],
      ['plain', '1'],
    ])
  })

  it('bindContext: false sets req.caracalContext but binds nothing', async () => {
    const answer = await get('/unbound', bearer(sts.mintDelegated()))
    expect(answer.status).toBe(200)
    const body = answer.body as { context: CaracalContext; boundIsContext: boolean }
    expect(body.context.zoneId).toBe(sts.zoneId)
    expect(body.boundIsContext).toBe(false)
  })

  it('the context stays bound across the handler’s awaits, and is gone after the request', async () => {
    const answer = await get('/later', bearer(sts.mintDelegated()))
    expect(answer.status).toBe(200)
    expect((answer.body as { boundIsContext: boolean }).boundIsContext).toBe(true)
    expect(current()).toBeUndefined()
  })
})

describe('with @caracalai/sdk installed', () => {
  it('binds with the SDK’s own bind, so its current() sees the context', async () => {
    const storage = new AsyncLocalStorage<unknown>()
    vi.doMock('@caracalai/sdk/advanced', () => ({
      bind: (ctx: unknown, fn: () => unknown) => storage.run(ctx, fn),
      current: () => storage.getStore(),
    }))
    vi.resetModules()
    try {
      const fresh = (await import('../src/compat/express.js')) as typeof import('../src/compat/express.js')
      const verifier: MandateVerifier = createMandateVerifier(depsOf(new InMemoryRevocationStore()))
      const app = express()
      app.get('/sdk', fresh.caracalAuth({ verifier }), (req: CaracalRequest, res) => {
        res.json({
          sdkSeesIt: storage.getStore() === req.caracalContext,
          currentToo: fresh.current() === req.caracalContext,
        })
      })
      const s = await new Promise<Server>((resolve) => {
        const l = app.listen(0, '127.0.0.1', () => resolve(l))
      })
      try {
        const port = (s.address() as AddressInfo).port
        const response = await fetch(`http://127.0.0.1:${port}/sdk`, { headers: bearer(sts.mintDelegated()) })
        expect(await response.json()).toEqual({ sdkSeesIt: true, currentToo: true })
      } finally {
        await new Promise<void>((resolve) => {
          s.close(() => resolve())
          s.closeAllConnections()
        })
      }
    } finally {
      vi.doUnmock('@caracalai/sdk/advanced')
      vi.resetModules()
    }
  })
})
