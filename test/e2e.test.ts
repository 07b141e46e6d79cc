/**
 * End to end over 127.0.0.1 with the real MCP SDK client: a fastmcp server (`auth.authenticate`),
 * an MCP SDK server behind the SDK's `requireBearerAuth` + `mcpSdkVerifier`, and one behind
 * `requireCaracalAuth`. Every error code: status, WWW-Authenticate and body; claims in the tool
 * handlers; and a counter proving no tool code runs for a rejected request.
 */
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import express from 'express'
import { FastMCP } from 'fastmcp'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { CaracalAuth, InMemoryRevocationStore, type CaracalSession, type RevocationStore } from '../src/index.js'
import { mcpSdkVerifier, protectedResourceMetadataHandler, requireCaracalAuth } from '../src/mcp-sdk.js'
import { startDevSts, type DevSts } from '../src/dev/index.js'
import { quietLogger } from '../src/demo/documents.js'
import { startHttpStream } from '../src/demo/listen.js'
import { connectClient, tamper, type ObservedResponse } from '../src/demo/tour.js'

const ZONE = 'zone-e2e'
const AUDIENCE = 'resource://e2e'
const RESOURCE_METADATA = 'http://127.0.0.1/.well-known/oauth-protected-resource/mcp'
const REQUIRED_APP = 'app-orchestrator'

/** A revocation store whose backing state can be made untrustworthy, as a Redis mirror that lost Redis. */
class SwitchableStore implements RevocationStore {
  readonly inner = new InMemoryRevocationStore()
  outage: string | undefined
  isRevoked(anchor: string): boolean {
    return this.outage !== undefined || this.inner.isRevoked(anchor)
  }
  markRevoked(anchor: string, ttlMs?: number): void {
    this.inner.markRevoked(anchor, ttlMs)
  }
  unavailableReason(): string | undefined {
    return this.outage
  }
  currentDelegationEpoch(zoneId: string): number {
    return this.inner.currentDelegationEpoch(zoneId)
  }
  markDelegationEpoch(zoneId: string, epoch: number): void {
    this.inner.markDelegationEpoch(zoneId, epoch)
  }
}

let sts: DevSts
let store: SwitchableStore
let auth: CaracalAuth
let toolRuns = 0
const lastSeen: { claims?: unknown; authInfo?: unknown; session?: CaracalSession } = {}
const closers: (() => Promise<void> | void)[] = []

/** Claims of a mandate every server accepts; cases override one thing each. */
function validClaims(): Record<string, unknown> {
  return {
    delegation_edge_id: `edge-${Math.random().toString(36).slice(2)}`,
    delegation_chain: [{ application_id: REQUIRED_APP, agent_session_id: 'upstream-session' }],
    hop_count: 1,
    target: [AUDIENCE],
  }
}

async function listen(app: express.Express): Promise<URL> {
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s))
  })
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  )
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`)
}

/** A stateless MCP SDK server whose `whoami` tool reports the AuthInfo it was given. */
function sdkApp(middleware: express.RequestHandler): express.Express {
  const app = express()
  app.use(express.json())
  app.use(protectedResourceMetadataHandler(auth, { resourceServerUrl: 'http://127.0.0.1/mcp', resourceName: 'e2e' }))
  app.post('/mcp', middleware, async (req, res) => {
    const server = new McpServer({ name: 'e2e-sdk', version: '1.0.0' })
    server.registerTool('whoami', { description: 'who is calling' }, async (extra) => {
      toolRuns++
      lastSeen.authInfo = extra.authInfo
      return { content: [{ type: 'text', text: JSON.stringify(extra.authInfo?.extra?.claims ?? null) }] }
    })
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true })
    res.on('close', () => {
      void transport.close()
      void server.close()
    })
    await server.connect(transport)
    await transport.handleRequest(req, res, req.body)
  })
  app.get('/mcp', (_req, res) => {
    res.status(405).set('allow', 'POST').end()
  })
  return app
}

const servers: Record<'fastmcp' | 'sdk-requireBearerAuth' | 'sdk-requireCaracalAuth', URL> = {} as never

beforeAll(async () => {
  store = new SwitchableStore()
  sts = await startDevSts({ zoneId: ZONE, audience: AUDIENCE })
  closers.push(() => sts.close())
  auth = new CaracalAuth({
    issuer: sts.issuer,
    audience: AUDIENCE,
    revocations: store,
    requiredScopes: ['tool:call'],
    expectedZoneId: ZONE,
    requireAgent: true,
    requireDelegation: true,
    requireChainContains: [REQUIRED_APP],
    maxHopCount: 3,
    resourceMetadataUrl: RESOURCE_METADATA,
  })
  closers.push(() => auth.close())

  const fast = new FastMCP<CaracalSession>({
    name: 'e2e-fastmcp',
    version: '1.0.0',
    authenticate: auth.authenticate,
    logger: quietLogger,
  })
  fast.addTool({
    name: 'whoami',
    description: 'who is calling',
    execute: async (_args, { session }) => {
      toolRuns++
      lastSeen.session = session
      return JSON.stringify(session?.claims ?? null)
    },
  })
  servers.fastmcp = await startHttpStream(fast)
  closers.push(() => fast.stop())

  servers['sdk-requireBearerAuth'] = await listen(
    sdkApp(
      requireBearerAuth({
        verifier: mcpSdkVerifier(auth),
        requiredScopes: ['tool:call'],
        resourceMetadataUrl: RESOURCE_METADATA,
      }),
    ),
  )
  servers['sdk-requireCaracalAuth'] = await listen(sdkApp(requireCaracalAuth(auth)))
})

afterAll(async () => {
  for (const close of closers.reverse()) await close()
})

beforeEach(() => {
  store.outage = undefined
})

type Credential = string | { authorization: string } | undefined

interface ErrorCase {
  readonly name: string
  readonly code: string
  readonly status: 401 | 403 | 503
  readonly credential: () => Promise<Credential> | Credential
  readonly before?: () => void
}

const revokedSid = `sid-revoked-${Date.now()}`

const cases: ErrorCase[] = [
  { name: 'no Authorization header', code: 'missing_token', status: 401, credential: () => undefined },
  {
    name: 'another scheme',
    code: 'missing_token',
    status: 401,
    credential: () => ({ authorization: 'Basic ZGV2OmRldg==' }),
  },
  {
    name: 'Bearer without a token',
    code: 'missing_token',
    status: 401,
    credential: () => ({ authorization: 'Bearer ' }),
  },
  { name: 'tampered payload', code: 'invalid_token', status: 401, credential: () => tamper(sts.mint(validClaims())) },
  { name: 'not a JWS', code: 'invalid_token', status: 401, credential: () => 'not-a-token' },
  {
    name: 'expired',
    code: 'invalid_token',
    status: 401,
    credential: () =>
      sts.mint({
        ...validClaims(),
        exp: Math.floor(Date.now() / 1000) - 3600,
        iat: Math.floor(Date.now() / 1000) - 7200,
      }),
  },
  {
    name: 'another audience',
    code: 'invalid_token',
    status: 401,
    credential: () => sts.mint({ ...validClaims(), aud: 'resource://elsewhere' }),
  },
  {
    name: 'another zone',
    code: 'invalid_zone',
    status: 401,
    credential: () => sts.mint({ ...validClaims(), zone_id: 'zone-other' }),
  },
  {
    name: 'revoked session',
    code: 'session_revoked',
    status: 401,
    before: () => store.markRevoked(revokedSid),
    credential: () => sts.mint({ ...validClaims(), sid: revokedSid }),
  },
  {
    name: 'delegation graph changed since issue',
    code: 'delegation_stale',
    status: 401,
    before: () => store.markDelegationEpoch(ZONE, 5),
    credential: () => sts.mint({ ...validClaims(), delegation_graph_epoch: 4 }),
  },
  {
    name: 'no tool:call scope',
    code: 'insufficient_scope',
    status: 403,
    credential: () => sts.mint({ ...validClaims(), scope: 'documents:read' }),
  },
  {
    name: 'no agent session',
    code: 'agent_required',
    status: 403,
    credential: () => sts.mint({ ...validClaims(), agent_session_id: undefined }),
  },
  {
    name: 'no delegation edge',
    code: 'delegation_required',
    status: 403,
    credential: () => sts.mint({ ...validClaims(), delegation_edge_id: undefined }),
  },
  {
    name: 'chain without the required application',
    code: 'chain_mismatch',
    status: 403,
    credential: () => sts.mint({ ...validClaims(), delegation_chain: [{ application_id: 'app-stranger' }] }),
  },
  {
    name: 'hop count above the maximum',
    code: 'hop_count_exceeded',
    status: 403,
    credential: () => sts.mint({ ...validClaims(), hop_count: 4 }),
  },
  {
    name: 'revocation state unavailable',
    code: 'session_revoked',
    status: 503,
    before: () => {
      store.outage = 'redis unreachable'
    },
    credential: () => sts.mint(validClaims()),
  },
]

/** Connects and calls `whoami`; the HTTP error the client met (undefined when the call succeeded). */
async function attempt(url: URL, credential: Credential): Promise<ObservedResponse | undefined> {
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

function tokenText(credential: Credential): string | undefined {
  return typeof credential === 'string' ? credential : undefined
}

/** The description must never carry any part of the token. */
function expectNoTokenEcho(text: string, credential: Credential): void {
  const token = tokenText(credential)
  if (token === undefined) return
  for (const part of token.split('.')) if (part.length >= 8) expect(text).not.toContain(part)
}

describe.each(['fastmcp', 'sdk-requireCaracalAuth'] as const)('%s: shared rendering', (kind) => {
  it.each(cases)('$name → $status $code', async (c) => {
    c.before?.()
    const credential = await c.credential()
    const runs = toolRuns
    const observed = await attempt(servers[kind], credential)
    expect(toolRuns).toBe(runs)
    expect(observed?.status).toBe(c.status)
    const body = observed?.body as {
      jsonrpc: string
      id: unknown
      error: { code: number; message: string; data: Record<string, unknown> }
    }
    expect(body.jsonrpc).toBe('2.0')
    expect(body.id).toBeNull()
    expect(body.error.code).toBe(-32000)
    expect(body.error.data.error).toBe(c.code)
    expect(body.error.message.startsWith(`${c.code}: `)).toBe(true)
    expect(typeof body.error.data.hint).toBe('string')
    expectNoTokenEcho(JSON.stringify(body), credential)
    if (c.status === 503) {
      expect(observed?.retryAfter).toBe('5')
      expect(observed?.wwwAuthenticate).toBeNull()
      expect(body.error.data.unavailable).toBe(true)
      return
    }
    const bearerError = c.status === 403 ? 'insufficient_scope' : 'invalid_token'
    const header = observed?.wwwAuthenticate ?? ''
    expect(header).toMatch(
      new RegExp(
        `^Bearer error="${bearerError}", error_description="${c.code}: [\\x20-\\x21\\x23-\\x5b\\x5d-\\x7e]+", scope="tool:call", resource_metadata="${RESOURCE_METADATA}"$`,
      ),
    )
    expect(observed?.retryAfter).toBeNull()
    expectNoTokenEcho(header, credential)
  })
})

describe('sdk-requireBearerAuth: the SDK renders, mcpSdkVerifier throws its error classes', () => {
  it.each(cases)('$name → $code', async (c) => {
    c.before?.()
    const credential = await c.credential()
    const runs = toolRuns
    const observed = await attempt(servers['sdk-requireBearerAuth'], credential)
    expect(toolRuns).toBe(runs)
    const body = observed?.body as { error: string; error_description: string }
    if (c.status === 503) {
      // The SDK answers ServerError with 500 and no challenge; requireCaracalAuth gives 503 + Retry-After.
      expect(observed?.status).toBe(500)
      expect(body.error).toBe('server_error')
      expect(body.error_description.startsWith('session_revoked: ')).toBe(true)
      return
    }
    expect(observed?.status).toBe(c.status)
    const bearerError = c.status === 403 ? 'insufficient_scope' : 'invalid_token'
    expect(body.error).toBe(bearerError)
    if (c.code === 'missing_token') {
      // The SDK reads the header itself and never calls the verifier.
      expect(body.error_description).toMatch(/Authorization header/)
    } else {
      expect(body.error_description.startsWith(`${c.code}: `)).toBe(true)
    }
    expect(observed?.wwwAuthenticate).toBe(
      `Bearer error="${bearerError}", error_description="${body.error_description}", scope="tool:call", resource_metadata="${RESOURCE_METADATA}"`,
    )
    expectNoTokenEcho(JSON.stringify(body) + (observed?.wwwAuthenticate ?? ''), credential)
  })
})

describe('claims in tool handlers', () => {
  it('fastmcp: context.session carries the claims, scopes and caller', async () => {
    const token = sts.mint({ ...validClaims(), sub: 'alice', scope: 'tool:call documents:read' }, { alg: 'RS256' })
    const runs = toolRuns
    const client = await connectClient(servers.fastmcp, token)
    try {
      const result = await client.client.callTool({ name: 'whoami', arguments: {} })
      expect(toolRuns).toBe(runs + 1)
      const claims = JSON.parse((result.content as { text: string }[])[0]!.text) as Record<string, unknown>
      expect(claims).toMatchObject({ sub: 'alice', zoneId: ZONE, clientId: 'dev-client', use: 'resource', hopCount: 1 })
      expect(claims.delegationChain).toEqual([{ applicationId: REQUIRED_APP, sessionId: 'upstream-session' }])
      const session = lastSeen.session!
      expect(session.sub).toBe('alice')
      expect(session.scopes).toEqual(['tool:call', 'documents:read'])
      expect(session.agentSessionId).toBe(session.claims.sessionId)
      expect(session.zoneId).toBe(ZONE)
    } finally {
      await client.close()
    }
  })

  it.each(['sdk-requireBearerAuth', 'sdk-requireCaracalAuth'] as const)(
    '%s: extra.authInfo has clientId, scopes, expiresAt, resource and the claims',
    async (kind) => {
      const token = sts.mint({ ...validClaims(), sub: 'bob', client_id: 'client-b' })
      const runs = toolRuns
      const client = await connectClient(servers[kind], token)
      try {
        await client.client.callTool({ name: 'whoami', arguments: {} })
        expect(toolRuns).toBe(runs + 1)
        const info = lastSeen.authInfo as {
          token: string
          clientId: string
          scopes: string[]
          expiresAt: number
          resource?: URL
          extra: { claims: { sub: string; expiresAt: number } }
        }
        expect(info.clientId).toBe('client-b')
        expect(info.scopes).toEqual(['tool:call', 'documents:read'])
        expect(info.expiresAt).toBe(info.extra.claims.expiresAt)
        expect(info.resource?.href).toBe(AUDIENCE)
        expect(info.extra.claims.sub).toBe('bob')
        expect(info.token).toBe(token)
      } finally {
        await client.close()
      }
    },
  )

  it('a revocation stops an already connected client at its next call (fastmcp, stateful session)', async () => {
    const fast = new FastMCP<CaracalSession>({
      name: 'e2e-stateful',
      version: '1.0.0',
      authenticate: auth.authenticate,
      logger: quietLogger,
    })
    fast.addTool({
      name: 'whoami',
      execute: async (_a, { session }) => {
        toolRuns++
        return session?.sub ?? ''
      },
    })
    const url = await startHttpStream(fast, { stateless: false })
    const sid = `sid-live-${Date.now()}`
    const client = await connectClient(url, sts.mint({ ...validClaims(), sid }))
    try {
      const first = await client.client.callTool({ name: 'whoami', arguments: {} })
      expect((first.content as { text: string }[])[0]!.text).toBe('dev-user')
      store.markRevoked(sid)
      const runs = toolRuns
      await expect(client.client.callTool({ name: 'whoami', arguments: {} })).rejects.toThrow()
      expect(toolRuns).toBe(runs)
      expect(client.lastError()?.status).toBe(401)
      expect((client.lastError()?.body as { error: { data: { error: string } } } | undefined)?.error.data.error).toBe(
        'session_revoked',
      )
    } finally {
      await client.close().catch(() => {})
      await fast.stop()
    }
  })
})

describe('fastmcp SSE endpoint', () => {
  it('is guarded by the same authenticate: the thrown Response comes through unchanged', async () => {
    const runs = toolRuns
    const response = await fetch(new URL('/sse', servers.fastmcp), {
      headers: { authorization: `Bearer ${sts.mint({ ...validClaims(), zone_id: 'zone-other' })}` },
    })
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toMatch(
      /^Bearer error="invalid_token", error_description="invalid_zone: /,
    )
    expect((await response.json()).error.data.error).toBe('invalid_zone')
    expect(toolRuns).toBe(runs)
  })
})

describe('RFC 9728 metadata', () => {
  it('is served at the path-specific well-known URL of the resource', async () => {
    const base = servers['sdk-requireCaracalAuth']
    const response = await fetch(new URL('/.well-known/oauth-protected-resource/mcp', base))
    expect(response.status).toBe(200)
    expect(response.headers.get('access-control-allow-origin')).toBe('*')
    expect(await response.json()).toEqual({
      resource: 'http://127.0.0.1/mcp',
      authorization_servers: [sts.issuer],
      bearer_methods_supported: ['header'],
      scopes_supported: ['tool:call'],
      resource_name: 'e2e',
    })
  })
})
