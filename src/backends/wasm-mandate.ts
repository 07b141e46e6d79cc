/**
 * The host side of the one-call mandate path of the wasm module (assembly/mandate.ts, docs/architecture.md "Backends"):
 * encodes a CaracalAuth's rules once, hands the module a token, and turns its verdict into the same
 * error, or the same claims, as the JS path (src/policy/claims.ts) gives. Claims are read back from
 * the spans the module leaves: plain strings are sliced out of the payload, and only what holds
 * escapes (and arrays) goes through JSON.parse, so an accepted token is never parsed twice.
 */
import { asciiText, byteView, utf8Text, writeAscii } from '#bytes'
import { invalidToken } from '../errors.js'
import { JWS_ERRORS } from '../jws/compact.js'
import { CLAIM_ERRORS, assembleMandate, readChain, type VerifiedMandate } from '../policy/claims.js'
import { CLAIM_NAMES } from './claim-names.js'
import type { MandateRules, MandateVerdict } from './types.js'

export { CLAIM_NAMES }

/** The exports of assembly/mandate.ts. */
export interface MandateExports {
  readonly memory: WebAssembly.Memory
  mandateVerify(
    slot: number,
    rsa: number,
    sigLen: number,
    len: number,
    dot1: number,
    dot2: number,
    nowSec: number,
    digestGiven: number,
  ): number
  mandateTokenPtr(): number
  mandateTokenBytes(): number
  mandatePolicyBytes(): number
  mandatePayloadPtr(): number
  mandatePolicyPtr(): number
  mandateDigestPtr(): number
  mandateSpansPtr(): number
  mandateNumbersPtr(): number
  mandateReasonClaim(): number
  mandateClaimIndex(ptr: number, len: number, hop: number): number
}

/** Claim indices by name (CLAIM_NAMES is generated with the module's table, assembly/claims.ts). */
const C = Object.fromEntries(CLAIM_NAMES.map((name, i) => [name, i])) as Record<(typeof CLAIM_NAMES)[number], number>

/** The verdict that hands a token to the JS path. */
export const DEFER: MandateVerdict = Object.freeze({ kind: 'defer' })

/**
 * Verdicts past OK (0), REFUSED (1) and DEFER (2), worded as the JS path words them, in the order
 * of the verdict constants of assembly/mandate.ts (B64 = 3 first).
 */
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
  (claim) => CLAIM_ERRORS.optionalString(claim),
]
const FIRST_REASON = 3

/**
 * Strings as the module compares them: WTF-8, i.e. UTF-8 that keeps a lone surrogate as three
 * bytes instead of U+FFFD, so that two strings are equal exactly when their encodings are. Runs
 * once per option string, when an auth first uses the module.
 */
export function wtf8(s: string): Uint8Array {
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
  return new Uint8Array(out)
}

/** The layout assembly/mandate.ts reads at POLICY; null when it is over `maxBytes`. */
function encodePolicy(rules: MandateRules, maxBytes: number): Uint8Array | null {
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
  const HEAD = 28 + 4 * lists.length
  let size = HEAD
  for (const list of encoded) size += 4 + list.reduce((n, b) => n + 4 + ((b.length + 3) & ~3), 0)
  if (size > maxBytes) return null
  const blob = new Uint8Array(size)
  const view = new DataView(blob.buffer)
  view.setFloat64(0, c.expLeewaySec, true)
  view.setFloat64(8, c.futureLeewaySec, true)
  view.setFloat64(16, p.maxHopCount, true)
  view.setUint32(
    24,
    (p.requireAgent ? 1 : 0) | (p.requireDelegation ? 2 : 0) | (c.requiredUse === 'session' ? 4 : 0),
    true,
  )
  let at = HEAD
  encoded.forEach((list, i) => {
    view.setUint32(28 + 4 * i, at, true)
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
  bytes: Uint8Array
  spans: Uint32Array
  numbers: Float64Array
}

/** One per module instance: the encodings of the rules, and views re-taken when memory grows. */
export class MandateChannel {
  readonly #e: MandateExports
  readonly #token: number
  readonly #payload: number
  readonly #digest: number
  /** The module's buffer sizes: longer tokens and larger policies take the JS path. */
  readonly #tokenBytes: number
  readonly #policyBytes: number
  readonly #encoded = new WeakMap<MandateRules, Uint8Array | null>()
  /** The encoding now in the module's POLICY buffer: copied again only when another auth calls. */
  #loaded: Uint8Array | null = null
  #views: Views | undefined

  constructor(exports: MandateExports) {
    this.#e = exports
    this.#token = exports.mandateTokenPtr()
    this.#payload = exports.mandatePayloadPtr()
    this.#digest = exports.mandateDigestPtr()
    this.#tokenBytes = exports.mandateTokenBytes()
    this.#policyBytes = exports.mandatePolicyBytes()
  }

  #view(): Views {
    const buffer = this.#e.memory.buffer
    let v = this.#views
    if (v === undefined || v.buffer !== buffer) {
      v = this.#views = {
        buffer,
        bytes: byteView(buffer),
        spans: new Uint32Array(buffer, this.#e.mandateSpansPtr(), CLAIM_NAMES.length * 3),
        numbers: new Float64Array(buffer, this.#e.mandateNumbersPtr(), CLAIM_NAMES.length),
      }
    }
    return v
  }

  /**
   * With `sha256`, the signing input is hashed by it (ES256 only), straight from the token's bytes
   * in linear memory, and the module takes the digest instead of hashing itself.
   */
  verify(
    slot: number,
    rsa: boolean,
    sigLen: number,
    token: string,
    dot1: number,
    dot2: number,
    rules: MandateRules,
    nowSec: number,
    sha256?: (bytes: Uint8Array) => Uint8Array,
  ): MandateVerdict {
    let policy = this.#encoded.get(rules)
    if (policy === undefined) {
      policy = encodePolicy(rules, this.#policyBytes)
      this.#encoded.set(rules, policy)
    }
    if (policy === null || token.length > this.#tokenBytes) return DEFER
    const v = this.#view()
    if (this.#loaded !== policy) {
      v.bytes.set(policy, this.#e.mandatePolicyPtr())
      this.#loaded = policy
    }
    // splitCompact has checked the token is ASCII: latin1 writes it byte for byte.
    writeAscii(v.bytes, token, this.#token)
    if (sha256 !== undefined) v.bytes.set(sha256(v.bytes.subarray(this.#token, this.#token + dot2)), this.#digest)
    const verdict = this.#e.mandateVerify(
      slot,
      rsa ? 1 : 0,
      sigLen,
      token.length,
      dot1,
      dot2,
      nowSec,
      sha256 === undefined ? 0 : 1,
    )
    // The call may have grown memory (a key turning hot takes its table: assembly/p256-tables.ts),
    // which detaches the views taken before it.
    if (verdict === 0) return { kind: 'accepted', mandate: this.#claims(this.#view()) }
    if (verdict === 1) return { kind: 'refused', mandate: this.#claims(this.#view()) }
    if (verdict === 2) return DEFER
    const reason = REASONS[verdict - FIRST_REASON]
    const claim = CLAIM_NAMES[this.#e.mandateReasonClaim()] ?? ''
    // An unknown verdict would be a bug of the module: it must not let a token through.
    throw invalidToken(reason === undefined ? 'token could not be verified' : reason(claim, rules))
  }

  /** The claims of an accepted payload, from the spans the module left (types already checked). */
  #claims(v: Views): VerifiedMandate {
    const numbers = v.numbers
    const target = this.#json(v, C.target) as string[] | undefined
    const path = this.#json(v, C.delegation_path) as string[] | undefined
    return assembleMandate({
      sub: this.#text(v, C.sub)!,
      clientId: this.#text(v, C.client_id)!,
      sid: this.#text(v, C.sid)!,
      rootSid: this.#text(v, C.root_sid)!,
      use: this.#text(v, C.use) as 'session' | 'resource',
      subType: this.#text(v, C.sub_type) as 'user' | 'application',
      jti: this.#text(v, C.jti)!,
      iat: numbers[C.iat]!,
      exp: numbers[C.exp]!,
      nbf: this.#integer(v, C.nbf),
      scope: this.#text(v, C.scope) ?? '',
      zoneId: this.#text(v, C.zone_id),
      target: target === undefined ? undefined : Object.freeze(target),
      agentSessionId: this.#text(v, C.agent_session_id),
      delegationEdgeId: this.#text(v, C.delegation_edge_id),
      sourceSessionId: this.#text(v, C.source_session_id),
      targetSessionId: this.#text(v, C.target_session_id),
      delegationPath: path === undefined ? undefined : Object.freeze(path),
      delegationChain: readChain(this.#json(v, C.delegation_chain)),
      graphEpoch: this.#integer(v, C.delegation_graph_epoch),
      hopCount: this.#integer(v, C.hop_count),
    })
  }

  /** A string claim: plain literals are their own bytes; escapes are JSON.parse's to decode. */
  #text(v: Views, claim: number): string | undefined {
    const at = claim * 3
    const flags = v.spans[at + 2]!
    if (flags === 0) return undefined
    const start = this.#payload + v.spans[at]!
    const end = this.#payload + v.spans[at + 1]!
    if ((flags & 0x1ff) !== 1) return JSON.parse(utf8Text(v.bytes, start, end)!) as string
    return (flags & 0x200) !== 0 ? utf8Text(v.bytes, start + 1, end - 1)! : asciiText(v.bytes, start + 1, end - 1)
  }

  /** An array claim (or anything else), through JSON.parse. */
  #json(v: Views, claim: number): unknown {
    const at = claim * 3
    if (v.spans[at + 2] === 0) return undefined
    return JSON.parse(utf8Text(v.bytes, this.#payload + v.spans[at]!, this.#payload + v.spans[at + 1]!)!)
  }

  #integer(v: Views, claim: number): number | undefined {
    return v.spans[claim * 3 + 2] === 0 ? undefined : v.numbers[claim]!
  }
}
