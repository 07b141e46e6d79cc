/**
 * Reads a verified payload into the `Claims` shape (docs/architecture.md "Claims") and applies the registered
 * claim rules of README "What is checked": types, iss, aud, exp/nbf/iat, use. Every failure is `invalid_token`.
 * As the plain Caracal verifier reads them: an optional string claim that is "" or null is absent, as is
 * an optional array or integer claim that is null (nbf excepted: jose refuses a null nbf); the hops of
 * `delegation_chain` are `{ application_id, agent_session_id, delegation_edge_id }`, as the STS writes them.
 */
import { invalidToken } from '../errors.js'

export interface DelegationHop {
  readonly applicationId: string
  readonly sessionId?: string
  readonly delegationId?: string
}

export interface Claims {
  readonly sub: string
  readonly zoneId?: string
  readonly clientId: string
  readonly authorityRecordId: string
  readonly rootAuthorityRecordId: string
  readonly use: 'session' | 'resource'
  readonly subType: 'user' | 'application'
  readonly jti: string
  readonly issuedAt: number
  readonly expiresAt: number
  readonly scope: string
  readonly targetResources?: readonly string[]
  readonly sessionId?: string
  readonly delegationId?: string
  readonly sourceSessionId?: string
  readonly targetSessionId?: string
  readonly delegationPath?: readonly string[]
  readonly delegationChain?: readonly DelegationHop[]
  readonly graphEpoch?: number
  readonly hopCount?: number
}

export interface ClaimRules {
  readonly issuer: string
  readonly audiences: ReadonlySet<string>
  readonly requiredUse: string
  /** A mandate is expired once `exp <= now - expLeewaySec` (0 unless `clockToleranceSec` is set). */
  readonly expLeewaySec: number
  /** How far `nbf` and `iat` may be ahead of now (60 s unless `clockToleranceSec` is set). */
  readonly futureLeewaySec: number
}

/** The leeways when `clockToleranceSec` is not set (README "Options"). */
export const DEFAULT_EXP_LEEWAY_SEC = 0
export const DEFAULT_FUTURE_LEEWAY_SEC = 60

/** What the verified-token cache keeps: the claims plus what each later check needs. */
export interface VerifiedMandate {
  readonly claims: Claims
  readonly notBefore: number | undefined
  /** Application ids of `delegation_chain`, when it is present. */
  readonly chainApplications: readonly string[] | undefined
  /** sid, root_sid, agent_session_id, delegation_edge_id: those present, each once (docs/architecture.md "Revocation"). */
  readonly anchors: readonly string[]
}

/** Every way a payload can fail the claim rules, worded once for the JS reader and the wasm one. */
export const CLAIM_ERRORS = Object.freeze({
  issuer: 'issuer mismatch',
  audienceType: 'aud must be a string or an array of strings',
  audienceMissing: 'aud missing',
  audienceMismatch: 'audience mismatch',
  clock: 'the verifier clock gave no valid time',
  expired: 'token expired',
  notYetValid: 'token not yet valid (nbf)',
  issuedAhead: 'token issued in the future (iat)',
  useValue: 'use must be "session" or "resource"',
  useRequired: (use: string) => `mandate use is not "${use}"`,
  subType: 'sub_type must be "user" or "application"',
  scopeType: 'scope must be a string',
  chainType: 'delegation_chain must be an array',
  hopType: 'delegation_chain entries must be objects',
  missing: (name: string) => `${name} missing`,
  notInteger: (name: string) => `${name} must be a non-negative integer`,
  /** A required string claim (or a hop's application_id). */
  notString: (name: string) => `${name} must be a non-empty string`,
  /** An optional string claim: "" and null stand for none, anything else but a string is refused. */
  optionalString: (name: string) => `${name} must be a string or null`,
  notStrings: (name: string) => `${name} must be an array of non-empty strings`,
})

/** The values of a mandate that passed the claim rules, before they take the `Claims` shape. */
export interface MandateFields {
  readonly sub: string
  readonly clientId: string
  readonly sid: string
  readonly rootSid: string
  readonly use: 'session' | 'resource'
  readonly subType: 'user' | 'application'
  readonly jti: string
  readonly iat: number
  readonly exp: number
  readonly nbf: number | undefined
  readonly scope: string
  readonly zoneId: string | undefined
  readonly target: readonly string[] | undefined
  readonly agentSessionId: string | undefined
  readonly delegationEdgeId: string | undefined
  readonly sourceSessionId: string | undefined
  readonly targetSessionId: string | undefined
  readonly delegationPath: readonly string[] | undefined
  readonly delegationChain: readonly DelegationHop[] | undefined
  readonly graphEpoch: number | undefined
  readonly hopCount: number | undefined
}

export function readMandate(p: Record<string, unknown>, rules: ClaimRules, nowSec: number): VerifiedMandate {
  if (p.iss !== rules.issuer) throw invalidToken(CLAIM_ERRORS.issuer)
  checkAudience(p.aud, rules.audiences)
  const exp = integer(p.exp, 'exp', true)!
  const iat = integer(p.iat, 'iat', true)!
  // A null nbf is no integer (jose, which the plain verifier uses, refuses it too).
  const nbf = integer(p.nbf, 'nbf', false)
  checkTimes(exp, iat, nbf, nowSec, rules)

  const use = string(p.use, 'use')
  if (use !== 'session' && use !== 'resource') throw invalidToken(CLAIM_ERRORS.useValue)
  if (use !== rules.requiredUse) throw invalidToken(CLAIM_ERRORS.useRequired(rules.requiredUse))
  const subType = string(p.sub_type, 'sub_type')
  if (subType !== 'user' && subType !== 'application') throw invalidToken(CLAIM_ERRORS.subType)
  const scope = p.scope === undefined || p.scope === null ? '' : p.scope
  if (typeof scope !== 'string') throw invalidToken(CLAIM_ERRORS.scopeType)

  return assembleMandate({
    sub: string(p.sub, 'sub'),
    clientId: string(p.client_id, 'client_id'),
    sid: string(p.sid, 'sid'),
    rootSid: string(p.root_sid, 'root_sid'),
    use,
    subType,
    jti: string(p.jti, 'jti'),
    iat,
    exp,
    nbf,
    scope,
    zoneId: optionalString(p.zone_id, 'zone_id'),
    target: stringArray(p.target, 'target'),
    agentSessionId: optionalString(p.agent_session_id, 'agent_session_id'),
    delegationEdgeId: optionalString(p.delegation_edge_id, 'delegation_edge_id'),
    sourceSessionId: optionalString(p.source_session_id, 'source_session_id'),
    targetSessionId: optionalString(p.target_session_id, 'target_session_id'),
    delegationPath: stringArray(p.delegation_path, 'delegation_path'),
    delegationChain: readChain(p.delegation_chain),
    graphEpoch: optionalInteger(p.delegation_graph_epoch, 'delegation_graph_epoch'),
    hopCount: optionalInteger(p.hop_count, 'hop_count'),
  })
}

/** The `Claims` shape and what later checks need; the one constructor of a VerifiedMandate. */
export function assembleMandate(f: MandateFields): VerifiedMandate {
  const claims: Mutable<Claims> = {
    sub: f.sub,
    clientId: f.clientId,
    authorityRecordId: f.sid,
    rootAuthorityRecordId: f.rootSid,
    use: f.use,
    subType: f.subType,
    jti: f.jti,
    issuedAt: f.iat,
    expiresAt: f.exp,
    scope: f.scope,
  }
  // Optional claims are set only when present: the Claims object carries no undefined members.
  if (f.zoneId !== undefined) claims.zoneId = f.zoneId
  if (f.target !== undefined) claims.targetResources = f.target
  if (f.agentSessionId !== undefined) claims.sessionId = f.agentSessionId
  if (f.delegationEdgeId !== undefined) claims.delegationId = f.delegationEdgeId
  if (f.sourceSessionId !== undefined) claims.sourceSessionId = f.sourceSessionId
  if (f.targetSessionId !== undefined) claims.targetSessionId = f.targetSessionId
  if (f.delegationPath !== undefined) claims.delegationPath = f.delegationPath
  if (f.delegationChain !== undefined) claims.delegationChain = f.delegationChain
  if (f.graphEpoch !== undefined) claims.graphEpoch = f.graphEpoch
  if (f.hopCount !== undefined) claims.hopCount = f.hopCount

  const anchors = [f.sid]
  addAnchor(anchors, f.rootSid)
  addAnchor(anchors, f.agentSessionId)
  addAnchor(anchors, f.delegationEdgeId)
  return {
    // Frozen: the same object is handed to every caller of a cached token.
    claims: Object.freeze(claims),
    notBefore: f.nbf,
    chainApplications: f.delegationChain?.map((h) => h.applicationId),
    anchors,
  }
}

/**
 * The mandate of claims that `assembleMandate` built elsewhere and that arrived as a structured
 * clone (a verification pool's worker, README "Several cores in one process"): the same mandate,
 * frozen as the readers freeze it. The claims are trusted: they passed the rules where they were read.
 */
export function mandateFromClaims(c: Claims, notBefore: number | undefined): VerifiedMandate {
  return assembleMandate({
    sub: c.sub,
    clientId: c.clientId,
    sid: c.authorityRecordId,
    rootSid: c.rootAuthorityRecordId,
    use: c.use,
    subType: c.subType,
    jti: c.jti,
    iat: c.issuedAt,
    exp: c.expiresAt,
    nbf: notBefore,
    scope: c.scope,
    zoneId: c.zoneId,
    target: c.targetResources === undefined ? undefined : Object.freeze(c.targetResources),
    agentSessionId: c.sessionId,
    delegationEdgeId: c.delegationId,
    sourceSessionId: c.sourceSessionId,
    targetSessionId: c.targetSessionId,
    delegationPath: c.delegationPath === undefined ? undefined : Object.freeze(c.delegationPath),
    delegationChain:
      c.delegationChain === undefined ? undefined : Object.freeze(c.delegationChain.map((h) => Object.freeze(h))),
    graphEpoch: c.graphEpoch,
    hopCount: c.hopCount,
  })
}

function addAnchor(anchors: string[], anchor: string | undefined): void {
  if (anchor !== undefined && !anchors.includes(anchor)) anchors.push(anchor)
}

/**
 * What separates the entries of `scope`: any run of ASCII whitespace (space, tab, LF, VT, FF, CR),
 * as the plain Caracal verifier splits it. RFC 6749 §3.3 writes one space; a scope token never
 * holds whitespace, so a wider separator cannot join two tokens into one.
 */
export function isScopeSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13)
}

const SCOPE_SPACES = /[ \t\n\v\f\r]+/

/** The entries of `scope` (for the adapters' session and AuthInfo `scopes`). */
export function scopeEntries(scope: string): string[] {
  return scope.split(SCOPE_SPACES).filter((s) => s !== '')
}

/**
 * Whether the whitespace-separated `scope` holds `wanted` (itself without whitespace) as a whole
 * entry. Runs on every request, so it searches in place instead of splitting the claim.
 */
export function hasScope(scope: string, wanted: string): boolean {
  for (let at = scope.indexOf(wanted); at >= 0; at = scope.indexOf(wanted, at + 1)) {
    const end = at + wanted.length
    if (
      (at === 0 || isScopeSpace(scope.charCodeAt(at - 1))) &&
      (end === scope.length || isScopeSpace(scope.charCodeAt(end)))
    )
      return true
  }
  return false
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/**
 * Time rules, re-applied on every cache hit: expired once `exp <= now - expLeewaySec`; nbf and iat
 * not more than `futureLeewaySec` ahead.
 */
export function checkTimes(
  exp: number,
  iat: number,
  nbf: number | undefined,
  nowSec: number,
  rules: Pick<ClaimRules, 'expLeewaySec' | 'futureLeewaySec'>,
): void {
  // A clock answering NaN would make every comparison below false, i.e. accept expired tokens.
  if (!Number.isFinite(nowSec)) throw invalidToken(CLAIM_ERRORS.clock)
  if (exp <= nowSec - rules.expLeewaySec) throw invalidToken(CLAIM_ERRORS.expired)
  const future = nowSec + rules.futureLeewaySec
  if (nbf !== undefined && nbf > future) throw invalidToken(CLAIM_ERRORS.notYetValid)
  if (iat > future) throw invalidToken(CLAIM_ERRORS.issuedAhead)
}

function checkAudience(aud: unknown, accepted: ReadonlySet<string>): void {
  if (typeof aud === 'string') {
    if (accepted.has(aud)) return
  } else if (Array.isArray(aud)) {
    if (aud.length === 0 || aud.some((a) => typeof a !== 'string')) throw invalidToken(CLAIM_ERRORS.audienceType)
    if (aud.some((a: string) => accepted.has(a))) return
  } else {
    throw invalidToken(aud === undefined ? CLAIM_ERRORS.audienceMissing : CLAIM_ERRORS.audienceType)
  }
  throw invalidToken(CLAIM_ERRORS.audienceMismatch)
}

// The helpers take the value, not the object and a name: claims are read with constant property
// names, which V8 caches, instead of keyed lookups that cost ~30 ns each on the cold path.
/** A required string claim: present, a string, not "". */
function string(v: unknown, name: string): string {
  if (v === undefined) throw invalidToken(CLAIM_ERRORS.missing(name))
  if (typeof v !== 'string' || v === '') throw invalidToken(CLAIM_ERRORS.notString(name))
  return v
}

/** An optional string claim: "" and null are absent. */
function optionalString(v: unknown, name: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined
  if (typeof v !== 'string') throw invalidToken(CLAIM_ERRORS.optionalString(name))
  return v
}

function integer(v: unknown, name: string, required: boolean): number | undefined {
  if (v === undefined) {
    if (required) throw invalidToken(CLAIM_ERRORS.missing(name))
    return undefined
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw invalidToken(CLAIM_ERRORS.notInteger(name))
  return v
}

/** An optional integer claim where null is absent (hop_count, delegation_graph_epoch). */
function optionalInteger(v: unknown, name: string): number | undefined {
  return v === null ? undefined : integer(v, name, false)
}

/** An optional array of non-empty strings; null is absent ("" is no array). */
function stringArray(v: unknown, name: string): readonly string[] | undefined {
  if (v === undefined || v === null) return undefined
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' || s === ''))
    throw invalidToken(CLAIM_ERRORS.notStrings(name))
  return Object.freeze([...(v as string[])])
}

/**
 * `delegation_chain`: null is absent, and so is `[]` (no hop: the plain Caracal verifier reads it
 * as no chain); each hop `{ application_id, agent_session_id?, delegation_edge_id? }`.
 */
export function readChain(v: unknown): readonly DelegationHop[] | undefined {
  if (v === undefined || v === null) return undefined
  if (!Array.isArray(v)) throw invalidToken(CLAIM_ERRORS.chainType)
  if (v.length === 0) return undefined
  return Object.freeze(
    v.map((hop) => {
      if (typeof hop !== 'object' || hop === null || Array.isArray(hop)) throw invalidToken(CLAIM_ERRORS.hopType)
      const h = hop as Record<string, unknown>
      const out: { applicationId: string; sessionId?: string; delegationId?: string } = {
        applicationId: string(h.application_id, 'application_id'),
      }
      const sessionId = optionalString(h.agent_session_id, 'agent_session_id')
      const delegationId = optionalString(h.delegation_edge_id, 'delegation_edge_id')
      if (sessionId !== undefined) out.sessionId = sessionId
      if (delegationId !== undefined) out.delegationId = delegationId
      return Object.freeze(out)
    }),
  )
}
