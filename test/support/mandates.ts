/** Keys and mandates for tests: real signatures from node:crypto, claims as Caracal issues them. */
import { generateSigningKey, signJws, type SigningKey } from '../../src/dev/sign-jws.js'

export const ISSUER = 'http://127.0.0.1:8080'
export const AUDIENCE = 'resource://documents'
export const NOW_MS = Date.UTC(2026, 10, 26, 12, 0, 0)
export const NOW_SEC = NOW_MS / 1000

export const esKey: SigningKey = generateSigningKey('ES256', 'es-1')
export const rsKey: SigningKey = generateSigningKey('RS256', 'rs-1')
export const staticJwks = { keys: [esKey.publicJwk, rsKey.publicJwk] }

let counter = 0

export function mandateClaims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  counter++
  return {
    iss: ISSUER,
    aud: AUDIENCE,
    exp: NOW_SEC + 300,
    iat: NOW_SEC - 10,
    jti: `jti-${counter}`,
    sub: 'user-1',
    client_id: 'client-1',
    sid: `sid-${counter}`,
    root_sid: 'root-1',
    use: 'resource',
    sub_type: 'user',
    scope: 'tool:call documents:read',
    zone_id: 'zone-1',
    agent_session_id: `agent-${counter}`,
    ...overrides,
  }
}

/** A signed mandate; a claim set to `undefined` in overrides is left out. */
export function mint(
  overrides: Record<string, unknown> = {},
  key: SigningKey = esKey,
  header: Record<string, unknown> = {},
): string {
  const claims = mandateClaims(overrides)
  for (const k of Object.keys(claims)) if (claims[k] === undefined) delete claims[k]
  return signJws(key, claims, header)
}
