/**
 * The options of `CaracalAuth` (README "Options"), validated once, in the constructor: a bad option is a
 * `TypeError` that names it, never a surprise at request time.
 */
import { ALL_ALGORITHMS, isAlgorithm, type Algorithm } from './jws/algorithms.js'
import { DEFAULT_MAX_TOKEN_LENGTH } from './jws/compact.js'
import { checkJwksUrl } from './jwks/fetch-jwks.js'
import { BACKEND_CHOICES, backendUnavailableReason } from './backends/index.js'
import type { BackendChoice } from './backends/types.js'
import { isRevocationStore, type RevocationStore } from './revocation/types.js'
import type { MandatePolicy } from './policy/mandate-policy.js'
import { DEFAULT_EXP_LEEWAY_SEC, DEFAULT_FUTURE_LEEWAY_SEC, type ClaimRules } from './policy/claims.js'

export interface JwksOptions {
  /**
   * Defaults to `{issuer}/.well-known/jwks.json?zone_id=<zone>` when a zone is configured (a Caracal
   * STS serves one keyset per zone), `{issuer}/.well-known/jwks.json` without one.
   */
  readonly url?: string
  /** A static JWKS: no fetching at all. */
  readonly keys?: { readonly keys: readonly JsonWebKey[] } | readonly JsonWebKey[]
  /** Age after which the set is refreshed in the background. Default 10 minutes. */
  readonly ttlMs?: number
  /** Least time between two fetches caused by unknown kids. Default 30 s. */
  readonly cooldownMs?: number
  /** Deadline for one fetch, body included. Default 5 s. */
  readonly timeoutMs?: number
  /** Largest JWKS body accepted. Default 256 KiB. */
  readonly maxBytes?: number
  readonly fetch?: typeof globalThis.fetch
}

export interface CaracalAuthOptions {
  readonly issuer: string
  readonly audience: string | readonly string[]
  readonly revocations: RevocationStore
  readonly requiredScopes?: readonly string[]
  /** Rejects mandates of another zone (`invalid_zone`) and selects the zone's keyset at the STS. */
  readonly expectedZoneId?: string
  /** The Caracal TypeScript packages' name for `expectedZoneId`. */
  readonly zoneId?: string
  readonly requireAgent?: boolean
  /** The Caracal TypeScript packages' name for `requireAgent`. */
  readonly requireSession?: boolean
  readonly requireDelegation?: boolean
  readonly requireChainContains?: readonly string[]
  /** Highest `hop_count` accepted. Default 10; 0 or less also means 10, as in the plain Caracal verifier. */
  readonly maxHopCount?: number
  readonly requiredTargets?: readonly string[]
  readonly requiredUse?: 'resource' | 'session'
  readonly algorithms?: readonly Algorithm[]
  /**
   * Leeway for the clock, in seconds: when set, a mandate is expired once `exp <= now - tolerance`,
   * and `nbf`/`iat` may be up to `tolerance` ahead. Unset: expired once `exp <= now`, and `nbf`/`iat`
   * may be up to 60 s ahead.
   */
  readonly clockToleranceSec?: number
  readonly cache?: { readonly max?: number } | false
  readonly backend?: BackendChoice
  readonly jwks?: JwksOptions
  /** Longest token accepted, checked before any decoding. Default 8192. */
  readonly maxTokenLength?: number
  /** RFC 9728 metadata URL, advertised in `WWW-Authenticate` by the HTTP adapters. */
  readonly resourceMetadataUrl?: string
  /** Injectable clock, milliseconds since the epoch. */
  readonly now?: () => number
}

export interface ResolvedOptions {
  readonly claimRules: ClaimRules
  readonly policy: MandatePolicy
  readonly revocations: RevocationStore
  readonly algorithms: ReadonlySet<Algorithm>
  readonly cacheMax: number | undefined
  readonly backend: BackendChoice
  readonly maxTokenLength: number
  readonly resourceMetadataUrl: string | undefined
  readonly now: () => number
  readonly jwks: {
    readonly url: string | undefined
    readonly keys: { readonly keys: readonly unknown[] } | undefined
    readonly ttlMs: number
    readonly cooldownMs: number
    readonly timeoutMs: number
    readonly maxBytes: number
    readonly fetch: typeof globalThis.fetch
  }
}

export const DEFAULT_CACHE_MAX = 10_000
export const DEFAULT_MAX_HOP_COUNT = 10

const KNOWN_OPTIONS = new Set([
  'issuer',
  'audience',
  'revocations',
  'requiredScopes',
  'expectedZoneId',
  'zoneId',
  'requireAgent',
  'requireSession',
  'requireDelegation',
  'requireChainContains',
  'maxHopCount',
  'requiredTargets',
  'requiredUse',
  'algorithms',
  'clockToleranceSec',
  'cache',
  'backend',
  'jwks',
  'maxTokenLength',
  'resourceMetadataUrl',
  'now',
])
const KNOWN_JWKS_OPTIONS = new Set(['url', 'keys', 'ttlMs', 'cooldownMs', 'timeoutMs', 'maxBytes', 'fetch'])

function fail(name: string, message: string): never {
  throw new TypeError(`CaracalAuth option "${name}" ${message}`)
}

function nonEmptyString(name: string, v: unknown): string {
  if (typeof v !== 'string' || v === '') fail(name, 'must be a non-empty string')
  return v
}

function optionalString(name: string, v: unknown): string | undefined {
  return v === undefined ? undefined : nonEmptyString(name, v)
}

function stringList(name: string, v: unknown, allowSingle = false): readonly string[] {
  if (v === undefined) return []
  if (allowSingle && typeof v === 'string') return [nonEmptyString(name, v)]
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' || s === '')) {
    fail(name, allowSingle ? 'must be a non-empty string or an array of them' : 'must be an array of non-empty strings')
  }
  return Object.freeze([...(v as string[])])
}

/** RFC 6749 §3.3: a scope token has no spaces, so one with a space could never match. */
function scopeList(v: unknown): readonly string[] {
  const scopes = stringList('requiredScopes', v)
  if (scopes.some((s) => /\s/.test(s)))
    fail('requiredScopes', 'must not contain whitespace inside a scope (scopes are separate entries)')
  return scopes
}

function flag(name: string, v: unknown): boolean {
  if (v === undefined) return false
  if (typeof v !== 'boolean') fail(name, 'must be a boolean')
  return v
}

function count(name: string, v: unknown, fallback: number, min = 0): number {
  if (v === undefined) return fallback
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) fail(name, `must be an integer ≥ ${min}`)
  return v
}

/** maxHopCount: an integer; 0 or less means the default, as in the plain Caracal verifier. */
function hopLimit(v: unknown): number {
  if (v === undefined) return DEFAULT_MAX_HOP_COUNT
  if (typeof v !== 'number' || !Number.isSafeInteger(v))
    fail('maxHopCount', `must be an integer (0 or less means the default, ${DEFAULT_MAX_HOP_COUNT})`)
  return v <= 0 ? DEFAULT_MAX_HOP_COUNT : v
}

/**
 * One option under two names (the seed's and the Caracal TypeScript packages'): either may be set,
 * or both to the same value; two different values are a mistake to refuse, not to pick from.
 */
function aliased<T>(o: Record<string, unknown>, name: string, alias: string, read: (name: string, v: unknown) => T): T {
  const value = read(name, o[name])
  if (o[alias] === undefined) return value
  const aliasValue = read(alias, o[alias])
  if (o[name] !== undefined && aliasValue !== value)
    fail(alias, `is another name for "${name}"; they are set to different values`)
  return aliasValue
}

function duration(name: string, v: unknown, fallback: number): number {
  if (v === undefined) return fallback
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(name, 'must be a non-negative number of milliseconds')
  return v
}

export function resolveOptions(input: unknown): ResolvedOptions {
  if (typeof input !== 'object' || input === null) throw new TypeError('CaracalAuth needs an options object')
  const o = input as Record<string, unknown>
  for (const key of Object.keys(o)) if (!KNOWN_OPTIONS.has(key)) fail(key, 'is not an option of CaracalAuth')

  const issuer = nonEmptyString('issuer', o.issuer)
  const audiences = stringList('audience', o.audience, true)
  if (audiences.length === 0) fail('audience', 'is required')
  if (!isRevocationStore(o.revocations)) fail('revocations', 'must be a RevocationStore (isRevoked, markRevoked)')

  const algorithms = o.algorithms === undefined ? ALL_ALGORITHMS : o.algorithms
  if (!Array.isArray(algorithms) || algorithms.length === 0 || !algorithms.every(isAlgorithm)) {
    fail('algorithms', `must be a non-empty array of ${ALL_ALGORITHMS.join(', ')}`)
  }
  const requiredUse = o.requiredUse === undefined ? 'resource' : o.requiredUse
  if (requiredUse !== 'resource' && requiredUse !== 'session') fail('requiredUse', 'must be "resource" or "session"')
  const clockToleranceSec = o.clockToleranceSec
  if (
    clockToleranceSec !== undefined &&
    (typeof clockToleranceSec !== 'number' || !Number.isFinite(clockToleranceSec) || clockToleranceSec < 0)
  ) {
    fail('clockToleranceSec', 'must be a non-negative number')
  }

  let cacheMax: number | undefined = DEFAULT_CACHE_MAX
  if (o.cache === false) cacheMax = undefined
  else if (o.cache !== undefined) {
    if (typeof o.cache !== 'object' || o.cache === null) fail('cache', 'must be { max?: number } or false')
    cacheMax = count('cache.max', (o.cache as { max?: unknown }).max, DEFAULT_CACHE_MAX, 1)
  }

  const backend = o.backend === undefined ? 'auto' : o.backend
  if (!BACKEND_CHOICES.includes(backend as BackendChoice))
    fail('backend', `must be one of ${BACKEND_CHOICES.join(', ')}`)
  const unavailable =
    backend === 'auto' ? undefined : backendUnavailableReason(backend as Exclude<BackendChoice, 'auto'>)
  if (unavailable !== undefined) fail('backend', `"${String(backend)}" is not available: ${unavailable}`)

  const now = o.now === undefined ? Date.now : o.now
  if (typeof now !== 'function') fail('now', 'must be a function returning milliseconds')

  const resourceMetadataUrl = optionalString('resourceMetadataUrl', o.resourceMetadataUrl)
  const expectedZoneId = aliased(o, 'expectedZoneId', 'zoneId', optionalString)

  return {
    claimRules: {
      issuer,
      audiences: new Set(audiences),
      requiredUse,
      expLeewaySec: clockToleranceSec ?? DEFAULT_EXP_LEEWAY_SEC,
      futureLeewaySec: clockToleranceSec ?? DEFAULT_FUTURE_LEEWAY_SEC,
    },
    policy: {
      expectedZoneId,
      requiredScopes: scopeList(o.requiredScopes),
      requireAgent: aliased(o, 'requireAgent', 'requireSession', flag),
      requireDelegation: flag('requireDelegation', o.requireDelegation),
      requireChainContains: stringList('requireChainContains', o.requireChainContains),
      maxHopCount: hopLimit(o.maxHopCount),
      requiredTargets: stringList('requiredTargets', o.requiredTargets),
    },
    revocations: o.revocations,
    algorithms: new Set(algorithms as Algorithm[]),
    cacheMax,
    backend: backend as BackendChoice,
    maxTokenLength: count('maxTokenLength', o.maxTokenLength, DEFAULT_MAX_TOKEN_LENGTH, 16),
    resourceMetadataUrl,
    now: now as () => number,
    jwks: resolveJwksOptions(issuer, expectedZoneId, o.jwks),
  }
}

/** Where a Caracal STS publishes the keys: one keyset per zone, chosen by the configured zone only. */
export function defaultJwksUrl(issuer: string, zoneId: string | undefined): string {
  const base = `${issuer.replace(/\/+$/, '')}/.well-known/jwks.json`
  return zoneId === undefined ? base : `${base}?${new URLSearchParams({ zone_id: zoneId })}`
}

function resolveJwksOptions(issuer: string, zoneId: string | undefined, v: unknown): ResolvedOptions['jwks'] {
  if (v !== undefined && (typeof v !== 'object' || v === null)) fail('jwks', 'must be an object')
  const j = (v ?? {}) as Record<string, unknown>
  for (const key of Object.keys(j)) if (!KNOWN_JWKS_OPTIONS.has(key)) fail(`jwks.${key}`, 'is not a JWKS option')
  let keys: { keys: readonly unknown[] } | undefined
  if (j.keys !== undefined) {
    const list = Array.isArray(j.keys) ? j.keys : (j.keys as { keys?: unknown } | null)?.keys
    if (!Array.isArray(list)) fail('jwks.keys', 'must be a JWKS ({ keys: [...] }) or an array of JWKs')
    keys = { keys: list }
  }
  const url =
    keys !== undefined && j.url === undefined
      ? undefined
      : (optionalString('jwks.url', j.url) ?? defaultJwksUrl(issuer, zoneId))
  if (url !== undefined) {
    const problem = checkJwksUrl(url)
    if (problem !== undefined) fail(j.url === undefined ? 'issuer' : 'jwks.url', `(JWKS URL ${url}) ${problem}`)
  }
  const fetchImpl = j.fetch === undefined ? globalThis.fetch : j.fetch
  if (typeof fetchImpl !== 'function') fail('jwks.fetch', 'must be a fetch function')
  if (keys !== undefined && url !== undefined) fail('jwks', 'takes either keys or url, not both')
  return {
    url,
    keys,
    ttlMs: duration('jwks.ttlMs', j.ttlMs, 10 * 60_000),
    cooldownMs: duration('jwks.cooldownMs', j.cooldownMs, 30_000),
    timeoutMs: duration('jwks.timeoutMs', j.timeoutMs, 5_000) || 1,
    maxBytes: count('jwks.maxBytes', j.maxBytes, 256 * 1024, 64),
    fetch: fetchImpl as typeof globalThis.fetch,
  }
}
