/**
 * Signing for development and tests only (the library itself never signs): compact JWS with
 * node:crypto, ES256 as raw r‖s (RFC 7518 §3.4), RS256 as PKCS#1 v1.5.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import type { Algorithm } from '../jws/algorithms.js'

export interface SigningKey {
  readonly alg: Algorithm
  readonly kid: string
  readonly privateKey: KeyObject
  readonly publicKey: KeyObject
  /** Public JWK with kid, alg and use: what the JWKS publishes. */
  readonly publicJwk: JsonWebKey & { kid: string; alg: Algorithm; use: 'sig' }
}

export function generateSigningKey(alg: Algorithm, kid: string, modulusLength = 2048): SigningKey {
  const { privateKey, publicKey } =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('rsa', { modulusLength, publicExponent: 65537 })
  return {
    alg,
    kid,
    privateKey,
    publicKey,
    publicJwk: { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' },
  }
}

/** Signs `payload` under `header` (alg and kid are filled from the key unless given). */
export function signJws(key: SigningKey, payload: unknown, header: Record<string, unknown> = {}): string {
  const h = Buffer.from(JSON.stringify({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header })).toString('base64url')
  const p = Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload)).toString('base64url')
  const input = Buffer.from(`${h}.${p}`, 'latin1')
  const signature =
    key.alg === 'ES256'
      ? sign('sha256', input, { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
      : sign('sha256', input, key.privateKey)
  return `${h}.${p}.${signature.toString('base64url')}`
}
