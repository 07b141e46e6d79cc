/**
 * The host side of the one-call mandate path of the wasm module (assembly/mandate.ts, SPEC §5):
 * encodes a CaracalAuth's rules once, hands the module a token, and turns its verdict into the same
 * error, or the same claims, as the JS path (src/policy/claims.ts) gives. Claims are read back from
 * the spans the module leaves: plain strings are sliced out of the payload, and only what holds
 * escapes (and arrays) goes through JSON.parse, so an accepted token is never parsed twice.
 */
import { invalidToken } from '../errors.js'
import { JWS_ERRORS } from '../jws/compact.js'
import { CLAIM_ERRORS, assembleMandate, readChain, type VerifiedMandate } from '../policy/claims.js'
import type { MandateRules, MandateVerdict } from './types.js'

/** The exports of assembly/mandate.ts. */
export interface MandateExports {
  readonly memory: WebAssembly.Memory
  mandateVerify(slot: number, rsa: number, sigLen: number, len: number, dot1: number, dot2: number, nowSec: number, digestGiven: number): number
  mandateTokenPtr(): number
  mandatePayloadPtr(): number
  mandatePolicyPtr(): number
  mandateDigestPtr(): number
  mandateSpansPtr(): number
  mandateNumbersPtr(): number
  mandateReasonClaim(): number
  mandateClaimIndex(ptr: number, len: number, hop: number): number
}

/** Claim names by the module's index (assembly/mandate.ts); the tests check the two agree. */
export const CLAIM_NAMES = Object.freeze([
  'iss', 'aud', 'exp', 'iat', 'nbf', 'use', 'sub_type', 'scope', 'sub', 'client_id', 'sid', 'root_sid', 'jti', 'zone_id',
  'target', 'agent_session_id', 'delegation_edge_id', 'source_session_id', 'target_session_id', 'delegation_path',
  'delegation_chain', 'delegation_graph_epoch', 'hop_count', 'application_id', 'session_id', 'delegation_id',
] as const)
const C = Object.fromEntries(CLAIM_NAMES.map((name, i) => [name, i])) as Record<(typeof CLAIM_NAMES)[number], number>

/** The module's buffer sizes (assembly/mandate.ts): longer tokens and policies take the JS path. */
const TOKEN_BYTES = 16384
const POLICY_BYTES = 8192

const DEFER: MandateVerdict = Object.freeze({ kind: 'defer' })

/** Verdicts past OK (0), REFUSED (1) and DEFER (2), worded as the JS path words them. */
const REASONS: ReadonlyArray<(claim: string, rules: MandateRules) => string> = [
  () => JWS_ERRORS.outsideAlphabet,
  () => JWS_ERRORS.signature,
  () => JWS_ERRORS.notUtf8('payload'),
  () => JWS_ERRORS.notJson('payload'),
  () => JWS_ERRORS.notObject('payload'),
  () => CLAIM_ERRORS.issuer,
  () => CLAIM_ERRORS.audienceType,
  () => CLAIM_ERRORS.audienceMissing,
  () => CLAIM_ERRORS.audienceMismatch,
  (claim) => CLAIM_ERRORS.missing(claim),
  (claim) => CLAIM_ERRORS.notInteger(claim),
  (claim) => CLAIM_ERRORS.notString(claim),
  (claim) => CLAIM_ERRORS.notStrings(claim),
  () => CLAIM_ERRORS.clock,
  () => CLAIM_ERRORS.expired,
  () => CLAIM_ERRORS.notYetValid,
  () => CLAIM_ERRORS.issuedAhead,
  () => CLAIM_ERRORS.useValue,
  (_claim, rules) => CLAIM_ERRORS.useRequired(rules.claimRules.requiredUse),
  () => CLAIM_ERRORS.subType,
  () => CLAIM_ERRORS.scopeType,
  () => CLAIM_ERRORS.chainType,
  () => CLAIM_ERRORS.hopType,
]
const FIRST_REASON = 3

/**
 * Strings as the module compares them: WTF-8, i.e. UTF-8 that keeps a lone surrogate as three
 * bytes instead of U+FFFD, so that two strings are equal exactly when their encodings are. Runs
 * once per option string, when an auth first uses the module.
 */
export function wtf8(s: string): Buffer {
  const out: number[] = []
  for (let i = 0; i < s.length; i++) {
    let cp = s.charCodeAt(i)
    if (cp >= 0xd800 && cp < 0xdc00 && i + 1 < s.length) {
      const low = s.charCodeAt(i + 1)
      if (low >= 0xdc00 && low < 0xe000) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00)
        i++
      }
    }
    if (cp < 0x80) out.push(cp)
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f))
    else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f))
    else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f))
  }
  return Buffer.from(out)
}

/** The layout assembly/mandate.ts reads at POLICY; null when it does not fit there. */
function encodePolicy(rules: MandateRules): Uint8Array | null {
  const { claimRules: c, policy: p } = rules
  const lists: ReadonlyArray<readonly string[]> = [
    [c.issuer],
    [...c.audiences],
    p.expectedZoneId === undefined ? [] : [p.expectedZoneId],
    p.requiredScopes,
    p.requireChainContains,
    p.requiredTargets,
  ]
  const encoded = lists.map((list) => list.map(wtf8))
  const HEAD = 20 + 4 * lists.length
  let size = HEAD
  for (const list of encoded) size += 4 + list.reduce((n, b) => n + 4 + ((b.length + 3) & ~3), 0)
  if (size > POLICY_BYTES) return null
  const blob = new Uint8Array(size)
  const view = new DataView(blob.buffer)
  view.setFloat64(0, c.toleranceSec, true)
  view.setFloat64(8, p.maxHopCount, true)
  view.setUint32(16, (p.requireAgent ? 1 : 0) | (p.requireDelegation ? 2 : 0) | (c.requiredUse === 'session' ? 4 : 0), true)
  let at = HEAD
  encoded.forEach((list, i) => {
    view.setUint32(20 + 4 * i, at, true)
    view.setUint32(at, list.length, true)
    at += 4
    for (const bytes of list) {
      view.setUint32(at, bytes.length, true)
      blob.set(bytes, at + 4)
      at += 4 + ((bytes.length + 3) & ~3)
    }
  })
  return blob
}

interface Views {
  buffer: ArrayBuffer
  bytes: Buffer
  spans: Uint32Array
  numbers: Float64Array
}

/** One per module instance: the encodings of the rules, and views re-taken when memory grows. */
export class MandateChannel {
  readonly #e: MandateExports
  readonly #token: number
  readonly #payload: number
  readonly #digest: number
  readonly #encoded = new WeakMap<MandateRules, Uint8Array | null>()
  /** The encoding now in the module's POLICY buffer: copied again only when another auth calls. */
  #loaded: Uint8Array | null = null
  #views: Views | undefined

  constructor(exports: MandateExports) {
    this.#e = exports
    this.#token = exports.mandateTokenPtr()
    this.#payload = exports.mandatePayloadPtr()
    this.#digest = exports.mandateDigestPtr()
  }

  #view(): Views {
    const buffer = this.#e.memory.buffer
    let v = this.#views
    if (v === undefined || v.buffer !== buffer) {
      v = this.#views = {
        buffer,
        bytes: Buffer.from(buffer),
        spans: new Uint32Array(buffer, this.#e.mandateSpansPtr(), CLAIM_NAMES.length * 3),
        numbers: new Float64Array(buffer, this.#e.mandateNumbersPtr(), CLAIM_NAMES.length),
      }
    }
    return v
  }

  verify(slot: number, rsa: boolean, sigLen: number, token: string, dot1: number, dot2: number, rules: MandateRules, nowSec: number, digest?: Uint8Array): MandateVerdict {
    let policy = this.#encoded.get(rules)
    if (policy === undefined) {
      policy = encodePolicy(rules)
      this.#encoded.set(rules, policy)
    }
    if (policy === null || token.length > TOKEN_BYTES) return DEFER
    const v = this.#view()
    if (this.#loaded !== policy) {
      v.bytes.set(policy, this.#e.mandatePolicyPtr())
      this.#loaded = policy
    }
    // splitCompact has checked the token is ASCII: latin1 writes it byte for byte.
    v.bytes.write(token, this.#token, 'latin1')
    if (digest !== undefined) v.bytes.set(digest, this.#digest)
    const verdict = this.#e.mandateVerify(slot, rsa ? 1 : 0, sigLen, token.length, dot1, dot2, nowSec, digest === undefined ? 0 : 1)
    if (verdict === 0) return { kind: 'accepted', mandate: this.#claims(v) }
    if (verdict === 1) return { kind: 'refused', mandate: this.#claims(v) }
    if (verdict === 2) return DEFER
    const reason = REASONS[verdict - FIRST_REASON]
    const claim = CLAIM_NAMES[this.#e.mandateReasonClaim()] ?? ''
    // An unknown verdict would be a bug of the module: it must not let a token through.
    throw invalidToken(reason === undefined ? 'token could not be verified' : reason(claim, rules))
  }

  /** The claims of an accepted payload, from the spans the module left (types already checked). */
  #claims(v: Views): VerifiedMandate {
    const { bytes, spans, numbers } = v
    const base = this.#payload
    const text = (claim: number): string | undefined => {
      const flags = spans[claim * 3 + 2]!
      if (flags === 0) return undefined
      const start = base + spans[claim * 3]!
      const end = base + spans[claim * 3 + 1]!
      // Escapes (and arrays) are JSON.parse's to decode; plain literals are their own bytes.
      if ((flags & 0x1ff) !== 1) return JSON.parse(bytes.toString('utf8', start, end)) as string
      return bytes.toString((flags & 0x200) !== 0 ? 'utf8' : 'latin1', start + 1, end - 1)
    }
    const json = (claim: number): unknown => {
      if (spans[claim * 3 + 2] === 0) return undefined
      return JSON.parse(bytes.toString('utf8', base + spans[claim * 3]!, base + spans[claim * 3 + 1]!))
    }
    const integer = (claim: number): number | undefined => (spans[claim * 3 + 2] === 0 ? undefined : numbers[claim]!)
    const target = json(C.target) as string[] | undefined
    const path = json(C.delegation_path) as string[] | undefined
    return assembleMandate({
      sub: text(C.sub)!,
      clientId: text(C.client_id)!,
      sid: text(C.sid)!,
      rootSid: text(C.root_sid)!,
      use: text(C.use) as 'session' | 'resource',
      subType: text(C.sub_type) as 'user' | 'application',
      jti: text(C.jti)!,
      iat: numbers[C.iat]!,
      exp: numbers[C.exp]!,
      nbf: integer(C.nbf),
      scope: text(C.scope) ?? '',
      zoneId: text(C.zone_id),
      target: target === undefined ? undefined : Object.freeze(target),
      agentSessionId: text(C.agent_session_id),
      delegationEdgeId: text(C.delegation_edge_id),
      sourceSessionId: text(C.source_session_id),
      targetSessionId: text(C.target_session_id),
      delegationPath: path === undefined ? undefined : Object.freeze(path),
      delegationChain: readChain(json(C.delegation_chain)),
      graphEpoch: integer(C.delegation_graph_epoch),
      hopCount: integer(C.hop_count),
    })
  }
}
