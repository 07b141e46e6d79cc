/**
 * The peers the bench compares against, each doing the same work on the same tokens: the plain
 * jose-based Caracal verifier (jwtVerify + the same claim policy and revocation checks), fast-jwt
 * with and without its cache (plus the same policy and revocation), and raw node:crypto verify +
 * JSON.parse (the floor: no claim checks at all).
 */
import { verify as cryptoVerify } from 'node:crypto'
import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose'
import { createVerifier } from 'fast-jwt'
import type { RevocationStore } from '../src/revocation/types.js'
import type { AlgFixture } from './fixtures.js'
import { AUDIENCE, ISSUER, REQUIRED_SCOPES, ZONE } from './fixtures.js'

const REQUIRED = ['exp', 'iat', 'jti', 'sub', 'client_id', 'sid', 'root_sid', 'use', 'sub_type'] as const

/** The claim policy and revocation checks of the plain Caracal verifier, shared by the peers. */
function applyPolicy(p: Record<string, unknown>, revocations: RevocationStore): Record<string, unknown> {
  for (const c of REQUIRED) if (p[c] === undefined) throw new Error(`missing ${c}`)
  if (p.use !== 'resource') throw new Error('wrong use')
  if (p.zone_id !== ZONE) throw new Error('invalid zone')
  const scopes = String(p.scope ?? '').split(' ')
  for (const s of REQUIRED_SCOPES) if (!scopes.includes(s)) throw new Error('insufficient scope')
  if (typeof p.agent_session_id !== 'string') throw new Error('agent required')
  for (const a of [p.sid, p.root_sid, p.agent_session_id, p.delegation_edge_id]) {
    if (typeof a === 'string' && revocations.isRevoked(a) === true) throw new Error('revoked')
  }
  return p
}

export function plainJoseVerifier(f: AlgFixture, revocations: RevocationStore): (token: string) => Promise<unknown> {
  const jwks = createLocalJWKSet({ keys: [f.key.publicJwk] })
  return async (token) => {
    const { payload } = await jwtVerify(token, jwks, { issuer: ISSUER, audience: AUDIENCE, algorithms: [f.alg] })
    return applyPolicy(payload as JWTPayload & Record<string, unknown>, revocations)
  }
}

export function fastJwtVerifier(
  f: AlgFixture,
  revocations: RevocationStore,
  cache: boolean,
): (token: string) => unknown {
  const pem = f.key.publicKey.export({ format: 'pem', type: 'spki' }).toString()
  const verify = createVerifier({
    key: pem,
    algorithms: [f.alg],
    allowedIss: ISSUER,
    allowedAud: AUDIENCE,
    cache: cache ? 10_000 : false,
  })
  return (token) => applyPolicy(verify(token) as Record<string, unknown>, revocations)
}

export function rawNodeVerifier(f: AlgFixture): (token: string) => unknown {
  const key = f.key.publicKey
  const keyArg = f.alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' as const } : key
  return (token) => {
    const dot1 = token.indexOf('.')
    const dot2 = token.lastIndexOf('.')
    const ok = cryptoVerify(
      'sha256',
      Buffer.from(token.slice(0, dot2), 'latin1'),
      keyArg,
      Buffer.from(token.slice(dot2 + 1), 'base64url'),
    )
    if (!ok) throw new Error('bad signature')
    return JSON.parse(Buffer.from(token.slice(dot1 + 1, dot2), 'base64url').toString('utf8'))
  }
}
