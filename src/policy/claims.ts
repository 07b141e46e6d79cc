/**
 * Reads a verified payload into the `Claims` shape (docs/architecture.md "Claims") and applies the registered
 * claim rules of README "What is checked": types, iss, aud, exp/nbf/iat, use. Every failure is `invalid_token`.
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
  readonly toleranceSec: number
}

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
  notString: (name: string) => `${name} must be a non-empty string`,
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
  const nbf = integer(p.nbf, 'nbf', false)
  checkTimes(exp, iat, nbf, nowSec, rules.toleranceSec)

  const use = string(p.use, 'use', true)
  if (use !== 'session' && use !== 'resource') throw invalidToken(CLAIM_ERRORS.useValue)
  if (use !== rules.requiredUse) throw invalidToken(CLAIM_ERRORS.useRequired(rules.requiredUse))
  const subType = string(p.sub_type, 'sub_type', true)
  if (subType !== 'user' && subType !== 'application') throw invalidToken(CLAIM_ERRORS.subType)
  const scope = p.scope === undefined ? '' : p.scope
  if (typeof scope !== 'string') throw invalidToken(CLAIM_ERRORS.scopeType)

  return assembleMandate({
    sub: string(p.sub, 'sub', true),
    clientId: string(p.client_id, 'client_id', true),
    sid: string(p.sid, 'sid', true),
    rootSid: string(p.root_sid, 'root_sid', true),
    use,
    subType,
    jti: string(p.jti, 'jti', true),
    iat,
    exp,
    nbf,
    scope,
    zoneId: string(p.zone_id, 'zone_id', false),
    target: stringArray(p.target, 'target'),
    agentSessionId: string(p.agent_session_id, 'agent_session_id', false),
    delegationEdgeId: string(p.delegation_edge_id, 'delegation_edge_id', false),
    sourceSessionId: string(p.source_session_id, 'source_session_id', false),
    targetSessionId: string(p.target_session_id, 'target_session_id', false),
    delegationPath: stringArray(p.delegation_path, 'delegation_path'),
    delegationChain: readChain(p.delegation_chain),
    graphEpoch: integer(p.delegation_graph_epoch, 'delegation_graph_epoch', false),
    hopCount: integer(p.hop_count, 'hop_count', false),
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

function addAnchor(anchors: string[], anchor: string | undefined): void {
  if (anchor !== undefined && !anchors.includes(anchor)) anchors.push(anchor)
}

/**
 * Whether the space-separated `scope` (RFC 6749 §3.3) holds `wanted` as a whole entry. Runs on
 * every request, so it searches in place instead of splitting the claim into a new array.
 */
export function hasScope(scope: string, wanted: string): boolean {
  for (let at = scope.indexOf(wanted); at >= 0; at = scope.indexOf(wanted, at + 1)) {
    const end = at + wanted.length
    if ((at === 0 || scope.charCodeAt(at - 1) === 32) && (end === scope.length || scope.charCodeAt(end) === 32)) return true
  }
  return false
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** Time rules, re-applied on every cache hit: `exp > now - tolerance`, nbf and iat not ahead. */
export function checkTimes(exp: number, iat: number, nbf: number | undefined, nowSec: number, toleranceSec: number): void {
  // A clock answering NaN would make every comparison below false, i.e. accept expired tokens.
  if (!Number.isFinite(nowSec)) throw invalidToken(CLAIM_ERRORS.clock)
  if (exp <= nowSec - toleranceSec) throw invalidToken(CLAIM_ERRORS.expired)
  if (nbf !== undefined && nbf > nowSec + toleranceSec) throw invalidToken(CLAIM_ERRORS.notYetValid)
  if (iat > nowSec + toleranceSec) throw invalidToken(CLAIM_ERRORS.issuedAhead)
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
function string(v: unknown, name: string, required: true): string
function string(v: unknown, name: string, required: false): string | undefined
function string(v: unknown, name: string, required: boolean): string | undefined {
  if (v === undefined) {
    if (required) throw invalidToken(CLAIM_ERRORS.missing(name))
    return undefined
  }
  if (typeof v !== 'string' || v === '') throw invalidToken(CLAIM_ERRORS.notString(name))
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

function stringArray(v: unknown, name: string): readonly string[] | undefined {
  if (v === undefined) return undefined
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' || s === '')) throw invalidToken(CLAIM_ERRORS.notStrings(name))
  return Object.freeze([...(v as string[])])
}

export function readChain(v: unknown): readonly DelegationHop[] | undefined {
  if (v === undefined) return undefined
  if (!Array.isArray(v)) throw invalidToken(CLAIM_ERRORS.chainType)
  return Object.freeze(
    v.map((hop) => {
      if (typeof hop !== 'object' || hop === null || Array.isArray(hop)) throw invalidToken(CLAIM_ERRORS.hopType)
      const h = hop as Record<string, unknown>
      const out: { applicationId: string; sessionId?: string; delegationId?: string } = { applicationId: string(h.application_id, 'application_id', true) }
      const sessionId = string(h.session_id, 'session_id', false)
      const delegationId = string(h.delegation_id, 'delegation_id', false)
      if (sessionId !== undefined) out.sessionId = sessionId
      if (delegationId !== undefined) out.delegationId = delegationId
      return Object.freeze(out)
    }),
  )
}
