/**
 * Mandates as the Caracal packages' own tests mint them, for the drop-in entry points' tests: a
 * fresh P-256 key per issuer (WebCrypto), served by a stubbed global `fetch` at
 * `{issuer}/.well-known/jwks.json`, and a payload with Caracal's claim set.
 */
import { vi } from 'vitest'

export interface TestIssuers {
  /** issuer → its public JWK; `clear()` it after each test. */
  readonly keys: Map<string, Record<string, unknown>>
  /** Stubs the global fetch with the JWKS server and returns the mock (404 for an unknown issuer). */
  stubFetch(): ReturnType<typeof vi.fn>
  /** A token signed by a new issuer's key: `claims` over Caracal's default claim set. */
  mint(claims?: Record<string, unknown>): Promise<{ token: string; issuer: string }>
}

const b64url = (v: string | Uint8Array): string =>
  Buffer.from(typeof v === 'string' ? new TextEncoder().encode(v) : v).toString('base64url')

export function caracalTestIssuers(audience: string): TestIssuers {
  let seq = 0
  const keys = new Map<string, Record<string, unknown>>()
  return {
    keys,
    stubFetch() {
      const fetchMock = vi.fn(async (input: RequestInfo | URL) => {
        const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
        const jwk = keys.get(url.replace(/\/\.well-known\/jwks\.json(\?.*)?$/, ''))
        return new Response(JSON.stringify({ keys: jwk === undefined ? [] : [jwk] }), {
          status: jwk === undefined ? 404 : 200,
          headers: { 'content-type': 'application/json' },
        })
      })
      vi.stubGlobal('fetch', fetchMock)
      return fetchMock
    },
    async mint(claims = {}) {
      const issuer = `https://issuer-${++seq}.example.com`
      const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])
      keys.set(issuer, {
        ...(await crypto.subtle.exportKey('jwk', pair.publicKey)),
        kid: 'kid-1',
        alg: 'ES256',
        use: 'sig',
      })
      const now = Math.floor(Date.now() / 1000)
      const payload: Record<string, unknown> = {
        iss: issuer,
        aud: audience,
        sub: 'user-1',
        zone_id: 'zone-1',
        client_id: 'app-1',
        sid: 'sid-1',
        root_sid: 'root-1',
        use: 'resource',
        sub_type: 'user',
        jti: 'jti-1',
        iat: now,
        exp: now + 300,
        ...claims,
      }
      // A claim given as undefined is left out, as JSON.stringify would.
      const body = `${b64url(JSON.stringify({ alg: 'ES256', kid: 'kid-1', typ: 'JWT' }))}.${b64url(JSON.stringify(payload))}`
      const sig = await crypto.subtle.sign(
        { name: 'ECDSA', hash: 'SHA-256' },
        pair.privateKey,
        new TextEncoder().encode(body),
      )
      return { token: `${body}.${b64url(new Uint8Array(sig))}`, issuer }
    },
  }
}
