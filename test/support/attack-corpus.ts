/**
 * The attack corpus: the known ways to get a forged, confused or malformed mandate past a JWT
 * verifier, in one list, each a named token with the code it must get and the description that says why
 * (README "What is checked", "Keys (JWKS)", "Errors"). test/attack-corpus.test.ts runs it on every
 * backend; the HTTP cases at the end go through the adapters. Tokens are built here, once, with
 * real keys, so that the one defect under test is the only thing wrong with each.
 */
import { constants, createHash, createHmac, generateKeyPairSync, privateEncrypt, sign } from 'node:crypto'
import { p256 } from '@noble/curves/nist.js'
import type { CaracalAuthOptions, CaracalErrorCode, Claims, RevocationStore } from '../../src/index.js'
import { generateSigningKey, type SigningKey } from '../../src/dev/sign-jws.js'
import {
  P256_N,
  b64u,
  bigintTo32,
  es256Parts,
  es256Signature,
  headerSegment,
  segment,
  signSegments,
  signatureBytes,
  splitToken,
  withSignature,
} from './compact-tokens.js'
import { AUDIENCE, ISSUER, NOW_SEC, esKey, mandateClaims, mint, rsKey } from './mandates.js'
import type { TestVerifier } from './verifiers.js'

export type Outcome = CaracalErrorCode | 'accepted'

/** The option sets the cases run under: one verifier per set and backend, shared by its cases. */
export type VerifierName =
  | 'default'
  | 'esOnly'
  | 'zone'
  | 'agent'
  | 'delegation'
  | 'chain'
  | 'scopes'
  | 'targets'
  | 'long'
  | 'remote'
  | 'weakKeys'
  | 'weakRsaOnly'
  | 'dupKids'
  | 'e3'
  | 'crafted'
  | 'protoKid'
  | 'epochs'
  | 'noEpochs'

export interface VerifierSpec {
  readonly options: Partial<Omit<CaracalAuthOptions, 'revocations'>> & { revocations?: RevocationStore }
  /** Run once when the verifier is made (revocations, epochs). */
  readonly prepare?: (v: TestVerifier) => void
}

export interface AttackCase {
  readonly group: string
  /** Words only: a name never holds a token. */
  readonly name: string
  readonly token: unknown
  readonly verifier: VerifierName
  readonly expect: Outcome
  /** For a refusal: the exact description, or a pattern of it. */
  readonly why?: string | RegExp
  /** For an acceptance: what the claims must say. */
  readonly check?: (claims: Claims) => void
}

export interface HttpCase {
  readonly name: string
  /** Request target (path and query). */
  readonly path: string
  /** Header lines exactly as sent (a raw socket writes them, so repeats really arrive). */
  readonly headers: readonly string[]
  readonly body?: string
  readonly expect: Outcome
  readonly why?: string | RegExp
}

export interface AttackCorpus {
  readonly cases: readonly AttackCase[]
  readonly verifiers: Readonly<Record<VerifierName, VerifierSpec>>
  readonly http: readonly HttpCase[]
  /** Every token the corpus holds (cases and HTTP requests): what no answer may echo. */
  readonly tokens: readonly string[]
  /** Checks of the hand-made forgeries themselves, so a test on them cannot pass for the wrong reason. */
  readonly forgeries: ForgeryFacts
}

export interface ForgeryFacts {
  /** Each cube-root forgery: σ, and the bytes σ³ must start (and end) with for a lenient parser to accept it. */
  readonly cubes: readonly { name: string; signature: bigint; prefix: Buffer; suffix?: Buffer }[]
  readonly e3Modulus: bigint
  /** The crafted EC key's signature verifies with node:crypto (its r and s are small). */
  readonly crafted: { token: string; jwk: JsonWebKey; r: bigint; s: bigint }
  /** The genuine e = 3 signature σ that σ + n is built from (σ + n < 2^2048). */
  readonly e3Genuine: { signature: bigint }
}

// ── keys ─────────────────────────────────────────────────────────────────────────────────────────

const attacker = generateSigningKey('ES256', 'attacker')
/** What the attacker's server serves at every path: the key its tokens are signed with. */
export const ATTACKER_JWKS = { keys: [attacker.publicJwk] }
const attackerRs = generateSigningKey('RS256', 'attacker-rs')
const protoKey = generateSigningKey('ES256', '__proto__')
const rs1024 = generateSigningKey('RS256', 'rs-1024', 1024)

/**
 * An RSA-2048 key with e = 3, the exponent Bleichenbacher's 2006 forgery needs. Its modulus is
 * kept below 1.5 · 2^2047, so that σ + n still fits 256 bytes for a third of all signatures σ
 * (the "signature not reduced mod n" case).
 */
function e3Key(): SigningKey {
  for (;;) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 })
    const jwk = publicKey.export({ format: 'jwk' })
    const n = toBig(Buffer.from(jwk.n!, 'base64url'))
    if (n >= 3n << 2046n) continue
    return {
      alg: 'RS256',
      kid: 'rs-e3',
      privateKey,
      publicKey,
      publicJwk: { ...jwk, kid: 'rs-e3', alg: 'RS256', use: 'sig' },
    }
  }
}
const rsE3 = e3Key()
const e3Modulus = toBig(Buffer.from(rsE3.publicJwk.n!, 'base64url'))

function toBig(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt(`0x${Buffer.from(b).toString('hex')}`)
}
function toBytes(v: bigint, length: number): Buffer {
  return Buffer.from(v.toString(16).padStart(length * 2, '0'), 'hex')
}

// ── token builders ───────────────────────────────────────────────────────────────────────────────

/** Claims as a segment; a claim set to `undefined` is left out. */
function payloadSeg(overrides: Record<string, unknown> = {}): string {
  return segment(claimsText(overrides))
}
function claimsText(overrides: Record<string, unknown> = {}, raw: Record<string, string> = {}): string {
  const claims = mandateClaims(overrides)
  for (const k of Object.keys(claims)) if (claims[k] === undefined) delete claims[k]
  let text = JSON.stringify(claims)
  // Members spelled by hand (numbers JSON.stringify cannot write, duplicates), appended last.
  for (const [name, value] of Object.entries(raw)) text = `${text.slice(0, -1)},${JSON.stringify(name)}:${value}}`
  return text
}
const es = (overrides: Record<string, unknown> = {}, header: Record<string, unknown> = {}): string =>
  mint(overrides, esKey, header)
const rs = (overrides: Record<string, unknown> = {}, header: Record<string, unknown> = {}): string =>
  mint(overrides, rsKey, header)
/** ES256-signed over a header given as an object (alg included) or as raw JSON text. */
function esSigned(header: Record<string, unknown> | string, payload: string = payloadSeg(), key = esKey): string {
  return signSegments(key, segment(header), payload)
}
/** The payload as raw bytes or text, signed under the key's usual header. */
function rawPayload(text: string | Uint8Array, key = esKey): string {
  return signSegments(key, headerSegment(key), b64u(text))
}
function hs256(secret: string | Buffer, kid?: string): string {
  const h = segment({ alg: 'HS256', ...(kid === undefined ? {} : { kid }), typ: 'JWT' })
  const p = payloadSeg()
  return `${h}.${p}.${createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url')}`
}
/** Character `at` of segment `index` replaced by `c` (same length: only the alphabet is wrong). */
function replaceChar(token: string, index: 0 | 1 | 2, at: number, c: string): string {
  const parts = splitToken(token)
  parts[index] = parts[index]!.slice(0, at) + c + parts[index]!.slice(at + 1)
  return parts.join('.')
}
function sha256(text: string): Buffer {
  return createHash('sha256').update(Buffer.from(text, 'latin1')).digest()
}

// ── RSA e = 3: PKCS#1 v1.5 forgeries (Bleichenbacher 2006 and its variants) ───────────────────────

const SHA256_OID = '608648016503040201'
const DIGEST_INFO = {
  sha256: Buffer.from(`3031300d0609${SHA256_OID}05000420`, 'hex'),
  /** The AlgorithmIdentifier without its NULL parameters (RFC 8017 §9.2 Note 1 writes the NULL). */
  noNull: Buffer.from(`302f300b0609${SHA256_OID}0420`, 'hex'),
  /** SHA-512/256: another hash with 32-byte digests, so only the OID differs. */
  sha512_256: Buffer.from('3031300d060960864801650304020605000420', 'hex'),
  /** Parameters that are not NULL: an OCTET STRING of four bytes. */
  extraParams: Buffer.from(`30353011 0609${SHA256_OID} 0404deadbeef 0420`.replace(/ /g, ''), 'hex'),
}

/** EMSA-PKCS1-v1_5 block `00 BT PS 00 T`, 256 bytes; PS is `fill` (or random non-zero bytes for BT 2). */
function emsa(t: Buffer, blockType = 1, fill = 0xff): Buffer {
  const ps = Buffer.alloc(256 - 3 - t.length, fill)
  if (blockType === 2) for (let i = 0; i < ps.length; i++) ps[i] = 1 + ((i * 37) % 255)
  return Buffer.concat([Buffer.from([0, blockType]), ps, Buffer.from([0]), t])
}
/** A genuine RSA operation with the e = 3 private key over a block of our choosing. */
function rawRsaSign(block: Buffer): Buffer {
  return privateEncrypt({ key: rsE3.privateKey, padding: constants.RSA_NO_PADDING }, block)
}

function cubeRootCeil(x: bigint): bigint {
  if (x < 2n) return x
  let r = 1n << BigInt(Math.ceil(x.toString(2).length / 3))
  for (;;) {
    const next = (2n * r + x / (r * r)) / 3n
    if (next >= r) break
    r = next
  }
  while (r * r * r < x) r++
  while ((r - 1n) ** 3n >= x) r--
  return r
}

/** The cube root of an odd `c` modulo 2^bits (cubing permutes the odd residues: lifted bit by bit). */
function cubeRootMod2k(c: bigint, bits: number): bigint {
  let x = 1n
  for (let i = 1n; i < BigInt(bits); i++) if ((((x * x * x - c) >> i) & 1n) === 1n) x |= 1n << i
  return x
}

/** Header and payload of an e = 3 token, with SHA-256 of what is signed. */
function e3Input(odd = false): { h: string; p: string; digest: Buffer } {
  for (;;) {
    const h = headerSegment(rsE3)
    const p = payloadSeg()
    const digest = sha256(`${h}.${p}`)
    if (!odd || (digest[31]! & 1) === 1) return { h, p, digest }
  }
}

/**
 * Bleichenbacher 2006: σ = ⌈∛(prefix · 2^k)⌉. σ³ < n, so no reduction happens: the block starts
 * with `prefix` and ends with garbage, which a verifier that parses the block (instead of
 * comparing it whole) takes for a valid signature.
 */
function garbageAfterHash(ffCount: number): { token: string; signature: bigint; prefix: Buffer } {
  const { h, p, digest } = e3Input()
  const prefix = Buffer.concat([
    Buffer.from([0, 1]),
    Buffer.alloc(ffCount, 0xff),
    Buffer.from([0]),
    DIGEST_INFO.sha256,
    digest,
  ])
  const signature = cubeRootCeil(toBig(prefix) << BigInt(8 * (256 - prefix.length)))
  return { token: `${h}.${p}.${b64u(toBytes(signature, 256))}`, signature, prefix }
}

/**
 * The hash at the very end and garbage inside the DigestInfo parameters (Kühn et al. 2008): the low
 * 34 bytes of σ³ are fixed by a cube root modulo 2^272 (the hash is made odd), the high bytes by
 * the cube root of the prefix, rounded to a multiple of 2^272 so the two parts do not interfere.
 */
function garbageInParameters(): { token: string; signature: bigint; prefix: Buffer; suffix: Buffer } {
  const { h, p, digest } = e3Input(true)
  const garbage = 191
  const prefix = Buffer.concat([
    Buffer.from([0, 1]),
    Buffer.alloc(8, 0xff),
    Buffer.from([0, 0x30, 0x81, 3 + (11 + 3 + garbage) + 34, 0x30, 0x81, 11 + 3 + garbage]),
    Buffer.from(`0609${SHA256_OID}0481`, 'hex'),
    Buffer.from([garbage]),
  ])
  const suffix = Buffer.concat([Buffer.from('0420', 'hex'), digest])
  const lowBits = 8 * suffix.length
  const low = cubeRootMod2k(toBig(suffix), lowBits)
  const step = 1n << BigInt(lowBits)
  const high = cubeRootCeil(toBig(prefix) << BigInt(8 * (256 - prefix.length)))
  const signature = ((high + step - 1n) / step) * step + low
  return { token: `${h}.${p}.${b64u(toBytes(signature, 256))}`, signature, prefix, suffix }
}

/** A genuine e = 3 signature σ with σ + n < 2^2048, and the token carrying σ + n instead. */
function e3PlusModulus(): { genuine: bigint; token: string } {
  for (;;) {
    const t = mint({}, rsE3)
    const sig = toBig(signatureBytes(t))
    if (sig + e3Modulus < 1n << 2048n) return { genuine: sig, token: withSignature(t, toBytes(sig + e3Modulus, 256)) }
  }
}

// ── ES256: a key made for a signature with small r and s ──────────────────────────────────────────

/**
 * ECDSA public-key recovery run backwards: pick r and s (small, so r + n and s + n fit 32 bytes),
 * lift r to a point R, and solve Q = r⁻¹(sR − zG). Then (r, s) is a genuine signature under Q and
 * (r + n, s), (r, s + n) are what a verifier that reduces mod n instead of range-checking accepts.
 */
function craftedEcKey(): { jwk: JsonWebKey & { kid: string }; h: string; p: string; r: bigint; s: bigint } {
  const h = segment({ alg: 'ES256', kid: 'es-crafted', typ: 'JWT' })
  const p = payloadSeg()
  const z = toBig(sha256(`${h}.${p}`)) % P256_N
  const s = 3n
  for (let r = 5n; ; r++) {
    let R: InstanceType<typeof p256.Point>
    try {
      R = p256.Point.fromHex(`02${r.toString(16).padStart(64, '0')}`)
    } catch {
      continue
    }
    const rInv = modInverse(r, P256_N)
    const Q = R.multiply((s * rInv) % P256_N).subtract(p256.Point.BASE.multiply((z * rInv) % P256_N))
    const { x, y } = Q.toAffine()
    return {
      jwk: {
        kty: 'EC',
        crv: 'P-256',
        x: b64u(bigintTo32(x)),
        y: b64u(bigintTo32(y)),
        kid: 'es-crafted',
        alg: 'ES256',
        use: 'sig',
      },
      h,
      p,
      r,
      s,
    }
  }
}
function modInverse(a: bigint, m: bigint): bigint {
  let [oldR, r] = [a % m, m]
  let [oldS, s] = [1n, 0n]
  while (r !== 0n) {
    const q = oldR / r
    ;[oldR, r] = [r, oldR - q * r]
    ;[oldS, s] = [s, oldS - q * s]
  }
  return ((oldS % m) + m) % m
}

function derSignature(r: bigint, s: bigint): Buffer {
  const int = (v: bigint): Buffer => {
    let b = Buffer.from(v.toString(16).padStart(64, '0'), 'hex')
    while (b.length > 1 && b[0] === 0 && (b[1]! & 0x80) === 0) b = b.subarray(1)
    if ((b[0]! & 0x80) !== 0) b = Buffer.concat([Buffer.from([0]), b])
    return Buffer.concat([Buffer.from([0x02, b.length]), b])
  }
  const body = Buffer.concat([int(r), int(s)])
  return Buffer.concat([Buffer.from([0x30, body.length]), body])
}

// ── descriptions (README "Errors"; worded in src/jws/compact.ts and src/policy/claims.ts) ─────────

const WHY = {
  algNotAllowed: 'alg not allowed',
  emptySignature: 'empty signature',
  signature: 'signature verification failed',
  unknownKid: 'no usable key: unknown kid',
  algMismatch: 'no usable key: alg does not match the key',
  ambiguousKid: 'no usable key: kid names more than one key',
  noKeyForAlg: 'no usable key: no key for alg',
  kidType: 'kid must be a non-empty string',
  crit: 'crit header is not supported',
  b64: 'b64 header is not supported',
  notInteger: (claim: string) => `${claim} must be a non-negative integer`,
  outsideAlphabet: 'not a compact JWS: a character outside base64url',
  nonAscii: 'not base64url: a non-ASCII character',
  tooLong: (n: number) => `token longer than ${n} characters`,
  epochWithoutZone: 'delegation_graph_epoch without zone_id cannot be checked',
  stale: 'the delegation graph changed after this mandate was issued',
} as const

// ── the corpus ───────────────────────────────────────────────────────────────────────────────────

export function buildAttackCorpus(urls: { attacker: string; jwks: string }): AttackCorpus {
  const cases: AttackCase[] = []
  let group = ''
  const refuse = (
    name: string,
    token: unknown,
    why: string | RegExp,
    code: CaracalErrorCode = 'invalid_token',
    verifier: VerifierName = 'default',
  ): void => {
    cases.push({ group, name, token, verifier, expect: code, why })
  }
  const accept = (
    name: string,
    token: unknown,
    verifier: VerifierName = 'default',
    check?: (claims: Claims) => void,
  ): void => {
    cases.push({ group, name, token, verifier, expect: 'accepted', check })
  }

  const esBase = es()
  const rsBase = rs()
  const rsJwk = rsKey.publicJwk
  const esJwk = esKey.publicJwk
  const rsPem = rsKey.publicKey.export({ type: 'spki', format: 'pem' }) as string
  const rsDer = rsKey.publicKey.export({ type: 'spki', format: 'der' })
  const esPem = esKey.publicKey.export({ type: 'spki', format: 'pem' }) as string
  const esDer = esKey.publicKey.export({ type: 'spki', format: 'der' })

  // ── alg none (RFC 7518 §3.6: never accepted by a verifier that expects a signature) ──────────
  group = 'alg none'
  for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
    const h = segment({ alg, typ: 'JWT' })
    refuse(`alg ${alg}, empty signature`, `${h}.${payloadSeg()}.`, WHY.emptySignature)
    refuse(`alg ${alg}, some signature bytes`, `${h}.${payloadSeg()}.AAAA`, WHY.algNotAllowed)
    refuse(
      `alg ${alg} with the kid of a real key, signed by it`,
      esSigned({ alg, kid: 'es-1', typ: 'JWT' }),
      WHY.algNotAllowed,
    )
  }
  refuse(
    'alg none with an ES256 signature copied from a valid token',
    `${segment({ alg: 'none', kid: 'es-1' })}.${splitToken(esBase)[1]}.${splitToken(esBase)[2]}`,
    WHY.algNotAllowed,
  )

  // ── HS256 keyed with the public key (the RS/HS confusion) ─────────────────────────────────────
  group = 'HS256 with the public key as secret'
  refuse('HS256, secret = RSA public key PEM', hs256(rsPem, 'rs-1'), WHY.algNotAllowed)
  refuse('HS256, secret = RSA public key SPKI DER', hs256(rsDer, 'rs-1'), WHY.algNotAllowed)
  refuse('HS256, secret = RSA public JWK JSON text', hs256(JSON.stringify(rsJwk), 'rs-1'), WHY.algNotAllowed)
  refuse('HS256, secret = RSA modulus n text', hs256(rsJwk.n!, 'rs-1'), WHY.algNotAllowed)
  refuse('HS256, secret = RSA modulus n bytes', hs256(Buffer.from(rsJwk.n!, 'base64url'), 'rs-1'), WHY.algNotAllowed)
  refuse('HS256, secret = EC public key PEM', hs256(esPem, 'es-1'), WHY.algNotAllowed)
  refuse('HS256, secret = EC public key SPKI DER', hs256(esDer, 'es-1'), WHY.algNotAllowed)
  refuse('HS256, secret = EC public JWK JSON text', hs256(JSON.stringify(esJwk), 'es-1'), WHY.algNotAllowed)
  refuse('HS256, secret = EC x coordinate text', hs256(esJwk.x!, 'es-1'), WHY.algNotAllowed)
  refuse('HS256, secret = RSA PEM, no kid', hs256(rsPem), WHY.algNotAllowed)
  for (const alg of ['HS384', 'HS512', 'hs256', 'es256', 'Es256', 'RS256 ', 'ES256\u0000', 'PS256', 'ES384', 'EdDSA'])
    refuse(
      `alg ${JSON.stringify(alg)} over a valid ES256 signature`,
      esSigned({ alg, kid: 'es-1', typ: 'JWT' }),
      WHY.algNotAllowed,
    )

  // ── ES256 ↔ RS256 confusion ───────────────────────────────────────────────────────────────────
  group = 'ES256 and RS256 swapped'
  refuse(
    'ES256 header, RS256 signature, RSA kid',
    signSegments(rsKey, segment({ alg: 'ES256', kid: 'rs-1', typ: 'JWT' }), payloadSeg()),
    WHY.algMismatch,
  )
  refuse('ES256 header, ES256 signature, RSA kid', esSigned({ alg: 'ES256', kid: 'rs-1', typ: 'JWT' }), WHY.algMismatch)
  refuse(
    'RS256 header, RS256 signature, EC kid',
    signSegments(rsKey, segment({ alg: 'RS256', kid: 'es-1', typ: 'JWT' }), payloadSeg()),
    WHY.algMismatch,
  )
  refuse('RS256 header, ES256 signature, EC kid', esSigned({ alg: 'RS256', kid: 'es-1', typ: 'JWT' }), WHY.algMismatch)
  refuse(
    'ES256 header and EC kid over an RS256 signature',
    signSegments(rsKey, headerSegment(esKey), payloadSeg()),
    WHY.signature,
  )
  refuse(
    'RS256 header and RSA kid over an ES256 signature',
    esSigned({ alg: 'RS256', kid: 'rs-1', typ: 'JWT' }),
    WHY.signature,
  )
  refuse(
    'ES256 header without kid over an RS256 signature',
    signSegments(rsKey, segment({ alg: 'ES256', typ: 'JWT' }), payloadSeg()),
    WHY.signature,
  )
  refuse('RS256 header without kid over an ES256 signature', esSigned({ alg: 'RS256', typ: 'JWT' }), WHY.signature)
  refuse('RS256 token when only ES256 is allowed', rs(), WHY.algNotAllowed, 'invalid_token', 'esOnly')
  accept('ES256 token when only ES256 is allowed', es(), 'esOnly')

  // ── kid strings: the kid only ever names a key of the configured set ──────────────────────────
  group = 'kid'
  const kids: [string, string][] = [
    ['path traversal', '../../etc/passwd'],
    ['path traversal to /dev/null', '../../../../../../dev/null'],
    ['SQL injection', "' OR 1=1 --"],
    ['SQL injection with a UNION', "x' UNION SELECT 'es-1"],
    ['__proto__', '__proto__'],
    ['constructor', 'constructor'],
    ['toString', 'toString'],
    ['hasOwnProperty', 'hasOwnProperty'],
    ['valueOf', 'valueOf'],
    ['5000 characters', 'k'.repeat(5000)],
    ['the real kid with a NUL after it', 'es-1\u0000'],
    ['the real kid in another case', 'ES-1'],
    ['the real kid with a leading space', ' es-1'],
    ['a URL of the attacker server', `${urls.attacker}/kid-as-url.pem`],
  ]
  for (const [label, kid] of kids) refuse(`kid ${label}, signed by the real key`, es({}, { kid }), WHY.unknownKid)
  refuse('kid empty', es({}, { kid: '' }), WHY.kidType)
  for (const [label, kid] of [
    ['a number', 7],
    ['an object', { kid: 'es-1' }],
    ['an array', ['es-1']],
    ['null', null],
    ['true', true],
  ] as const)
    refuse(`kid ${label}`, es({}, { kid }), WHY.kidType)
  accept('kid __proto__ naming a key published under that kid', mint({}, protoKey), 'protoKid')
  refuse(
    'kid constructor in a set with a __proto__ key',
    mint({}, protoKey, { kid: 'constructor' }),
    WHY.unknownKid,
    'invalid_token',
    'protoKid',
  )
  refuse(
    'kid toString in a set with a __proto__ key',
    mint({}, protoKey, { kid: 'toString' }),
    WHY.unknownKid,
    'invalid_token',
    'protoKid',
  )

  // ── keys offered in the header (RFC 7515 §4.1.2–4.1.6): never used, never fetched ─────────────
  group = 'keys in the header'
  const jku = `${urls.attacker}/jwks.json`
  const x5u = `${urls.attacker}/cert.pem`
  const x5c = [attacker.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')]
  refuse(
    'embedded jwk of the attacker, no kid, signed by the attacker',
    mint({}, attacker, { kid: undefined, jwk: attacker.publicJwk }),
    WHY.signature,
  )
  refuse(
    'embedded jwk of the attacker under its own kid',
    mint({}, attacker, { jwk: attacker.publicJwk }),
    WHY.unknownKid,
  )
  refuse(
    'embedded jwk of the attacker under the real kid',
    mint({}, attacker, { kid: 'es-1', jwk: attacker.publicJwk }),
    WHY.signature,
  )
  refuse(
    'embedded jwk equal to the real key, signed by the attacker',
    mint({}, attacker, { kid: 'es-1', jwk: esJwk }),
    WHY.signature,
  )
  refuse('jku to the attacker JWKS, attacker kid', mint({}, attacker, { jku }), WHY.unknownKid)
  refuse('jku to the attacker JWKS, real kid', mint({}, attacker, { kid: 'es-1', jku }), WHY.signature)
  refuse('x5u to the attacker certificate, attacker kid', mint({}, attacker, { x5u }), WHY.unknownKid)
  refuse('x5c holding the attacker public key, attacker kid', mint({}, attacker, { x5c }), WHY.unknownKid)
  refuse(
    'x5c holding the attacker RSA public key, RS256, attacker kid',
    mint({}, attackerRs, { x5c: [attackerRs.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')] }),
    WHY.unknownKid,
  )
  refuse(
    'jwk, jku, x5u and x5c together, no kid',
    mint({}, attacker, { kid: undefined, jwk: attacker.publicJwk, jku, x5u, x5c }),
    WHY.signature,
  )
  refuse(
    'jku to the attacker JWKS, attacker kid, remote JWKS verifier',
    mint({}, attacker, { jku }),
    WHY.unknownKid,
    'invalid_token',
    'remote',
  )
  refuse(
    'x5u to the attacker, attacker kid, remote JWKS verifier',
    mint({}, attacker, { x5u }),
    WHY.unknownKid,
    'invalid_token',
    'remote',
  )
  accept(
    'a real mandate whose jku, x5u, jwk and x5c point at the attacker verifies with the JWKS key',
    es({}, { jku, x5u, x5c, jwk: attacker.publicJwk }),
  )
  accept('the same on a remote JWKS verifier', es({}, { jku, x5u }), 'remote')

  // ── crit and b64 (RFC 7515 §4.1.11, RFC 7797) ──────────────────────────────────────────────────
  group = 'crit and b64'
  for (const [label, crit] of [
    ['[]', []],
    ['["exp"]', ['exp']],
    ['["b64"]', ['b64']],
    ['["unknown"]', ['unknown']],
    ['naming a member absent from the header', ['x-absent']],
    ['a string', 'exp'],
    ['an object', { exp: true }],
    ['null', null],
    ['a number', 1],
  ] as const)
    refuse(`crit ${label}`, es({}, { crit, exp: NOW_SEC + 300 }), WHY.crit)
  refuse('crit ["b64"] with b64 false', es({}, { crit: ['b64'], b64: false }), WHY.crit)
  refuse('b64 false', es({}, { b64: false }), WHY.b64)
  refuse('b64 "false"', es({}, { b64: 'false' }), WHY.b64)
  refuse('b64 0', es({}, { b64: 0 }), WHY.b64)
  refuse('b64 null', es({}, { b64: null }), WHY.b64)
  accept('b64 true (the default, spelled out)', es({}, { b64: true }))

  // ── ES256 signature values (RFC 7518 §3.4: r‖s, 64 bytes; each in [1, n−1]) ────────────────────
  group = 'ES256 signature values'
  const { r: baseR, s: baseS } = es256Parts(esBase)
  const crafted = craftedEcKey()
  const craftedToken = (r: bigint, s: bigint): string => `${crafted.h}.${crafted.p}.${b64u(es256Signature(r, s))}`
  const ff = 2n ** 256n - 1n
  refuse('r = 0', withSignature(esBase, es256Signature(0n, baseS)), WHY.signature)
  refuse('s = 0', withSignature(esBase, es256Signature(baseR, 0n)), WHY.signature)
  refuse('r = s = 0', withSignature(esBase, es256Signature(0n, 0n)), WHY.signature)
  refuse('r = n', withSignature(esBase, es256Signature(P256_N, baseS)), WHY.signature)
  refuse('s = n', withSignature(esBase, es256Signature(baseR, P256_N)), WHY.signature)
  refuse('r = s = n', withSignature(esBase, es256Signature(P256_N, P256_N)), WHY.signature)
  refuse('r = n + 1', withSignature(esBase, es256Signature(P256_N + 1n, baseS)), WHY.signature)
  refuse('all ones (r = s = 2^256 - 1)', withSignature(esBase, es256Signature(ff, ff)), WHY.signature)
  refuse('r all ones', withSignature(esBase, es256Signature(ff, baseS)), WHY.signature)
  refuse('s all ones', withSignature(esBase, es256Signature(baseR, ff)), WHY.signature)
  accept(
    '(r, n - s): the high-S twin of a valid signature (RFC 7518 allows it)',
    withSignature(esBase, es256Signature(baseR, P256_N - baseS)),
  )
  accept('crafted key: its genuine signature with small r and s', craftedToken(crafted.r, crafted.s), 'crafted')
  accept('crafted key: the high-S twin (r, n - s)', craftedToken(crafted.r, P256_N - crafted.s), 'crafted')
  refuse(
    'crafted key: r + n (fits 32 bytes, equal to r mod n)',
    craftedToken(crafted.r + P256_N, crafted.s),
    WHY.signature,
    'invalid_token',
    'crafted',
  )
  refuse(
    'crafted key: s + n (fits 32 bytes, equal to s mod n)',
    craftedToken(crafted.r, crafted.s + P256_N),
    WHY.signature,
    'invalid_token',
    'crafted',
  )
  refuse(
    'crafted key: r + n and s + n',
    craftedToken(crafted.r + P256_N, crafted.s + P256_N),
    WHY.signature,
    'invalid_token',
    'crafted',
  )
  refuse(
    'r + n of a real signature as 33 bytes (65-byte signature)',
    withSignature(esBase, Buffer.concat([toBytes(baseR + P256_N, 33), bigintTo32(baseS)])),
    WHY.signature,
  )
  refuse('signature of 63 bytes', withSignature(esBase, signatureBytes(esBase).subarray(0, 63)), WHY.signature)
  refuse(
    'signature of 65 bytes (a zero byte appended)',
    withSignature(esBase, Buffer.concat([signatureBytes(esBase), Buffer.from([0])])),
    WHY.signature,
  )
  refuse(
    'signature of 65 bytes (a zero byte prepended)',
    withSignature(esBase, Buffer.concat([Buffer.from([0]), signatureBytes(esBase)])),
    WHY.signature,
  )
  refuse('signature of 0 bytes', `${esBase.slice(0, esBase.lastIndexOf('.'))}.`, WHY.emptySignature)
  refuse('signature of 1 byte', withSignature(esBase, Buffer.from([1])), WHY.signature)
  refuse('the DER encoding of a valid (r, s)', withSignature(esBase, derSignature(baseR, baseS)), WHY.signature)
  refuse('valid (r, s) swapped to (s, r)', withSignature(esBase, es256Signature(baseS, baseR)), WHY.signature)

  // ── RSA e = 3 and PKCS#1 v1.5 (RFC 8017 §8.2.2: the whole block is compared) ──────────────────
  group = 'PKCS#1 v1.5 forgeries, e = 3'
  accept('a genuine signature of the e = 3 key', mint({}, rsE3), 'e3')
  const cubes: ForgeryFacts['cubes'][number][] = []
  for (const ffCount of [1, 8]) {
    const f = garbageAfterHash(ffCount)
    const name = `cube-root forgery: ${ffCount} padding byte${ffCount === 1 ? '' : 's'}, garbage after the hash`
    cubes.push({ name, signature: f.signature, prefix: f.prefix })
    refuse(name, f.token, WHY.signature, 'invalid_token', 'e3')
  }
  {
    const f = garbageInParameters()
    const name = 'cube-root forgery: garbage in the DigestInfo parameters, the hash at the end'
    cubes.push({ name, signature: f.signature, prefix: f.prefix, suffix: f.suffix })
    refuse(name, f.token, WHY.signature, 'invalid_token', 'e3')
  }
  const genuineBlocks: [string, (digest: Buffer, input: string) => Buffer][] = [
    ['DigestInfo without the NULL parameters', (d) => emsa(Buffer.concat([DIGEST_INFO.noNull, d]))],
    ['DigestInfo with OCTET STRING parameters', (d) => emsa(Buffer.concat([DIGEST_INFO.extraParams, d]))],
    ['DigestInfo naming SHA-512/256 over the SHA-256 digest', (d) => emsa(Buffer.concat([DIGEST_INFO.sha512_256, d]))],
    [
      'bytes after the digest inside the block',
      (d) => emsa(Buffer.concat([DIGEST_INFO.sha256, d, Buffer.from('00ff00ff', 'hex')])),
    ],
    ['block type 2 (encryption padding)', (d) => emsa(Buffer.concat([DIGEST_INFO.sha256, d]), 2)],
    ['block type 0 with zero padding', (d) => emsa(Buffer.concat([DIGEST_INFO.sha256, d]), 0, 0)],
    ['padding of 0xfe bytes', (d) => emsa(Buffer.concat([DIGEST_INFO.sha256, d]), 1, 0xfe)],
    ['the bare digest without DigestInfo', (d) => emsa(d)],
    [
      'SHA-1 DigestInfo over the SHA-1 digest',
      (_d, input) =>
        emsa(
          Buffer.concat([
            Buffer.from('3021300906052b0e03021a05000414', 'hex'),
            createHash('sha1').update(input, 'latin1').digest(),
          ]),
        ),
    ],
  ]
  for (const [label, block] of genuineBlocks) {
    const { h, p, digest } = e3Input()
    refuse(
      `genuinely signed by the e = 3 key: ${label}`,
      `${h}.${p}.${b64u(rawRsaSign(block(digest, `${h}.${p}`)))}`,
      WHY.signature,
      'invalid_token',
      'e3',
    )
  }
  {
    const { h, p } = e3Input()
    const rs384 = sign('sha384', Buffer.from(`${h}.${p}`, 'latin1'), rsE3.privateKey)
    refuse(
      'a genuine RS384 signature under an RS256 header',
      `${h}.${p}.${b64u(rs384)}`,
      WHY.signature,
      'invalid_token',
      'e3',
    )
  }
  refuse('an RS256 signature one byte short', withSignature(rsBase, signatureBytes(rsBase).subarray(1)), WHY.signature)
  refuse('an RS256 signature of value 1', withSignature(rsBase, toBytes(1n, 256)), WHY.signature)
  refuse('an RS256 signature of value 0', withSignature(rsBase, Buffer.alloc(256)), WHY.signature)
  const plusN = e3PlusModulus()
  refuse(
    'a genuine e = 3 signature plus the modulus (still 256 bytes)',
    plusN.token,
    WHY.signature,
    'invalid_token',
    'e3',
  )

  // ── weak and unusable keys in the JWKS (README "Keys (JWKS)") ─────────────────────────────────
  group = 'unusable keys in the JWKS'
  refuse(
    'signed by a 1024-bit RSA key published in the JWKS',
    mint({}, rs1024),
    WHY.unknownKid,
    'invalid_token',
    'weakKeys',
  )
  refuse(
    'no kid, the only RSA key is 1024-bit',
    mint({}, rs1024, { kid: undefined }),
    WHY.noKeyForAlg,
    'invalid_token',
    'weakRsaOnly',
  )
  {
    const h = segment({ alg: 'RS256', kid: 'rs-e1', typ: 'JWT' })
    const p = payloadSeg()
    const block = emsa(Buffer.concat([DIGEST_INFO.sha256, sha256(`${h}.${p}`)]))
    refuse(
      'an RSA key with e = 1 and the padded block as its "signature"',
      `${h}.${p}.${b64u(block)}`,
      WHY.unknownKid,
      'invalid_token',
      'weakKeys',
    )
  }
  refuse(
    'an EC key whose point is off the curve',
    esSigned({ alg: 'ES256', kid: 'ec-off', typ: 'JWT' }),
    WHY.unknownKid,
    'invalid_token',
    'weakKeys',
  )
  refuse(
    'an oct (symmetric) key named by an ES256 header',
    esSigned({ alg: 'ES256', kid: 'oct-1', typ: 'JWT' }),
    WHY.unknownKid,
    'invalid_token',
    'weakKeys',
  )
  refuse(
    'an oct key named by an HS256 token keyed with it',
    hs256('shared-secret-of-the-oct-key', 'oct-1'),
    WHY.algNotAllowed,
    'invalid_token',
    'weakKeys',
  )
  refuse(
    'a JWK carrying private members (d)',
    mint({}, attacker, { kid: 'with-d' }),
    WHY.unknownKid,
    'invalid_token',
    'weakKeys',
  )
  accept('the usable keys of the same set still verify', es(), 'weakKeys')
  refuse(
    'two keys under one kid: the real key signed',
    es({}, { kid: 'dup' }),
    WHY.ambiguousKid,
    'invalid_token',
    'dupKids',
  )
  refuse(
    'two keys under one kid: the attacker signed',
    mint({}, attacker, { kid: 'dup' }),
    WHY.ambiguousKid,
    'invalid_token',
    'dupKids',
  )
  refuse(
    'an RSA and an EC key under one kid: RS256',
    rs({}, { kid: 'mixed' }),
    WHY.ambiguousKid,
    'invalid_token',
    'dupKids',
  )
  refuse(
    'an RSA and an EC key under one kid: ES256',
    es({}, { kid: 'mixed' }),
    WHY.ambiguousKid,
    'invalid_token',
    'dupKids',
  )

  // ── claims: another audience, issuer, zone, use ───────────────────────────────────────────────
  group = 'audience, issuer, zone'
  refuse('another audience', es({ aud: 'resource://other' }), 'audience mismatch')
  refuse('an audience array without ours', es({ aud: ['resource://other', 'resource://third'] }), 'audience mismatch')
  refuse('our audience as a prefix', es({ aud: `${AUDIENCE}/admin` }), 'audience mismatch')
  refuse('another issuer', es({ iss: 'https://attacker.example' }), 'issuer mismatch')
  refuse('the issuer with a trailing slash', es({ iss: `${ISSUER}/` }), 'issuer mismatch')
  refuse('the issuer in an array', es({ iss: [ISSUER] }), 'issuer mismatch')
  refuse('a session mandate at a resource server', es({ use: 'session' }), 'mandate use is not "resource"')
  refuse('another zone', es({ zone_id: 'zone-2' }), 'mandate was issued for another zone', 'invalid_zone', 'zone')
  refuse(
    'the zone in another case',
    es({ zone_id: 'ZONE-1' }),
    'mandate was issued for another zone',
    'invalid_zone',
    'zone',
  )
  refuse('no zone_id', es({ zone_id: undefined }), 'mandate was issued for another zone', 'invalid_zone', 'zone')
  refuse('zone_id "" is no zone', es({ zone_id: '' }), 'mandate was issued for another zone', 'invalid_zone', 'zone')
  refuse(
    'zone_id null is no zone',
    es({ zone_id: null }),
    'mandate was issued for another zone',
    'invalid_zone',
    'zone',
  )
  refuse(
    'zone_id in an array',
    es({ zone_id: ['zone-1'] }),
    'zone_id must be a string or null',
    'invalid_token',
    'zone',
  )
  accept('the configured zone', es(), 'zone')

  // ── time claims of every wrong type ────────────────────────────────────────────────────────────
  group = 'time claims'
  const bad: [string, string][] = [
    ['a string', JSON.stringify(String(NOW_SEC + 300))],
    ['a float', String(NOW_SEC + 300.5)],
    ['1e300', '1e300'],
    ['2^53 + 1', '9007199254740993'],
    ['2^53', '9007199254740992'],
    ['negative', '-1'],
    ['an array', `[${NOW_SEC + 300}]`],
    ['an object', `{"$numberLong":"${NOW_SEC + 300}"}`],
    ['true', 'true'],
    ['null', 'null'],
  ]
  for (const claim of ['exp', 'iat', 'nbf']) {
    for (const [label, value] of bad)
      refuse(
        `${claim} ${label}`,
        rawPayload(claimsText({ [claim]: undefined }, { [claim]: value })),
        WHY.notInteger(claim),
      )
  }
  // -0 is a JSON number equal to 0, an integer: a long-expired exp, a long-passed nbf.
  refuse('exp -0 (zero: long expired)', rawPayload(claimsText({ exp: undefined }, { exp: '-0' })), 'token expired')
  accept('nbf -0 (zero: long valid)', rawPayload(claimsText({}, { nbf: '-0' })))
  accept(
    'exp written with a fraction of zero',
    rawPayload(claimsText({ exp: undefined }, { exp: `${NOW_SEC + 300}.0` })),
  )
  accept(
    'exp written with an exponent',
    rawPayload(claimsText({ exp: undefined }, { exp: `${(NOW_SEC + 600) / 100}e2` })),
  )
  refuse(
    'exp 1e300 written out in digits',
    rawPayload(claimsText({ exp: undefined }, { exp: `1${'0'.repeat(300)}` })),
    WHY.notInteger('exp'),
  )
  refuse('exp expired by one second', es({ exp: NOW_SEC - 1 }), 'token expired')
  refuse('iat two minutes ahead', es({ iat: NOW_SEC + 120 }), 'token issued in the future (iat)')
  refuse('nbf two minutes ahead', es({ nbf: NOW_SEC + 120 }), 'token not yet valid (nbf)')

  // ── payloads that are not a JSON object ────────────────────────────────────────────────────────
  group = 'payload shape'
  for (const [label, text] of [
    ['an array', '[]'],
    ['an array holding the claims', JSON.stringify([mandateClaims()])],
    ['a string', '"a mandate"'],
    ['a number', '1'],
    ['null', 'null'],
    ['true', 'true'],
  ] as const)
    refuse(`payload ${label}`, rawPayload(text), 'payload is not a JSON object')
  refuse('payload not JSON', rawPayload('{"iss": nope}'), 'payload is not JSON')
  refuse('payload empty', signSegments(esKey, headerSegment(esKey), ''), 'payload is not JSON')
  refuse('payload with a trailing comma', rawPayload(`${claimsText().slice(0, -1)},}`), 'payload is not JSON')
  refuse('payload followed by a second object', rawPayload(`${claimsText()}{}`), 'payload is not JSON')
  // UTF-16 of ASCII text is valid UTF-8 (every other byte NUL), which JSON refuses; its BOM is not UTF-8.
  refuse('payload in UTF-16 without a BOM', rawPayload(Buffer.from(claimsText(), 'utf16le')), 'payload is not JSON')
  refuse(
    'payload in UTF-16 with a BOM',
    rawPayload(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(claimsText(), 'utf16le')])),
    'payload is not UTF-8',
  )
  refuse('payload after a UTF-8 BOM', rawPayload(`\ufeff${claimsText()}`), 'payload is not JSON')
  refuse('header an array', esSigned('[]'), 'protected header is not a JSON object')
  refuse('header not JSON', esSigned('{alg: ES256}'), 'protected header is not JSON')
  refuse(
    'header not UTF-8',
    signSegments(esKey, b64u(Buffer.from([0x7b, 0xff, 0x7d])), payloadSeg()),
    'protected header is not UTF-8',
  )

  // ── deep nesting (JSON parsers that recurse) ───────────────────────────────────────────────────
  group = 'deep nesting'
  refuse('payload of 10 000 unclosed [', rawPayload('['.repeat(10_000)), 'payload is not JSON', 'invalid_token', 'long')
  refuse(
    'payload of 10 000 nested arrays',
    rawPayload(`${'['.repeat(10_000)}${']'.repeat(10_000)}`),
    'payload is not a JSON object',
    'invalid_token',
    'long',
  )
  refuse(
    'payload of 6 000 nested arrays',
    rawPayload(`${'['.repeat(6000)}${']'.repeat(6000)}`),
    'payload is not a JSON object',
    'invalid_token',
    'long',
  )
  refuse(
    'payload of 3 000 nested objects',
    rawPayload(`${'{"a":'.repeat(3000)}1${'}'.repeat(3000)}`),
    'issuer mismatch',
    'invalid_token',
    'long',
  )
  accept(
    'a valid mandate with 4 000 nested arrays in an unknown claim',
    rawPayload(claimsText({}, { deep: `${'['.repeat(4000)}${']'.repeat(4000)}` })),
    'long',
  )
  refuse(
    'header of 10 000 unclosed [',
    esSigned('['.repeat(10_000)),
    'protected header is not JSON',
    'invalid_token',
    'long',
  )
  refuse(
    'header of 5 000 nested arrays',
    esSigned(`${'['.repeat(5000)}${']'.repeat(5000)}`),
    'protected header is not a JSON object',
    'invalid_token',
    'long',
  )

  // ── length (maxTokenLength, checked before anything is decoded) ────────────────────────────────
  group = 'length'
  refuse('8193 characters of A', 'A'.repeat(8193), WHY.tooLong(8192))
  refuse('one megabyte of dots', '.'.repeat(1 << 20), WHY.tooLong(8192))
  refuse('a validly signed mandate over the limit', es({ pad: 'z'.repeat(6500) }), WHY.tooLong(8192))
  accept('a validly signed mandate just under the limit', es({ pad: 'z'.repeat(5500) }))
  refuse('over a raised limit', es({ pad: 'z'.repeat(31_000) }), WHY.tooLong(40_000), 'invalid_token', 'long')

  // ── NUL and non-ASCII in each segment, and inside the JSON ────────────────────────────────────
  group = 'NUL and non-ASCII'
  for (const [index, label] of [
    [0, 'header'],
    [1, 'payload'],
    [2, 'signature'],
  ] as const) {
    refuse(`NUL in the ${label} segment`, replaceChar(esBase, index, 5, '\u0000'), WHY.outsideAlphabet)
    refuse(`é in the ${label} segment`, replaceChar(esBase, index, 5, 'é'), WHY.nonAscii)
    refuse(`a CJK character in the ${label} segment`, replaceChar(esBase, index, 5, '字'), WHY.nonAscii)
  }
  refuse(
    'a raw NUL byte inside a payload string',
    rawPayload(claimsText({ sub: 'userNULadmin' }).replace('NUL', '\u0000')),
    'payload is not JSON',
  )
  refuse(
    'a raw NUL byte inside the header',
    esSigned('{"alg":"ES256","kid":"es-1\u0000"}'),
    'protected header is not JSON',
  )
  accept('an escaped NUL inside sub is part of sub', es({ sub: 'user\u0000admin' }), 'default', (c) =>
    claimIs(c.sub, 'user\u0000admin'),
  )
  accept('non-ASCII UTF-8 in sub', es({ sub: 'usér-字-😀' }), 'default', (c) => claimIs(c.sub, 'usér-字-😀'))
  {
    const [before, after] = claimsText({ sub: 'MARK' }).split('"MARK"') as [string, string]
    const invalid = Buffer.concat([Buffer.from(before), Buffer.from([0x22, 0xc3, 0x28, 0x22]), Buffer.from(after)])
    refuse('an invalid UTF-8 sequence inside sub', rawPayload(invalid), 'payload is not UTF-8')
  }
  refuse('a lone surrogate escape in kid', esSigned('{"alg":"ES256","kid":"es-1\\ud800"}'), WHY.unknownKid)
  refuse('non-ASCII kid', es({}, { kid: 'es-1é' }), WHY.unknownKid)

  // ── duplicate members (README "What is checked": the last wins, as JSON.parse has it) ──────────
  group = 'duplicate members'
  accept('header alg none, then alg ES256', esSigned('{"alg":"none","alg":"ES256","kid":"es-1","typ":"JWT"}'))
  refuse(
    'header alg ES256, then alg none',
    esSigned('{"alg":"ES256","kid":"es-1","typ":"JWT","alg":"none"}'),
    WHY.algNotAllowed,
  )
  refuse('header alg ES256, then alg HS256', esSigned('{"alg":"ES256","kid":"es-1","alg":"HS256"}'), WHY.algNotAllowed)
  accept('header kid unknown, then kid es-1', esSigned('{"alg":"ES256","kid":"nope","kid":"es-1"}'))
  refuse('header kid es-1, then kid unknown', esSigned('{"alg":"ES256","kid":"es-1","kid":"nope"}'), WHY.unknownKid)
  refuse('header crit, then crit null', esSigned('{"alg":"ES256","kid":"es-1","crit":["exp"],"crit":null}'), WHY.crit)
  accept('header b64 false, then b64 true', esSigned('{"alg":"ES256","kid":"es-1","b64":false,"b64":true}'))
  refuse(
    'payload exp valid, then exp expired',
    rawPayload(claimsText({}, { exp: String(NOW_SEC - 10) })),
    'token expired',
  )
  accept(
    'payload exp expired, then exp valid',
    rawPayload(claimsText({ exp: NOW_SEC - 10 }, { exp: String(NOW_SEC + 300) })),
  )
  accept(
    'payload sub twice: the last is sub',
    rawPayload(claimsText({ sub: 'first' }, { sub: '"second"' })),
    'default',
    (c) => claimIs(c.sub, 'second'),
  )
  accept(
    'payload sub, then sub spelled with an escape',
    rawPayload(`${claimsText({ sub: 'first' }).slice(0, -1)},"s\\u0075b":"escaped"}`),
    'default',
    (c) => claimIs(c.sub, 'escaped'),
  )
  refuse(
    'payload aud ours, then aud another',
    rawPayload(claimsText({}, { aud: '"resource://other"' })),
    'audience mismatch',
  )
  accept(
    'payload aud another, then aud ours',
    rawPayload(claimsText({ aud: 'resource://other' }, { aud: JSON.stringify(AUDIENCE) })),
  )
  refuse(
    'payload iss ours, then iss another',
    rawPayload(claimsText({}, { iss: '"https://attacker.example"' })),
    'issuer mismatch',
  )
  refuse(
    'payload zone ours, then zone another',
    rawPayload(claimsText({}, { zone_id: '"zone-2"' })),
    'mandate was issued for another zone',
    'invalid_zone',
    'zone',
  )

  // ── empty and null optional claims (README "What is checked": as the plain Caracal verifier) ──
  group = 'empty and null claims'
  refuse(
    'agent_session_id "" with requireAgent',
    es({ agent_session_id: '' }),
    'mandate has no agent session',
    'agent_required',
    'agent',
  )
  refuse(
    'agent_session_id null with requireAgent',
    es({ agent_session_id: null }),
    'mandate has no agent session',
    'agent_required',
    'agent',
  )
  refuse(
    'delegation_edge_id "" with requireDelegation',
    es({ delegation_edge_id: '' }),
    'mandate has no delegation edge',
    'delegation_required',
    'delegation',
  )
  refuse(
    'delegation_edge_id null with requireDelegation',
    es({ delegation_edge_id: null }),
    'mandate has no delegation edge',
    'delegation_required',
    'delegation',
  )
  refuse(
    'scope null with requiredScopes',
    es({ scope: null }),
    'missing required scope: tool:call',
    'insufficient_scope',
    'scopes',
  )
  refuse(
    'scope "" with requiredScopes',
    es({ scope: '' }),
    'missing required scope: tool:call',
    'insufficient_scope',
    'scopes',
  )
  refuse(
    'scope an array holding the scope',
    es({ scope: ['tool:call'] }),
    'scope must be a string',
    'invalid_token',
    'scopes',
  )
  refuse(
    'target null with requiredTargets',
    es({ target: null }),
    'mandate is not for target resource://documents',
    'invalid_token',
    'targets',
  )
  refuse(
    'target "" is refused',
    es({ target: '' }),
    'target must be an array of non-empty strings',
    'invalid_token',
    'targets',
  )
  refuse(
    'target [""] is refused',
    es({ target: [''] }),
    'target must be an array of non-empty strings',
    'invalid_token',
    'targets',
  )
  accept('delegation_chain [] reads as no chain', es({ delegation_chain: [] }), 'default', (c) =>
    claimIs(c.delegationChain, undefined),
  )
  refuse(
    'delegation_chain [] with requireChainContains',
    es({ delegation_chain: [] }),
    'delegation chain does not include app-a',
    'chain_mismatch',
    'chain',
  )
  refuse(
    'delegation_chain null with requireChainContains',
    es({ delegation_chain: null }),
    'delegation chain does not include app-a',
    'chain_mismatch',
    'chain',
  )
  refuse('delegation_chain ""', es({ delegation_chain: '' }), 'delegation_chain must be an array')
  refuse('delegation_chain [null]', es({ delegation_chain: [null] }), 'delegation_chain entries must be objects')
  refuse(
    'a hop whose application_id is ""',
    es({ delegation_chain: [{ application_id: '' }] }),
    'application_id must be a non-empty string',
    'invalid_token',
    'chain',
  )
  refuse(
    'a hop naming the app in another member',
    es({ delegation_chain: [{ applicationId: 'app-a' }] }),
    'application_id missing',
    'invalid_token',
    'chain',
  )
  refuse('sub ""', es({ sub: '' }), 'sub must be a non-empty string')
  refuse('sid ""', es({ sid: '' }), 'sid must be a non-empty string')
  accept('hop_count null is absent', es({ hop_count: null }), 'default', (c) => claimIs(c.hopCount, undefined))
  refuse('hop_count ""', es({ hop_count: '' }), WHY.notInteger('hop_count'))

  // ── delegation epochs (README "Revocation"; the store keeps epochs: zone-1 is at 5) ─────────────
  group = 'delegation epochs'
  refuse('epoch below the zone epoch', es({ delegation_graph_epoch: 4 }), WHY.stale, 'delegation_stale', 'epochs')
  refuse('epoch 0 below the zone epoch', es({ delegation_graph_epoch: 0 }), WHY.stale, 'delegation_stale', 'epochs')
  accept('epoch equal to the zone epoch', es({ delegation_graph_epoch: 5 }), 'epochs')
  accept('epoch above the zone epoch', es({ delegation_graph_epoch: 6 }), 'epochs')
  refuse(
    'epoch without zone_id',
    es({ delegation_graph_epoch: 9, zone_id: undefined }),
    WHY.epochWithoutZone,
    'invalid_token',
    'epochs',
  )
  refuse(
    'epoch with zone_id ""',
    es({ delegation_graph_epoch: 9, zone_id: '' }),
    WHY.epochWithoutZone,
    'invalid_token',
    'epochs',
  )
  refuse(
    'epoch with zone_id null',
    es({ delegation_graph_epoch: 9, zone_id: null }),
    WHY.epochWithoutZone,
    'invalid_token',
    'epochs',
  )
  accept(
    'epoch without zone_id, store without epochs: nothing to check',
    es({ delegation_graph_epoch: 1, zone_id: undefined }),
    'noEpochs',
  )
  accept('epoch null is absent: not checked', es({ delegation_graph_epoch: null }), 'epochs', (c) =>
    claimIs(c.graphEpoch, undefined),
  )
  refuse(
    'epoch ""',
    es({ delegation_graph_epoch: '' }),
    WHY.notInteger('delegation_graph_epoch'),
    'invalid_token',
    'epochs',
  )
  refuse(
    'epoch -1',
    es({ delegation_graph_epoch: -1 }),
    WHY.notInteger('delegation_graph_epoch'),
    'invalid_token',
    'epochs',
  )
  refuse(
    'epoch 4.5',
    es({ delegation_graph_epoch: 4.5 }),
    WHY.notInteger('delegation_graph_epoch'),
    'invalid_token',
    'epochs',
  )
  refuse(
    'epoch "5" (a string)',
    es({ delegation_graph_epoch: '5' }),
    WHY.notInteger('delegation_graph_epoch'),
    'invalid_token',
    'epochs',
  )
  refuse(
    'epoch 2^53 + 1',
    rawPayload(claimsText({}, { delegation_graph_epoch: '9007199254740993' })),
    WHY.notInteger('delegation_graph_epoch'),
    'invalid_token',
    'epochs',
  )
  refuse(
    'stale epoch and a revoked sid: revocation is reported first',
    es({ sid: 'sid-revoked-in-corpus', delegation_graph_epoch: 1 }),
    'session has been revoked',
    'session_revoked',
    'epochs',
  )
  refuse(
    'a mandate of zone-2 is checked against the epoch of zone-2',
    es({ zone_id: 'zone-2', delegation_graph_epoch: 4 }),
    WHY.stale,
    'delegation_stale',
    'epochs',
  )
  accept(
    'a zone with no epoch known: epoch 0 is current',
    es({ zone_id: 'zone-3', delegation_graph_epoch: 0 }),
    'epochs',
  )

  // ── not a string at all ────────────────────────────────────────────────────────────────────────
  group = 'not a token'
  refuse('empty string', '', 'no token', 'missing_token')
  refuse('undefined', undefined, 'no token', 'missing_token')
  refuse('null', null, 'no token', 'missing_token')
  for (const [label, value] of [
    ['a number', 42],
    ['an object', { token: esBase }],
    ['an array', [esBase]],
    ['true', true],
  ] as const)
    refuse(`verify given ${label}`, value, 'token must be a string')

  const epochsStore = (v: TestVerifier): void => {
    v.revocations.markDelegationEpoch('zone-1', 5)
    v.revocations.markDelegationEpoch('zone-2', 5)
    v.revocations.markRevoked('sid-revoked-in-corpus')
  }
  const offCurve = { ...esJwk, kid: 'ec-off', y: b64u(flipLastBit(Buffer.from(esJwk.y!, 'base64url'))) }
  const e1 = { kty: 'RSA', n: rsJwk.n, e: 'AQ', kid: 'rs-e1', alg: 'RS256', use: 'sig' }
  const oct = { kty: 'oct', k: b64u('shared-secret-of-the-oct-key'), kid: 'oct-1' }
  const withD = { ...(attacker.privateKey.export({ format: 'jwk' }) as JsonWebKey), kid: 'with-d' }
  const keys = (...list: unknown[]): VerifierSpec['options'] => ({ jwks: { keys: { keys: list as JsonWebKey[] } } })
  const verifiers: Record<VerifierName, VerifierSpec> = {
    default: { options: {} },
    esOnly: { options: { algorithms: ['ES256'] } },
    zone: { options: { expectedZoneId: 'zone-1' } },
    agent: { options: { requireAgent: true } },
    delegation: { options: { requireDelegation: true } },
    chain: { options: { requireChainContains: ['app-a'] } },
    scopes: { options: { requiredScopes: ['tool:call'] } },
    targets: { options: { requiredTargets: [AUDIENCE] } },
    long: { options: { maxTokenLength: 40_000 } },
    remote: { options: { jwks: { url: urls.jwks } } },
    weakKeys: { options: keys(esJwk, rsJwk, rs1024.publicJwk, e1, offCurve, oct, withD) },
    weakRsaOnly: { options: keys(esJwk, { ...rs1024.publicJwk, kid: undefined }) },
    dupKids: {
      options: keys(
        esJwk,
        rsJwk,
        { ...esJwk, kid: 'dup' },
        { ...attacker.publicJwk, kid: 'dup' },
        { ...rsJwk, kid: 'mixed' },
        { ...esJwk, kid: 'mixed' },
      ),
    },
    e3: { options: keys(esJwk, rsJwk, rsE3.publicJwk) },
    crafted: { options: keys(esJwk, rsJwk, crafted.jwk) },
    protoKid: { options: keys(rsJwk, protoKey.publicJwk) },
    epochs: { options: {}, prepare: epochsStore },
    noEpochs: { options: { revocations: { isRevoked: () => false, markRevoked: () => {} } } },
  }

  const http = httpCases()
  const tokens = [...cases.map((c) => c.token), ...HTTP_TOKENS].filter((t): t is string => typeof t === 'string')
  return {
    cases,
    verifiers,
    http,
    tokens,
    forgeries: {
      cubes,
      e3Modulus,
      crafted: { token: craftedToken(crafted.r, crafted.s), jwk: crafted.jwk, r: crafted.r, s: crafted.s },
      e3Genuine: { signature: plusN.genuine },
    },
  }
}

function flipLastBit(b: Buffer): Buffer {
  const copy = Buffer.from(b)
  copy[copy.length - 1]! ^= 1
  return copy
}

/** A tiny assertion for `check`, so the corpus does not import the test runner. */
function claimIs(actual: unknown, wanted: unknown): void {
  if (!Object.is(actual, wanted))
    throw new Error(`claim is ${JSON.stringify(actual)}, expected ${JSON.stringify(wanted)}`)
}

// ── HTTP requests through the adapters (RFC 6750 §2, RFC 7235 §2.1) ─────────────────────────────────

/** The mandate every HTTP case carries (valid unless the case says otherwise). */
export const HTTP_TOKEN = es()
const OTHER_TOKEN = es()
const BAD_TOKEN = withSignature(HTTP_TOKEN, es256Signature(1n, 1n))
const HTTP_TOKENS = [HTTP_TOKEN, OTHER_TOKEN, BAD_TOKEN]
const NO_HEADER = 'no bearer token in the Authorization header'
const TWO_HEADERS = 'more than one Authorization header'

function httpCases(): HttpCase[] {
  const t = HTTP_TOKEN
  return [
    { name: 'one Bearer header', path: '/', headers: [`Authorization: Bearer ${t}`], expect: 'accepted' },
    { name: 'scheme in lowercase', path: '/', headers: [`Authorization: bearer ${t}`], expect: 'accepted' },
    { name: 'scheme in uppercase', path: '/', headers: [`Authorization: BEARER ${t}`], expect: 'accepted' },
    { name: 'scheme in mixed case', path: '/', headers: [`Authorization: bEaReR ${t}`], expect: 'accepted' },
    { name: 'header name in lowercase', path: '/', headers: [`authorization: Bearer ${t}`], expect: 'accepted' },
    {
      name: 'three spaces between scheme and token',
      path: '/',
      headers: [`Authorization: Bearer   ${t}`],
      expect: 'accepted',
    },
    {
      name: 'trailing spaces (not part of the field value)',
      path: '/',
      headers: [`Authorization: Bearer ${t}   `],
      expect: 'accepted',
    },
    {
      name: 'leading spaces before the scheme',
      path: '/',
      headers: [`Authorization:    Bearer ${t}`],
      expect: 'accepted',
    },
    {
      name: 'a tab between scheme and token',
      path: '/',
      headers: [`Authorization: Bearer\t${t}`],
      expect: 'missing_token',
      why: NO_HEADER,
    },
    {
      name: 'scheme glued to the token',
      path: '/',
      headers: [`Authorization: Bearer${t}`],
      expect: 'missing_token',
      why: NO_HEADER,
    },
    { name: 'empty Bearer', path: '/', headers: ['Authorization: Bearer '], expect: 'missing_token', why: NO_HEADER },
    { name: 'scheme only', path: '/', headers: ['Authorization: Bearer'], expect: 'missing_token', why: NO_HEADER },
    { name: 'empty header', path: '/', headers: ['Authorization: '], expect: 'missing_token', why: NO_HEADER },
    {
      name: 'Basic scheme',
      path: '/',
      headers: ['Authorization: Basic ZGV2OmRldg=='],
      expect: 'missing_token',
      why: NO_HEADER,
    },
    {
      name: 'Basic scheme carrying the mandate',
      path: '/',
      headers: [`Authorization: Basic ${t}`],
      expect: 'missing_token',
      why: NO_HEADER,
    },
    {
      name: 'the mandate without a scheme',
      path: '/',
      headers: [`Authorization: ${t}`],
      expect: 'missing_token',
      why: NO_HEADER,
    },
    {
      name: 'Proxy-Authorization only',
      path: '/',
      headers: [`Proxy-Authorization: Bearer ${t}`],
      expect: 'missing_token',
      why: NO_HEADER,
    },
    {
      name: 'no header, access_token in the query',
      path: `/?access_token=${t}`,
      headers: [],
      expect: 'missing_token',
      why: NO_HEADER,
    },
    {
      name: 'access_token in a form body (RFC 6750 §2.2 is not offered)',
      path: '/',
      headers: ['Content-Type: application/x-www-form-urlencoded'],
      body: `access_token=${t}`,
      expect: 'missing_token',
      why: NO_HEADER,
    },
    {
      name: 'a forged header and a valid access_token in the query: the query is never read',
      path: `/?access_token=${t}`,
      headers: [`Authorization: Bearer ${BAD_TOKEN}`],
      expect: 'invalid_token',
      why: WHY.signature,
    },
    {
      name: 'two mandates in one header',
      path: '/',
      headers: [`Authorization: Bearer ${t}, Bearer ${OTHER_TOKEN}`],
      expect: 'invalid_token',
      why: 'not a compact JWS: expected three segments',
    },
    {
      name: 'two Authorization headers, both valid',
      path: '/',
      headers: [`Authorization: Bearer ${t}`, `Authorization: Bearer ${OTHER_TOKEN}`],
      expect: 'missing_token',
      why: TWO_HEADERS,
    },
    {
      name: 'two Authorization headers, the same mandate twice',
      path: '/',
      headers: [`Authorization: Bearer ${t}`, `Authorization: Bearer ${t}`],
      expect: 'missing_token',
      why: TWO_HEADERS,
    },
    {
      name: 'two Authorization headers, valid then forged',
      path: '/',
      headers: [`Authorization: Bearer ${t}`, `Authorization: Bearer ${BAD_TOKEN}`],
      expect: 'missing_token',
      why: TWO_HEADERS,
    },
    {
      name: 'two Authorization headers, forged then valid',
      path: '/',
      headers: [`Authorization: Bearer ${BAD_TOKEN}`, `Authorization: Bearer ${t}`],
      expect: 'missing_token',
      why: TWO_HEADERS,
    },
    {
      name: 'two Authorization headers, valid then Basic',
      path: '/',
      headers: [`Authorization: Bearer ${t}`, 'Authorization: Basic ZGV2OmRldg=='],
      expect: 'missing_token',
      why: TWO_HEADERS,
    },
    {
      name: 'two Authorization headers, empty then valid',
      path: '/',
      headers: ['Authorization: ', `authorization: Bearer ${t}`],
      expect: 'missing_token',
      why: TWO_HEADERS,
    },
  ]
}
