/**
 * Per-route policies on one verifier (README "Per-route policies"): `auth.withPolicy(overrides)`
 * shares the parent's keys, backends, cache and stores, so many policies cost one JWKS fetch and
 * one signature check per token, and the cache stays correct across policies.
 */
import type { IncomingMessage } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { CaracalAuth, type CaracalAuthError, InMemoryReplayStore, InMemoryRevocationStore } from '../src/index.js'
import { generateSigningKey } from '../src/dev/sign-jws.js'
import { TEST_BACKENDS } from './support/backends.js'
import { startJwksServer, type JwksServer } from './support/jwks-server.js'
import { AUDIENCE, NOW_MS, mandateClaims } from './support/mandates.js'
import { signJws } from '../src/dev/sign-jws.js'

const key = generateSigningKey('ES256', 'route-key')
const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c()
})

const refusal = (p: Promise<unknown>): Promise<CaracalAuthError | undefined> =>
  p.then(
    () => undefined,
    (e: unknown) => e as CaracalAuthError,
  )

async function gateway(
  backend: string,
  extra: Record<string, unknown> = {},
): Promise<{ s: JwksServer; auth: CaracalAuth }> {
  const s = await startJwksServer({ keys: [key.publicJwk] })
  const auth = new CaracalAuth({
    issuer: s.issuer,
    audience: AUDIENCE,
    revocations: new InMemoryRevocationStore({ now: () => NOW_MS }),
    backend: backend as never,
    now: () => NOW_MS,
    ...extra,
  })
  cleanups.push(
    () => auth.close(),
    () => s.close(),
  )
  return { s, auth }
}

const token = (s: JwksServer, overrides: Record<string, unknown> = {}): string =>
  signJws(key, { ...mandateClaims(overrides), iss: s.issuer })

describe.each(TEST_BACKENDS)('withPolicy on %s', (backend) => {
  it('many policies, one JWKS fetch and one signature check per token; each policy decides on its own', async () => {
    const { s, auth } = await gateway(backend)
    const routes = {
      read: auth.withPolicy({ requiredScopes: ['documents:read'] }),
      admin: auth.withPolicy({ requiredScopes: ['admin'] }),
      agent: auth.withPolicy({ requireAgent: true }),
      shallow: auth.withPolicy({ maxHopCount: 1 }),
      chain: auth.withPolicy({ requireChainContains: ['app-b'] }),
    }
    const tokens = Array.from({ length: 20 }, (_, i) =>
      token(s, { jti: `route-${i}`, scope: 'tool:call documents:read', hop_count: 2 }),
    )
    for (const t of tokens) await auth.verify(t)
    const outcomes: Record<string, string[]> = {}
    for (const [name, route] of Object.entries(routes)) {
      outcomes[name] = await Promise.all(tokens.map((t) => refusal(route.verify(t)).then((e) => e?.code ?? 'accepted')))
      // Every token was verified once, by the parent: each route only hits the shared cache.
      expect(route.stats().cache, name).toMatchObject({ misses: 0, hits: tokens.length })
    }
    expect(new Set(outcomes.read)).toEqual(new Set(['accepted']))
    expect(new Set(outcomes.admin)).toEqual(new Set(['insufficient_scope']))
    expect(new Set(outcomes.agent)).toEqual(new Set(['accepted']))
    expect(new Set(outcomes.shallow)).toEqual(new Set(['hop_count_exceeded']))
    expect(new Set(outcomes.chain)).toEqual(new Set(['chain_mismatch']))
    expect(auth.stats().cache).toMatchObject({ misses: tokens.length, size: tokens.length })
    expect(s.jwksHits).toBe(1)
  })

  it('a route that verifies first caches for the others; a refusal by one route caches nothing', async () => {
    const { s, auth } = await gateway(backend)
    const admin = auth.withPolicy({ requiredScopes: ['admin'] })
    const t = token(s, { scope: 'tool:call' })
    expect((await refusal(admin.verify(t)))?.code).toBe('insufficient_scope')
    expect(auth.stats().cache.size).toBe(0)
    await expect(auth.verify(t)).resolves.toBeDefined()
    expect((await refusal(admin.verify(t)))?.code).toBe('insufficient_scope')
    expect(admin.stats().cache.hits).toBe(1)
  })

  it('shares the revocation and replay stores: a revoked session is refused by every route, a replayed mandate too', async () => {
    const revocations = new InMemoryRevocationStore({ now: () => NOW_MS })
    const { s, auth } = await gateway(backend, { revocations, replay: new InMemoryReplayStore({ now: () => NOW_MS }) })
    const route = auth.withPolicy({ requiredScopes: ['tool:call'] })
    const t = token(s, { jti: 'used-once' })
    await expect(route.verify(t)).resolves.toBeDefined()
    expect((await refusal(auth.verify(t)))?.code).toBe('token_replayed')
    revocations.markRevoked('agent-1')
    expect((await refusal(route.verify(token(s, { jti: 'other', agent_session_id: 'agent-1' }))))?.code).toBe(
      'session_revoked',
    )
  })
})

describe('withPolicy', () => {
  it("a route of another zone gets that zone's keys, fetched once for all its routes", async () => {
    const { s, auth } = await gateway('node', { zoneId: 'zone-1' })
    const queries: string[] = []
    s.handler = (req, res) => {
      queries.push(new URL(req.url ?? '', s.issuer).searchParams.get('zone_id') ?? '')
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [key.publicJwk] }))
    }
    const zone2a = auth.withPolicy({ zoneId: 'zone-2' })
    const zone2b = auth.withPolicy({ expectedZoneId: 'zone-2', requiredScopes: ['tool:call'] })
    await expect(auth.verify(token(s, { zone_id: 'zone-1' }))).resolves.toBeDefined()
    await expect(zone2a.verify(token(s, { zone_id: 'zone-2' }))).resolves.toBeDefined()
    await expect(zone2b.verify(token(s, { zone_id: 'zone-2' }))).resolves.toBeDefined()
    expect((await refusal(zone2a.verify(token(s, { zone_id: 'zone-1' }))))?.code).toBe('invalid_zone')
    expect(queries.sort()).toEqual(['zone-1', 'zone-2'])
  })

  it('refuses to change what it shares, and validates what it may change', async () => {
    const { auth } = await gateway('node')
    expect(() => auth.withPolicy({ issuer: 'x' } as never)).toThrow(
      'CaracalAuth.withPolicy option "issuer" cannot differ from the parent\'s',
    )
    expect(() => auth.withPolicy({ cache: false } as never)).toThrow(TypeError)
    expect(() => auth.withPolicy({ maxHopCount: 1.5 })).toThrow('CaracalAuth option "maxHopCount"')
    expect(() => auth.withPolicy({ requiredScopes: ['a b'] })).toThrow('CaracalAuth option "requiredScopes"')
  })

  it('closing a route closes that route only; closing the parent closes every route', async () => {
    const { s, auth } = await gateway('node')
    const a = auth.withPolicy({ requiredScopes: ['tool:call'] })
    const b = auth.withPolicy({ requireAgent: true })
    await a.close()
    expect((await refusal(a.verify(token(s))))?.description).toBe('verifier is closed')
    await expect(b.verify(token(s))).resolves.toBeDefined()
    await auth.close()
    expect((await refusal(b.verify(token(s))))?.description).toBe('verifier is closed')
  })

  it('a route also authenticates fastmcp requests with its own policy', async () => {
    const { s, auth } = await gateway('node')
    const admin = auth.withPolicy({ requiredScopes: ['admin'] })
    const req = { headers: { authorization: `Bearer ${token(s)}` } } as unknown as IncomingMessage
    const thrown = await admin.authenticate(req).catch((e: unknown) => e as Response)
    expect(thrown).toBeInstanceOf(Response)
    expect((thrown as Response).status).toBe(403)
  })
})
