/**
 * An independent reading of README "What is checked" and docs/architecture.md ("Data flow",
 * "Claims") for the fuzz campaign: what a verifier with the default options (issuer, audience, a
 * static JWKS, an empty revocation store, a fixed clock) must answer for any string. It is written
 * from the documents, not from src/ — only the wording of the descriptions is the library's, as
 * README "Errors" has it: the signature is decided by node:crypto alone (the oracle), JSON by
 * `JSON.parse`, and the rest by the tables of the docs.
 *
 * A refusal is given as its code and the descriptions of every rule the input breaks at the first
 * stage of the documented order that it fails (parse, key, signature, payload, claims, policy,
 * epoch); which of them a verifier names first is its own business, but it must name one that applies.
 */
import { type KeyObject, verify } from 'node:crypto'
import { isUtf8 } from 'node:buffer'
import type { Claims, DelegationHop } from '../../src/policy/claims.js'

export interface ReferenceKey {
  readonly kid: string
  readonly alg: 'ES256' | 'RS256'
  readonly publicKey: KeyObject
}

export interface ReferenceOptions {
  readonly issuer: string
  readonly audience: string
  readonly nowSec: number
  readonly keys: readonly ReferenceKey[]
}

export type Verdict =
  | { readonly accepted: Claims; readonly code?: undefined }
  | { readonly accepted?: undefined; readonly code: string; readonly descriptions: readonly string[] }

/** README "Options": maxTokenLength. */
const MAX_TOKEN_LENGTH = 8192
/** README "Options": maxHopCount defaults to 10. */
const MAX_HOPS = 10
/** README "Options", clockToleranceSec unset: no leeway for exp, 60 s ahead for nbf and iat. */
const FUTURE_LEEWAY_SEC = 60

const ALPHABET = /^[A-Za-z0-9_-]*$/
const VALUE = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

const refuse = (descriptions: string[], code = 'invalid_token'): Verdict => ({ code, descriptions })

/** RFC 4648 §3.5: no lone leftover character, and the unused bits of the last one are zero. */
function canonicalTail(seg: string): boolean {
  const rest = seg.length % 4
  if (rest === 0) return true
  if (rest === 1) return false
  const last = VALUE.indexOf(seg[seg.length - 1]!)
  if (last < 0) return false
  return rest === 2 ? (last & 0x0f) === 0 : (last & 0x03) === 0
}

function jsonObject(bytes: Buffer, what: string): Record<string, unknown> | string {
  if (!isUtf8(bytes)) return `${what} is not UTF-8`
  let value: unknown
  try {
    value = JSON.parse(bytes.toString('utf8'))
  } catch {
    return `${what} is not JSON`
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return `${what} is not a JSON object`
  return value as Record<string, unknown>
}

/** The key a header names (README "Keys (JWKS)"), or why there is none. */
function keyFor(keys: readonly ReferenceKey[], alg: string, kid: unknown): ReferenceKey | string {
  if (typeof kid === 'string') {
    const key = keys.find((k) => k.kid === kid)
    if (key === undefined) return 'no usable key: unknown kid'
    return key.alg === alg ? key : 'no usable key: alg does not match the key'
  }
  const fitting = keys.filter((k) => k.alg === alg)
  if (fitting.length === 0) return 'no usable key: no key for alg'
  return fitting.length === 1 ? fitting[0]! : 'no usable key: token has no kid and several keys fit'
}

const modulusBytes = new WeakMap<KeyObject, number>()

function signatureBytes(key: ReferenceKey): number {
  if (key.alg === 'ES256') return 64
  let n = modulusBytes.get(key.publicKey)
  if (n === undefined) {
    n = Buffer.from(key.publicKey.export({ format: 'jwk' }).n!, 'base64url').length
    modulusBytes.set(key.publicKey, n)
  }
  return n
}

/** node:crypto's verdict on `signature` over `input`: ES256 as r‖s (ieee-p1363), RS256 PKCS#1 v1.5 SHA-256. */
export function cryptoVerify(key: ReferenceKey, input: Buffer, signature: Buffer): boolean {
  try {
    return key.alg === 'ES256'
      ? verify('sha256', input, { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, signature)
      : verify('sha256', input, key.publicKey, signature)
  } catch {
    return false
  }
}

/**
 * The oracle: whether the third segment is a valid signature, by the key the header names, over
 * the first two segments as written (RFC 7515 §5.2). It reads leniently (any base64 Node decodes):
 * it judges the signature only, and says nothing of the encoding.
 */
export function oracleSignatureValid(token: string, keys: readonly ReferenceKey[]): boolean {
  const parts = token.split('.')
  if (parts.length !== 3) return false
  let header: unknown
  try {
    header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8'))
  } catch {
    return false
  }
  if (typeof header !== 'object' || header === null) return false
  const { alg, kid } = header as { alg?: unknown; kid?: unknown }
  if (typeof alg !== 'string') return false
  const key = keyFor(keys, alg, kid)
  if (typeof key === 'string') return false
  return cryptoVerify(key, Buffer.from(`${parts[0]}.${parts[1]}`, 'latin1'), Buffer.from(parts[2]!, 'base64url'))
}

export function referenceVerdict(token: string, o: ReferenceOptions): Verdict {
  // Input (step 1): an empty token is no token (README "Errors").
  if (token === '') return refuse(['no token'], 'missing_token')
  // Parse: the whole token, then the header (docs/architecture.md "Data flow", step 3).
  if (token.length > MAX_TOKEN_LENGTH) return refuse([`token longer than ${MAX_TOKEN_LENGTH} characters`])
  const parts = token.split('.')
  if (parts.length !== 3) return refuse(['not a compact JWS: expected three segments'])
  const [h, p, s] = parts as [string, string, string]
  const shape: string[] = []
  if (h === '') shape.push('empty protected header')
  if (s === '') shape.push('empty signature')
  if (/[+/=]/.test(token)) shape.push('not base64url: padding or base64 characters')
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the ASCII range is the point
  if (/[^\x00-\x7f]/.test(token)) shape.push('not base64url: a non-ASCII character')
  if (parts.some((seg) => !canonicalTail(seg))) shape.push('non-canonical base64url')
  if (shape.length > 0) return refuse(shape)
  const outsideAlphabet = 'not a compact JWS: a character outside base64url'
  if (!ALPHABET.test(h)) return refuse([outsideAlphabet])
  const header = jsonObject(Buffer.from(h, 'base64url'), 'protected header')
  if (typeof header === 'string') return refuse([header])
  const headerRules: string[] = []
  const alg = header.alg
  if (typeof alg !== 'string') headerRules.push('header has no alg')
  else if (alg !== 'ES256' && alg !== 'RS256') headerRules.push('alg not allowed')
  if (header.crit !== undefined) headerRules.push('crit header is not supported')
  if (header.b64 !== undefined && header.b64 !== true) headerRules.push('b64 header is not supported')
  const kid = header.kid
  if (kid !== undefined && (typeof kid !== 'string' || kid === '')) headerRules.push('kid must be a non-empty string')
  if (headerRules.length > 0) return refuse(headerRules)

  // Key (step 4).
  const key = keyFor(o.keys, alg as string, kid)
  if (typeof key === 'string') return refuse([key])

  // Signature (step 5): ES256 exactly 64 bytes, RS256 exactly the modulus length, then the oracle.
  if (!ALPHABET.test(p) || !ALPHABET.test(s)) return refuse([outsideAlphabet])
  const signature = Buffer.from(s, 'base64url')
  if (signature.length !== signatureBytes(key) || !cryptoVerify(key, Buffer.from(`${h}.${p}`, 'latin1'), signature))
    return refuse(['signature verification failed'])

  // Payload and claims (step 6).
  const payload = jsonObject(Buffer.from(p, 'base64url'), 'payload')
  if (typeof payload === 'string') return refuse([payload])
  const read = readClaims(payload, o)
  if (Array.isArray(read)) return refuse(read)

  // Policy (step 7): with the default options only the hop limit applies.
  if (read.hopCount !== undefined && read.hopCount > MAX_HOPS)
    return refuse([`hop count above ${MAX_HOPS}`], 'hop_count_exceeded')
  // Revocation and the epoch (step 8): nothing is revoked and every zone is at epoch 0, but an
  // epoch without a zone cannot be checked against a store that keeps epochs.
  if (read.graphEpoch !== undefined && read.zoneId === undefined)
    return refuse(['delegation_graph_epoch without zone_id cannot be checked'])
  return { accepted: read }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

const isInteger = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

/** The claim table of docs/architecture.md "Claims": the claims, or every rule the payload breaks. */
function readClaims(c: Record<string, unknown>, o: ReferenceOptions): Claims | string[] {
  const broken: string[] = []
  const fail = (why: string): undefined => void broken.push(why)

  if (c.iss !== o.issuer) fail('issuer mismatch')
  const aud = c.aud
  if (aud === undefined) fail('aud missing')
  else if (typeof aud === 'string') {
    if (aud !== o.audience) fail('audience mismatch')
  } else if (!Array.isArray(aud) || aud.length === 0 || aud.some((a) => typeof a !== 'string'))
    fail('aud must be a string or an array of strings')
  else if (!aud.includes(o.audience)) fail('audience mismatch')

  const requiredInteger = (name: string): number | undefined => {
    const v = c[name]
    if (v === undefined) return fail(`${name} missing`)
    return isInteger(v) ? v : fail(`${name} must be a non-negative integer`)
  }
  const exp = requiredInteger('exp')
  const iat = requiredInteger('iat')
  // nbf is optional, but a null nbf is refused (jose refuses it).
  const nbf = c.nbf === undefined ? undefined : isInteger(c.nbf) ? c.nbf : fail('nbf must be a non-negative integer')
  if (exp !== undefined && iat !== undefined && (c.nbf === undefined || nbf !== undefined)) {
    if (exp <= o.nowSec) fail('token expired')
    if (nbf !== undefined && nbf > o.nowSec + FUTURE_LEEWAY_SEC) fail('token not yet valid (nbf)')
    if (iat > o.nowSec + FUTURE_LEEWAY_SEC) fail('token issued in the future (iat)')
  }

  const requiredString = (value: unknown, name: string): string | undefined => {
    if (value === undefined) return fail(`${name} missing`)
    return typeof value === 'string' && value !== '' ? value : fail(`${name} must be a non-empty string`)
  }
  const optionalString = (value: unknown, name: string): string | undefined => {
    if (value === undefined || value === null || value === '') return undefined
    return typeof value === 'string' ? value : fail(`${name} must be a string or null`)
  }
  const strings = (name: string): readonly string[] | undefined => {
    const v = c[name]
    if (v === undefined || v === null) return undefined
    if (Array.isArray(v) && v.every((s) => typeof s === 'string' && s !== '')) return v as string[]
    return fail(`${name} must be an array of non-empty strings`)
  }
  const optionalInteger = (name: string): number | undefined => {
    const v = c[name]
    if (v === undefined || v === null) return undefined
    return isInteger(v) ? v : fail(`${name} must be a non-negative integer`)
  }

  const use = requiredString(c.use, 'use')
  if (use !== undefined && use !== 'session' && use !== 'resource') fail('use must be "session" or "resource"')
  else if (use !== undefined && use !== 'resource') fail('mandate use is not "resource"')
  const subType = requiredString(c.sub_type, 'sub_type')
  if (subType !== undefined && subType !== 'user' && subType !== 'application')
    fail('sub_type must be "user" or "application"')
  const scope = c.scope === undefined || c.scope === null ? '' : c.scope
  if (typeof scope !== 'string') fail('scope must be a string')

  const sub = requiredString(c.sub, 'sub')
  const clientId = requiredString(c.client_id, 'client_id')
  const sid = requiredString(c.sid, 'sid')
  const rootSid = requiredString(c.root_sid, 'root_sid')
  const jti = requiredString(c.jti, 'jti')
  const zoneId = optionalString(c.zone_id, 'zone_id')
  const target = strings('target')
  const sessionId = optionalString(c.agent_session_id, 'agent_session_id')
  const delegationId = optionalString(c.delegation_edge_id, 'delegation_edge_id')
  const sourceSessionId = optionalString(c.source_session_id, 'source_session_id')
  const targetSessionId = optionalString(c.target_session_id, 'target_session_id')
  const delegationPath = strings('delegation_path')

  let chain: DelegationHop[] | undefined
  const rawChain = c.delegation_chain
  if (rawChain !== undefined && rawChain !== null) {
    if (!Array.isArray(rawChain)) fail('delegation_chain must be an array')
    else if (rawChain.length > 0) {
      chain = []
      for (const hop of rawChain) {
        if (typeof hop !== 'object' || hop === null || Array.isArray(hop)) {
          fail('delegation_chain entries must be objects')
          continue
        }
        const entry = hop as Record<string, unknown>
        const out: Mutable<DelegationHop> = { applicationId: requiredString(entry.application_id, 'application_id')! }
        const hopSession = optionalString(entry.agent_session_id, 'agent_session_id')
        const hopDelegation = optionalString(entry.delegation_edge_id, 'delegation_edge_id')
        if (hopSession !== undefined) out.sessionId = hopSession
        if (hopDelegation !== undefined) out.delegationId = hopDelegation
        chain.push(out)
      }
    }
  }
  const graphEpoch = optionalInteger('delegation_graph_epoch')
  const hopCount = optionalInteger('hop_count')
  if (broken.length > 0) return broken

  const claims: Mutable<Claims> = {
    sub: sub!,
    clientId: clientId!,
    authorityRecordId: sid!,
    rootAuthorityRecordId: rootSid!,
    use: use as 'resource',
    subType: subType as 'user' | 'application',
    jti: jti!,
    issuedAt: iat!,
    expiresAt: exp!,
    scope: scope as string,
  }
  // An absent optional claim is absent from Claims too (docs/architecture.md "Claims").
  if (zoneId !== undefined) claims.zoneId = zoneId
  if (target !== undefined) claims.targetResources = target
  if (sessionId !== undefined) claims.sessionId = sessionId
  if (delegationId !== undefined) claims.delegationId = delegationId
  if (sourceSessionId !== undefined) claims.sourceSessionId = sourceSessionId
  if (targetSessionId !== undefined) claims.targetSessionId = targetSessionId
  if (delegationPath !== undefined) claims.delegationPath = delegationPath
  if (chain !== undefined) claims.delegationChain = chain
  if (graphEpoch !== undefined) claims.graphEpoch = graphEpoch
  if (hopCount !== undefined) claims.hopCount = hopCount
  return claims
}
