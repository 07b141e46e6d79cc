/** The tokens and keys every contender in the bench verifies: the same bytes for all. */
import { generateSigningKey, signJws, type SigningKey } from '../src/dev/sign-jws.js'
import type { Algorithm } from '../src/jws/algorithms.js'

export const ISSUER = 'http://127.0.0.1:8080'
export const AUDIENCE = 'resource://bench'
export const ZONE = 'zone-bench'
export const REQUIRED_SCOPES = ['tool:call']

export interface AlgFixture {
  readonly alg: Algorithm
  readonly key: SigningKey
  /** Distinct tokens (distinct jti and anchors): a contender cycling through them never hits a cache. */
  readonly pool: readonly string[]
  /** One token, presented again and again: the cached case. */
  readonly hot: string
}

/** The claims of the i-th bench mandate: Caracal's claim set, distinct `jti` and session anchors per `i`. */
export function mandateClaims(
  i: number,
  options: { readonly issuer?: string; readonly tag?: string; readonly exp: number; readonly iat: number },
): Record<string, unknown> {
  return {
    iss: options.issuer ?? ISSUER,
    aud: AUDIENCE,
    exp: options.exp,
    iat: options.iat,
    jti: `${options.tag ?? ''}-${i}`,
    sub: `user-${i % 97}`,
    client_id: 'bench-client',
    sid: `sid-${i}`,
    root_sid: `root-${i % 13}`,
    use: 'resource',
    sub_type: 'user',
    scope: 'tool:call documents:read',
    zone_id: ZONE,
    agent_session_id: `agent-${i}`,
  }
}

/** `issuer` and `tag` (in kid and jti) for fixtures of other suites, whose STS runs elsewhere. */
export function makeFixture(alg: Algorithm, poolSize: number, issuer = ISSUER, tag = ''): AlgFixture {
  const key = generateSigningKey(alg, `${alg.toLowerCase()}-bench${tag}`)
  const now = Math.floor(Date.now() / 1000)
  const pool: string[] = []
  for (let i = 0; i < poolSize; i++)
    pool.push(signJws(key, mandateClaims(i, { issuer, tag: `${alg}${tag}`, exp: now + 3600, iat: now })))
  return { alg, key, pool, hot: pool[0]! }
}
