/**
 * The implementation behind `caracal-fastmcp/compat/identity` (see that module for what it is and
 * how it differs from `@caracalai/identity`). The entry point re-exports Caracal's names only; the
 * internals the other compat entry points need (`engineOf`, `policyError`, `identityErrorOf`) are
 * exported from here.
 */
import { EngineMemo, EngineRegistry, keyGetter, type KeyGetter, type RegistryOptions } from './jwks-registry.js'
import { CaracalAuthError } from '../errors.js'
import type { BackendChoice } from '../backends/types.js'
import type { CaracalAuth } from '../caracal-auth.js'
import type { Claims as EngineClaims } from '../policy/claims.js'
import { verifyInline } from '../verify-inline.js'

// ---------------------------------------------------------------------------------------------
// Constants and types (`types.ts` of @caracalai/identity)

/** Delegation depth allowed when `maxHopCount` is unset or not positive. */
export const DEFAULT_MAX_HOP_COUNT = 10
export const MANDATE_USE_SESSION = 'session'
export const MANDATE_USE_RESOURCE = 'resource'
export const SUBJECT_TYPE_USER = 'user'
export const SUBJECT_TYPE_APPLICATION = 'application'

export interface JwtConfig {
  issuer: string
  audience: string
  /** The zone whose keyset verifies the token, and the only `zone_id` accepted. */
  zoneId: string
  requiredScopes?: string[]
  requiredTargets?: string[]
  requiredUse?: string
  requireSession?: boolean
  /** The older name of `requireSession`, which the Caracal docs still use: read as it. */
  requireAgent?: boolean
  requireDelegation?: boolean
  requireChainContains?: string[]
  maxHopCount?: number
}

export interface ChainHop {
  applicationId: string
  sessionId?: string
  delegationId?: string
}

export interface Claims {
  sub: string
  zoneId: string
  clientId: string
  authorityRecordId: string
  rootAuthorityRecordId: string
  use: string
  subType: string
  jti: string
  issuedAt: number
  expiresAt: number
  scope: string
  targetResources?: string[]
  sessionId?: string
  delegationId?: string
  sourceSessionId?: string
  targetSessionId?: string
  delegationPath?: string[]
  delegationChain?: ChainHop[]
  graphEpoch?: number
  hopCount?: number
}

// ---------------------------------------------------------------------------------------------
// Errors (`CaracalError` of @caracalai/core and the classes of `verify.ts`)

type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }
type JsonObject = { [key: string]: JsonValue }

export interface CaracalErrorOptions {
  requestId?: string
  details?: JsonObject
  cause?: unknown
  httpStatus?: number
}

export class CaracalError extends Error {
  readonly code: string
  readonly requestId?: string
  readonly details?: JsonObject
  readonly httpStatus?: number

  constructor(code: string, message: string, opts: CaracalErrorOptions | string = {}) {
    const options: CaracalErrorOptions = typeof opts === 'string' ? { requestId: opts } : opts
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'CaracalError'
    this.code = code
    if (options.requestId) this.requestId = options.requestId
    if (options.details) this.details = options.details
    if (options.httpStatus) this.httpStatus = options.httpStatus
  }

  /**
   * `@caracalai/core`'s hint that the same call may succeed if simply repeated: the STS being down
   * or a provider's rate limit, or an upstream answer of 408, 425, 429 (RFC 9110 §15.5.9, RFC 8470
   * §5.2, RFC 6585 §4) or 5xx. A refusal of the mandate itself never is. A getter on the prototype,
   * as there: not an own field, so `toJSON()` and `Object.keys` are unchanged.
   */
  get isRetryable(): boolean {
    if (this.code === 'sts_unavailable' || this.code === 'provider_rate_limited') return true
    const status = this.httpStatus
    if (status === undefined) return false
    return status === 408 || status === 425 || status === 429 || status >= 500
  }

  toJSON(): Record<string, unknown> {
    return {
      error: this.code,
      error_description: this.message,
      ...(this.requestId ? { requestId: this.requestId } : {}),
      ...(this.details ? { details: this.details } : {}),
    }
  }
}

export class TokenInvalidError extends CaracalError {
  constructor(message = 'Token validation failed', cause?: unknown) {
    super('invalid_token', message, cause === undefined ? {} : { cause })
    this.name = 'TokenInvalidError'
  }
}

export class ZoneInvalidError extends CaracalError {
  constructor(message = 'Token zone validation failed') {
    super('zone_invalid', message)
    this.name = 'ZoneInvalidError'
  }
}

export class ScopeInsufficientError extends CaracalError {
  readonly missingScope: string
  constructor(missingScope: string) {
    super('scope_insufficient', `Missing scope: ${missingScope}`, { details: { missingScope } })
    this.name = 'ScopeInsufficientError'
    this.missingScope = missingScope
  }
}

export class SessionRequiredError extends CaracalError {
  constructor(message = 'Session required') {
    super('session_required', message)
    this.name = 'SessionRequiredError'
  }
}

export class DelegationRequiredError extends CaracalError {
  constructor(message = 'Delegation required') {
    super('delegation_required', message)
    this.name = 'DelegationRequiredError'
  }
}

export class ChainMismatchError extends CaracalError {
  readonly missingApplicationId: string
  constructor(missingApplicationId: string) {
    super('chain_mismatch', `Delegation chain missing application: ${missingApplicationId}`, {
      details: { missingApplicationId },
    })
    this.name = 'ChainMismatchError'
    this.missingApplicationId = missingApplicationId
  }
}

export class HopCountExceededError extends CaracalError {
  constructor(message = 'Hop count exceeded') {
    super('hop_count_exceeded', message)
    this.name = 'HopCountExceededError'
  }
}

// ---------------------------------------------------------------------------------------------
// Scope helpers (`scope.ts`, re-exported from @caracalai/core)

/**
 * What `String.prototype.split(/\s+/)` splits on (ECMAScript WhiteSpace and LineTerminator), so the
 * in-place search below answers exactly as Caracal's split-and-compare.
 */
function isJsSpace(c: number): boolean {
  if (c <= 32) return c === 32 || (c >= 9 && c <= 13)
  return (
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  )
}

/** RFC 6749 §3.3: the distinct whitespace-separated entries of `scope`, in order. */
export function parseScope(scope: string | null | undefined): string[] {
  if (!scope) return []
  return [...new Set(scope.split(/\s+/).filter((s) => s !== ''))]
}

/**
 * Whether `scope` holds `required` as a whole entry. An empty `required`, or one with whitespace in
 * it, never matches (no entry can equal it). Searches in place: it runs on every request.
 */
export function hasScope(scope: string | null | undefined, required: string): boolean {
  if (!required || !scope || typeof required !== 'string') return false
  // The mandates of a route carry the same scope string, asked for the same scopes: the last few
  // answers are kept. Strings compare by value, so a kept answer is exactly what the search gives.
  for (let i = 0; i < SCOPE_MEMO; i++) {
    if (memoRequired[i] === required && memoScope[i] === scope) return memoAnswer[i]!
  }
  const answer = searchScope(scope, required)
  memoScope[memoNext] = scope
  memoRequired[memoNext] = required
  memoAnswer[memoNext] = answer
  memoNext = (memoNext + 1) % SCOPE_MEMO
  return answer
}

/** Answers kept by `hasScope`, replaced in turn. */
const SCOPE_MEMO = 4
const memoScope: string[] = ['', '', '', '']
const memoRequired: string[] = ['', '', '', '']
const memoAnswer: boolean[] = [false, false, false, false]
let memoNext = 0

function searchScope(scope: string, required: string): boolean {
  const last = scope.length - required.length
  for (let at = scope.indexOf(required); at >= 0 && at <= last; at = scope.indexOf(required, at + 1)) {
    const end = at + required.length
    if ((at === 0 || isJsSpace(scope.charCodeAt(at - 1))) && (end === scope.length || isJsSpace(scope.charCodeAt(end))))
      return isOneEntry(required)
  }
  return false
}

/**
 * Required scopes already found free of whitespace. A route asks for the same few on every
 * request, and scanning one costs more than the search itself; strings compare by value, so a
 * remembered one answers exactly as the scan would. Bounded: cleared when full.
 */
const ONE_ENTRY = new Set<string>()
const ONE_ENTRY_MAX = 256

/** Whether `required` could be one entry of a split scope: no whitespace in it. */
function isOneEntry(required: string): boolean {
  if (ONE_ENTRY.has(required)) return true
  for (let i = 0; i < required.length; i++) if (isJsSpace(required.charCodeAt(i))) return false
  if (ONE_ENTRY.size >= ONE_ENTRY_MAX) ONE_ENTRY.clear()
  ONE_ENTRY.add(required)
  return true
}

/** Whether every scope of `requested` is in `available`. */
export function scopesAllowed(requested: string[], available: string[]): boolean {
  const allowed = new Set(available)
  return requested.every((s) => allowed.has(s))
}

// ---------------------------------------------------------------------------------------------
// JWKS cache (`jwks.ts`)

export interface JwksCacheOptions {
  ttlMs?: number
  maxStaleMs?: number
  fetchTimeoutMs?: number
  fetchImpl?: typeof fetch
}

export interface JwksCache {
  getKeySet: (issuer: string, zoneId: string) => Promise<KeyGetter>
  warm: (issuer: string, zoneId: string) => Promise<void>
  clear: (issuer?: string, zoneId?: string) => void
}

/** The Caracal defaults: refetch after 5 min, refuse keys not refreshed for 10 min. */
const DEFAULT_CACHE_TTL_MS = 5 * 60 * 1000
const DEFAULT_MAX_STALE_MS = 10 * 60 * 1000
const DEFAULT_FETCH_TIMEOUT_MS = 5_000

/** Caches made here, by the object handed to the caller: `jwksCache` in a config finds its registry. */
const registries = new WeakMap<object, EngineRegistry>()

export function createJwksCache(opts: JwksCacheOptions = {}): JwksCache {
  return createJwksCacheOn('auto', opts)
}

/** `createJwksCache` whose engines use `backend` (internal: the conformance tests run on each). */
export function createJwksCacheOn(backend: BackendChoice, opts: JwksCacheOptions = {}): JwksCache {
  const ttlMs = opts.ttlMs ?? DEFAULT_CACHE_TTL_MS
  const options: RegistryOptions = {
    ttlMs,
    maxStaleMs: Math.max(opts.maxStaleMs ?? DEFAULT_MAX_STALE_MS, ttlMs),
    fetchTimeoutMs: opts.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS,
    fetchImpl: opts.fetchImpl,
    backend,
  }
  const registry = new EngineRegistry(options)
  const cache: JwksCache = {
    getKeySet: async (issuer, zoneId) => keyGetter(await registry.keys(issuer, zoneId)),
    warm: (issuer, zoneId) => registry.warm(issuer, zoneId),
    clear: (issuer, zoneId) => registry.clear(issuer, zoneId),
  }
  registries.set(cache, registry)
  return cache
}

const defaultCache = createJwksCache()
const defaultRegistry = registries.get(defaultCache)!

export function getKeySet(issuer: string, zoneId: string): Promise<KeyGetter> {
  return defaultCache.getKeySet(issuer, zoneId)
}

export async function warmJwks(issuer: string, zoneId: string): Promise<void> {
  await defaultCache.warm(issuer, zoneId)
}

export function clearJwksCache(issuer?: string, zoneId?: string): void {
  defaultCache.clear(issuer, zoneId)
}

// ---------------------------------------------------------------------------------------------
// verify (`verify.ts`)

/**
 * What `@caracalai/verify` asks of a revocation store: `isRevoked` (any object with it will do, as
 * there), and the epoch methods when it has them (README "Revocation").
 */
export interface RevocationStoreLike {
  isRevoked(anchor: string): boolean | Promise<boolean>
  markRevoked?(anchor: string, ttlMs?: number): unknown
  currentDelegationEpoch?(zoneId: string): number | Promise<number>
  markDelegationEpoch?(zoneId: string, epoch: number, ttlMs?: number): unknown
  unavailableReason?(): string | undefined
}

/** The fields `verify` reads; a `@caracalai/verify` AuthDeps is one too. */
export type VerifyConfig = JwtConfig & { jwksCache?: JwksCache; requireAgent?: boolean }

/**
 * A config read once into a plain object: every later read is a plain property load. (Reading a
 * config built with object spread costs hundreds of nanoseconds per property on Node 20, so the
 * entry points read each caller's object once per call, and a verifier's defaults once.)
 */
export interface Settings {
  readonly issuer: string
  readonly audience: unknown
  readonly zoneId: string | undefined
  readonly requiredUse: unknown
  readonly jwksCache: unknown
  readonly requiredScopes: Iterable<string> | undefined
  readonly requiredTargets: Iterable<string> | undefined
  /** `requireSession`, or `requireAgent`, its older name. */
  readonly requireSession: unknown
  readonly requireDelegation: unknown
  readonly maxHopCount: unknown
  readonly requireChainContains: Iterable<string> | undefined
  readonly revocations: unknown
}

/**
 * `config` with `overrides` over it where they have an own property (what `{ ...config,
 * ...overrides }` gives), read into `Settings`.
 */
export function settingsOf(config: object, overrides?: object): Settings {
  const c = config as Record<string, unknown>
  const o = overrides as Record<string, unknown> | undefined
  if (o === undefined || o === null) {
    return {
      issuer: c.issuer as string,
      audience: c.audience,
      zoneId: (c.zoneId as string | undefined) || undefined,
      requiredUse: c.requiredUse,
      jwksCache: c.jwksCache,
      requiredScopes: c.requiredScopes as Iterable<string> | undefined,
      requiredTargets: c.requiredTargets as Iterable<string> | undefined,
      requireSession: c.requireSession || c.requireAgent,
      requireDelegation: c.requireDelegation,
      maxHopCount: c.maxHopCount,
      requireChainContains: c.requireChainContains as Iterable<string> | undefined,
      revocations: c.revocations,
    }
  }
  return {
    issuer: (Object.hasOwn(o, 'issuer') ? o.issuer : c.issuer) as string,
    audience: Object.hasOwn(o, 'audience') ? o.audience : c.audience,
    zoneId: ((Object.hasOwn(o, 'zoneId') ? o.zoneId : c.zoneId) as string | undefined) || undefined,
    requiredUse: Object.hasOwn(o, 'requiredUse') ? o.requiredUse : c.requiredUse,
    jwksCache: Object.hasOwn(o, 'jwksCache') ? o.jwksCache : c.jwksCache,
    requiredScopes: (Object.hasOwn(o, 'requiredScopes') ? o.requiredScopes : c.requiredScopes) as
      | Iterable<string>
      | undefined,
    requiredTargets: (Object.hasOwn(o, 'requiredTargets') ? o.requiredTargets : c.requiredTargets) as
      | Iterable<string>
      | undefined,
    requireSession:
      (Object.hasOwn(o, 'requireSession') ? o.requireSession : c.requireSession) ||
      (Object.hasOwn(o, 'requireAgent') ? o.requireAgent : c.requireAgent),
    requireDelegation: Object.hasOwn(o, 'requireDelegation') ? o.requireDelegation : c.requireDelegation,
    maxHopCount: Object.hasOwn(o, 'maxHopCount') ? o.maxHopCount : c.maxHopCount,
    requireChainContains: (Object.hasOwn(o, 'requireChainContains')
      ? o.requireChainContains
      : c.requireChainContains) as Iterable<string> | undefined,
    revocations: Object.hasOwn(o, 'revocations') ? o.revocations : c.revocations,
  }
}

/** A cache made by `createJwksCache` here: its registry; undefined for any other object. */
export function ownRegistry(jwksCache: unknown): EngineRegistry | undefined {
  return typeof jwksCache === 'object' && jwksCache !== null ? registries.get(jwksCache) : undefined
}

/**
 * The registry behind a config: the cache made here that it names, else the default one (a foreign
 * `JwksCache` is warmed by its owner but holds no engine of ours).
 */
export function registryOf(jwksCache: unknown): EngineRegistry {
  return ownRegistry(jwksCache) ?? defaultRegistry
}

const freeMemo = new EngineMemo()

/**
 * The engine for a config (internal to the compat entry points). Throws the engine's `TypeError`
 * for a config it cannot use.
 */
export function engineOf(s: Settings, memo: EngineMemo = freeMemo, defaultUse?: string): CaracalAuth {
  const known = memo.known(s, defaultUse)
  if (known !== undefined) return known
  const auth = memo.get(
    registryOf(s.jwksCache),
    s.issuer,
    s.audience,
    s.zoneId,
    s.requiredUse ?? defaultUse ?? MANDATE_USE_RESOURCE,
  )
  memo.remember(s, defaultUse)
  return auth
}

/**
 * The engine's refusal as Caracal's class: the zone as `ZoneInvalidError`, everything else as
 * `TokenInvalidError("Token validation failed")` with the engine's error as `cause`.
 */
export function identityErrorOf(error: unknown): CaracalError {
  if (error instanceof CaracalError) return error
  if (error instanceof CaracalAuthError && error.code === 'invalid_zone') return new ZoneInvalidError()
  return new TokenInvalidError('Token validation failed', error)
}

/**
 * Caracal's rules after the signature, in its order: zone present, scopes, targets, session,
 * delegation, hop count, chain. Undefined when the claims pass.
 */
export function policyError(c: EngineClaims, config: Settings): CaracalError | undefined {
  if (c.zoneId === undefined) return new ZoneInvalidError()
  // Runs on every request: an array (what configs hold) is walked by index, with no iterator and
  // no empty array for an absent rule; any other iterable as Caracal's `for…of` walks it.
  const scopes = config.requiredScopes
  if (Array.isArray(scopes)) {
    for (let i = 0; i < scopes.length; i++) {
      const required = scopes[i] as string
      if (!hasScope(c.scope, required)) return new ScopeInsufficientError(required)
    }
  } else if (scopes !== undefined && scopes !== null) {
    for (const required of scopes) if (!hasScope(c.scope, required)) return new ScopeInsufficientError(required)
  }
  const targets = config.requiredTargets
  if (targets !== undefined && targets !== null) {
    for (const target of targets) {
      if (c.targetResources?.includes(target) !== true)
        return new TokenInvalidError('Token target resource validation failed')
    }
  }
  if (config.requireSession && !c.sessionId) return new SessionRequiredError()
  if (config.requireDelegation && !c.delegationId) return new DelegationRequiredError()
  const limit = config.maxHopCount as number
  const maxHops = limit !== undefined && limit > 0 ? limit : DEFAULT_MAX_HOP_COUNT
  if ((c.hopCount ?? 0) > maxHops) return new HopCountExceededError()
  const chain = config.requireChainContains
  if (chain !== undefined && chain !== null) {
    for (const expected of chain) {
      if (c.delegationChain?.some((h) => h.applicationId === expected) !== true) return new ChainMismatchError(expected)
    }
  }
  return undefined
}

/**
 * The claims of a verified mandate, or one of the error classes above. The claims object is the
 * engine's: frozen, the same object on every call for the same token (no copy per request), and
 * without members for absent optional claims.
 */
export function verify(token: string, config: JwtConfig & { jwksCache?: JwksCache }): Promise<Claims> {
  let c: Settings
  let pending: EngineClaims | Promise<EngineClaims>
  try {
    c = settingsOf(config)
    pending = engineOf(c)[verifyInline](token)
  } catch (error) {
    return Promise.reject(identityErrorOf(error))
  }
  // Settled at once when the engine answered at once (a cache hit): no extra promise hop.
  if (!(pending instanceof Promise)) {
    const refused = policyError(pending, c)
    return refused === undefined ? Promise.resolve(pending as unknown as Claims) : Promise.reject(refused)
  }
  return pending.then(
    (claims) => {
      const refused = policyError(claims, c)
      if (refused !== undefined) throw refused
      return claims as unknown as Claims
    },
    (error: unknown) => {
      throw identityErrorOf(error)
    },
  )
}

/** Whether `applicationId` issued the mandate or is a hop of its delegation chain. */
export function verifyChainContains(claims: Claims, applicationId: string): boolean {
  if (claims.delegationChain?.some((h) => h.applicationId === applicationId)) return true
  return claims.clientId === applicationId
}
