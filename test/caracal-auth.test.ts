import { describe, expect, it } from 'vitest'
import { CaracalAuth, InMemoryRevocationStore } from '../src/index.js'
import { AUDIENCE, ISSUER, NOW_MS, esKey, mint, rsKey, staticJwks } from './support/mandates.js'

const BACKENDS = ['node', 'noble'] as const

function makeAuth(backend: (typeof BACKENDS)[number], extra: Record<string, unknown> = {}) {
  const revocations = new InMemoryRevocationStore({ now: () => NOW_MS })
  const auth = new CaracalAuth({
    issuer: ISSUER,
    audience: AUDIENCE,
    revocations,
    backend,
    now: () => NOW_MS,
    jwks: { keys: staticJwks },
    ...extra,
  })
  return { auth, revocations }
}

describe.each(BACKENDS)('CaracalAuth on %s', (backend) => {
  it('returns the claims of a valid ES256 and RS256 mandate', async () => {
    const { auth } = makeAuth(backend)
    for (const key of [esKey, rsKey]) {
      const claims = await auth.verify(mint({ sub: `sub-${key.alg}` }, key))
      expect(claims.sub).toBe(`sub-${key.alg}`)
      expect(claims.use).toBe('resource')
      expect(claims.zoneId).toBe('zone-1')
    }
  })

  it('rejects a revoked anchor with session_revoked', async () => {
    const { auth, revocations } = makeAuth(backend)
    const token = mint({ agent_session_id: 'agent-x' })
    await auth.verify(token)
    revocations.markRevoked('agent-x')
    await expect(auth.verify(token)).rejects.toMatchObject({ code: 'session_revoked', status: 401 })
  })
})

describe('requiredScopes matches whole scope entries (RFC 6749 §3.3)', () => {
  const cases: [string, boolean][] = [
    ['tool:call', true],
    ['documents:read tool:call', true],
    ['tool:call documents:read', true],
    ['a  tool:call  b', true],
    ['tool:calls', false],
    ['xtool:call', false],
    ['tool:cal', false],
    ['tool:call:admin documents:read', false],
    ['', false],
  ]
  it.each(cases)('scope %j satisfies tool:call: %s', async (scope, ok) => {
    const { auth } = makeAuth('node', { requiredScopes: ['tool:call'] })
    const result = auth.verify(mint({ scope }))
    if (ok) await expect(result).resolves.toMatchObject({ scope })
    else await expect(result).rejects.toMatchObject({ code: 'insufficient_scope', status: 403 })
  })
})
