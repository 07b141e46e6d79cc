/** The development STS: JWKS, minting (in-process and over HTTP), key rotation, revocation, loopback only. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CaracalAuth, InMemoryRevocationStore } from '../src/index.js'
import { startDevSts, type DevSts } from '../src/dev/index.js'

let sts: DevSts
let store: InMemoryRevocationStore
let auth: CaracalAuth

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise
    return 'accepted'
  } catch (error) {
    return (error as { code: string }).code
  }
}

beforeAll(async () => {
  store = new InMemoryRevocationStore()
  sts = await startDevSts({ zoneId: 'zone-sts', revocations: store })
  auth = new CaracalAuth({
    issuer: sts.issuer,
    audience: 'resource://documents',
    revocations: store,
    expectedZoneId: 'zone-sts',
    requireAgent: true,
    requiredScopes: ['tool:call'],
    jwks: { cooldownMs: 0 },
  })
})

afterAll(async () => {
  await auth.close()
  await sts.close()
})

describe('startDevSts', () => {
  it('listens on loopback and serves a JWKS with an ES256 and an RS256 key, each with a kid', async () => {
    expect(sts.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(sts.issuer).toBe(sts.url)
    const response = await fetch(sts.jwksUrl)
    expect(response.status).toBe(200)
    const jwks = (await response.json()) as { keys: Record<string, unknown>[] }
    expect(jwks.keys.map((k) => [k.alg, k.kty, k.use])).toEqual([
      ['ES256', 'EC', 'sig'],
      ['RS256', 'RSA', 'sig'],
    ])
    for (const key of jwks.keys) {
      expect(typeof key.kid).toBe('string')
      expect(key.d).toBeUndefined()
    }
  })

  it('mints mandates with Caracal claim set that CaracalAuth accepts, with either algorithm', async () => {
    for (const alg of ['ES256', 'RS256'] as const) {
      const issued = sts.issue({}, { alg })
      expect(issued.alg).toBe(alg)
      expect(Object.keys(issued.claims).sort()).toEqual(
        [
          'agent_session_id',
          'aud',
          'client_id',
          'exp',
          'iat',
          'iss',
          'jti',
          'root_sid',
          'scope',
          'sid',
          'sub',
          'sub_type',
          'use',
          'zone_id',
        ].sort(),
      )
      const claims = await auth.verify(issued.token)
      expect(claims).toMatchObject({
        zoneId: 'zone-sts',
        use: 'resource',
        subType: 'user',
        scope: 'tool:call documents:read',
      })
      expect(claims.sessionId).toBe(issued.claims.agent_session_id)
    }
  })

  it('every mandate gets a fresh jti, sid and agent session', () => {
    const a = sts.issue().claims
    const b = sts.issue().claims
    expect(a.jti).not.toBe(b.jti)
    expect(a.sid).not.toBe(b.sid)
    expect(a.agent_session_id).not.toBe(b.agent_session_id)
  })

  it('overrides replace claims; an override of undefined removes one', async () => {
    const claims = sts.issue({ sub: 'carol', agent_session_id: undefined, hop_count: 2 }).claims
    expect(claims.sub).toBe('carol')
    expect(claims.hop_count).toBe(2)
    expect('agent_session_id' in claims).toBe(false)
    expect(await codeOf(auth.verify(sts.mint({ agent_session_id: undefined })))).toBe('agent_required')
    expect(await codeOf(auth.verify(sts.mint({ exp: undefined })))).toBe('invalid_token')
  })

  it('mints over HTTP; null removes a claim there', async () => {
    const response = await fetch(`${sts.url}/mint`, {
      method: 'POST',
      body: JSON.stringify({ claims: { sub: 'dave', agent_session_id: null }, alg: 'RS256' }),
    })
    expect(response.status).toBe(200)
    const body = (await response.json()) as { token: string; claims: Record<string, unknown>; alg: string }
    expect(body.alg).toBe('RS256')
    expect(body.claims.sub).toBe('dave')
    expect('agent_session_id' in body.claims).toBe(false)
    expect(await codeOf(auth.verify(body.token))).toBe('agent_required')
    expect((await fetch(`${sts.url}/mint`, { method: 'POST', body: '[1]' })).status).toBe(400)
    expect((await fetch(`${sts.url}/mint`)).status).toBe(405)
  })

  it('revokes an anchor into the given store, in-process and over HTTP', async () => {
    const first = sts.issue()
    expect(await codeOf(auth.verify(first.token))).toBe('accepted')
    await sts.revoke(first.claims.sid as string, store)
    expect(await codeOf(auth.verify(first.token))).toBe('session_revoked')

    const second = sts.issue()
    const response = await fetch(`${sts.url}/revoke`, {
      method: 'POST',
      body: JSON.stringify({ anchor: second.claims.agent_session_id }),
    })
    expect(response.status).toBe(200)
    expect(await codeOf(auth.verify(second.token))).toBe('session_revoked')
  })

  it('rotates keys: new kids sign, the previous ones stay published for one rotation', async () => {
    const before = sts.issue()
    const kids = sts.rotateKeys()
    expect(kids).toHaveLength(2)
    expect(kids).not.toContain(before.kid)
    const after = sts.issue()
    expect(kids).toContain(after.kid)
    expect(sts.jwks().keys.map((k) => (k as { kid: string }).kid)).toEqual(
      expect.arrayContaining([before.kid, after.kid]),
    )
    // CaracalAuth learns the new kid from the JWKS on demand; the old mandate still verifies.
    expect(await codeOf(auth.verify(after.token))).toBe('accepted')
    expect(await codeOf(auth.verify(before.token))).toBe('accepted')

    sts.rotateKeys({ keepPrevious: false })
    expect(sts.jwks().keys.map((k) => (k as { kid: string }).kid)).not.toContain(after.kid)
  })

  it('refuses a non-loopback host and an unknown algorithm', async () => {
    await expect(startDevSts({ host: '0.0.0.0' })).rejects.toThrow(TypeError)
    await expect(startDevSts({ algorithms: ['HS256' as never] })).rejects.toThrow(TypeError)
  })

  it.each([
    [{ host: '0.0.0.0' }, 'startDevSts option "host" must be a loopback address, not 0.0.0.0'],
    [{ algorithms: ['HS256'] }, 'startDevSts option "algorithms" must be a non-empty array of ES256, RS256'],
    [{ algorithms: [] }, 'startDevSts option "algorithms" must be a non-empty array of ES256, RS256'],
    [{ port: 70_000 }, 'startDevSts option "port" must be an integer from 0 to 65535'],
    [{ zoneId: '' }, 'startDevSts option "zoneId" must be a non-empty string'],
    [{ issuer: 5 }, 'startDevSts option "issuer" must be a non-empty string'],
    [{ audience: [''] }, 'startDevSts option "audience" must be a non-empty string or an array of them'],
    [{ ttlSec: '300' }, 'startDevSts option "ttlSec" must be an integer'],
    [{ ttlSec: 1.5 }, 'startDevSts option "ttlSec" must be an integer'],
    [{ scope: ['tool:call'] }, 'startDevSts option "scope" must be a string'],
    [{ revocations: {} }, 'startDevSts option "revocations" must be a RevocationStore (isRevoked, markRevoked)'],
    [{ now: 5 }, 'startDevSts option "now" must be a function'],
    [{ zone: 'z' }, 'startDevSts option "zone" is not an option of startDevSts'],
  ])('%o is a TypeError naming the option', async (options, message) => {
    await expect(startDevSts(options as never)).rejects.toThrow(new TypeError(message))
  })

  it('holds only the algorithms it was given', async () => {
    const es = await startDevSts({ algorithms: ['ES256'] })
    try {
      expect(es.jwks().keys).toHaveLength(1)
      expect(() => es.mint({}, { alg: 'RS256' })).toThrow(TypeError)
    } finally {
      await es.close()
    }
  })

  it('close() frees the port', async () => {
    const temp = await startDevSts()
    await temp.close()
    await expect(fetch(temp.jwksUrl)).rejects.toThrow()
  })
})
