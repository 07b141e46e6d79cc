/**
 * One row per error code and per verification rule (README "What is checked", the policy options and revocation),
 * each run on every backend, asserting the exact code (and status) and why (the description) — or
 * acceptance, for the rows that pin down what must still verify at an edge. `invalid_token` covers
 * dozens of rules, so a code alone would let a row pass whose token fails for another reason: every
 * refusal row says which rule refuses it, and the type does not let a refusal row leave it out.
 */
import { createHmac } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { CaracalAuthError, type CaracalAuthOptions, type CaracalErrorCode, type RevocationStore } from '../src/index.js'
import { generateSigningKey } from '../src/dev/sign-jws.js'
import type { BackendChoice } from '../src/backends/types.js'
import { sharingPool } from '../src/pool/index.js'
import { verifierPool } from '../src/pool/types.js'
import { TEST_BACKENDS } from './support/backends.js'
import {
  P256_N,
  b64u,
  bigintTo32,
  es256Parts,
  es256Signature,
  flipBit,
  headerSegment,
  segment,
  signSegments,
  signatureBytes,
  splitToken,
  withSignature,
  withStrayBits,
} from './support/compact-tokens.js'
import { AUDIENCE, ISSUER, NOW_MS, NOW_SEC, esKey, mandateClaims, mint, rsKey } from './support/mandates.js'
import { testVerifier, type TestVerifier } from './support/verifiers.js'

interface Result {
  readonly error?: CaracalAuthError
  readonly claims?: Record<string, unknown>
}

interface RowBase {
  readonly name: string
  readonly token: unknown
  readonly options?: Partial<CaracalAuthOptions> & { revocations?: RevocationStore }
  readonly setup?: (v: TestVerifier) => void
  readonly check?: (result: Result) => void
}

interface AcceptedRow extends RowBase {
  readonly expect: 'accepted'
  readonly why?: never
}

interface RefusedRow extends RowBase {
  readonly expect: CaracalErrorCode
  /**
   * The description, decided from what the row tests (not read back from the library): the exact
   * text, or a RegExp where the description carries a part the row does not fix.
   */
  readonly why: string | RegExp
}

/** A refusal row without `why` does not type-check (see "a refusal row must say why" below). */
type Row = AcceptedRow | RefusedRow

/**
 * Descriptions that several rows share, written out here (README "Errors": the description is safe
 * to send to a client and says which rule refused the token).
 */
const W = {
  noToken: 'no token',
  segments: 'not a compact JWS: expected three segments',
  emptyHeader: 'empty protected header',
  emptySignature: 'empty signature',
  base64: 'not base64url: padding or base64 characters',
  nonAscii: 'not base64url: a non-ASCII character',
  nonCanonical: 'non-canonical base64url',
  alphabet: 'not a compact JWS: a character outside base64url',
  notUtf8: (what: string) => `${what} is not UTF-8`,
  notJson: (what: string) => `${what} is not JSON`,
  notObject: (what: string) => `${what} is not a JSON object`,
  noAlg: 'header has no alg',
  alg: 'alg not allowed',
  crit: 'crit header is not supported',
  b64: 'b64 header is not supported',
  kid: 'kid must be a non-empty string',
  unknownKid: 'no usable key: unknown kid',
  keyAlg: 'no usable key: alg does not match the key',
  signature: 'signature verification failed',
  issuer: 'issuer mismatch',
  audience: 'audience mismatch',
  audType: 'aud must be a string or an array of strings',
  expired: 'token expired',
  notYetValid: 'token not yet valid (nbf)',
  issuedAhead: 'token issued in the future (iat)',
  subType: 'sub_type must be "user" or "application"',
  missing: (claim: string) => `${claim} missing`,
  integer: (claim: string) => `${claim} must be a non-negative integer`,
  string: (claim: string) => `${claim} must be a non-empty string`,
  stringOrNull: (claim: string) => `${claim} must be a string or null`,
  strings: (claim: string) => `${claim} must be an array of non-empty strings`,
  zone: 'mandate was issued for another zone',
  agent: 'mandate has no agent session',
  delegation: 'mandate has no delegation edge',
  revoked: 'session has been revoked',
  storeFailed: 'revocation state unavailable: the store failed',
  stale: 'the delegation graph changed after this mandate was issued',
} as const

/** Status per code, from README "Errors" (written out here, not read from the implementation). */
const STATUS: Record<CaracalErrorCode, 401 | 403> = {
  missing_token: 401,
  invalid_token: 401,
  invalid_zone: 401,
  session_revoked: 401,
  delegation_stale: 401,
  token_replayed: 401,
  insufficient_scope: 403,
  agent_required: 403,
  delegation_required: 403,
  chain_mismatch: 403,
  hop_count_exceeded: 403,
}

const attacker = generateSigningKey('ES256', 'attacker')
const es = (overrides: Record<string, unknown> = {}, header: Record<string, unknown> = {}): string =>
  mint(overrides, esKey, header)
const rs = (overrides: Record<string, unknown> = {}, header: Record<string, unknown> = {}): string =>
  mint(overrides, rsKey, header)
const payloadSeg = (overrides: Record<string, unknown> = {}): string => {
  const claims = mandateClaims(overrides)
  for (const k of Object.keys(claims)) if (claims[k] === undefined) delete claims[k]
  return segment(claims)
}
/** A mandate whose payload is this exact text (a JSON template for the claims, spelled by hand). */
const rawPayload = (text: string | Uint8Array, key = esKey, header?: string): string =>
  signSegments(key, header ?? headerSegment(key), typeof text === 'string' ? b64u(text) : b64u(text))
const claimsJson = (overrides: Record<string, unknown> = {}): string => JSON.stringify(mandateClaims(overrides))
/** A check that the claims lack these members (an optional claim that was "" or null is absent). */
const absent =
  (...members: string[]): Row['check'] =>
  ({ claims }) => {
    for (const m of members) expect(claims, m).not.toHaveProperty(m)
  }

function hs256(secret: string | Buffer, kid: string): string {
  const h = segment({ alg: 'HS256', kid, typ: 'JWT' })
  const p = payloadSeg()
  return `${h}.${p}.${createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url')}`
}

/** A valid ES256 signature over a header that names another alg: only the table may reject it. */
function esSignedWithAlg(alg: unknown): string {
  return signSegments(esKey, segment({ alg, kid: 'es-1', typ: 'JWT' }), payloadSeg())
}

/** A token of exactly `target` characters, validly signed (a filler claim and header member adjust the length). */
function tokenOfLength(target: number): string {
  const sigLength = 86
  for (let h = 0; h < 4; h++) {
    const header = headerSegment(esKey, { x: 'y'.repeat(h) })
    for (let k = 0; k < target; k++) {
      const p = payloadSeg({ jti: 'jti-len', pad: 'z'.repeat(k) })
      const total = header.length + 1 + p.length + 1 + sigLength
      if (total === target) return signSegments(esKey, header, p)
      if (total > target) break
    }
  }
  throw new Error(`cannot build a token of ${target} characters`)
}

/** A segment with a length that leaves unused bits in its last character, signed as spelled. */
function strayBitsIn(which: 'header' | 'payload'): string {
  for (let i = 0; i < 8; i++) {
    const h = headerSegment(esKey, { f: 'x'.repeat(i) })
    const p = payloadSeg({ f: 'x'.repeat(i) })
    const seg = which === 'header' ? h : p
    const stray = withStrayBits(seg)
    if (stray === undefined) continue
    return which === 'header' ? signSegments(esKey, stray, p) : signSegments(esKey, h, stray)
  }
  throw new Error('no segment length with unused bits')
}

/** Base64url padding on a segment whose length needs it, signed as spelled. */
function paddedIn(which: 'header' | 'payload'): string {
  for (let i = 0; i < 8; i++) {
    const h = headerSegment(esKey, { f: 'x'.repeat(i) })
    const p = payloadSeg({ f: 'x'.repeat(i) })
    const seg = which === 'header' ? h : p
    if (seg.length % 4 === 0) continue
    const padded = seg + '='.repeat(4 - (seg.length % 4))
    return which === 'header' ? signSegments(esKey, padded, p) : signSegments(esKey, h, padded)
  }
  throw new Error('no segment length that needs padding')
}

/** An ES256 token whose signature segment contains '-' or '_' (to spell it in standard base64). */
function tokenWithUrlSafeSignatureChar(): string {
  for (;;) {
    const t = es()
    if (/[-_]/.test(splitToken(t)[2])) return t
  }
}

/**
 * `c` replaced by U+01xx with the same low byte: decoders and latin1 conversions that keep only the
 * low byte of a UTF-16 code unit read the original token, whose signature is valid.
 */
function withWideChar(token: string, index: 0 | 1 | 2): string {
  const parts = splitToken(token)
  const seg = parts[index]
  const at = seg.search(/[A-Za-z0-9]/)
  parts[index] = seg.slice(0, at) + String.fromCharCode(0x100 | seg.charCodeAt(at)) + seg.slice(at + 1)
  return parts.join('.')
}

const esBase = es()
const { r: baseR, s: baseS } = es256Parts(esBase)
const rsBase = rs()
const rsModulus = BigInt(`0x${Buffer.from(rsKey.publicJwk.n!, 'base64url').toString('hex')}`)
const rsPem = rsKey.publicKey.export({ type: 'spki', format: 'pem' }) as string
const rsDer = rsKey.publicKey.export({ type: 'spki', format: 'der' })
const esPem = esKey.publicKey.export({ type: 'spki', format: 'pem' }) as string
const noneHeader = segment({ alg: 'none', typ: 'JWT' })

function throwingStore(): RevocationStore {
  return {
    isRevoked: () => {
      throw new Error('store broke')
    },
    markRevoked: () => {},
  }
}
function rejectingStore(): RevocationStore {
  return { isRevoked: () => Promise.reject(new Error('store broke')), markRevoked: () => {} }
}
function asyncStore(revoked: ReadonlySet<string>): RevocationStore {
  return {
    isRevoked: async (anchor) => {
      await new Promise((r) => setTimeout(r, 1))
      return revoked.has(anchor)
    },
    markRevoked: () => {},
  }
}

const rows: Row[] = [
  // ── missing token ────────────────────────────────────────────────────────────────────────────
  { name: 'empty string', token: '', expect: 'missing_token', why: W.noToken },
  { name: 'undefined', token: undefined, expect: 'missing_token', why: W.noToken },
  { name: 'null', token: null, expect: 'missing_token', why: W.noToken },

  // ── baseline ────────────────────────────────────────────────────────────────────────────────
  { name: 'valid ES256 mandate', token: es(), expect: 'accepted' },
  { name: 'valid RS256 mandate', token: rs(), expect: 'accepted' },

  // ── algorithms (README "What is checked": header) ──────────────────────────────────────────────────────
  {
    name: 'alg none, empty signature',
    token: `${noneHeader}.${payloadSeg()}.`,
    expect: 'invalid_token',
    why: W.emptySignature,
  },
  {
    name: 'alg none, some signature bytes',
    token: `${noneHeader}.${payloadSeg()}.AAAA`,
    expect: 'invalid_token',
    why: W.alg,
  },
  {
    name: 'alg none with a kid of a real key',
    token: `${segment({ alg: 'none', kid: 'es-1' })}.${payloadSeg()}.${splitToken(esBase)[2]}`,
    expect: 'invalid_token',
    why: W.alg,
  },
  {
    name: 'alg "None"',
    token: `${segment({ alg: 'None' })}.${payloadSeg()}.AAAA`,
    expect: 'invalid_token',
    why: W.alg,
  },
  {
    name: 'HS256, secret = RSA public JWK JSON',
    token: hs256(JSON.stringify(rsKey.publicJwk), 'rs-1'),
    expect: 'invalid_token',
    why: W.alg,
  },
  { name: 'HS256, secret = RSA public key PEM', token: hs256(rsPem, 'rs-1'), expect: 'invalid_token', why: W.alg },
  { name: 'HS256, secret = RSA public key DER', token: hs256(rsDer, 'rs-1'), expect: 'invalid_token', why: W.alg },
  {
    name: 'HS256, secret = RSA modulus n text',
    token: hs256(rsKey.publicJwk.n!, 'rs-1'),
    expect: 'invalid_token',
    why: W.alg,
  },
  { name: 'HS256, secret = EC public key PEM', token: hs256(esPem, 'es-1'), expect: 'invalid_token', why: W.alg },
  ...['ES384', 'ES512', 'RS384', 'PS256', 'EdDSA', 'ES256K', 'es256', 'HS256', ''].map(
    (alg): Row => ({
      name: `alg ${JSON.stringify(alg)} over a valid ES256 signature`,
      token: esSignedWithAlg(alg),
      expect: 'invalid_token',
      why: W.alg,
    }),
  ),
  { name: 'alg not a string (["ES256"])', token: esSignedWithAlg(['ES256']), expect: 'invalid_token', why: W.noAlg },
  {
    name: 'alg missing',
    token: signSegments(esKey, segment({ kid: 'es-1' }), payloadSeg()),
    expect: 'invalid_token',
    why: W.noAlg,
  },
  {
    name: 'RS256 token when algorithms is ["ES256"]',
    token: rs(),
    options: { algorithms: ['ES256'] },
    expect: 'invalid_token',
    why: W.alg,
  },
  {
    name: 'ES256 token when algorithms is ["ES256"]',
    token: es(),
    options: { algorithms: ['ES256'] },
    expect: 'accepted',
  },
  {
    name: 'ES256 token when algorithms is ["RS256"]',
    token: es(),
    options: { algorithms: ['RS256'] },
    expect: 'invalid_token',
    why: W.alg,
  },
  {
    name: 'ES256 header naming the RSA kid (EC-signed)',
    token: signSegments(esKey, headerSegment(esKey, { kid: 'rs-1' }), payloadSeg()),
    expect: 'invalid_token',
    why: W.keyAlg,
  },
  {
    name: 'ES256 header naming the RSA kid (RSA-signed)',
    token: signSegments(rsKey, segment({ alg: 'ES256', kid: 'rs-1' }), payloadSeg()),
    expect: 'invalid_token',
    why: W.keyAlg,
  },
  {
    name: 'RS256 header naming the EC kid (RSA-signed)',
    token: signSegments(rsKey, headerSegment(rsKey, { kid: 'es-1' }), payloadSeg()),
    expect: 'invalid_token',
    why: W.keyAlg,
  },
  {
    name: 'RS256 header naming the EC kid (EC-signed)',
    token: signSegments(esKey, segment({ alg: 'RS256', kid: 'es-1' }), payloadSeg()),
    expect: 'invalid_token',
    why: W.keyAlg,
  },
  { name: 'unknown kid', token: es({}, { kid: 'nope' }), expect: 'invalid_token', why: W.unknownKid },
  { name: 'kid empty string', token: es({}, { kid: '' }), expect: 'invalid_token', why: W.kid },
  { name: 'kid not a string', token: es({}, { kid: 7 }), expect: 'invalid_token', why: W.kid },
  { name: 'no kid, exactly one ES256 key in the set', token: es({}, { kid: undefined }), expect: 'accepted' },
  { name: 'crit ["exp"]', token: es({}, { crit: ['exp'], exp: NOW_SEC + 60 }), expect: 'invalid_token', why: W.crit },
  { name: 'crit []', token: es({}, { crit: [] }), expect: 'invalid_token', why: W.crit },
  {
    name: 'crit ["b64"] with b64 true',
    token: es({}, { crit: ['b64'], b64: true }),
    expect: 'invalid_token',
    why: W.crit,
  },
  { name: 'b64 false', token: es({}, { b64: false }), expect: 'invalid_token', why: W.b64 },
  { name: 'b64 false with crit', token: es({}, { b64: false, crit: ['b64'] }), expect: 'invalid_token', why: W.crit },
  { name: 'b64 "false" (a string)', token: es({}, { b64: 'false' }), expect: 'invalid_token', why: W.b64 },

  // ── jku / x5u / jwk / x5c never pick the key ────────────────────────────────────────────────
  {
    name: 'embedded jwk = attacker key, no kid, signed by attacker',
    token: mint({}, attacker, { kid: undefined, jwk: attacker.publicJwk }),
    expect: 'invalid_token',
    why: W.signature,
  },
  {
    name: 'embedded jwk = attacker key, kid of the real key',
    token: mint({}, attacker, { kid: 'es-1', jwk: attacker.publicJwk }),
    expect: 'invalid_token',
    why: W.signature,
  },
  {
    name: 'embedded jwk = attacker key, kid of the attacker',
    token: mint({}, attacker, { jwk: attacker.publicJwk }),
    expect: 'invalid_token',
    why: W.unknownKid,
  },
  {
    name: 'jku to an attacker JWKS, signed by attacker',
    token: mint({}, attacker, { kid: 'es-1', jku: 'https://attacker.example/jwks.json' }),
    expect: 'invalid_token',
    why: W.signature,
  },
  {
    name: 'x5u to an attacker cert, signed by attacker',
    token: mint({}, attacker, { kid: 'es-1', x5u: 'https://attacker.example/cert.pem' }),
    expect: 'invalid_token',
    why: W.signature,
  },
  {
    name: 'x5c of an attacker, signed by attacker',
    token: mint({}, attacker, { kid: 'es-1', x5c: ['MIIBattacker'] }),
    expect: 'invalid_token',
    why: W.signature,
  },
  {
    name: 'valid token whose jku/x5u/jwk/x5c point elsewhere still verifies with the JWKS key',
    token: es(
      {},
      {
        jku: 'https://attacker.example/jwks.json',
        x5u: 'https://attacker.example/c.pem',
        jwk: attacker.publicJwk,
        x5c: ['MIIBattacker'],
      },
    ),
    expect: 'accepted',
  },
  {
    name: 'same, without kid',
    token: es({}, { kid: undefined, jku: 'https://attacker.example/jwks.json', jwk: attacker.publicJwk }),
    expect: 'accepted',
  },

  // ── ES256 signature values ─────────────────────────────────────────────────────────────────
  { name: 'r = 0', token: withSignature(esBase, es256Signature(0n, baseS)), expect: 'invalid_token', why: W.signature },
  { name: 's = 0', token: withSignature(esBase, es256Signature(baseR, 0n)), expect: 'invalid_token', why: W.signature },
  {
    name: 'r = s = 0',
    token: withSignature(esBase, es256Signature(0n, 0n)),
    expect: 'invalid_token',
    why: W.signature,
  },
  {
    name: 'r = n',
    token: withSignature(esBase, es256Signature(P256_N, baseS)),
    expect: 'invalid_token',
    why: W.signature,
  },
  {
    name: 's = n',
    token: withSignature(esBase, es256Signature(baseR, P256_N)),
    expect: 'invalid_token',
    why: W.signature,
  },
  {
    name: 'r = n + 1',
    token: withSignature(esBase, es256Signature(P256_N + 1n, baseS)),
    expect: 'invalid_token',
    why: W.signature,
  },
  // s + n fits in 32 bytes only when s < 2^256 - n (about 2^224): a random s almost never does, and
  // no message can be chosen to make it so. So s + n is written in the 33 bytes it needs.
  {
    name: 's = s + n, in the 33 bytes it needs',
    token: withSignature(
      esBase,
      Buffer.concat([bigintTo32(baseR), Buffer.from((baseS + P256_N).toString(16).padStart(66, '0'), 'hex')]),
    ),
    expect: 'invalid_token',
    why: W.signature,
  },
  {
    name: 'r = 2^256 - 1',
    token: withSignature(esBase, es256Signature(2n ** 256n - 1n, baseS)),
    expect: 'invalid_token',
    why: W.signature,
  },
  {
    name: 's = 2^256 - 1',
    token: withSignature(esBase, es256Signature(baseR, 2n ** 256n - 1n)),
    expect: 'invalid_token',
    why: W.signature,
  },
  {
    name: '(r, n - s): the other-S twin is valid (high-S accepted, RFC 7518)',
    token: withSignature(esBase, es256Signature(baseR, P256_N - baseS)),
    expect: 'accepted',
  },
  {
    name: 'ES256 signature of 63 bytes',
    token: withSignature(esBase, signatureBytes(esBase).subarray(0, 63)),
    expect: 'invalid_token',
    why: W.signature,
  },
  {
    name: 'ES256 signature of 65 bytes (extra zero byte)',
    token: withSignature(esBase, Buffer.concat([signatureBytes(esBase), Buffer.from([0])])),
    expect: 'invalid_token',
    why: W.signature,
  },
  {
    name: 'ES256 signature in DER form',
    token: withSignature(esBase, derSignature(baseR, baseS)),
    expect: 'invalid_token',
    why: W.signature,
  },

  // ── RS256 signature values ─────────────────────────────────────────────────────────────────
  {
    name: 'RS256 signature = modulus',
    token: withSignature(rsBase, Buffer.from(rsModulus.toString(16).padStart(512, '0'), 'hex')),
    expect: 'invalid_token',
    why: W.signature,
  },
  {
    name: 'RS256 signature = 0',
    token: withSignature(rsBase, Buffer.alloc(256)),
    expect: 'invalid_token',
    why: W.signature,
  },
  {
    name: 'RS256 signature = 1',
    token: withSignature(rsBase, Buffer.concat([Buffer.alloc(255), Buffer.from([1])])),
    expect: 'invalid_token',
    why: W.signature,
  },
  {
    name: 'RS256 signature + modulus (257 bytes)',
    token: withSignature(
      rsBase,
      Buffer.from(
        (BigInt(`0x${signatureBytes(rsBase).toString('hex')}`) + rsModulus).toString(16).padStart(514, '0'),
        'hex',
      ),
    ),
    expect: 'invalid_token',
    why: W.signature,
  },
  {
    name: 'RS256 signature with a leading zero byte (257 bytes)',
    token: withSignature(rsBase, Buffer.concat([Buffer.from([0]), signatureBytes(rsBase)])),
    expect: 'invalid_token',
    why: W.signature,
  },
  {
    name: 'RS256 signature missing its last byte',
    token: withSignature(rsBase, signatureBytes(rsBase).subarray(0, 255)),
    expect: 'invalid_token',
    why: W.signature,
  },

  // ── compact serialization and base64url ────────────────────────────────────────────────────
  {
    name: 'stray bits in the ES256 signature segment',
    token: strayBitsSignature(esBase),
    expect: 'invalid_token',
    why: W.nonCanonical,
  },
  {
    name: 'stray bits in the RS256 signature segment',
    token: strayBitsSignature(rsBase),
    expect: 'invalid_token',
    why: W.nonCanonical,
  },
  {
    name: 'stray bits in the header segment (signed as spelled)',
    token: strayBitsIn('header'),
    expect: 'invalid_token',
    why: W.nonCanonical,
  },
  {
    name: 'stray bits in the payload segment (signed as spelled)',
    token: strayBitsIn('payload'),
    expect: 'invalid_token',
    why: W.nonCanonical,
  },
  {
    name: 'padding on the header (signed as spelled)',
    token: paddedIn('header'),
    expect: 'invalid_token',
    why: W.base64,
  },
  {
    name: 'padding on the payload (signed as spelled)',
    token: paddedIn('payload'),
    expect: 'invalid_token',
    why: W.base64,
  },
  { name: 'padding on the signature', token: `${esBase}==`, expect: 'invalid_token', why: W.base64 },
  {
    name: 'standard base64 "+" or "/" in the signature',
    token: toStandardBase64(tokenWithUrlSafeSignatureChar()),
    expect: 'invalid_token',
    why: W.base64,
  },
  {
    name: 'a space inside the signature',
    token: insertAt(esBase, esBase.length - 10, ' '),
    expect: 'invalid_token',
    why: W.alphabet,
  },
  // LIBRARY DEFECT (reported): a newline is outside the alphabet, but being the final character it
  // reaches the canonical-tail check first, which reads it as set low bits: "non-canonical base64url".
  { name: 'a trailing newline', token: `${esBase}\n`, expect: 'invalid_token', why: W.alphabet },
  { name: 'a leading space', token: ` ${esBase}`, expect: 'invalid_token', why: W.alphabet },
  {
    name: 'a tab inside the payload (signed as spelled)',
    token: signSegments(esKey, headerSegment(esKey), replaceAt(payloadSeg(), 8, '\t')),
    expect: 'invalid_token',
    why: W.alphabet,
  },
  {
    name: 'a CRLF inside the header (signed as spelled)',
    token: signSegments(esKey, insertAt(headerSegment(esKey), 4, '\r\n'), payloadSeg()),
    expect: 'invalid_token',
    why: W.alphabet,
  },
  {
    name: 'U+01xx aliasing a base64url char in the header',
    token: withWideChar(esBase, 0),
    expect: 'invalid_token',
    why: W.nonAscii,
  },
  {
    name: 'U+01xx aliasing a base64url char in the payload',
    token: withWideChar(esBase, 1),
    expect: 'invalid_token',
    why: W.nonAscii,
  },
  {
    name: 'U+01xx aliasing a base64url char in the signature',
    token: withWideChar(esBase, 2),
    expect: 'invalid_token',
    why: W.nonAscii,
  },
  {
    name: 'a NUL character in the payload',
    token: replaceAt(esBase, esBase.indexOf('.') + 5, '\0'),
    expect: 'invalid_token',
    why: W.alphabet,
  },
  { name: 'two segments', token: esBase.slice(0, esBase.lastIndexOf('.')), expect: 'invalid_token', why: W.segments },
  { name: 'four segments', token: `${esBase}.${splitToken(esBase)[2]}`, expect: 'invalid_token', why: W.segments },
  {
    name: 'empty header segment',
    token: `.${splitToken(esBase)[1]}.${splitToken(esBase)[2]}`,
    expect: 'invalid_token',
    why: W.emptyHeader,
  },
  {
    name: 'empty payload segment (signed as spelled)',
    token: signSegments(esKey, headerSegment(esKey), ''),
    expect: 'invalid_token',
    why: W.notJson('payload'),
  },
  {
    name: 'empty signature segment',
    token: `${esBase.slice(0, esBase.lastIndexOf('.'))}.`,
    expect: 'invalid_token',
    why: W.emptySignature,
  },
  {
    name: 'a segment of length 4k+1',
    token: `${to4kPlus1(splitToken(esBase)[0])}.${splitToken(esBase)[1]}.${splitToken(esBase)[2]}`,
    expect: 'invalid_token',
    why: W.nonCanonical,
  },
  { name: 'only dots', token: '..', expect: 'invalid_token', why: W.emptyHeader },

  // ── length cap (before any decoding) ───────────────────────────────────────────────────────
  { name: 'exactly 8192 characters (default cap)', token: tokenOfLength(8192), expect: 'accepted' },
  {
    name: '8193 characters (default cap)',
    token: tokenOfLength(8193),
    expect: 'invalid_token',
    why: 'token longer than 8192 characters',
  },
  {
    name: 'exactly maxTokenLength (1000)',
    token: tokenOfLength(1000),
    options: { maxTokenLength: 1000 },
    expect: 'accepted',
  },
  {
    name: 'maxTokenLength + 1 (1001)',
    token: tokenOfLength(1001),
    options: { maxTokenLength: 1000 },
    expect: 'invalid_token',
    why: 'token longer than 1000 characters',
  },
  {
    name: '9000 characters with maxTokenLength 10000',
    token: tokenOfLength(9000),
    options: { maxTokenLength: 10_000 },
    expect: 'accepted',
  },

  // ── exp / nbf / iat without clockToleranceSec: no leeway for exp, 60 s for nbf and iat ahead ──
  {
    name: 'exp = now (expired: no leeway for exp by default)',
    token: es({ exp: NOW_SEC }),
    expect: 'invalid_token',
    why: 'token expired',
  },
  { name: 'exp = now + 1', token: es({ exp: NOW_SEC + 1 }), expect: 'accepted' },
  {
    name: 'exp = now - 1',
    token: es({ exp: NOW_SEC - 1 }),
    expect: 'invalid_token',
    why: 'token expired',
  },
  {
    name: 'exp = now - 59 (no leeway for exp by default)',
    token: es({ exp: NOW_SEC - 59 }),
    expect: 'invalid_token',
    why: 'token expired',
  },
  {
    name: 'exp = now - 60',
    token: es({ exp: NOW_SEC - 60 }),
    expect: 'invalid_token',
    why: 'token expired',
  },
  { name: 'nbf = now + 59', token: es({ nbf: NOW_SEC + 59 }), expect: 'accepted' },
  { name: 'nbf = now + 60 (at the edge: accepted)', token: es({ nbf: NOW_SEC + 60 }), expect: 'accepted' },
  {
    name: 'nbf = now + 61',
    token: es({ nbf: NOW_SEC + 61 }),
    expect: 'invalid_token',
    why: 'token not yet valid (nbf)',
  },
  { name: 'iat = now + 59', token: es({ iat: NOW_SEC + 59 }), expect: 'accepted' },
  { name: 'iat = now + 60 (at the edge: accepted)', token: es({ iat: NOW_SEC + 60 }), expect: 'accepted' },
  {
    name: 'iat = now + 61',
    token: es({ iat: NOW_SEC + 61 }),
    expect: 'invalid_token',
    why: 'token issued in the future (iat)',
  },
  {
    name: 'injected now 1 ms before exp (default)',
    token: es({ exp: NOW_SEC }),
    options: { now: () => NOW_MS - 1 },
    expect: 'accepted',
  },
  {
    name: 'injected now exactly at exp (default)',
    token: es({ exp: NOW_SEC }),
    options: { now: () => NOW_MS },
    expect: 'invalid_token',
    why: 'token expired',
  },
  // With clockToleranceSec set, it is the leeway of all three.
  {
    name: 'tolerance 0: exp = now',
    token: es({ exp: NOW_SEC }),
    options: { clockToleranceSec: 0 },
    expect: 'invalid_token',
    why: W.expired,
  },
  {
    name: 'tolerance 0: exp = now + 1',
    token: es({ exp: NOW_SEC + 1 }),
    options: { clockToleranceSec: 0 },
    expect: 'accepted',
  },
  {
    name: 'tolerance 0: nbf = now',
    token: es({ nbf: NOW_SEC }),
    options: { clockToleranceSec: 0 },
    expect: 'accepted',
  },
  {
    name: 'tolerance 0: nbf = now + 1',
    token: es({ nbf: NOW_SEC + 1 }),
    options: { clockToleranceSec: 0 },
    expect: 'invalid_token',
    why: W.notYetValid,
  },
  {
    name: 'tolerance 0: iat = now + 1',
    token: es({ iat: NOW_SEC + 1 }),
    options: { clockToleranceSec: 0 },
    expect: 'invalid_token',
    why: W.issuedAhead,
  },
  {
    name: 'tolerance 300: exp = now - 299',
    token: es({ exp: NOW_SEC - 299 }),
    options: { clockToleranceSec: 300 },
    expect: 'accepted',
  },
  {
    name: 'tolerance 300: exp = now - 300',
    token: es({ exp: NOW_SEC - 300 }),
    options: { clockToleranceSec: 300 },
    expect: 'invalid_token',
    why: 'token expired',
  },
  {
    name: 'tolerance 300: nbf = now + 300',
    token: es({ nbf: NOW_SEC + 300 }),
    options: { clockToleranceSec: 300 },
    expect: 'accepted',
  },
  {
    name: 'tolerance 300: nbf = now + 301',
    token: es({ nbf: NOW_SEC + 301 }),
    options: { clockToleranceSec: 300 },
    expect: 'invalid_token',
    why: 'token not yet valid (nbf)',
  },
  {
    name: 'tolerance 300: iat = now + 301',
    token: es({ iat: NOW_SEC + 301 }),
    options: { clockToleranceSec: 300 },
    expect: 'invalid_token',
    why: 'token issued in the future (iat)',
  },
  {
    name: 'tolerance 10: nbf = now + 11 (the tolerance replaces the 60 s)',
    token: es({ nbf: NOW_SEC + 11 }),
    options: { clockToleranceSec: 10 },
    expect: 'invalid_token',
    why: 'token not yet valid (nbf)',
  },
  {
    name: 'tolerance 10: iat = now + 10',
    token: es({ iat: NOW_SEC + 10 }),
    options: { clockToleranceSec: 10 },
    expect: 'accepted',
  },
  {
    name: 'tolerance 10: exp = now - 9',
    token: es({ exp: NOW_SEC - 9 }),
    options: { clockToleranceSec: 10 },
    expect: 'accepted',
  },
  {
    name: 'tolerance 10: exp = now - 10',
    token: es({ exp: NOW_SEC - 10 }),
    options: { clockToleranceSec: 10 },
    expect: 'invalid_token',
    why: 'token expired',
  },
  {
    name: 'injected now 999 ms past exp (tolerance 0)',
    token: es({ exp: NOW_SEC }),
    options: { clockToleranceSec: 0, now: () => NOW_MS - 1 },
    expect: 'accepted',
  },
  {
    name: 'injected now exactly at exp (tolerance 0)',
    token: es({ exp: NOW_SEC }),
    options: { clockToleranceSec: 0, now: () => NOW_MS },
    expect: 'invalid_token',
    why: W.expired,
  },
  {
    name: 'injected now 1 ms after exp - tolerance (60)',
    token: es({ exp: NOW_SEC - 59 }),
    options: { clockToleranceSec: 60, now: () => NOW_MS + 1001 },
    expect: 'invalid_token',
    why: W.expired,
  },
  {
    name: 'injected now 1 ms before exp - tolerance (60)',
    token: es({ exp: NOW_SEC - 59 }),
    options: { clockToleranceSec: 60, now: () => NOW_MS + 999 },
    expect: 'accepted',
  },

  // ── aud ────────────────────────────────────────────────────────────────────────────────────
  { name: 'aud string, match', token: es({ aud: AUDIENCE }), expect: 'accepted' },
  { name: 'aud string, no match', token: es({ aud: 'resource://other' }), expect: 'invalid_token', why: W.audience },
  {
    name: 'aud string differs by case',
    token: es({ aud: AUDIENCE.toUpperCase() }),
    expect: 'invalid_token',
    why: W.audience,
  },
  {
    name: 'aud string with a trailing slash',
    token: es({ aud: `${AUDIENCE}/` }),
    expect: 'invalid_token',
    why: W.audience,
  },
  { name: 'aud array, match', token: es({ aud: ['resource://other', AUDIENCE] }), expect: 'accepted' },
  {
    name: 'aud array, no match',
    token: es({ aud: ['resource://other', 'resource://third'] }),
    expect: 'invalid_token',
    why: W.audience,
  },
  { name: 'aud empty array', token: es({ aud: [] }), expect: 'invalid_token', why: W.audType },
  {
    name: 'aud array with a non-string entry',
    token: es({ aud: [AUDIENCE, 5] }),
    expect: 'invalid_token',
    why: W.audType,
  },
  {
    name: 'aud array with a null entry',
    token: es({ aud: [AUDIENCE, null] }),
    expect: 'invalid_token',
    why: W.audType,
  },
  { name: 'aud array with a nested array', token: es({ aud: [[AUDIENCE]] }), expect: 'invalid_token', why: W.audType },
  { name: 'aud missing', token: es({ aud: undefined }), expect: 'invalid_token', why: 'aud missing' },
  { name: 'aud a number', token: es({ aud: 5 }), expect: 'invalid_token', why: W.audType },
  { name: 'aud an object', token: es({ aud: { [AUDIENCE]: true } }), expect: 'invalid_token', why: W.audType },
  {
    name: 'audience option as an array, aud string matches the second',
    token: es({ aud: 'resource://b' }),
    options: { audience: ['resource://a', 'resource://b'] },
    expect: 'accepted',
  },
  {
    name: 'audience option as an array, aud array overlaps',
    token: es({ aud: ['resource://c', 'resource://a'] }),
    options: { audience: ['resource://a', 'resource://b'] },
    expect: 'accepted',
  },
  {
    name: 'audience option as an array, no overlap',
    token: es({ aud: ['resource://c'] }),
    options: { audience: ['resource://a', 'resource://b'] },
    expect: 'invalid_token',
    why: W.audience,
  },

  // ── iss ────────────────────────────────────────────────────────────────────────────────────
  { name: 'iss of another STS', token: es({ iss: 'http://127.0.0.1:9999' }), expect: 'invalid_token', why: W.issuer },
  { name: 'iss with a trailing slash', token: es({ iss: `${ISSUER}/` }), expect: 'invalid_token', why: W.issuer },
  { name: 'iss differs by case', token: es({ iss: ISSUER.toUpperCase() }), expect: 'invalid_token', why: W.issuer },
  { name: 'iss missing', token: es({ iss: undefined }), expect: 'invalid_token', why: W.issuer },
  { name: 'iss an array holding the issuer', token: es({ iss: [ISSUER] }), expect: 'invalid_token', why: W.issuer },

  // ── required claims (docs/architecture.md "Claims") ─────────────────────────────────────────────────────
  ...['exp', 'iat', 'jti', 'sub', 'client_id', 'sid', 'root_sid', 'use', 'sub_type'].map(
    (claim): Row => ({
      name: `${claim} missing`,
      token: es({ [claim]: undefined }),
      expect: 'invalid_token',
      why: W.missing(claim),
    }),
  ),
  ...['exp', 'iat', 'jti', 'sub', 'client_id', 'sid', 'root_sid', 'use', 'sub_type'].map(
    (claim): Row => ({
      name: `${claim} null`,
      token: es({ [claim]: null }),
      expect: 'invalid_token',
      why: claim === 'exp' || claim === 'iat' ? W.integer(claim) : W.string(claim),
    }),
  ),

  // ── mistyped claims ────────────────────────────────────────────────────────────────────────
  ...(
    [
      ['exp', -1, W.integer('exp')],
      ['exp', NOW_SEC + 0.5, W.integer('exp')],
      ['exp', String(NOW_SEC + 300), W.integer('exp')],
      ['exp', 2 ** 53, W.integer('exp')],
      ['exp', true, W.integer('exp')],
      ['exp', [NOW_SEC + 300], W.integer('exp')],
      ['iat', -1, W.integer('iat')],
      ['iat', NOW_SEC - 0.5, W.integer('iat')],
      ['iat', String(NOW_SEC), W.integer('iat')],
      ['nbf', -1, W.integer('nbf')],
      ['nbf', NOW_SEC - 0.5, W.integer('nbf')],
      ['nbf', String(NOW_SEC), W.integer('nbf')],
      ['nbf', null, W.integer('nbf')],
      ['hop_count', -1, W.integer('hop_count')],
      ['hop_count', 1.5, W.integer('hop_count')],
      ['hop_count', '3', W.integer('hop_count')],
      ['delegation_graph_epoch', -1, W.integer('delegation_graph_epoch')],
      ['delegation_graph_epoch', 0.5, W.integer('delegation_graph_epoch')],
      ['delegation_graph_epoch', '7', W.integer('delegation_graph_epoch')],
      ['sub', '', W.string('sub')],
      ['sub', 5, W.string('sub')],
      ['jti', '', W.string('jti')],
      ['jti', {}, W.string('jti')],
      ['client_id', '', W.string('client_id')],
      ['client_id', ['c'], W.string('client_id')],
      ['sid', '', W.string('sid')],
      ['root_sid', '', W.string('root_sid')],
      ['root_sid', 0, W.string('root_sid')],
      ['zone_id', 1, W.stringOrNull('zone_id')],
      ['agent_session_id', false, W.stringOrNull('agent_session_id')],
      ['delegation_edge_id', 5, W.stringOrNull('delegation_edge_id')],
      ['target_session_id', 7, W.stringOrNull('target_session_id')],
      ['use', '', W.string('use')],
      ['use', 'admin', 'use must be "session" or "resource"'],
      ['sub_type', '', W.string('sub_type')],
      ['sub_type', 'robot', W.subType],
      ['scope', 5, 'scope must be a string'],
      ['scope', ['tool:call'], 'scope must be a string'],
      ['scope', { 'tool:call': true }, 'scope must be a string'],
      ['target', 'resource://documents', W.strings('target')],
      ['target', [''], W.strings('target')],
      ['target', [5], W.strings('target')],
      ['target', {}, W.strings('target')],
      ['delegation_path', 'app-a', W.strings('delegation_path')],
      ['delegation_path', [1], W.strings('delegation_path')],
      ['delegation_path', [''], W.strings('delegation_path')],
      ['delegation_chain', {}, 'delegation_chain must be an array'],
      ['delegation_chain', 'app-a', 'delegation_chain must be an array'],
      ['delegation_chain', [5], 'delegation_chain entries must be objects'],
      ['delegation_chain', [{}], W.missing('application_id')],
      ['delegation_chain', [{ application_id: '' }], W.string('application_id')],
      ['delegation_chain', [{ application_id: 'app-a', agent_session_id: 5 }], W.stringOrNull('agent_session_id')],
    ] as const
  ).map(
    ([claim, value, why]): Row => ({
      name: `${claim} = ${JSON.stringify(value)}`,
      token: es({ [claim]: value }),
      expect: 'invalid_token',
      why,
    }),
  ),
  {
    name: 'optional claims, well typed, come back in the claims',
    token: es({
      nbf: NOW_SEC - 5,
      hop_count: 0,
      delegation_graph_epoch: 0,
      target: ['resource://documents'],
      delegation_path: ['app-a', 'app-b'],
      delegation_chain: [
        { application_id: 'app-a', agent_session_id: 's-a', delegation_edge_id: 'd-a' },
        { application_id: 'app-b' },
      ],
      delegation_edge_id: 'edge-1',
      source_session_id: 'src-1',
      target_session_id: 'tgt-1',
    }),
    expect: 'accepted',
    check: ({ claims }) => {
      expect(claims).toMatchObject({
        hopCount: 0,
        graphEpoch: 0,
        targetResources: ['resource://documents'],
        delegationPath: ['app-a', 'app-b'],
        delegationChain: [
          { applicationId: 'app-a', sessionId: 's-a', delegationId: 'd-a' },
          { applicationId: 'app-b' },
        ],
        delegationId: 'edge-1',
        sourceSessionId: 'src-1',
        targetSessionId: 'tgt-1',
      })
    },
  },

  // ── optional claims: "" and null (the plain Caracal verifier's reading) ─────────────────────────
  ...(
    [
      ['zone_id', 'zoneId'],
      ['agent_session_id', 'sessionId'],
      ['delegation_edge_id', 'delegationId'],
      ['source_session_id', 'sourceSessionId'],
      ['target_session_id', 'targetSessionId'],
    ] as const
  ).flatMap(([claim, member]) =>
    ['', null].map(
      (value): Row => ({
        name: `optional ${claim} = ${JSON.stringify(value)} is absent`,
        token: es({ [claim]: value }),
        expect: 'accepted',
        check: absent(member),
      }),
    ),
  ),
  ...(
    [
      ['target', 'targetResources'],
      ['delegation_path', 'delegationPath'],
      ['delegation_chain', 'delegationChain'],
      ['hop_count', 'hopCount'],
      ['delegation_graph_epoch', 'graphEpoch'],
    ] as const
  ).map(
    ([claim, member]): Row => ({
      name: `optional ${claim} = null is absent`,
      token: es({ [claim]: null }),
      expect: 'accepted',
      check: absent(member),
    }),
  ),
  ...['', null].map(
    (value): Row => ({
      name: `scope = ${JSON.stringify(value)} is no scope`,
      token: es({ scope: value }),
      expect: 'accepted',
      check: ({ claims }) => expect(claims?.scope).toBe(''),
    }),
  ),
  // An array or integer claim that is "" is still refused (the verifier reads "" as no array, no integer), as is a null nbf (jose).
  {
    name: 'target = "" is no array',
    token: es({ target: '' }),
    expect: 'invalid_token',
    why: 'target must be an array of non-empty strings',
  },
  {
    name: 'delegation_path = "" is no array',
    token: es({ delegation_path: '' }),
    expect: 'invalid_token',
    why: 'delegation_path must be an array of non-empty strings',
  },
  {
    name: 'delegation_chain = "" is no array',
    token: es({ delegation_chain: '' }),
    expect: 'invalid_token',
    why: 'delegation_chain must be an array',
  },
  {
    name: 'hop_count = "" is no integer',
    token: es({ hop_count: '' }),
    expect: 'invalid_token',
    why: 'hop_count must be a non-negative integer',
  },
  {
    name: 'delegation_graph_epoch = "" is no integer',
    token: es({ delegation_graph_epoch: '' }),
    expect: 'invalid_token',
    why: 'delegation_graph_epoch must be a non-negative integer',
  },
  {
    name: 'nbf = null is refused (as jose refuses it)',
    token: es({ nbf: null }),
    expect: 'invalid_token',
    why: 'nbf must be a non-negative integer',
  },
  {
    name: 'nbf = "" is refused',
    token: es({ nbf: '' }),
    expect: 'invalid_token',
    why: 'nbf must be a non-negative integer',
  },
  // Anything else but a string or null in an optional string claim.
  ...(
    [
      ['zone_id', 1],
      ['agent_session_id', false],
      ['delegation_edge_id', []],
      ['source_session_id', {}],
      ['target_session_id', 7],
    ] as const
  ).map(
    ([claim, value]): Row => ({
      name: `optional ${claim} = ${JSON.stringify(value)} is refused`,
      token: es({ [claim]: value }),
      expect: 'invalid_token',
      why: `${claim} must be a string or null`,
    }),
  ),
  // Required claims stay strictly required and typed.
  ...['sub', 'client_id', 'sid', 'root_sid', 'jti'].flatMap((claim) =>
    ['', null].map(
      (value): Row => ({
        name: `required ${claim} = ${JSON.stringify(value)} is refused`,
        token: es({ [claim]: value }),
        expect: 'invalid_token',
        why: `${claim} must be a non-empty string`,
      }),
    ),
  ),
  ...['exp', 'iat'].map(
    (claim): Row => ({
      name: `required ${claim} = null is refused`,
      token: es({ [claim]: null }),
      expect: 'invalid_token',
      why: `${claim} must be a non-negative integer`,
    }),
  ),
  // With the options that need them, "" and null are missing values.
  {
    name: 'zone_id "" with expectedZoneId',
    token: es({ zone_id: '' }),
    options: { expectedZoneId: 'zone-1' },
    expect: 'invalid_zone',
    why: 'mandate was issued for another zone',
  },
  {
    name: 'zone_id null with expectedZoneId',
    token: es({ zone_id: null }),
    options: { expectedZoneId: 'zone-1' },
    expect: 'invalid_zone',
    why: 'mandate was issued for another zone',
  },
  {
    name: 'agent_session_id "" with requireAgent',
    token: es({ agent_session_id: '' }),
    options: { requireAgent: true },
    expect: 'agent_required',
    why: 'mandate has no agent session',
  },
  {
    name: 'agent_session_id null with requireAgent',
    token: es({ agent_session_id: null }),
    options: { requireAgent: true },
    expect: 'agent_required',
    why: 'mandate has no agent session',
  },
  {
    name: 'delegation_edge_id "" with requireDelegation',
    token: es({ delegation_edge_id: '' }),
    options: { requireDelegation: true },
    expect: 'delegation_required',
    why: 'mandate has no delegation edge',
  },
  {
    name: 'delegation_edge_id null with requireDelegation',
    token: es({ delegation_edge_id: null }),
    options: { requireDelegation: true },
    expect: 'delegation_required',
    why: 'mandate has no delegation edge',
  },
  {
    name: 'scope null with requiredScopes',
    token: es({ scope: null }),
    options: { requiredScopes: ['tool:call'] },
    expect: 'insufficient_scope',
    why: 'missing required scope: tool:call',
  },
  {
    name: 'delegation_chain null with requireChainContains',
    token: es({ delegation_chain: null }),
    options: { requireChainContains: ['app-a'] },
    expect: 'chain_mismatch',
    why: 'delegation chain does not include app-a',
  },
  {
    name: 'target null with requiredTargets',
    token: es({ target: null }),
    options: { requiredTargets: ['resource://documents'] },
    expect: 'invalid_token',
    why: 'mandate is not for target resource://documents',
  },
  {
    name: 'hop_count null with maxHopCount 1',
    token: es({ hop_count: null }),
    options: { maxHopCount: 1 },
    expect: 'accepted',
  },

  // ── delegation_chain hops as the STS writes them: { application_id, agent_session_id, delegation_edge_id } ──
  {
    name: 'hop agent_session_id and delegation_edge_id come back as sessionId and delegationId',
    token: es({ delegation_chain: [{ application_id: 'app-a', agent_session_id: 's-a', delegation_edge_id: 'd-a' }] }),
    expect: 'accepted',
    check: ({ claims }) =>
      expect(claims?.delegationChain).toEqual([{ applicationId: 'app-a', sessionId: 's-a', delegationId: 'd-a' }]),
  },
  {
    name: 'hop session_id and delegation_id (not the STS names) are ignored',
    token: es({
      delegation_chain: [
        { application_id: 'app-a', session_id: 's-a', delegation_id: 'd-a' },
        { application_id: 'app-b', session_id: 5, delegation_id: '' },
      ],
    }),
    expect: 'accepted',
    check: ({ claims }) =>
      expect(claims?.delegationChain).toEqual([{ applicationId: 'app-a' }, { applicationId: 'app-b' }]),
  },
  {
    name: 'hop ids "" and null are absent',
    token: es({
      delegation_chain: [
        { application_id: 'app-a', agent_session_id: '', delegation_edge_id: null },
        { application_id: 'app-b', agent_session_id: null, delegation_edge_id: '' },
      ],
    }),
    expect: 'accepted',
    check: ({ claims }) =>
      expect(claims?.delegationChain).toEqual([{ applicationId: 'app-a' }, { applicationId: 'app-b' }]),
  },
  {
    name: 'hop agent_session_id 5',
    token: es({ delegation_chain: [{ application_id: 'app-a', agent_session_id: 5 }] }),
    expect: 'invalid_token',
    why: 'agent_session_id must be a string or null',
  },
  {
    name: 'hop delegation_edge_id {}',
    token: es({ delegation_chain: [{ application_id: 'app-a', delegation_edge_id: {} }] }),
    expect: 'invalid_token',
    why: 'delegation_edge_id must be a string or null',
  },
  {
    name: 'hop application_id ""',
    token: es({ delegation_chain: [{ application_id: '' }] }),
    expect: 'invalid_token',
    why: 'application_id must be a non-empty string',
  },
  {
    name: 'hop application_id null',
    token: es({ delegation_chain: [{ application_id: null }] }),
    expect: 'invalid_token',
    why: 'application_id must be a non-empty string',
  },
  {
    name: 'hop without application_id',
    token: es({ delegation_chain: [{ agent_session_id: 's-a' }] }),
    expect: 'invalid_token',
    why: 'application_id missing',
  },

  // ── use and sub_type ───────────────────────────────────────────────────────────────────────
  {
    name: 'use "session" where a resource mandate is required (default)',
    token: es({ use: 'session' }),
    expect: 'invalid_token',
    why: 'mandate use is not "resource"',
  },
  {
    name: 'use "session" with requiredUse "session"',
    token: es({ use: 'session' }),
    options: { requiredUse: 'session' },
    expect: 'accepted',
  },
  {
    name: 'use "resource" with requiredUse "session"',
    token: es({ use: 'resource' }),
    options: { requiredUse: 'session' },
    expect: 'invalid_token',
    why: 'mandate use is not "session"',
  },
  { name: 'sub_type "application"', token: es({ sub_type: 'application' }), expect: 'accepted' },
  { name: 'sub_type "User" (case differs)', token: es({ sub_type: 'User' }), expect: 'invalid_token', why: W.subType },

  // ── JSON: duplicates (last wins, as JSON.parse), UTF-8, objects only ───────────────────────
  {
    name: 'duplicate sub in the payload: the last one wins',
    token: rawPayload(claimsJson({ sub: 'first' }).replace(/}$/, ',"sub":"second"}')),
    expect: 'accepted',
    check: ({ claims }) => expect(claims?.sub).toBe('second'),
  },
  {
    name: 'duplicate aud: wrong, then right',
    token: rawPayload(claimsJson({ aud: 'resource://other' }).replace(/}$/, `,"aud":"${AUDIENCE}"}`)),
    expect: 'accepted',
  },
  {
    name: 'duplicate aud: right, then wrong',
    token: rawPayload(claimsJson().replace(/}$/, ',"aud":"resource://other"}')),
    expect: 'invalid_token',
    why: W.audience,
  },
  {
    name: 'duplicate exp: valid, then expired',
    token: rawPayload(claimsJson().replace(/}$/, `,"exp":${NOW_SEC - 3600}}`)),
    expect: 'invalid_token',
    why: W.expired,
  },
  {
    name: 'duplicate alg in the header: none, then ES256',
    token: rawPayload(claimsJson(), esKey, b64u('{"alg":"none","alg":"ES256","kid":"es-1"}')),
    expect: 'accepted',
  },
  {
    name: 'duplicate alg in the header: ES256, then none',
    token: rawPayload(claimsJson(), esKey, b64u('{"alg":"ES256","kid":"es-1","alg":"none"}')),
    expect: 'invalid_token',
    why: W.alg,
  },
  {
    name: 'duplicate kid in the header: the last one names the key',
    token: rawPayload(claimsJson(), esKey, b64u('{"alg":"ES256","kid":"rs-1","kid":"es-1"}')),
    expect: 'accepted',
  },
  {
    name: 'UTF-8 multi-byte characters in claims',
    token: es({ sub: 'ü-𝄞-日本' }),
    expect: 'accepted',
    check: ({ claims }) => expect(claims?.sub).toBe('ü-𝄞-日本'),
  },
  {
    name: 'invalid UTF-8 (0xff) inside a string',
    token: rawPayload(utf8Splice(claimsJson({ sub: 'XX' }), 'XX', [0xff])),
    expect: 'invalid_token',
    why: W.notUtf8('payload'),
  },
  {
    name: 'invalid UTF-8: overlong "/" (c0 af)',
    token: rawPayload(utf8Splice(claimsJson({ sub: 'XX' }), 'XX', [0xc0, 0xaf])),
    expect: 'invalid_token',
    why: W.notUtf8('payload'),
  },
  {
    name: 'invalid UTF-8: encoded surrogate (ed a0 80)',
    token: rawPayload(utf8Splice(claimsJson({ sub: 'XX' }), 'XX', [0xed, 0xa0, 0x80])),
    expect: 'invalid_token',
    why: W.notUtf8('payload'),
  },
  {
    name: 'invalid UTF-8: truncated sequence (e2 82)',
    token: rawPayload(utf8Splice(claimsJson({ sub: 'XX' }), 'XX', [0xe2, 0x82])),
    expect: 'invalid_token',
    why: W.notUtf8('payload'),
  },
  {
    name: 'invalid UTF-8 in the header',
    token: signSegments(esKey, b64u(utf8Splice('{"alg":"ES256","kid":"es-1","x":"XX"}', 'XX', [0xff])), payloadSeg()),
    expect: 'invalid_token',
    why: W.notUtf8('protected header'),
  },
  ...['[]', '"a string"', '42', 'null', 'true', '{', '{"sub":"a"} {}', `[${claimsJson()}]`].map(
    (text): Row => ({
      name: `payload ${text.length > 20 ? 'array holding a mandate' : JSON.stringify(text)}`,
      token: rawPayload(text),
      expect: 'invalid_token',
      why: text === '{' || text.endsWith(' {}') ? W.notJson('payload') : W.notObject('payload'),
    }),
  ),
  ...['[]', '"ES256"', 'null', '{'].map(
    (text): Row => ({
      name: `header ${JSON.stringify(text)}`,
      token: signSegments(esKey, b64u(text), payloadSeg()),
      expect: 'invalid_token',
      why: text === '{' ? W.notJson('protected header') : W.notObject('protected header'),
    }),
  ),

  // ── policy options (README "Options") ───────────────────────────────────────────────────────────────
  {
    name: 'zone_id differs from expectedZoneId',
    token: es({ zone_id: 'zone-1' }),
    options: { expectedZoneId: 'zone-2' },
    expect: 'invalid_zone',
    why: W.zone,
  },
  {
    name: 'zone_id missing with expectedZoneId',
    token: es({ zone_id: undefined }),
    options: { expectedZoneId: 'zone-1' },
    expect: 'invalid_zone',
    why: W.zone,
  },
  {
    name: 'zone_id equals expectedZoneId',
    token: es({ zone_id: 'zone-1' }),
    options: { expectedZoneId: 'zone-1' },
    expect: 'accepted',
  },
  {
    name: 'a required scope missing',
    token: es({ scope: 'tool:call documents:read' }),
    options: { requiredScopes: ['tool:call', 'admin'] },
    expect: 'insufficient_scope',
    why: 'missing required scope: admin',
    check: ({ error }) => expect(error?.scope).toEqual(['tool:call', 'admin']),
  },
  {
    name: 'scope claim absent with requiredScopes',
    token: es({ scope: undefined }),
    options: { requiredScopes: ['tool:call'] },
    expect: 'insufficient_scope',
    why: 'missing required scope: tool:call',
  },
  {
    name: 'scope is a prefix match only ("tool:callx")',
    token: es({ scope: 'tool:callx' }),
    options: { requiredScopes: ['tool:call'] },
    expect: 'insufficient_scope',
    why: 'missing required scope: tool:call',
  },
  {
    name: 'scope differs by case',
    token: es({ scope: 'TOOL:CALL' }),
    options: { requiredScopes: ['tool:call'] },
    expect: 'insufficient_scope',
    why: 'missing required scope: tool:call',
  },
  {
    name: 'every required scope present (extra spaces)',
    token: es({ scope: '  admin   tool:call ' }),
    options: { requiredScopes: ['tool:call', 'admin'] },
    expect: 'accepted',
  },
  // Any run of ASCII whitespace separates scopes, as the plain Caracal verifier splits them.
  ...[
    'tool:call\tadmin',
    'tool:call\nadmin',
    'tool:call\r\nadmin',
    'admin\vtool:call',
    'admin\ftool:call',
    '\ttool:call \t\n admin\r',
    'admin\n\n\ntool:call',
  ].map(
    (scope): Row => ({
      name: `scopes separated by ${JSON.stringify(scope)}`,
      token: es({ scope }),
      options: { requiredScopes: ['tool:call', 'admin'] },
      expect: 'accepted',
    }),
  ),
  // Other whitespace is part of a scope (no scope token has any).
  ...[
    'admin\u00a0tool:call',
    'admin\u2028tool:call',
    'admin\u3000tool:call',
    'admin\u0085tool:call',
    'admin\u001ftool:call',
  ].map(
    (scope): Row => ({
      name: `scopes "separated" by ${JSON.stringify(scope)} are one scope`,
      token: es({ scope }),
      options: { requiredScopes: ['tool:call'] },
      expect: 'insufficient_scope',
      why: 'missing required scope: tool:call',
    }),
  ),
  {
    name: 'a tab-separated scope lacking one',
    token: es({ scope: 'tool:call\tadmin' }),
    options: { requiredScopes: ['tool:call', 'documents:read'] },
    expect: 'insufficient_scope',
    why: 'missing required scope: documents:read',
  },
  {
    name: 'requireAgent without agent_session_id',
    token: es({ agent_session_id: undefined }),
    options: { requireAgent: true },
    expect: 'agent_required',
    why: W.agent,
  },
  {
    name: 'requireAgent with agent_session_id',
    token: es({ agent_session_id: 'agent-9' }),
    options: { requireAgent: true },
    expect: 'accepted',
  },
  {
    name: 'requireDelegation without delegation_edge_id',
    token: es(),
    options: { requireDelegation: true },
    expect: 'delegation_required',
    why: W.delegation,
  },
  {
    name: 'requireDelegation with delegation_edge_id',
    token: es({ delegation_edge_id: 'edge-1' }),
    options: { requireDelegation: true },
    expect: 'accepted',
  },
  {
    name: 'requireChainContains, no chain',
    token: es(),
    options: { requireChainContains: ['app-a'] },
    expect: 'chain_mismatch',
    why: 'delegation chain does not include app-a',
  },
  {
    name: 'requireChainContains, app not in chain',
    token: es({ delegation_chain: [{ application_id: 'app-b' }] }),
    options: { requireChainContains: ['app-a'] },
    expect: 'chain_mismatch',
    why: 'delegation chain does not include app-a',
  },
  {
    name: 'requireChainContains, one of two missing',
    token: es({ delegation_chain: [{ application_id: 'app-a' }] }),
    options: { requireChainContains: ['app-a', 'app-c'] },
    expect: 'chain_mismatch',
    why: 'delegation chain does not include app-c',
  },
  {
    name: 'requireChainContains, delegation_path is not the chain',
    token: es({ delegation_path: ['app-a'] }),
    options: { requireChainContains: ['app-a'] },
    expect: 'chain_mismatch',
    why: 'delegation chain does not include app-a',
  },
  {
    name: 'requireChainContains, all in chain',
    token: es({ delegation_chain: [{ application_id: 'app-c' }, { application_id: 'app-a' }] }),
    options: { requireChainContains: ['app-a', 'app-c'] },
    expect: 'accepted',
  },
  { name: 'hop_count 10 (default max 10)', token: es({ hop_count: 10 }), expect: 'accepted' },
  {
    name: 'hop_count 11 (default max 10)',
    token: es({ hop_count: 11 }),
    expect: 'hop_count_exceeded',
    why: 'hop count above 10',
  },
  {
    name: 'hop_count 2 with maxHopCount 2',
    token: es({ hop_count: 2 }),
    options: { maxHopCount: 2 },
    expect: 'accepted',
  },
  {
    name: 'hop_count 3 with maxHopCount 2',
    token: es({ hop_count: 3 }),
    options: { maxHopCount: 2 },
    expect: 'hop_count_exceeded',
    why: 'hop count above 2',
  },
  {
    name: 'hop_count 10 with maxHopCount 0 (0 or less means the default, 10)',
    token: es({ hop_count: 10 }),
    options: { maxHopCount: 0 },
    expect: 'accepted',
  },
  {
    name: 'hop_count 11 with maxHopCount 0',
    token: es({ hop_count: 11 }),
    options: { maxHopCount: 0 },
    expect: 'hop_count_exceeded',
    why: 'hop count above 10',
  },
  {
    name: 'hop_count 10 with maxHopCount -3',
    token: es({ hop_count: 10 }),
    options: { maxHopCount: -3 },
    expect: 'accepted',
  },
  {
    name: 'hop_count 11 with maxHopCount -3',
    token: es({ hop_count: 11 }),
    options: { maxHopCount: -3 },
    expect: 'hop_count_exceeded',
    why: 'hop count above 10',
  },
  {
    name: 'hop_count 50 with maxHopCount 100',
    token: es({ hop_count: 50 }),
    options: { maxHopCount: 100 },
    expect: 'accepted',
  },
  { name: 'no hop_count with maxHopCount 0', token: es(), options: { maxHopCount: 0 }, expect: 'accepted' },
  {
    name: 'requiredTargets, no target claim',
    token: es(),
    options: { requiredTargets: ['resource://documents'] },
    expect: 'invalid_token',
    why: 'mandate is not for target resource://documents',
  },
  {
    name: 'requiredTargets, target lacks it',
    token: es({ target: ['resource://other'] }),
    options: { requiredTargets: ['resource://documents'] },
    expect: 'invalid_token',
    why: 'mandate is not for target resource://documents',
  },
  {
    name: 'requiredTargets, target has it',
    token: es({ target: ['resource://other', 'resource://documents'] }),
    options: { requiredTargets: ['resource://documents'] },
    expect: 'accepted',
  },

  // ── revocation (docs/architecture.md "Revocation"): every anchor, failing stores, async stores ───────────────────────
  ...(['sid', 'root_sid', 'agent_session_id', 'delegation_edge_id'] as const).map(
    (anchor): Row => ({
      name: `${anchor} revoked`,
      token: es({ sid: 'sid-r', root_sid: 'root-r', agent_session_id: 'agent-r', delegation_edge_id: 'edge-r' }),
      setup: (v) =>
        v.revocations.markRevoked(
          { sid: 'sid-r', root_sid: 'root-r', agent_session_id: 'agent-r', delegation_edge_id: 'edge-r' }[anchor],
        ),
      expect: 'session_revoked',
      why: W.revoked,
      check: ({ error }) => expect(error?.unavailable).toBe(false),
    }),
  ),
  {
    name: 'jti revoked (not an anchor)',
    token: es({ jti: 'jti-r' }),
    setup: (v) => v.revocations.markRevoked('jti-r'),
    expect: 'accepted',
  },
  {
    name: 'an unrelated anchor revoked',
    token: es(),
    setup: (v) => v.revocations.markRevoked('someone-else'),
    expect: 'accepted',
  },
  {
    name: 'store whose isRevoked throws',
    token: es(),
    options: { revocations: throwingStore() },
    expect: 'session_revoked',
    why: W.storeFailed,
    check: ({ error }) => expect(error?.unavailable).toBe(true),
  },
  {
    name: 'store whose isRevoked rejects',
    token: es(),
    options: { revocations: rejectingStore() },
    expect: 'session_revoked',
    why: W.storeFailed,
    check: ({ error }) => expect(error?.unavailable).toBe(true),
  },
  {
    name: 'async store, nothing revoked',
    token: es(),
    options: { revocations: asyncStore(new Set()) },
    expect: 'accepted',
  },
  {
    name: 'async store, root_sid revoked',
    token: es({ root_sid: 'root-a' }),
    options: { revocations: asyncStore(new Set(['root-a'])) },
    expect: 'session_revoked',
    why: W.revoked,
    check: ({ error }) => expect(error?.unavailable).toBe(false),
  },
  {
    name: 'async store, delegation_edge_id revoked',
    token: es({ delegation_edge_id: 'edge-a' }),
    options: { revocations: asyncStore(new Set(['edge-a'])) },
    expect: 'session_revoked',
    why: W.revoked,
  },
  ...(
    [
      ['undefined', undefined],
      ['1', 1],
      ['"false"', 'false'],
      ['null', null],
    ] as const
  ).flatMap(([label, answer]): Row[] => [
    {
      name: `store answering ${label} (not a boolean) fails closed`,
      token: es(),
      options: { revocations: { isRevoked: () => answer as never, markRevoked: () => {} } },
      expect: 'session_revoked',
      why: W.storeFailed,
      check: ({ error }) => expect(error?.unavailable).toBe(true),
    },
    {
      name: `async store answering ${label} (not a boolean) fails closed`,
      token: es(),
      options: { revocations: { isRevoked: async () => answer as never, markRevoked: () => {} } },
      expect: 'session_revoked',
      why: W.storeFailed,
      check: ({ error }) => expect(error?.unavailable).toBe(true),
    },
  ]),

  // ── delegation epochs: after revocation, per zone, an equal epoch is current ────────────────
  {
    name: 'delegation_graph_epoch below the zone epoch',
    token: es({ delegation_graph_epoch: 4 }),
    setup: (v) => v.revocations.markDelegationEpoch('zone-1', 5),
    expect: 'delegation_stale',
    why: W.stale,
  },
  {
    name: 'delegation_graph_epoch equal to the zone epoch',
    token: es({ delegation_graph_epoch: 5 }),
    setup: (v) => v.revocations.markDelegationEpoch('zone-1', 5),
    expect: 'accepted',
  },
  {
    name: 'delegation_graph_epoch 0 with no zone epoch known',
    token: es({ delegation_graph_epoch: 0 }),
    expect: 'accepted',
  },
  // ── single use (the replay option): last, after revocation and the epoch ─────────────────────
  {
    name: 'a resource mandate whose jti the replay store has seen',
    token: es({ jti: 'seen-before' }),
    options: { replay: { firstUse: () => false } },
    expect: 'token_replayed',
    why: 'mandate was already used',
  },
  {
    name: 'a replay store that fails',
    token: es({ jti: 'store-down' }),
    options: {
      replay: {
        firstUse: () => {
          throw new Error('store broke')
        },
      },
    },
    expect: 'token_replayed',
    why: 'replay state unavailable: the store failed',
    check: ({ error }) => expect(error?.unavailable).toBe(true),
  },
  {
    name: 'another zone raised its epoch',
    token: es({ delegation_graph_epoch: 1 }),
    setup: (v) => v.revocations.markDelegationEpoch('zone-2', 9),
    expect: 'accepted',
  },
  {
    name: 'no delegation_graph_epoch claim, zone epoch raised',
    token: es(),
    setup: (v) => v.revocations.markDelegationEpoch('zone-1', 9),
    expect: 'accepted',
  },
  {
    name: 'revoked and stale: revocation is reported',
    token: es({ sid: 'sid-rs', delegation_graph_epoch: 1 }),
    setup: (v) => {
      v.revocations.markRevoked('sid-rs')
      v.revocations.markDelegationEpoch('zone-1', 9)
    },
    expect: 'session_revoked',
    why: W.revoked,
  },
  {
    name: 'delegation_graph_epoch without zone_id is not taken on trust',
    token: es({ delegation_graph_epoch: 1, zone_id: undefined }),
    expect: 'invalid_token',
    why: 'delegation_graph_epoch without zone_id cannot be checked',
  },
  {
    name: 'delegation_graph_epoch without zone_id, store without epochs: nothing to check',
    token: es({ delegation_graph_epoch: 1, zone_id: undefined }),
    options: { revocations: { isRevoked: () => false, markRevoked: () => {} } },
    expect: 'accepted',
  },
  {
    name: 'delegation_chain [] reads as no chain',
    token: es({ delegation_chain: [] }),
    expect: 'accepted',
    check: ({ claims }) => expect(claims?.delegationChain).toBeUndefined(),
  },
  {
    name: 'store whose currentDelegationEpoch throws fails closed',
    token: es({ delegation_graph_epoch: 1 }),
    options: {
      revocations: {
        isRevoked: () => false,
        markRevoked: () => {},
        currentDelegationEpoch: () => {
          throw new Error('down')
        },
      },
    },
    expect: 'session_revoked',
    why: W.storeFailed,
    check: ({ error }) => expect(error?.unavailable).toBe(true),
  },
  {
    name: 'async store with a higher epoch',
    token: es({ delegation_graph_epoch: 1 }),
    options: {
      revocations: { isRevoked: async () => false, markRevoked: () => {}, currentDelegationEpoch: async () => 2 },
    },
    expect: 'delegation_stale',
    why: W.stale,
  },

  {
    name: 'store failing closed (unavailableReason) answers unavailable',
    token: es(),
    options: {
      revocations: { isRevoked: () => true, markRevoked: () => {}, unavailableReason: () => 'mirror not loaded' },
    },
    expect: 'session_revoked',
    why: 'revocation state unavailable: mirror not loaded',
    check: ({ error }) => expect(error?.unavailable).toBe(true),
  },
  {
    name: 'store with unavailableReason() undefined: a plain revocation',
    token: es(),
    options: { revocations: { isRevoked: () => true, markRevoked: () => {}, unavailableReason: () => undefined } },
    expect: 'session_revoked',
    why: W.revoked,
    check: ({ error }) => expect(error?.unavailable).toBe(false),
  },
]

function derSignature(r: bigint, s: bigint): Uint8Array {
  const int = (v: bigint): Buffer => {
    let b = Buffer.from(v.toString(16).padStart(64, '0'), 'hex')
    while (b.length > 1 && b[0] === 0 && (b[1]! & 0x80) === 0) b = b.subarray(1)
    if ((b[0]! & 0x80) !== 0) b = Buffer.concat([Buffer.from([0]), b])
    return Buffer.concat([Buffer.from([0x02, b.length]), b])
  }
  const body = Buffer.concat([int(r), int(s)])
  return Buffer.concat([Buffer.from([0x30, body.length]), body])
}

function strayBitsSignature(token: string): string {
  const [h, p, s] = splitToken(token)
  return `${h}.${p}.${withStrayBits(s)!}`
}

function toStandardBase64(token: string): string {
  const [h, p, s] = splitToken(token)
  return `${h}.${p}.${s.replace('-', '+').replace('_', '/')}`
}

function insertAt(s: string, at: number, what: string): string {
  return s.slice(0, at) + what + s.slice(at)
}

/** Same length, so the segment's length and final character stay canonical: only the alphabet is broken. */
function replaceAt(s: string, at: number, what: string): string {
  return s.slice(0, at) + what + s.slice(at + 1)
}

/** Lengthened with 'A's to 4k+1 characters, a length no encoder writes (its last character holds 6 bits, no whole byte). */
function to4kPlus1(seg: string): string {
  return seg + 'A'.repeat((((1 - seg.length) % 4) + 4) % 4)
}

function utf8Splice(text: string, marker: string, bytes: number[]): Uint8Array {
  const at = text.indexOf(marker)
  return Buffer.concat([
    Buffer.from(text.slice(0, at)),
    Buffer.from(bytes),
    Buffer.from(text.slice(at + marker.length)),
  ])
}

/** Names of refusal rows without a usable `why` (one forced past the type with a cast). */
function unexplained(list: readonly Row[]): string[] {
  return list
    .filter((r) => r.expect !== 'accepted' && !(r.why instanceof RegExp || (typeof r.why === 'string' && r.why !== '')))
    .map((r) => r.name)
}

function rowNamed(name: string): RefusedRow {
  const row = rows.find((r) => r.name === name)
  if (row === undefined || row.expect === 'accepted') throw new Error(`no refusal row named ${name}`)
  return row
}

/**
 * One verifier per backend for the rows with neither options nor setup. Importing the keys is most
 * of a row's cost on wasm (its per-key tables), and such a row changes nothing a later row reads:
 * every token is distinct, so a cached one is never hit again, and nothing is revoked.
 */
const plainVerifiers = new Map<BackendChoice, TestVerifier>()

async function run(backend: BackendChoice, row: Row): Promise<Result> {
  let v: TestVerifier
  if (row.options === undefined && row.setup === undefined) {
    v = plainVerifiers.get(backend) ?? testVerifier(backend)
    plainVerifiers.set(backend, v)
  } else {
    v = testVerifier(backend, row.options ?? {})
    row.setup?.(v)
  }
  try {
    return { claims: (await v.auth.verify(row.token as string)) as unknown as Record<string, unknown> }
  } catch (e) {
    // verify never throws anything but CaracalAuthError.
    expect(e).toBeInstanceOf(CaracalAuthError)
    return { error: e as CaracalAuthError }
  }
}

/**
 * Through a verification pool (`auto`, one worker; README "Several cores in one process"): each row
 * gets a verifier of its own options (stores, clock, policy, setup), closed after the row; its pool
 * is shared by every row of the same claim rules (`sharingPool`: a worker holds only the backend
 * and the claim rules), so the table starts a handful of workers, not one per row.
 */
const CLAIM_RULE_OPTIONS = ['issuer', 'audience', 'requiredUse', 'clockToleranceSec'] as const
const poolOwners = new Map<string, TestVerifier>()
afterAll(async () => {
  for (const owner of poolOwners.values()) await owner.auth.close()
})

async function runPooled(row: Row): Promise<Result> {
  const rules = Object.fromEntries(
    CLAIM_RULE_OPTIONS.flatMap((k) => (row.options?.[k] === undefined ? [] : [[k, row.options[k]]])),
  )
  const key = JSON.stringify(rules)
  let owner = poolOwners.get(key)
  if (owner === undefined) {
    owner = testVerifier('auto', { ...rules, workers: 1 })
    poolOwners.set(key, owner)
  }
  const pool = owner.auth[verifierPool]!
  const v = sharingPool(pool, () => testVerifier('auto', { ...row.options, workers: 1 }))
  row.setup?.(v)
  try {
    return { claims: (await v.auth.verify(row.token as string)) as unknown as Record<string, unknown> }
  } catch (e) {
    expect(e).toBeInstanceOf(CaracalAuthError)
    return { error: e as CaracalAuthError }
  } finally {
    await v.auth.close()
  }
}

/** Every assertion of a row on one result: throws the first that fails. */
function assertRow(row: Row, result: Result): void {
  const { error, claims } = result
  if (row.expect === 'accepted') {
    expect(error?.code, error?.description).toBeUndefined()
    expect(claims).toBeDefined()
  } else {
    expect(error?.code, error?.description).toBe(row.expect)
    if (typeof row.why === 'string') expect(error?.description).toBe(row.why)
    else expect(error?.description).toMatch(row.why)
    expect(error?.status).toBe(STATUS[row.expect])
    expect(error?.name).toBe('CaracalAuthError')
    expect(error?.hint).toMatch(/\S/)
    // Descriptions never echo token contents.
    if (typeof row.token === 'string') {
      for (const part of row.token.split('.'))
        if (part.length >= 8) expect(error?.description).not.toContain(part.slice(0, 16))
    }
  }
  row.check?.(result)
}

/**
 * `invalid_token` rows paired with a token refused with the same code for another reason: a table
 * that compared codes only would let each of them pass, `why` must not. The broken-signature ones
 * carry the row's own claim violation, so they also show that the signature is checked first.
 */
const DECOYS: ReadonlyArray<{ row: string; decoy: string; token: () => string; why: string }> = [
  ...[
    'exp = now - 1',
    'nbf = now + 61',
    'iss of another STS',
    'aud string, no match',
    'sub missing',
    'target = "" is no array',
    'use "session" where a resource mandate is required (default)',
    'requiredTargets, target lacks it',
    'delegation_graph_epoch without zone_id is not taken on trust',
  ].map((row) => ({
    row,
    decoy: 'the same violation under a broken signature',
    token: () => flipBit(rowNamed(row).token as string, 2, 9),
    why: W.signature,
  })),
  {
    row: 'exp = now - 1',
    decoy: 'an expired mandate of another issuer (validly signed)',
    token: () => es({ exp: NOW_SEC - 1, iss: 'http://127.0.0.1:9999' }),
    why: W.issuer,
  },
  {
    row: 'sub missing',
    decoy: 'a mandate without sub for another audience (validly signed)',
    token: () => es({ sub: undefined, aud: 'resource://other' }),
    why: W.audience,
  },
  {
    row: 'requiredTargets, target lacks it',
    decoy: 'a session mandate lacking the target (validly signed)',
    token: () => es({ target: ['resource://other'], use: 'session' }),
    why: 'mandate use is not "resource"',
  },
]

describe('the error table', () => {
  it('covers every error code', () => {
    const codes = new Set(rows.map((r) => r.expect))
    for (const code of Object.keys(STATUS)) expect(codes, code).toContain(code)
  })

  it('has unique row names', () => {
    expect(new Set(rows.map((r) => r.name)).size).toBe(rows.length)
  })

  it('a refusal row must say why', () => {
    expect(unexplained(rows)).toEqual([])
    // Checked by `npm run typecheck` (tsconfig.test.json): each line below must be a type error.
    // @ts-expect-error a refusal row without `why`
    const unsaid: Row = { name: 'a refusal without why', token: '', expect: 'invalid_token' }
    // @ts-expect-error an accepted row has no `why`
    const accepted: Row = { name: 'an acceptance with why', token: '', expect: 'accepted', why: 'no token' }
    expect(unexplained([unsaid, accepted])).toEqual(['a refusal without why'])
  })

  it('gives the rows that share a verifier distinct tokens (no row reads what another left in the cache)', () => {
    const seen = new Map<unknown, string>()
    const repeated: string[] = []
    for (const r of rows.filter((r) => r.options === undefined && r.setup === undefined)) {
      const first = seen.get(r.token)
      if (first !== undefined) repeated.push(`${r.name} (the token of ${first})`)
      else seen.set(r.token, r.name)
    }
    expect(repeated).toEqual([])
  })

  it('builds the length rows at their exact lengths', () => {
    for (const n of [1000, 1001, 8192, 8193, 9000]) expect(tokenOfLength(n)).toHaveLength(n)
  })
})

describe.each(TEST_BACKENDS)('error table on %s', (backend) => {
  it.each(rows.map((r) => [r.name, r] as const))('%s', async (_name, row) => {
    assertRow(row, await run(backend, row))
  })

  it.each(DECOYS.map((d) => [`${d.row}: ${d.decoy}`, d] as const))(
    'the row %s fails',
    async (_name, { row, token, why }) => {
      const refused = rowNamed(row)
      const result = await run(backend, { ...refused, token: token() })
      // Same code as the row: only `why` tells them apart.
      expect(result.error?.code).toBe(refused.expect)
      expect(result.error?.description).toBe(why)
      // …and the row fails on exactly that: the description it received is not the one it states.
      let failure: unknown
      try {
        assertRow(refused, result)
      } catch (e) {
        failure = e
      }
      expect(failure).toMatchObject({ actual: why, expected: refused.why })
    },
  )
})

describe('error table through a verification pool (auto, workers: 1)', () => {
  it.each(rows.map((r) => [r.name, r] as const))('%s', async (_name, row) => {
    assertRow(row, await runPooled(row))
  })
})
