/** The adapters without a network: header parsing, rendering, the SDK verifier's contract, metadata. */
import { InsufficientScopeError, InvalidTokenError, ServerError } from '@modelcontextprotocol/sdk/server/auth/errors.js'
import { getOAuthProtectedResourceMetadataUrl } from '@modelcontextprotocol/sdk/server/auth/router.js'
import { describe, expect, it } from 'vitest'
import {
  CaracalAuth,
  CaracalAuthError,
  InMemoryRevocationStore,
  hasScopes,
  renderAuthError,
  type CaracalSession,
} from '../src/index.js'
import { bearerToken, wwwAuthenticate } from '../src/adapters/http-error.js'
import { mcpSdkVerifier, protectedResourceMetadata, protectedResourceMetadataUrl, toSdkError } from '../src/mcp-sdk.js'
import { AUDIENCE, ISSUER, NOW_MS, mint, staticJwks } from './support/mandates.js'

function makeAuth(extra: Record<string, unknown> = {}): CaracalAuth {
  return new CaracalAuth({
    issuer: ISSUER,
    audience: AUDIENCE,
    revocations: new InMemoryRevocationStore({ now: () => NOW_MS }),
    jwks: { keys: staticJwks },
    now: () => NOW_MS,
    requiredScopes: ['tool:call'],
    ...extra,
  })
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('expected a rejection')
}

describe('bearerToken', () => {
  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['another scheme', 'Basic dXNlcjpwYXNz'],
    ['scheme only', 'Bearer'],
    ['scheme and spaces', 'Bearer   '],
    ['scheme glued to the token', 'Bearerabc.def.ghi'],
    ['repeated header', ['Bearer a.b.c', 'Bearer d.e.f']],
  ])('%s → missing_token', (_name, header) => {
    expect(() => bearerToken(header as string | string[] | undefined)).toThrow(
      expect.objectContaining({ code: 'missing_token' }),
    )
  })

  it('reads the token after a case-insensitive scheme', () => {
    expect(bearerToken('Bearer a.b.c')).toBe('a.b.c')
    expect(bearerToken('bearer  a.b.c')).toBe('a.b.c')
  })
})

describe('renderAuthError', () => {
  it('401: challenge with description, configured scope and metadata URL; JSON-RPC body', () => {
    const r = renderAuthError(new CaracalAuthError('invalid_zone', 'mandate was issued for another zone'), {
      requiredScopes: ['tool:call', 'documents:read'],
      resourceMetadataUrl: 'https://mcp.example/.well-known/oauth-protected-resource/mcp',
    })
    expect(r.status).toBe(401)
    expect(r.headers['www-authenticate']).toBe(
      'Bearer error="invalid_token", error_description="invalid_zone: mandate was issued for another zone", scope="tool:call documents:read", resource_metadata="https://mcp.example/.well-known/oauth-protected-resource/mcp"',
    )
    expect(JSON.parse(r.body)).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: {
        code: -32000,
        message: 'invalid_zone: mandate was issued for another zone',
        data: {
          error: 'invalid_zone',
          error_description: 'mandate was issued for another zone',
          hint: 'Obtain a mandate issued for this zone.',
        },
      },
    })
  })

  it('403 insufficient_scope names the scopes the error carries', () => {
    const r = renderAuthError(
      new CaracalAuthError('insufficient_scope', 'missing required scope: admin', { scope: ['tool:call', 'admin'] }),
      { requiredScopes: ['tool:call'] },
    )
    expect(r.status).toBe(403)
    expect(r.headers['www-authenticate']).toBe(
      'Bearer error="insufficient_scope", error_description="insufficient_scope: missing required scope: admin", scope="tool:call admin"',
    )
  })

  it('every 403 code is insufficient_scope in the challenge, every 401 code invalid_token', () => {
    for (const code of ['agent_required', 'delegation_required', 'chain_mismatch', 'hop_count_exceeded'] as const) {
      expect(renderAuthError(new CaracalAuthError(code, 'x')).headers['www-authenticate']).toMatch(
        /^Bearer error="insufficient_scope"/,
      )
    }
    for (const code of ['missing_token', 'invalid_token', 'invalid_zone', 'session_revoked'] as const) {
      expect(renderAuthError(new CaracalAuthError(code, 'x')).headers['www-authenticate']).toMatch(
        /^Bearer error="invalid_token"/,
      )
    }
  })

  it('unavailable: 503 with Retry-After and no challenge', () => {
    const r = renderAuthError(
      new CaracalAuthError('session_revoked', 'revocation state unavailable: stale', { unavailable: true }),
      { retryAfterSec: 2.5 },
    )
    expect(r.status).toBe(503)
    expect(r.headers['retry-after']).toBe('3')
    expect(r.headers['www-authenticate']).toBeUndefined()
    expect(JSON.parse(r.body).error.data).toMatchObject({ error: 'session_revoked', unavailable: true })
  })

  it('a description cannot break out of its quoted string or inject a header', () => {
    const header = wwwAuthenticate(new CaracalAuthError('invalid_token', 'bad "kid" \\ here\r\nSet-Cookie: x=1'))
    expect(header).toBe(
      `Bearer error="invalid_token", error_description="invalid_token: bad 'kid' ' here??Set-Cookie: x=1"`,
    )
    expect(() => new Headers({ 'www-authenticate': header })).not.toThrow()
  })
})

describe('authenticate (fastmcp)', () => {
  it('returns the session; a cache hit returns the same frozen session', async () => {
    const auth = makeAuth()
    const token = mint({ scope: 'tool:call documents:read' })
    const req = { headers: { authorization: `Bearer ${token}` } } as never
    const session = await auth.authenticate(req)
    expect(session.scopes).toEqual(['tool:call', 'documents:read'])
    expect(session.sub).toBe('user-1')
    expect(session.clientId).toBe('client-1')
    expect(Object.isFrozen(session)).toBe(true)
    expect(await auth.authenticate(req)).toBe(session)
  })

  it('splits scope on runs of ASCII whitespace, as requiredScopes reads it (other whitespace stays in a scope)', async () => {
    const auth = makeAuth()
    const session = await auth.authenticate({
      headers: { authorization: `Bearer ${mint({ scope: '\ttool:call\n\r documents:read\vx\fy\u00a0z ' })}` },
    } as never)
    expect(session.scopes).toEqual(['tool:call', 'documents:read', 'x', 'y\u00a0z'])
    expect(hasScopes('tool:call', 'documents:read')(session)).toBe(true)
  })

  it('is bound: works when passed around as a bare function', async () => {
    const auth = makeAuth()
    const { authenticate } = auth
    const session = await authenticate({ headers: { authorization: `Bearer ${mint()}` } } as never)
    expect(session.claims.sub).toBe('user-1')
  })

  it('throws a Response: no request (stdio) and a non-Bearer header are missing_token', async () => {
    const auth = makeAuth({ resourceMetadataUrl: 'https://mcp.example/.well-known/oauth-protected-resource' })
    for (const req of [undefined, { headers: { authorization: 'Basic abc' } }]) {
      const thrown = await rejection(auth.authenticate(req as never))
      expect(thrown).toBeInstanceOf(Response)
      const response = thrown as Response
      expect(response.status).toBe(401)
      expect(response.headers.get('www-authenticate')).toMatch(
        /^Bearer error="invalid_token", error_description="missing_token: [^"]+", scope="tool:call", resource_metadata="https:\/\/mcp.example\/.well-known\/oauth-protected-resource"$/,
      )
      expect(response.headers.get('content-type')).toBe('application/json')
      expect((await response.json()).error.data.error).toBe('missing_token')
    }
  })

  it('a store that throws gives 503 with Retry-After', async () => {
    const auth = makeAuth({
      revocations: {
        isRevoked: () => {
          throw new Error('down')
        },
        markRevoked: () => {},
      },
    })
    const thrown = (await rejection(
      auth.authenticate({ headers: { authorization: `Bearer ${mint()}` } } as never),
    )) as Response
    expect(thrown.status).toBe(503)
    expect(thrown.headers.get('retry-after')).toBe('5')
  })

  it('hasScopes is what canAccess needs', () => {
    const session = { scopes: ['tool:call', 'documents:read'] } as unknown as CaracalSession
    expect(hasScopes('documents:read')(session)).toBe(true)
    expect(hasScopes('documents:read', 'documents:write')(session)).toBe(false)
    expect(hasScopes()(undefined)).toBe(false)
  })
})

describe('mcpSdkVerifier', () => {
  it('fills clientId, scopes, expiresAt, resource and the claims', async () => {
    const token = mint({ scope: 'tool:call  documents:read' })
    const info = await mcpSdkVerifier(makeAuth()).verifyAccessToken(token)
    expect(info.clientId).toBe('client-1')
    expect(info.scopes).toEqual(['tool:call', 'documents:read'])
    expect(info.expiresAt).toBe(NOW_MS / 1000 + 300)
    expect(info.resource?.href).toBe(AUDIENCE)
    expect((info.extra?.claims as { sub: string } | undefined)?.sub).toBe('user-1')
    expect(info.token).toBe(token)
  })

  it('AuthInfo scopes split on runs of ASCII whitespace', async () => {
    const info = await mcpSdkVerifier(makeAuth()).verifyAccessToken(
      mint({ scope: 'tool:call\tdocuments:read\r\n\u2028admin' }),
    )
    expect(info.scopes).toEqual(['tool:call', 'documents:read', '\u2028admin'])
  })

  it('with several audiences reports the one the mandate was accepted for', async () => {
    const auth = makeAuth({ audience: ['https://other.example/mcp', 'https://mcp.example/mcp'] })
    const info = await mcpSdkVerifier(auth).verifyAccessToken(
      mint({ aud: ['https://unrelated.example', 'https://mcp.example/mcp'] }),
    )
    expect(info.resource?.href).toBe('https://mcp.example/mcp')
  })

  it('an explicit resource wins; an audience that is not a URL is left out', async () => {
    expect(
      (await mcpSdkVerifier(makeAuth(), { resource: 'https://mcp.example/mcp' }).verifyAccessToken(mint())).resource
        ?.href,
    ).toBe('https://mcp.example/mcp')
    const auth = makeAuth({ audience: 'documents' })
    expect((await mcpSdkVerifier(auth).verifyAccessToken(mint({ aud: 'documents' }))).resource).toBeUndefined()
  })

  it.each([
    ['empty token', '', InvalidTokenError],
    ['garbage', 'a.b', InvalidTokenError],
    ['insufficient scope', mint({ scope: 'documents:read' }), InsufficientScopeError],
  ])('%s → the SDK error class', async (_name, token, cls) => {
    const error = await rejection(mcpSdkVerifier(makeAuth()).verifyAccessToken(token))
    expect(error).toBeInstanceOf(cls)
  })

  it('maps codes to the SDK classes (403 → InsufficientScopeError, unavailable → ServerError)', () => {
    expect(toSdkError(new CaracalAuthError('agent_required', 'x'))).toBeInstanceOf(InsufficientScopeError)
    expect(toSdkError(new CaracalAuthError('session_revoked', 'x'))).toBeInstanceOf(InvalidTokenError)
    expect(toSdkError(new CaracalAuthError('session_revoked', 'x', { unavailable: true }))).toBeInstanceOf(ServerError)
    expect(toSdkError(new CaracalAuthError('invalid_token', 'a "quoted"\nthing')).message).toBe(
      `invalid_token: a 'quoted'?thing`,
    )
  })
})

describe('protected-resource metadata', () => {
  it.each(['https://mcp.example/mcp', 'https://mcp.example/', 'https://mcp.example/a/b/'])(
    'URL of %s agrees with the SDK',
    (url) => {
      expect(protectedResourceMetadataUrl(url)).toBe(
        getOAuthProtectedResourceMetadataUrl(new URL(url.replace(/(.)\/$/, '$1'))),
      )
    },
  )

  it('names the STS as authorization server and the required scopes', () => {
    expect(protectedResourceMetadata(makeAuth(), { resourceServerUrl: 'https://mcp.example/mcp' })).toEqual({
      resource: 'https://mcp.example/mcp',
      authorization_servers: [ISSUER],
      bearer_methods_supported: ['header'],
      scopes_supported: ['tool:call'],
    })
  })
})
