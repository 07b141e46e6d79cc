// The whole cold path of a mandate in one call (docs/architecture.md): strict base64url of payload and
// signature, SHA-256 of the signing input, the signature, then the payload as UTF-8 JSON and the
// claim rules and policy options — the same checks, in the same order, as src/policy/claims.ts and
// src/policy/mandate-policy.ts, so that every backend gives the same answer and the same reason.
// The host reads the claims of an accepted mandate back from the spans this leaves in SPANS.
import { b64uDecode } from './base64url'
import {
  AGENT_SESSION_ID, APPLICATION_ID, AUD, CLAIMS, CLIENT_ID, DELEGATION_CHAIN, DELEGATION_EDGE_ID, DELEGATION_GRAPH_EPOCH,
  DELEGATION_PATH, EXP, HOP_COUNT, IAT, ISS, JTI, NBF, ROOT_SID, SCOPE, SID, SOURCE_SESSION_ID, SUB, SUB_TYPE, TARGET,
  TARGET_SESSION_ID, USE, ZONE_ID, claimIndex, named,
} from './claims'
import { J_ARRAY, J_NULL, J_NUMBER, J_STRING, memberValue, numberHasFraction, scanNumber, scanString, skipValue, skipWs, stringEscaped, stringNonAscii, typeOf, unescapeString } from './json'
import { ecVerify, ecVerifyDigest } from './p256'
import { rsaVerify } from './rsa'
import { shaInit, shaUpdate } from './sha256'
import { isUtf8 } from './utf8'

// Verdicts. The numbering is mirrored by src/backends/wasm-mandate.ts (REASONS).
const OK: i32 = 0
const REFUSED: i32 = 1 // claims valid, a policy option refuses: the host words the error
const DEFER: i32 = 2 // a number this reader does not decide (fraction or exponent): the host decides
const B64: i32 = 3
const SIG: i32 = 4
const NOT_UTF8: i32 = 5
const NOT_JSON: i32 = 6
const NOT_OBJECT: i32 = 7
const ISSUER: i32 = 8
const AUD_TYPE: i32 = 9
const AUD_MISSING: i32 = 10
const AUD_MISMATCH: i32 = 11
const MISSING: i32 = 12
const NOT_INTEGER: i32 = 13
const NOT_STRING: i32 = 14
const NOT_STRINGS: i32 = 15
const CLOCK: i32 = 16
const EXPIRED: i32 = 17
const NOT_YET: i32 = 18
const ISSUED_AHEAD: i32 = 19
const USE_VALUE: i32 = 20
const USE_REQUIRED: i32 = 21
const SUB_TYPE_VALUE: i32 = 22
const SCOPE_TYPE: i32 = 23
const CHAIN_TYPE: i32 = 24
const HOP_TYPE: i32 = 25
const OPTIONAL_STRING: i32 = 26

// Claim names and their indices are generated, with the host's CLAIM_NAMES, from one list
// (assembly/codegen/gen-claims.mjs → assembly/claims.ts).

// Buffers. The host writes the token to TOKEN and the encoded policy to POLICY (see `policy*`).
const TOKEN_BYTES: usize = 16384
const TOKEN: usize = memory.data(16384 + 16, 16)
const PAYLOAD: usize = memory.data(12288 + 16, 16)
const SIGNATURE: usize = memory.data(12288 + 16, 16)
const SCRATCH: usize = memory.data(12288 + 16, 16)
const SCRATCH2: usize = memory.data(12288 + 16, 16)
const POLICY_BYTES: usize = 8192
const POLICY: usize = memory.data(8192, 16)
const DIGEST_IN: usize = memory.data(32, 16)
/** Per claim: value start, value end (offsets into the payload), type | 0x100 escaped | 0x200 non-ASCII. */
const SPANS: usize = memory.data(CLAIMS * 12, 16)
/** Per claim: the value of an integer claim, as JSON.parse would give it. */
const NUMBERS: usize = memory.data(CLAIMS * 8, 16)
/** The claim a reason is about (MISSING, NOT_INTEGER, NOT_STRING, NOT_STRINGS). */
let reasonClaim: i32 = -1

export function mandateTokenPtr(): usize {
  return TOKEN
}
export function mandateTokenBytes(): usize {
  return TOKEN_BYTES
}
export function mandatePolicyBytes(): usize {
  return POLICY_BYTES
}
export function mandatePayloadPtr(): usize {
  return PAYLOAD
}
export function mandatePolicyPtr(): usize {
  return POLICY
}
export function mandateDigestPtr(): usize {
  return DIGEST_IN
}
export function mandateSpansPtr(): usize {
  return SPANS
}
export function mandateNumbersPtr(): usize {
  return NUMBERS
}
export function mandateReasonClaim(): i32 {
  return reasonClaim
}

// The encoded policy (src/backends/wasm-mandate.ts, encodePolicy): f64 leeway for exp, f64 leeway
// for nbf and iat ahead, f64 max hop count, u32 flags, then u32 offsets of six string lists — issuer, audiences, expected zone (0 or
// 1 entry), required scopes, required chain applications, required targets — each a u32 count
// and entries of u32 length + bytes (WTF-8), padded to 4.
const FLAG_AGENT: u32 = 1
const FLAG_DELEGATION: u32 = 2
const FLAG_USE_SESSION: u32 = 4
const L_ISSUER = 0
const L_AUDIENCES = 1
const L_ZONE = 2
const L_SCOPES = 3
const L_CHAIN = 4
const L_TARGETS = 5
const P_EXP_LEEWAY: usize = 0
const P_FUTURE_LEEWAY: usize = 8
const P_MAX_HOPS: usize = 16
const P_FLAGS: usize = 24
const P_LISTS: usize = 28

// @ts-ignore: decorator
@inline
function listAt(list: i32): usize {
  return POLICY + <usize>load<u32>(POLICY + P_LISTS + (<usize>list << 2))
}

// @ts-ignore: decorator
@inline
function listCount(list: i32): u32 {
  return load<u32>(listAt(list))
}

// @ts-ignore: decorator
@inline
function nextEntry(entry: usize): usize {
  return entry + 4 + ((<usize>load<u32>(entry) + 3) & ~<usize>3)
}

// @ts-ignore: decorator
@inline
function spanStart(claim: i32): usize {
  return PAYLOAD + <usize>load<u32>(SPANS + <usize>claim * 12)
}
// @ts-ignore: decorator
@inline
function spanEnd(claim: i32): usize {
  return PAYLOAD + <usize>load<u32>(SPANS + <usize>claim * 12 + 4)
}
// @ts-ignore: decorator
@inline
function spanType(claim: i32): i32 {
  return <i32>(load<u32>(SPANS + <usize>claim * 12 + 8) & 0xff)
}
// @ts-ignore: decorator
@inline
function spanEscaped(claim: i32): bool {
  return (load<u32>(SPANS + <usize>claim * 12 + 8) & 0x100) != 0
}

/**
 * Verifies the token at TOKEN (`len` bytes, dots at `dot1` and `dot2`, header already checked by
 * the host) with the key in `slot` (`sigLen` bytes of signature: 64 for ES256, the modulus length
 * for RS256), and applies the policy at POLICY at `nowSec`. With `digestGiven`, the SHA-256 of the
 * signing input is at DIGEST_IN (ES256 only). Returns a verdict (OK, REFUSED, DEFER or a reason).
 */
export function mandateVerify(slot: usize, rsa: bool, sigLen: usize, len: usize, dot1: usize, dot2: usize, nowSec: f64, digestGiven: bool): i32 {
  reasonClaim = -1
  if (len > TOKEN_BYTES) return DEFER
  // The same order as the host's own path: payload, then signature decoded, then checked.
  const payloadLen = b64uDecode(TOKEN + dot1 + 1, dot2 - dot1 - 1, PAYLOAD)
  if (payloadLen < 0) return B64
  store<u64>(PAYLOAD + <usize>payloadLen, 0)
  store<u64>(PAYLOAD + <usize>payloadLen + 8, 0)
  const signatureLen = b64uDecode(TOKEN + dot2 + 1, len - dot2 - 1, SIGNATURE)
  if (signatureLen < 0) return B64
  if (<usize>signatureLen != sigLen) return SIG
  let valid: bool
  if (rsa) {
    shaInit()
    shaUpdate(TOKEN, dot2)
    valid = rsaVerify(slot, SIGNATURE, sigLen)
  } else if (digestGiven) {
    valid = ecVerifyDigest(slot, DIGEST_IN, SIGNATURE)
  } else {
    shaInit()
    shaUpdate(TOKEN, dot2)
    valid = ecVerify(slot, SIGNATURE)
  }
  if (!valid) return SIG
  if (!isUtf8(PAYLOAD, <usize>payloadLen)) return NOT_UTF8
  const shape = readObject(PAYLOAD, PAYLOAD + <usize>payloadLen)
  if (shape != OK) return shape
  const rules = claimRules(nowSec)
  if (rules != OK) return rules
  return policy() ? OK : REFUSED
}

/** Records the last value of each known member of the top-level object (JSON.parse: last wins). */
function readObject(start: usize, end: usize): i32 {
  memory.fill(SPANS, 0, <usize>CLAIMS * 12)
  let p = skipWs(start)
  if (load<u8>(p) != 0x7b) {
    const q = skipValue(p)
    return q != 0 && skipWs(q) == end ? NOT_OBJECT : NOT_JSON
  }
  p = skipWs(p + 1)
  if (load<u8>(p) == 0x7d) return skipWs(p + 1) == end ? OK : NOT_JSON
  while (true) {
    if (load<u8>(p) != 0x22) return NOT_JSON
    const nameEnd = scanString(p)
    if (nameEnd == 0) return NOT_JSON
    const claim = stringEscaped ? claimIndex(SCRATCH, unescapeString(p, nameEnd, SCRATCH), false) : claimIndex(p + 1, nameEnd - p - 2, false)
    p = skipWs(nameEnd)
    if (load<u8>(p) != 0x3a) return NOT_JSON
    p = skipWs(p + 1)
    const valueEnd = skipValue(p)
    if (valueEnd == 0) return NOT_JSON
    if (claim >= 0) {
      const at = SPANS + <usize>claim * 12
      const type = typeOf(load<u8>(p))
      // For a string value, skipValue's last scanString was that literal's own.
      const flags: u32 = type == J_STRING ? (stringEscaped ? 0x100 : 0) | (stringNonAscii ? 0x200 : 0) : 0
      store<u32>(at, <u32>(p - PAYLOAD))
      store<u32>(at, <u32>(valueEnd - PAYLOAD), 4)
      store<u32>(at, <u32>type | flags, 8)
    }
    p = skipWs(valueEnd)
    const c = load<u8>(p)
    if (c == 0x2c) {
      p = skipWs(p + 1)
      continue
    }
    if (c != 0x7d) return NOT_JSON
    return skipWs(p + 1) == end ? OK : NOT_JSON
  }
}

/** The registered claim rules, in the order of readMandate (src/policy/claims.ts). */
function claimRules(nowSec: f64): i32 {
  if (spanType(ISS) != J_STRING || !stringEqualsEntry(ISS, listAt(L_ISSUER) + 4)) return ISSUER
  const aud = audience()
  if (aud != OK) return aud
  let r = integerClaim(EXP, true, false)
  if (r != OK) return r
  r = integerClaim(IAT, true, false)
  if (r != OK) return r
  // nbf: null is no integer, as jose has it (it is not "absent").
  r = integerClaim(NBF, false, false)
  if (r != OK) return r
  // checkTimes
  if (!isFinite(nowSec)) return CLOCK
  const future = nowSec + load<f64>(POLICY + P_FUTURE_LEEWAY)
  if (load<f64>(NUMBERS + EXP * 8) <= nowSec - load<f64>(POLICY + P_EXP_LEEWAY)) return EXPIRED
  if (spanType(NBF) != 0 && load<f64>(NUMBERS + NBF * 8) > future) return NOT_YET
  if (load<f64>(NUMBERS + IAT * 8) > future) return ISSUED_AHEAD

  r = stringClaim(USE, true)
  if (r != OK) return r
  const session = stringIs(USE, 'session')
  if (!session && !stringIs(USE, 'resource')) return USE_VALUE
  if (session != ((load<u32>(POLICY + P_FLAGS) & FLAG_USE_SESSION) != 0)) return USE_REQUIRED
  r = stringClaim(SUB_TYPE, true)
  if (r != OK) return r
  if (!stringIs(SUB_TYPE, 'user') && !stringIs(SUB_TYPE, 'application')) return SUB_TYPE_VALUE
  // A null scope is no scope ("").
  if (spanType(SCOPE) == J_NULL) clearSpan(SCOPE)
  if (spanType(SCOPE) != 0 && spanType(SCOPE) != J_STRING) return SCOPE_TYPE

  r = stringClaim(SUB, true)
  if (r == OK) r = stringClaim(CLIENT_ID, true)
  if (r == OK) r = stringClaim(SID, true)
  if (r == OK) r = stringClaim(ROOT_SID, true)
  if (r == OK) r = stringClaim(JTI, true)
  if (r == OK) r = stringClaim(ZONE_ID, false)
  if (r == OK) r = stringArray(TARGET)
  if (r == OK) r = stringClaim(AGENT_SESSION_ID, false)
  if (r == OK) r = stringClaim(DELEGATION_EDGE_ID, false)
  if (r == OK) r = stringClaim(SOURCE_SESSION_ID, false)
  if (r == OK) r = stringClaim(TARGET_SESSION_ID, false)
  if (r == OK) r = stringArray(DELEGATION_PATH)
  if (r == OK) r = chain()
  if (r == OK) r = integerClaim(DELEGATION_GRAPH_EPOCH, false, true)
  if (r == OK) r = integerClaim(HOP_COUNT, false, true)
  return r
}

/** Makes `claim` absent: what the host and the policy then see for an optional "" or null. */
// @ts-ignore: decorator
@inline
function clearSpan(claim: i32): void {
  store<u32>(SPANS + <usize>claim * 12, 0, 8)
}

function audience(): i32 {
  const type = spanType(AUD)
  if (type == J_STRING) return audienceAccepted(spanStart(AUD), spanEnd(AUD), spanEscaped(AUD)) ? OK : AUD_MISMATCH
  if (type == 0) return AUD_MISSING
  if (type != J_ARRAY) return AUD_TYPE
  // Every entry must be a string before any is compared (checkAudience does the same).
  let p = skipWs(spanStart(AUD) + 1)
  if (load<u8>(p) == 0x5d) return AUD_TYPE
  while (true) {
    if (load<u8>(p) != 0x22) return AUD_TYPE
    p = skipWs(skipValue(p))
    if (load<u8>(p) != 0x2c) break
    p = skipWs(p + 1)
  }
  p = skipWs(spanStart(AUD) + 1)
  while (true) {
    const end = scanString(p)
    if (audienceAccepted(p, end, stringEscaped)) return OK
    p = skipWs(end)
    if (load<u8>(p) != 0x2c) return AUD_MISMATCH
    p = skipWs(p + 1)
  }
}

function audienceAccepted(start: usize, end: usize, escaped: bool): bool {
  let entry = listAt(L_AUDIENCES)
  const n = load<u32>(entry)
  entry += 4
  for (let i: u32 = 0; i < n; i++) {
    if (literalEquals(start, end, escaped, entry)) return true
    entry = nextEntry(entry)
  }
  return false
}

/**
 * A non-negative safe integer, or absent when not `required` (and, with `nullable`, null is absent
 * too); its value goes to NUMBERS.
 */
function integerClaim(claim: i32, required: bool, nullable: bool): i32 {
  const type = spanType(claim)
  if (type == 0) {
    if (!required) return OK
    reasonClaim = claim
    return MISSING
  }
  if (nullable && type == J_NULL) {
    clearSpan(claim)
    return OK
  }
  reasonClaim = claim
  if (type != J_NUMBER) return NOT_INTEGER
  let p = spanStart(claim)
  const end = spanEnd(claim)
  scanNumber(p)
  // 1.0, 1e3 or 0.5e1 are integers to JSON.parse, and 1.00000000000000001 rounds to one: only
  // the host's number parser decides those exactly.
  if (numberHasFraction) return DEFER
  const negative = load<u8>(p) == 0x2d
  if (negative) p++
  // More than 16 digits is beyond 2^53 whatever they are (leading zeros are not JSON).
  if (end - p > 16) return NOT_INTEGER
  let v: u64 = 0
  while (p < end) {
    v = v * 10 + <u64>(load<u8>(p) - 0x30)
    p++
  }
  if (v > 9007199254740991) return NOT_INTEGER
  if (negative) {
    if (v != 0) return NOT_INTEGER
    store<f64>(NUMBERS + <usize>claim * 8, -0.0) // JSON.parse('-0') is -0, and -0 ≥ 0
  } else {
    store<f64>(NUMBERS + <usize>claim * 8, <f64>v)
  }
  reasonClaim = -1
  return OK
}

/** `required`: a non-empty string. Otherwise a string or null, where "" and null are absent. */
function stringClaim(claim: i32, required: bool): i32 {
  const type = spanType(claim)
  if (type == 0) {
    if (!required) return OK
    reasonClaim = claim
    return MISSING
  }
  // An escape always stands for at least one code unit: a literal is empty only as "".
  const empty = type == J_STRING && spanEnd(claim) - spanStart(claim) == 2
  if (required) {
    if (type == J_STRING && !empty) return OK
    reasonClaim = claim
    return NOT_STRING
  }
  if (type == J_NULL || empty) {
    clearSpan(claim)
    return OK
  }
  if (type == J_STRING) return OK
  reasonClaim = claim
  return OPTIONAL_STRING
}

/** Absent (or null), or an array of non-empty strings. */
function stringArray(claim: i32): i32 {
  const type = spanType(claim)
  if (type == 0) return OK
  if (type == J_NULL) {
    clearSpan(claim)
    return OK
  }
  reasonClaim = claim
  if (type != J_ARRAY) return NOT_STRINGS
  let p = skipWs(spanStart(claim) + 1)
  if (load<u8>(p) != 0x5d) {
    while (true) {
      if (load<u8>(p) != 0x22) return NOT_STRINGS
      const end = scanString(p)
      if (end - p == 2) return NOT_STRINGS
      p = skipWs(end)
      if (load<u8>(p) != 0x2c) break
      p = skipWs(p + 1)
    }
  }
  reasonClaim = -1
  return OK
}

// The members of the chain entry being read: start, end and escaped flag of the last of each.
let hopAppStart: usize = 0
let hopAppEnd: usize = 0
let hopAppEscaped = false

/** delegation_chain: absent (or null), or an array of objects with application_id and optional ids. */
function chain(): i32 {
  const type = spanType(DELEGATION_CHAIN)
  if (type == 0) return OK
  if (type == J_NULL) {
    clearSpan(DELEGATION_CHAIN)
    return OK
  }
  if (type != J_ARRAY) return CHAIN_TYPE
  let p = skipWs(spanStart(DELEGATION_CHAIN) + 1)
  if (load<u8>(p) == 0x5d) return OK
  while (true) {
    if (load<u8>(p) != 0x7b) return HOP_TYPE
    const end = skipValue(p)
    const r = readHop(p)
    if (r != OK) return r
    p = skipWs(end)
    if (load<u8>(p) != 0x2c) return OK
    p = skipWs(p + 1)
  }
}

/** Checks one chain entry (an object at `p`) and leaves its application_id in hopApp*. */
function readHop(p: usize): i32 {
  let appType = 0
  let sessionType = 0
  let delegationType = 0
  hopAppStart = 0
  hopAppEnd = 0
  p = skipWs(p + 1)
  if (load<u8>(p) != 0x7d) {
    while (true) {
      const nameEnd = scanString(p)
      const member = stringEscaped ? claimIndex(SCRATCH, unescapeString(p, nameEnd, SCRATCH), true) : claimIndex(p + 1, nameEnd - p - 2, true)
      const v = memberValue(p)
      const end = skipValue(v)
      const type = typeOf(load<u8>(v))
      if (member == APPLICATION_ID) {
        appType = type
        hopAppStart = v
        hopAppEnd = end
        hopAppEscaped = stringEscaped
      } else if (member == AGENT_SESSION_ID) {
        sessionType = type
      } else if (member == DELEGATION_EDGE_ID) {
        delegationType = type
      }
      p = skipWs(end)
      if (load<u8>(p) != 0x2c) break
      p = skipWs(p + 1)
    }
  }
  if (appType == 0) {
    reasonClaim = APPLICATION_ID
    return MISSING
  }
  if (appType != J_STRING || hopAppEnd - hopAppStart == 2) {
    reasonClaim = APPLICATION_ID
    return NOT_STRING
  }
  // The optional ids: a string or null ("" and null stand for none).
  if (sessionType != 0 && sessionType != J_STRING && sessionType != J_NULL) {
    reasonClaim = AGENT_SESSION_ID
    return OPTIONAL_STRING
  }
  if (delegationType != 0 && delegationType != J_STRING && delegationType != J_NULL) {
    reasonClaim = DELEGATION_EDGE_ID
    return OPTIONAL_STRING
  }
  return OK
}

/** The policy options, in the order of checkPolicy (src/policy/mandate-policy.ts). */
function policy(): bool {
  const flags = load<u32>(POLICY + P_FLAGS)
  let list = listAt(L_ZONE)
  if (load<u32>(list) != 0 && (spanType(ZONE_ID) == 0 || !stringEqualsEntry(ZONE_ID, list + 4))) return false
  list = listAt(L_SCOPES)
  let n = load<u32>(list)
  if (n > 0) {
    // An absent scope reads as "": no required scope is in it.
    if (spanType(SCOPE) == 0) return false
    const scopeLen = valueBytes(SCOPE, SCRATCH2)
    let entry = list + 4
    for (let i: u32 = 0; i < n; i++) {
      if (!hasScope(SCRATCH2, scopeLen, entry + 4, <usize>load<u32>(entry))) return false
      entry = nextEntry(entry)
    }
  }
  if ((flags & FLAG_AGENT) != 0 && spanType(AGENT_SESSION_ID) == 0) return false
  if ((flags & FLAG_DELEGATION) != 0 && spanType(DELEGATION_EDGE_ID) == 0) return false
  list = listAt(L_CHAIN)
  n = load<u32>(list)
  let entry = list + 4
  for (let i: u32 = 0; i < n; i++) {
    if (!chainHas(entry)) return false
    entry = nextEntry(entry)
  }
  if (spanType(HOP_COUNT) != 0 && load<f64>(NUMBERS + HOP_COUNT * 8) > load<f64>(POLICY + P_MAX_HOPS)) return false
  list = listAt(L_TARGETS)
  n = load<u32>(list)
  entry = list + 4
  for (let i: u32 = 0; i < n; i++) {
    if (!arrayHas(TARGET, entry)) return false
    entry = nextEntry(entry)
  }
  return true
}

/** Whether some chain entry's application_id equals the policy entry at `entry`. */
function chainHas(entry: usize): bool {
  if (spanType(DELEGATION_CHAIN) == 0) return false
  let p = skipWs(spanStart(DELEGATION_CHAIN) + 1)
  if (load<u8>(p) == 0x5d) return false
  while (true) {
    const end = skipValue(p)
    readHop(p)
    if (literalEquals(hopAppStart, hopAppEnd, hopAppEscaped, entry)) return true
    p = skipWs(end)
    if (load<u8>(p) != 0x2c) return false
    p = skipWs(p + 1)
  }
}

/** Whether the string array `claim` holds the policy entry at `entry`. */
function arrayHas(claim: i32, entry: usize): bool {
  if (spanType(claim) == 0) return false
  let p = skipWs(spanStart(claim) + 1)
  if (load<u8>(p) == 0x5d) return false
  while (true) {
    const end = scanString(p)
    if (literalEquals(p, end, stringEscaped, entry)) return true
    p = skipWs(end)
    if (load<u8>(p) != 0x2c) return false
    p = skipWs(p + 1)
  }
}

/** isScopeSpace of src/policy/claims.ts: ASCII whitespace (space, tab, LF, VT, FF, CR). */
// @ts-ignore: decorator
@inline
function isScopeSpace(c: u32): bool {
  return c == 0x20 || c - 0x09 <= 0x0d - 0x09
}

/** hasScope of src/policy/claims.ts over bytes: `wanted` as a whole whitespace-separated entry. */
function hasScope(scope: usize, scopeLen: usize, wanted: usize, wantedLen: usize): bool {
  if (wantedLen > scopeLen) return false
  const last = scopeLen - wantedLen
  for (let at: usize = 0; at <= last; at++) {
    if (at > 0 && !isScopeSpace(load<u8>(scope + at - 1))) continue
    const end = at + wantedLen
    if (end != scopeLen && !isScopeSpace(load<u8>(scope + end))) continue
    if (memory.compare(scope + at, wanted, wantedLen) == 0) return true
  }
  return false
}

/** The value of string claim `claim` as WTF-8 at `out` (the raw bytes when it has no escape). */
function valueBytes(claim: i32, out: usize): usize {
  const start = spanStart(claim)
  const end = spanEnd(claim)
  if (spanEscaped(claim)) return unescapeString(start, end, out)
  memory.copy(out, start + 1, end - start - 2)
  return end - start - 2
}

function stringEqualsEntry(claim: i32, entry: usize): bool {
  return literalEquals(spanStart(claim), spanEnd(claim), spanEscaped(claim), entry)
}

/** Whether the string literal [start, end) has the value of the policy entry at `entry`. */
function literalEquals(start: usize, end: usize, escaped: bool, entry: usize): bool {
  const want = <usize>load<u32>(entry)
  if (!escaped) return end - start - 2 == want && memory.compare(start + 1, entry + 4, want) == 0
  const n = unescapeString(start, end, SCRATCH)
  return n == want && memory.compare(SCRATCH, entry + 4, want) == 0
}

/** Whether string claim `claim` has the ASCII value `word`. */
function stringIs(claim: i32, word: string): bool {
  const start = spanStart(claim)
  const end = spanEnd(claim)
  if (!spanEscaped(claim)) return end - start - 2 == <usize>word.length && named(start + 1, word)
  const n = unescapeString(start, end, SCRATCH)
  return n == <usize>word.length && named(SCRATCH, word)
}

/** For the tests: the index of the claim name at `p` (`len` bytes), as the payload reader sees it. */
export function mandateClaimIndex(p: usize, len: usize, hop: bool): i32 {
  return claimIndex(p, len, hop)
}

