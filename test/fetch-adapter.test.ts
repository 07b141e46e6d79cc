/**
 * The Fetch adapter (entry `caracal-fastmcp/fetch`) on Node's own Request/Response/Headers: claims or
 * a ready Response with the exact challenge and body the Node adapters send, the repeated-header
 * refusal `Headers` makes hard to see, Hono through `app.request()`, the generic wrapper's extra
 * arguments, and an entry that bundles for the browser with nothing from Node in it.
 */
import { runInNewContext } from 'node:vm'
import { build } from 'esbuild'
import { Hono } from 'hono'
import { afterAll, describe, expect, it } from 'vitest'
import { CaracalAuth, InMemoryRevocationStore, type Claims } from '../src/index.js'
import {
  authenticateRequest,
  caracalHono,
  serveProtectedResourceMetadata,
  withCaracalAuth,
  type CaracalHonoEnv,
  type FetchVerifier,
} from '../src/fetch.js'
import { protectedResourceMetadataHandler } from '../src/mcp-sdk.js'
import { startJwksServer } from './support/jwks-server.js'
import { AUDIENCE, ISSUER, NOW_MS, NOW_SEC, mint, rsKey, staticJwks } from './support/mandates.js'

const METADATA = 'https://mcp.example/.well-known/oauth-protected-resource/mcp'
const HINT = {
  missing: 'Send a Caracal mandate as "Authorization: Bearer <token>".',
  fresh: 'Obtain a fresh mandate from the Caracal STS.',
  scope: 'Request a mandate that carries the required scopes.',
}

const verifiers: CaracalAuth[] = []
function makeAuth(extra: Record<string, unknown> = {}): CaracalAuth {
  const auth = new CaracalAuth({
    issuer: ISSUER,
    audience: AUDIENCE,
    revocations: new InMemoryRevocationStore({ now: () => NOW_MS }),
    jwks: { keys: staticJwks },
    now: () => NOW_MS,
    requiredScopes: ['tool:call'],
    resourceMetadataUrl: METADATA,
    ...extra,
  })
  verifiers.push(auth)
  return auth
}
afterAll(async () => {
  for (const auth of verifiers) await auth.close()
})

const request = (authorization?: string): Request =>
  new Request('https://mcp.example/mcp', {
    method: 'POST',
    headers: authorization === undefined ? {} : { authorization },
  })

/** Status, every header and the parsed body of a refusal. */
async function refusal(response: Response) {
  const headers: Record<string, string> = {}
  response.headers.forEach((value, name) => {
    headers[name] = value
  })
  return { status: response.status, headers, body: JSON.parse(await response.text()) as unknown }
}

const jsonRpcError = (code: string, description: string, hint: string, extra: Record<string, unknown> = {}) => ({
  jsonrpc: '2.0',
  id: null,
  error: {
    code: -32000,
    message: `${code}: ${description}`,
    data: { error: code, error_description: description, hint, ...extra },
  },
})

describe('authenticateRequest', () => {
  it('a valid mandate: the claims, and nothing rendered', async () => {
    const result = await authenticateRequest(makeAuth(), request(`Bearer ${mint()}`))
    expect(result.ok).toBe(true)
    if (!result.ok) return
    expect(result.claims.sub).toBe('user-1')
    expect(result.claims.zoneId).toBe('zone-1')
    expect(Object.isFrozen(result.claims)).toBe(true)
  })

  it.each([
    ['no Authorization header', undefined, 'no bearer token in the Authorization header'],
    ['another scheme', 'Basic ZGV2OmRldg==', 'no bearer token in the Authorization header'],
    ['the scheme alone', 'Bearer', 'no bearer token in the Authorization header'],
  ])('401 missing_token: %s', async (_name, authorization, description) => {
    const result = await authenticateRequest(makeAuth(), request(authorization))
    expect(result.ok).toBe(false)
    if (result.ok) return
    expect(result.error.code).toBe('missing_token')
    expect(await refusal(result.response)).toEqual({
      status: 401,
      headers: {
        'cache-control': 'no-store',
        'content-type': 'application/json',
        'www-authenticate': `Bearer error="invalid_token", error_description="missing_token: ${description}", scope="tool:call", resource_metadata="${METADATA}"`,
      },
      body: jsonRpcError('missing_token', description, HINT.missing),
    })
  })

  it.each([
    ['a forged signature', () => `${mint().slice(0, -4)}AAAA`, 'signature verification failed'],
    ['an expired mandate', () => mint({ exp: NOW_SEC - 1 }), 'token expired'],
    ['an RS256 mandate under the ES256 key id', () => mint({}, rsKey, { kid: 'es-1' }), /./],
  ])('401 invalid_token: %s', async (_name, token, description) => {
    const result = await authenticateRequest(makeAuth(), request(`Bearer ${token()}`))
    expect(result.ok).toBe(false)
    if (result.ok) return
    expect(result.error.code).toBe('invalid_token')
    if (typeof description === 'string') expect(result.error.description).toBe(description)
    const r = await refusal(result.response)
    expect(r).toEqual({
      status: 401,
      headers: {
        'cache-control': 'no-store',
        'content-type': 'application/json',
        'www-authenticate': `Bearer error="invalid_token", error_description="invalid_token: ${result.error.description}", scope="tool:call", resource_metadata="${METADATA}"`,
      },
      body: jsonRpcError('invalid_token', result.error.description, HINT.fresh),
    })
  })

  it('403 insufficient_scope: the challenge names the scopes the resource needs', async () => {
    const result = await authenticateRequest(
      makeAuth({ requiredScopes: ['tool:call', 'documents:write'] }),
      request(`Bearer ${mint({ scope: 'tool:call' })}`),
    )
    expect(result.ok).toBe(false)
    if (result.ok) return
    expect(await refusal(result.response)).toEqual({
      status: 403,
      headers: {
        'cache-control': 'no-store',
        'content-type': 'application/json',
        'www-authenticate': `Bearer error="insufficient_scope", error_description="insufficient_scope: missing required scope: documents:write", scope="tool:call documents:write", resource_metadata="${METADATA}"`,
      },
      body: jsonRpcError('insufficient_scope', 'missing required scope: documents:write', HINT.scope, {
        scope: 'tool:call documents:write',
      }),
    })
  })

  it("the adapter's options win over the verifier's (metadata URL, scopes, Retry-After)", async () => {
    const result = await authenticateRequest(makeAuth(), request(), {
      resourceMetadataUrl: 'https://other.example/.well-known/oauth-protected-resource',
      requiredScopes: ['a', 'b'],
    })
    expect(result.ok ? undefined : result.response.headers.get('www-authenticate')).toBe(
      'Bearer error="invalid_token", error_description="missing_token: no bearer token in the Authorization header", scope="a b", resource_metadata="https://other.example/.well-known/oauth-protected-resource"',
    )
  })

  it('503 with Retry-After and no challenge while the JWKS cannot be fetched', async () => {
    const sts = await startJwksServer()
    sts.handler = (_req, res) => {
      res.writeHead(500).end()
    }
    try {
      const auth = makeAuth({ jwks: { url: sts.jwksUrl } })
      for (const [options, retryAfter] of [
        [undefined, '5'],
        [{ retryAfterSec: 30 }, '30'],
      ] as const) {
        const result = await authenticateRequest(auth, request(`Bearer ${mint()}`), options)
        expect(result.ok).toBe(false)
        if (result.ok) return
        expect(result.error.unavailable).toBe(true)
        const r = await refusal(result.response)
        expect(r.status).toBe(503)
        expect(r.headers).toEqual({
          'cache-control': 'no-store',
          'content-type': 'application/json',
          'retry-after': retryAfter,
        })
        expect(result.error.description).toMatch(/JWKS endpoint answered HTTP 500/)
        expect(r.body).toEqual(
          jsonRpcError(result.error.code, result.error.description, result.error.hint, { unavailable: true }),
        )
      }
      expect(sts.jwksHits).toBeGreaterThan(0)
    } finally {
      await sts.close()
    }
  })

  it('a store that throws: 503 with Retry-After, as the Node adapters answer', async () => {
    const auth = makeAuth({
      revocations: {
        isRevoked: () => {
          throw new Error('down')
        },
        markRevoked: () => {},
      },
    })
    const result = await authenticateRequest(auth, request(`Bearer ${mint()}`))
    expect(result.ok ? 200 : result.response.status).toBe(503)
    expect(result.ok ? undefined : result.response.headers.get('retry-after')).toBe('5')
  })

  it('two Authorization headers (joined by Headers with ", "): missing_token, neither token verified', async () => {
    const auth = makeAuth()
    const verify = auth.verify
    let verified = 0
    const counting: FetchVerifier = {
      options: auth.options,
      verify: (token) => {
        verified++
        return verify(token)
      },
    }
    const headers = new Headers()
    headers.append('Authorization', `Bearer ${mint()}`)
    headers.append('authorization', `Bearer ${mint()}`)
    expect(headers.get('authorization')).toMatch(/^Bearer \S+, Bearer \S+$/)
    for (const h of [headers, { authorization: `Bearer ${mint()},Bearer ${mint()}` }]) {
      const result = await authenticateRequest(counting, new Request('https://mcp.example/mcp', { headers: h }))
      expect(result.ok).toBe(false)
      if (result.ok) return
      expect(result.error.code).toBe('missing_token')
      expect(result.error.description).toBe('more than one Authorization header')
      expect(result.response.status).toBe(401)
      expect(result.response.headers.get('www-authenticate')).toBe(
        `Bearer error="invalid_token", error_description="missing_token: more than one Authorization header", scope="tool:call", resource_metadata="${METADATA}"`,
      )
    }
    expect(verified).toBe(0)
  })

  it('answers exactly as the fastmcp adapter does, refusal for refusal', async () => {
    const auth = makeAuth()
    for (const authorization of [
      undefined,
      'Basic x',
      `Bearer ${mint({ exp: NOW_SEC - 1 })}`,
      `Bearer ${mint({ scope: 'documents:read' })}`,
      `bearer   ${mint({ zone_id: 'zone-1', aud: 'resource://other' })}`,
    ]) {
      const result = await authenticateRequest(auth, request(authorization))
      const thrown = await auth.authenticate({ headers: { authorization } } as never).then(
        () => undefined,
        (rejection: unknown) => rejection as Response,
      )
      expect(result.ok, authorization).toBe(false)
      expect(thrown).toBeInstanceOf(Response)
      if (result.ok || thrown === undefined) return
      expect(await refusal(result.response)).toEqual(await refusal(thrown))
    }
  })

  it('a verifier that throws something other than CaracalAuthError still gets a 401, never a rejection', async () => {
    const auth = makeAuth()
    const broken: FetchVerifier = { options: auth.options, verify: () => Promise.reject(new Error('boom')) }
    const result = await authenticateRequest(broken, request(`Bearer ${mint()}`))
    expect(result.ok ? 200 : result.response.status).toBe(401)
    expect(result.ok ? undefined : result.error.description).toBe('token could not be verified')
  })
})

describe('withCaracalAuth (Workers, Deno.serve, Bun.serve)', () => {
  it("passes the runtime's extra arguments through, unchanged, and runs the handler only when verified", async () => {
    const env = { ZONE: 'zone-1' }
    const ctx = { waitUntil: (_p: Promise<unknown>) => {} }
    const seen: unknown[][] = []
    const worker = {
      fetch: withCaracalAuth(makeAuth(), (req, claims, e: typeof env, c: typeof ctx) => {
        seen.push([req.url, e, c])
        return Response.json({ sub: claims.sub, zone: e.ZONE })
      }),
    }
    const ok = await worker.fetch(request(`Bearer ${mint()}`), env, ctx)
    expect(ok.status).toBe(200)
    expect(await ok.json()).toEqual({ sub: 'user-1', zone: 'zone-1' })
    expect(seen).toEqual([['https://mcp.example/mcp', env, ctx]])
    expect(seen[0]![1]).toBe(env)
    expect(seen[0]![2]).toBe(ctx)

    const refused = await worker.fetch(request(), env, ctx)
    expect(refused.status).toBe(401)
    expect(seen).toHaveLength(1)
  })

  it('works called as a method of another object (Workers) and as a bare function (Deno.serve)', async () => {
    const handler = withCaracalAuth(makeAuth(), (_req, claims) => new Response(claims.clientId))
    const asMethod = { fetch: handler }
    expect(await (await asMethod.fetch(request(`Bearer ${mint()}`))).text()).toBe('client-1')
    // Deno.serve's handler type: (request, info) => Response | Promise<Response>.
    const bare: (request: Request, info: { remoteAddr: unknown }) => Promise<Response> = handler
    expect(await (await bare(request(`Bearer ${mint()}`), { remoteAddr: {} })).text()).toBe('client-1')
  })

  it("the handler's own failure is the handler's: it propagates, it is not turned into a 401", async () => {
    const handler = withCaracalAuth(makeAuth(), () => {
      throw new Error('handler failed')
    })
    await expect(handler(request(`Bearer ${mint()}`))).rejects.toThrow('handler failed')
  })
})

describe('caracalHono', () => {
  function app(auth: CaracalAuth) {
    const hono = new Hono<CaracalHonoEnv>()
    hono.use('/mcp/*', caracalHono(auth))
    hono.post('/mcp/tools', (c) => {
      const claims: Claims = c.get('caracal')
      return c.json({ sub: claims.sub, zone: claims.zoneId })
    })
    hono.get('/health', (c) => c.text('ok'))
    return hono
  }

  it('200 with the claims in c.get("caracal"); routes outside the middleware are untouched', async () => {
    const hono = app(makeAuth())
    const ok = await hono.request('/mcp/tools', { method: 'POST', headers: { authorization: `Bearer ${mint()}` } })
    expect(ok.status).toBe(200)
    expect(await ok.json()).toEqual({ sub: 'user-1', zone: 'zone-1' })
    expect((await hono.request('/health')).status).toBe(200)
  })

  it('401 and 403: the rendered refusal is the response, and the route never runs', async () => {
    const hono = app(makeAuth())
    const missing = await hono.request('/mcp/tools', { method: 'POST' })
    expect(await refusal(missing)).toEqual({
      status: 401,
      headers: {
        'cache-control': 'no-store',
        'content-type': 'application/json',
        'www-authenticate': `Bearer error="invalid_token", error_description="missing_token: no bearer token in the Authorization header", scope="tool:call", resource_metadata="${METADATA}"`,
      },
      body: jsonRpcError('missing_token', 'no bearer token in the Authorization header', HINT.missing),
    })
    const scope = await hono.request('/mcp/tools', {
      method: 'POST',
      headers: { authorization: `Bearer ${mint({ scope: 'documents:read' })}` },
    })
    expect(scope.status).toBe(403)
    expect(scope.headers.get('www-authenticate')).toMatch(/^Bearer error="insufficient_scope", .*scope="tool:call"/)
  })

  it('an app without the typed env takes the middleware too', async () => {
    const hono = new Hono()
    hono.use(caracalHono(makeAuth()))
    hono.get('/', (c) => c.text('reached'))
    expect(await (await hono.request('/', { headers: { authorization: `Bearer ${mint()}` } })).text()).toBe('reached')
    expect((await hono.request('/')).status).toBe(401)
  })
})

describe('serveProtectedResourceMetadata', () => {
  const options = { resourceServerUrl: 'https://mcp.example/mcp', resourceName: 'documents' }

  /** What the node:http handler of the MCP SDK entry answers, for the same verifier and request. */
  function nodeAnswer(auth: CaracalAuth, method: string) {
    let answer: { status: number; headers: Record<string, string>; body: string | null } | undefined
    const res = {
      writeHead(status: number, headers: Record<string, string>) {
        return {
          end: (body?: string) => {
            answer = { status, headers, body: body ?? null }
          },
        }
      },
    }
    protectedResourceMetadataHandler(auth, options)(
      { url: '/.well-known/oauth-protected-resource/mcp', method } as never,
      res as never,
    )
    return answer
  }

  it.each(['GET', 'HEAD', 'OPTIONS', 'POST'])(
    '%s at the RFC 9728 path answers as the node:http handler',
    async (method) => {
      const auth = makeAuth()
      const response = serveProtectedResourceMetadata(
        auth,
        options,
      )(new Request('https://mcp.example/.well-known/oauth-protected-resource/mcp', { method }))
      expect(response).toBeInstanceOf(Response)
      const headers: Record<string, string> = {}
      response!.headers.forEach((value, name) => {
        headers[name] = value
      })
      const text = await response!.text()
      expect({ status: response!.status, headers, body: text === '' ? null : text }).toEqual(nodeAnswer(auth, method))
      if (method === 'GET') {
        expect(JSON.parse(text)).toEqual({
          resource: 'https://mcp.example/mcp',
          authorization_servers: [ISSUER],
          bearer_methods_supported: ['header'],
          scopes_supported: ['tool:call'],
          resource_name: 'documents',
        })
      }
    },
  )

  it('any other path is left to the next handler', () => {
    const metadata = serveProtectedResourceMetadata(makeAuth(), options)
    expect(metadata(new Request('https://mcp.example/mcp'))).toBeUndefined()
    expect(metadata(new Request('https://mcp.example/.well-known/oauth-protected-resource'))).toBeUndefined()
  })
})

describe('runtime neutrality of the entry', () => {
  it('bundles for the browser with nothing from Node, and runs in a realm that has only the web globals', async () => {
    const out = await build({
      entryPoints: ['src/fetch.ts'],
      bundle: true,
      platform: 'browser',
      format: 'iife',
      globalName: 'caracalFetch',
      write: false,
      metafile: true,
      legalComments: 'none',
      logLevel: 'silent',
    })
    const code = out.outputFiles[0]!.text
    const inputs = Object.keys(out.metafile.inputs)
    expect(inputs).toContain('src/fetch.ts')
    for (const input of inputs) expect(input).toMatch(/^src\/[\w/-]+\.ts$/)
    expect(code).not.toMatch(/\bnode:|\bBuffer\b|\bprocess\b|\brequire\(/)

    // A fresh realm with the Fetch classes and nothing of Node: no Buffer, no process, no require.
    const realm: Record<string, unknown> = { Request, Response, Headers, console }
    runInNewContext(`${code}\nglobalThis.caracalFetch = caracalFetch`, realm)
    const entry = realm.caracalFetch as typeof import('../src/fetch.js')
    const auth = makeAuth()
    const handler = entry.withCaracalAuth(auth, (_req, claims) => new Response(claims.sub))
    expect(await (await handler(request(`Bearer ${mint()}`))).text()).toBe('user-1')
    const refused = await handler(request('Bearer a, Bearer b'))
    expect(refused.status).toBe(401)
    expect((await refused.json()).error.data.error_description).toBe('more than one Authorization header')
  })
})
