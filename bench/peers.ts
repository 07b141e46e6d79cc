/**
 * The peers the bench compares against, each doing the same work on the same tokens: the plain
 * jose-based Caracal verifier (jwtVerify + the same claim policy and revocation checks), fast-jwt
 * with and without its cache and `@node-rs/jsonwebtoken` (each plus the same policy and
 * revocation), and raw node:crypto verify + JSON.parse (the floor: no claim checks at all). The
 * micro suites and the end-to-end servers (bench/e2e-server.ts) use the same functions.
 */
import { verify as cryptoVerify, type KeyObject } from 'node:crypto'
import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose'
import { createVerifier } from 'fast-jwt'
import { verifySync as nodeRsVerify, type Algorithm as NodeRsAlgorithm } from '@node-rs/jsonwebtoken'
import type { Algorithm } from '../src/jws/algorithms.js'
import type { RevocationStore } from '../src/revocation/types.js'
import { AUDIENCE, ISSUER, REQUIRED_SCOPES, ZONE } from './fixtures.js'

/** What a peer needs of a fixture: the algorithm and the public key (as a JWK and as a KeyObject). */
export interface PeerKey {
  readonly alg: Algorithm
  readonly key: { readonly publicJwk: JsonWebKey; readonly publicKey: KeyObject }
}

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

export function plainJoseVerifier(f: PeerKey, revocations: RevocationStore): (token: string) => Promise<unknown> {
  const jwks = createLocalJWKSet({ keys: [f.key.publicJwk] })
  return async (token) => {
    const { payload } = await jwtVerify(token, jwks, { issuer: ISSUER, audience: AUDIENCE, algorithms: [f.alg] })
    return applyPolicy(payload as JWTPayload & Record<string, unknown>, revocations)
  }
}

export function fastJwtVerifier(f: PeerKey, revocations: RevocationStore, cache: boolean): (token: string) => unknown {
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

export function rawNodeVerifier(f: PeerKey): (token: string) => unknown {
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

/**
 * `@node-rs/jsonwebtoken` (Rust's jsonwebtoken over N-API), synchronous: its API takes the key as
 * PEM on every call, there is no prepared key object to keep.
 */
export function nodeRsVerifier(f: PeerKey, revocations: RevocationStore): (token: string) => unknown {
  const pem = f.key.publicKey.export({ format: 'pem', type: 'spki' }).toString()
  const validation = {
    // Its Algorithm is a const enum of the same strings (not importable under verbatimModuleSyntax).
    algorithms: [f.alg as NodeRsAlgorithm],
    iss: [ISSUER],
    aud: [AUDIENCE],
    leeway: 0,
  }
  return (token) => applyPolicy(nodeRsVerify(token, pem, validation), revocations)
}
