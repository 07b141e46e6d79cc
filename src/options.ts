/**
 * The options of `CaracalAuth` (README "Options"), validated once, in the constructor, with the shared
 * `OptionReader` (`src/option-reader.ts`): a bad option is a `TypeError` that names it, never a
 * surprise at request time.
 */
import { ALL_ALGORITHMS, type Algorithm } from './jws/algorithms.js'
import { DEFAULT_MAX_TOKEN_LENGTH } from './jws/compact.js'
import { checkJwksUrl } from './jwks/fetch-jwks.js'
import { BACKEND_CHOICES, backendUnavailableReason } from './backends/index.js'
import type { BackendChoice } from './backends/types.js'
import { isRevocationStore, type RevocationStore } from './revocation/types.js'
import { isReplayStore, type ReplayStore } from './replay/types.js'
import { OptionReader } from './option-reader.js'
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
  /**
   * Age after which keys that could not be refreshed are no longer trusted: verifications fail
   * with `invalid_token` marked `unavailable` (HTTP 503 with Retry-After) until a fetch succeeds.
   * At least `ttlMs`. Default 24 hours (or `ttlMs`, if that is longer). README "Keys (JWKS)".
   */
  readonly maxStaleMs?: number
  readonly fetch?: typeof globalThis.fetch
}

export interface CaracalAuthOptions {
  readonly issuer: string
  readonly audience: string | readonly string[]
  readonly revocations: RevocationStore
  /**
   * Single-use mandates (README "Single-use mandates"): a resource mandate that passed every other
   * check is recorded by its `jti` until it expires, and a second presentation is `token_replayed`.
   */
  readonly replay?: ReplayStore
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
  /**
   * Worker threads that verify cold tokens beside the main thread (README "Several cores in one
   * process"); `'auto'`: one per core but the main thread's. Default 0: everything on the calling thread.
   */
  readonly workers?: number | 'auto'
}

export interface ResolvedOptions {
  readonly claimRules: ClaimRules
  readonly policy: MandatePolicy
  readonly revocations: RevocationStore
  readonly replay: ReplayStore | undefined
  readonly algorithms: ReadonlySet<Algorithm>
  readonly cacheMax: number | undefined
  readonly backend: BackendChoice
  readonly maxTokenLength: number
  readonly resourceMetadataUrl: string | undefined
  readonly now: () => number
  readonly workers: number | 'auto'
  readonly jwks: {
    readonly url: string | undefined
    readonly keys: { readonly keys: readonly unknown[] } | undefined
    readonly ttlMs: number
    readonly cooldownMs: number
    readonly timeoutMs: number
    readonly maxBytes: number
    readonly maxStaleMs: number
    readonly fetch: typeof globalThis.fetch
  }
}

export const DEFAULT_CACHE_MAX = 10_000
export const DEFAULT_MAX_HOP_COUNT = 10
/** Far more than any core count worth using: each worker holds its own wasm module and key tables. */
export const MAX_WORKERS = 64

const KNOWN_OPTIONS: readonly string[] = [
  'issuer',
  'audience',
  'revocations',
  'replay',
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
  'workers',
]
const KNOWN_JWKS_OPTIONS: readonly string[] = [
  'url',
  'keys',
  'ttlMs',
  'cooldownMs',
  'timeoutMs',
  'maxBytes',
  'maxStaleMs',
  'fetch',
]

/**
 * Default `jwks.maxStaleMs`. Signing keys rotate rarely, and an STS outage should cost the gateway
 * nothing for a day — time for someone to notice (`stats().jwks.fetchFailures`) and fix it — while
 * a key the STS has withdrawn is not trusted forever by a gateway that cannot hear about it.
 */
/** The runtime's fetch, looked up when called (a test or polyfill may replace it later), with no `this`. */
const callGlobalFetch: typeof globalThis.fetch = (input, init) => globalThis.fetch(input, init)

export const DEFAULT_JWKS_MAX_STALE_MS = 24 * 60 * 60_000

/** RFC 6749 §3.3: a scope token has no spaces, so one with a space could never match. */
function scopeList(o: OptionReader): readonly string[] {
  const scopes = o.stringList('requiredScopes')
  if (scopes.some((s) => /\s/.test(s)))
    o.fail('requiredScopes', 'must not contain whitespace inside a scope (scopes are separate entries)')
  return scopes
}

/** maxHopCount: an integer; 0 or less means the default, as in the plain Caracal verifier. */
function hopLimit(o: OptionReader): number {
  const v = o.raw('maxHopCount')
  if (v === undefined) return DEFAULT_MAX_HOP_COUNT
  if (typeof v !== 'number' || !Number.isSafeInteger(v))
    o.fail('maxHopCount', `must be an integer (0 or less means the default, ${DEFAULT_MAX_HOP_COUNT})`)
  return v <= 0 ? DEFAULT_MAX_HOP_COUNT : v
}

/** `cache`: `{ max?: number }` or false (no cache). Only `max` is read; other keys were never refused. */
function cacheLimit(o: OptionReader): number | undefined {
  const cache = o.raw('cache')
  if (cache === false) return undefined
  if (cache === undefined) return DEFAULT_CACHE_MAX
  if (typeof cache !== 'object' || cache === null) o.fail('cache', 'must be { max?: number } or false')
  const { max } = cache as { max?: unknown }
  return new OptionReader('CaracalAuth', { max }, ['max'], { prefix: 'cache.' }).integer('max', DEFAULT_CACHE_MAX, 1)
}

export function resolveOptions(input: unknown): ResolvedOptions {
  const o: OptionReader = new OptionReader('CaracalAuth', input, KNOWN_OPTIONS)

  const issuer = o.requiredString('issuer')
  const audiences = o.stringList('audience', true)
  if (audiences.length === 0) o.fail('audience', 'is required')
  const revocations = o.guarded('revocations', isRevocationStore, 'must be a RevocationStore (isRevoked, markRevoked)')
  const replay =
    o.raw('replay') === undefined
      ? undefined
      : o.guarded(
          'replay',
          isReplayStore,
          'must be a ReplayStore (firstUse), e.g. InMemoryReplayStore or RedisReplayStore',
        )

  const algorithms = o.choiceList('algorithms', ALL_ALGORITHMS, ALL_ALGORITHMS)
  const requiredUse = o.oneOf(
    'requiredUse',
    ['resource', 'session'] as const,
    'resource',
    'must be "resource" or "session"',
  )
  const clockToleranceSec = o.nonNegativeNumber('clockToleranceSec', undefined)
  const cacheMax = cacheLimit(o)

  const backend = o.oneOf('backend', BACKEND_CHOICES, 'auto')
  const unavailable = backend === 'auto' ? undefined : backendUnavailableReason(backend)
  if (unavailable !== undefined) o.fail('backend', `"${backend}" is not available: ${unavailable}`)

  const now = o.fn('now', Date.now, 'must be a function returning milliseconds')

  const resourceMetadataUrl = o.optionalString('resourceMetadataUrl')
  const expectedZoneId = o.aliased('expectedZoneId', 'zoneId', (name) => o.optionalString(name))

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
      requiredScopes: scopeList(o),
      requireAgent: o.aliased('requireAgent', 'requireSession', (name) => o.boolean(name, false)),
      requireDelegation: o.boolean('requireDelegation', false),
      requireChainContains: o.stringList('requireChainContains'),
      maxHopCount: hopLimit(o),
      requiredTargets: o.stringList('requiredTargets'),
    },
    revocations,
    replay,
    algorithms: new Set(algorithms),
    cacheMax,
    backend,
    maxTokenLength: o.integer('maxTokenLength', DEFAULT_MAX_TOKEN_LENGTH, 16),
    resourceMetadataUrl,
    now,
    workers: o.integerOr('workers', 'auto', 0, 0, MAX_WORKERS),
    jwks: resolveJwksOptions(o, issuer, expectedZoneId),
  }
}

/** Where a Caracal STS publishes the keys: one keyset per zone, chosen by the configured zone only. */
export function defaultJwksUrl(issuer: string, zoneId: string | undefined): string {
  const base = `${issuer.replace(/\/+$/, '')}/.well-known/jwks.json`
  return zoneId === undefined ? base : `${base}?${new URLSearchParams({ zone_id: zoneId })}`
}

function resolveJwksOptions(o: OptionReader, issuer: string, zoneId: string | undefined): ResolvedOptions['jwks'] {
  const j: OptionReader = o.nested('jwks', KNOWN_JWKS_OPTIONS, 'a JWKS option')
  let keys: { keys: readonly unknown[] } | undefined
  const given = j.raw('keys')
  if (given !== undefined) {
    const list = Array.isArray(given) ? given : (given as { keys?: unknown } | null)?.keys
    if (!Array.isArray(list)) j.fail('keys', 'must be a JWKS ({ keys: [...] }) or an array of JWKs')
    keys = { keys: list }
  }
  const url =
    keys !== undefined && j.raw('url') === undefined
      ? undefined
      : (j.optionalString('url') ?? defaultJwksUrl(issuer, zoneId))
  if (url !== undefined) {
    const problem = checkJwksUrl(url)
    if (problem !== undefined) {
      if (j.raw('url') === undefined) o.fail('issuer', `(JWKS URL ${url}) ${problem}`)
      j.fail('url', `(JWKS URL ${url}) ${problem}`)
    }
  }
  // The global fetch called as a method of the options object would get that object as `this`:
  // browsers and workerd refuse it ("Illegal invocation"). Called through a wrapper, it gets none.
  const fetchImpl = j.fn('fetch', callGlobalFetch, 'must be a fetch function')
  if (keys !== undefined && url !== undefined) o.fail('jwks', 'takes either keys or url, not both')
  const ttlMs = j.nonNegativeMs('ttlMs', 10 * 60_000)
  // Below ttlMs the keys would go stale before the background refresh even tried: a mistake
  // (seconds for milliseconds, say) better refused here than found during an outage.
  const maxStaleMs = j.nonNegativeMs('maxStaleMs', Math.max(DEFAULT_JWKS_MAX_STALE_MS, ttlMs))
  if (maxStaleMs < ttlMs) j.fail('maxStaleMs', `must be at least jwks.ttlMs (${ttlMs} ms)`)
  return {
    url,
    keys,
    ttlMs,
    cooldownMs: j.nonNegativeMs('cooldownMs', 30_000),
    timeoutMs: j.nonNegativeMs('timeoutMs', 5_000) || 1,
    maxBytes: j.integer('maxBytes', 256 * 1024, 64),
    maxStaleMs,
    fetch: fetchImpl,
  }
}
