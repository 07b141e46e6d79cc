/**
 * `caracal-fastmcp/compat/verify`: the exports of `@caracalai/verify` — `authenticate`,
 * `createMandateVerifier`, `extractBearer`, `checkActiveAuthority`, `httpStatusForAuthError`,
 * `authErrorBody`, `authenticateRequest`, `unauthorizedResponse` and the types — with its codes,
 * descriptions, hints and HTTP statuses, backed by this library's engine through
 * `caracal-fastmcp/compat/identity`. Change the import specifier; every other line stays.
 *
 * Same steps as the original: the identity checks (signature, claims, zone, then the route's
 * policy), then the revocation store for every anchor (`sid`, `root_sid`, `agent_session_id`,
 * `delegation_edge_id`), then the zone's delegation epoch. The engine behind it is found by
 * (JWKS cache, issuer, zone, audience, `requiredUse`), made once and reused; the per-route
 * overrides of `verifier.authenticate(token, overrides)` only change the checks applied to the
 * claims, so any number of routes cost one JWKS fetch and one signature check per token. A
 * `createMandateVerifier` reads its defaults once and remembers its engine: a call without
 * overrides finds it by its defaults object and allocates only its result (with overrides: one
 * merged settings object, and five fields compared).
 *
 * Deliberate differences from `@caracalai/verify` (besides those of compat/identity):
 * - A revocation store that throws, rejects, or answers anything but a boolean (and an epoch that is
 *   not a number) fails closed: `session_revoked` where Caracal answers `invalid_token`, or lets the
 *   mandate through (`undefined`, `null`). Anchors are asked one after the other, and a store that
 *   answers synchronously is answered synchronously (no `Promise.all` per request).
 * - When the refusal is ours and temporary — the JWKS could not be fetched, or the revocation store
 *   cannot be trusted (`unavailableReason()`, README "Revocation") — the `AuthError` carries a
 *   non-enumerable `unavailable: true`; its enumerable fields, and so `toEqual`, JSON and
 *   `authErrorBody`, are Caracal's. `httpStatusForAuthError` and `unauthorizedResponse` keep
 *   Caracal's 401; an adapter may answer 503 with Retry-After instead (README "HTTP answers").
 * - A mandate presented after its `exp` is `invalid_token` "Token validation failed" (the engine
 *   has no 60 s leeway after `exp`), where Caracal says "Token expired during execution" during
 *   that minute; `checkActiveAuthority` itself says it as Caracal does.
 * - `extractBearer` answers null for anything but a string header.
 * - `createMandateVerifier` reads `defaults` when it is called: changing that object's properties
 *   later changes nothing (Caracal spreads it on every call). `verifier.defaults` is the object given.
 * - The principal is the engine's claims object: frozen, shared by the calls for the same token,
 *   absent optional claims absent (not `undefined` members).
 */
import type { CaracalAuthError } from '../errors.js'
import type { Claims as EngineClaims } from '../policy/claims.js'
import { verifyInline } from '../verify-inline.js'
import { EngineMemo } from './jwks-registry.js'
import {
  ChainMismatchError,
  DelegationRequiredError,
  HopCountExceededError,
  MANDATE_USE_RESOURCE,
  ScopeInsufficientError,
  SessionRequiredError,
  ZoneInvalidError,
  engineOf,
  identityErrorOf,
  ownRegistry,
  policyError,
  registryOf,
  settingsOf,
  type CaracalError,
  type Claims,
  type JwksCache,
  type JwtConfig,
  type RevocationStoreLike,
  type Settings,
} from './identity-core.js'

// ---------------------------------------------------------------------------------------------
// Types (`types.ts` of @caracalai/verify)

export type Principal = Claims

export type AuthErrorCode =
  | 'missing_token'
  | 'invalid_token'
  | 'invalid_zone'
  | 'insufficient_scope'
  | 'session_revoked'
  | 'delegation_stale'
  | 'session_required'
  | 'delegation_required'
  | 'chain_mismatch'
  | 'hop_count_exceeded'

export interface AuthError {
  code: AuthErrorCode
  description: string
  hint?: string
}

export type AuthResult = { ok: true; principal: Principal } | { ok: false; error: AuthError }

export type AuthDeps = JwtConfig & { revocations: RevocationStoreLike; jwksCache?: JwksCache }
export type AuthOverrides = Partial<Omit<AuthDeps, 'issuer' | 'audience' | 'revocations' | 'jwksCache'>>

export interface MandateVerifier {
  readonly defaults: AuthDeps
  authenticate: (token: string, overrides?: AuthOverrides) => Promise<AuthResult>
  authorization: (authHeader: string | undefined, overrides?: AuthOverrides) => Promise<AuthResult>
  require: (overrides: AuthOverrides) => MandateVerifier
  warmup: () => Promise<void>
}

// ---------------------------------------------------------------------------------------------
// Codes, descriptions, hints, statuses

const DESCRIPTIONS: Readonly<Record<AuthErrorCode, string>> = Object.freeze({
  missing_token: 'Missing bearer token',
  invalid_token: 'Token validation failed',
  invalid_zone: 'Token zone validation failed',
  insufficient_scope: 'Required scope is missing',
  session_revoked: 'Session revoked',
  delegation_stale: 'Delegation graph changed',
  session_required: 'Session required',
  delegation_required: 'Delegation required',
  chain_mismatch: 'Delegation chain validation failed',
  hop_count_exceeded: 'Hop count exceeded',
})

const HINTS: Readonly<Record<AuthErrorCode, string>> = Object.freeze({
  missing_token: 'Send Authorization: Bearer <Caracal mandate>.',
  invalid_token: 'Check issuer, audience, signature, expiry, token use, scopes, and targets.',
  invalid_zone: 'Check the configured zoneId and the mandate zone_id claim.',
  insufficient_scope: 'Request a mandate that includes every required scope for this route.',
  session_revoked: 'Refresh the mandate or start a new authorized session.',
  delegation_stale: 'Refresh the mandate so delegated authority is evaluated against the latest graph.',
  session_required: 'Use a resource mandate issued for a governed Session.',
  delegation_required: 'Use a mandate produced by a delegated grant flow.',
  chain_mismatch: 'Check requireChainContains and the mandate delegation chain.',
  hop_count_exceeded: 'Reduce delegation depth or raise maxHopCount deliberately.',
})

/** An unknown code (a caller's own) gets the invalid_token texts, as in Caracal's switch default. */
function authError(code: AuthErrorCode, description?: string): AuthError {
  return {
    code,
    description: description ?? DESCRIPTIONS[code] ?? DESCRIPTIONS.invalid_token,
    hint: HINTS[code] ?? HINTS.invalid_token,
  }
}

/** Marks a refusal that is ours and temporary, invisibly to `toEqual` and JSON (see the header). */
function unavailable(error: AuthError): AuthError {
  Object.defineProperty(error, 'unavailable', { value: true, enumerable: false })
  return error
}

const failure = (error: AuthError): AuthResult => ({ ok: false, error })

/**
 * 401: the credential was not accepted (missing, malformed, wrong zone, revoked, stale). 403: the
 * mandate verified, but the authority it carries is not enough for the route.
 */
export function httpStatusForAuthError(code: AuthErrorCode): number {
  switch (code) {
    case 'insufficient_scope':
    case 'session_required':
    case 'delegation_required':
    case 'chain_mismatch':
    case 'hop_count_exceeded':
      return 403
    default:
      return 401
  }
}

/** An identity refusal as the `AuthError` Caracal's `authenticate` answers for it. */
function fromIdentityError(error: CaracalError): AuthError {
  let result: AuthError
  if (error instanceof ScopeInsufficientError) result = authError('insufficient_scope', error.message)
  else if (error instanceof SessionRequiredError) result = authError('session_required', error.message)
  else if (error instanceof DelegationRequiredError) result = authError('delegation_required', error.message)
  else if (error instanceof ChainMismatchError) result = authError('chain_mismatch', error.message)
  else if (error instanceof HopCountExceededError) result = authError('hop_count_exceeded', error.message)
  else if (error instanceof ZoneInvalidError) result = authError('invalid_zone')
  else result = authError('invalid_token')
  const cause = error.cause as CaracalAuthError | undefined
  return cause?.unavailable === true ? unavailable(result) : result
}

// ---------------------------------------------------------------------------------------------
// Bearer header

const BEARER = 'bearer'

/**
 * The token of `Authorization: Bearer <token>` (scheme in any case, at least one whitespace after
 * it, surrounding whitespace dropped), or null. Linear in the header's length.
 */
export function extractBearer(authHeader: string | undefined): string | null {
  if (typeof authHeader !== 'string' || authHeader.slice(0, BEARER.length).toLowerCase() !== BEARER) return null
  const rest = authHeader.slice(BEARER.length)
  // A scheme that runs on ("Bearerx …") is another scheme.
  if (rest === '' || rest.trimStart().length === rest.length) return null
  const token = rest.trim()
  return token === '' ? null : token
}

// ---------------------------------------------------------------------------------------------
// Revocation and epoch (`checkActiveAuthority`)

type Pending = AuthError | null | Promise<AuthError | null>

function revoked(store: RevocationStoreLike): AuthError {
  const e = authError('session_revoked')
  return typeof store.unavailableReason === 'function' && store.unavailableReason() !== undefined ? unavailable(e) : e
}

/** A store that cannot answer cannot vouch for the session: fail closed, marked temporary. */
const storeFailed = (): AuthError => unavailable(authError('session_revoked'))

/**
 * Expiry, every anchor, then the epoch. Synchronous while the store answers synchronously (the
 * mirror of `RedisRevocationStore` always does once loaded), so a cached mandate costs no promise.
 */
function activeAuthority(claims: Claims, store: RevocationStoreLike, nowMs: number): Pending {
  if (!claims.authorityRecordId) return authError('invalid_token')
  if (claims.expiresAt * 1000 <= nowMs) return authError('invalid_token', 'Token expired during execution')
  return notRevoked(claims, store)
}

/**
 * Every anchor, then the epoch (what `activeAuthority` asks after the expiry). `authenticate`
 * starts here: the engine has just refused a mandate at or past its `exp` on the same clock
 * (README "What is checked"; no leeway after `exp`), and a second clock read would cost as much
 * as the rest of a cached call.
 */
function notRevoked(claims: Claims, store: RevocationStoreLike): Pending {
  if (!claims.authorityRecordId) return authError('invalid_token')
  for (let i = 0; i < ANCHORS; i++) {
    const anchor = anchorAt(claims, i)
    if (anchor === '') continue
    let answer: unknown
    try {
      answer = store.isRevoked(anchor)
    } catch {
      return storeFailed()
    }
    if (answer === true) return revoked(store)
    if (answer !== false) {
      if (!isThenable(answer)) return storeFailed()
      return restAsync(claims, store, i, answer)
    }
  }
  return epochError(claims, store)
}

/** sid, root_sid, agent_session_id, delegation_edge_id. */
const ANCHORS = 4

/** The i-th anchor, or '' when it is absent or repeats an earlier one (each is asked once). */
function anchorAt(c: Claims, i: number): string {
  const a = c.authorityRecordId
  const r = c.rootAuthorityRecordId
  const s = c.sessionId
  const d = c.delegationId
  if (i === 0) return a
  if (i === 1) return r && r !== a ? r : ''
  if (i === 2) return s && s !== a && s !== r ? s : ''
  return d && d !== a && d !== r && d !== s ? d : ''
}

async function restAsync(
  claims: Claims,
  store: RevocationStoreLike,
  from: number,
  first: PromiseLike<unknown>,
): Promise<AuthError | null> {
  for (let i = from; i < ANCHORS; i++) {
    const anchor = anchorAt(claims, i)
    if (anchor === '') continue
    let answer: unknown
    try {
      answer = await (i === from ? first : store.isRevoked(anchor))
    } catch {
      return storeFailed()
    }
    if (answer === true) return revoked(store)
    if (answer !== false) return storeFailed()
  }
  return epochError(claims, store)
}

/** `delegation_stale` when the zone's epoch moved past the mandate's (an equal epoch is current). */
function epochError(claims: Claims, store: RevocationStoreLike): Pending {
  const epoch = claims.graphEpoch
  if (epoch === undefined || typeof store.currentDelegationEpoch !== 'function') return null
  let answer: unknown
  try {
    answer = store.currentDelegationEpoch(claims.zoneId)
  } catch {
    return storeFailed()
  }
  if (!isThenable(answer)) return compareEpoch(answer, epoch)
  return Promise.resolve(answer).then((current) => compareEpoch(current, epoch), storeFailed)
}

function compareEpoch(current: unknown, epoch: number): AuthError | null {
  if (typeof current !== 'number' || Number.isNaN(current)) return storeFailed()
  return current > epoch ? authError('delegation_stale') : null
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function'
}

/**
 * Expiry and revocation for claims verified earlier (for a long-running operation): null while
 * the authority is still active, otherwise the `AuthError`.
 */
export function checkActiveAuthority(
  claims: Principal,
  revocations: RevocationStoreLike,
  nowMs = Date.now(),
): Promise<AuthError | null> {
  try {
    return Promise.resolve(activeAuthority(claims, revocations, nowMs))
  } catch {
    return Promise.resolve(authError('invalid_token'))
  }
}

// ---------------------------------------------------------------------------------------------
// authenticate

const freeMemo = new EngineMemo()

function accepted(claims: EngineClaims): AuthResult {
  return { ok: true, principal: claims as unknown as Principal }
}

function afterIdentity(claims: EngineClaims, deps: Settings): AuthResult | Promise<AuthResult> {
  const refused = policyError(claims, deps)
  if (refused !== undefined) return failure(fromIdentityError(refused))
  const store = deps.revocations as RevocationStoreLike | undefined
  if (!store || typeof store.isRevoked !== 'function')
    return failure(authError('invalid_token', 'Revocation store required'))
  const active = notRevoked(claims as unknown as Claims, store)
  if (active === null) return accepted(claims)
  if (!(active instanceof Promise)) return failure(active)
  return active.then(
    (e) => (e === null ? accepted(claims) : failure(e)),
    () => failure(authError('invalid_token')),
  )
}

const missingToken = (): Promise<AuthResult> => Promise.resolve(failure(authError('missing_token')))

/** After the token was found present. */
function run(token: string, s: Settings, memo: EngineMemo): Promise<AuthResult> {
  let claims: EngineClaims | Promise<EngineClaims>
  try {
    claims = engineOf(s, memo, MANDATE_USE_RESOURCE)[verifyInline](token)
  } catch (error) {
    return Promise.resolve(failure(fromIdentityError(identityErrorOf(error))))
  }
  // Settled at once when the engine answered at once (a cache hit): no extra promise hop, and no
  // closure made for a continuation that is not needed.
  if (!(claims instanceof Promise)) return Promise.resolve(decide(claims, s))
  return claims.then(
    (verified) => decide(verified, s),
    (error: unknown) => failure(fromIdentityError(identityErrorOf(error))),
  )
}

function decide(verified: EngineClaims, s: Settings): AuthResult | Promise<AuthResult> {
  try {
    return afterIdentity(verified, s)
  } catch {
    return failure(authError('invalid_token'))
  }
}

/**
 * Verifies `token` against `deps` and checks its anchors: `{ ok: true, principal }` or
 * `{ ok: false, error }`. Never rejects.
 */
export function authenticate(token: string, deps: AuthDeps): Promise<AuthResult> {
  // A missing token is answered before the config is looked at, as in Caracal.
  if (!token) return missingToken()
  let s: Settings
  try {
    s = settingsOf(deps)
  } catch (error) {
    return Promise.resolve(failure(fromIdentityError(identityErrorOf(error))))
  }
  return run(token, s, freeMemo)
}

function hasOwnKeys(o: object | undefined): boolean {
  if (o === undefined || o === null) return false
  for (const k in o) if (Object.hasOwn(o, k)) return true
  return false
}

/**
 * A verifier with fixed defaults and per-route overrides. Keep one per trust boundary: its engine,
 * keys and verified tokens are shared by every route, `require(…)` and override. The defaults are
 * read once, here.
 */
export function createMandateVerifier(defaults: AuthDeps): MandateVerifier {
  const memo = new EngineMemo()
  const d = settingsOf(defaults)
  // `{ ...defaults, ...overrides }`, read from the settings, without a copy when nothing overrides.
  const withOverrides = (overrides: AuthOverrides | undefined): Settings =>
    hasOwnKeys(overrides) ? settingsOf(d, overrides) : d
  return {
    defaults,
    authenticate(token: string, overrides?: AuthOverrides): Promise<AuthResult> {
      return token ? run(token, withOverrides(overrides), memo) : missingToken()
    },
    authorization(authHeader: string | undefined, overrides?: AuthOverrides): Promise<AuthResult> {
      const token = extractBearer(authHeader)
      return token ? run(token, withOverrides(overrides), memo) : missingToken()
    },
    require(overrides: AuthOverrides): MandateVerifier {
      return createMandateVerifier({ ...defaults, ...overrides })
    },
    async warmup(): Promise<void> {
      const cache = d.jwksCache as JwksCache | undefined
      // A JwksCache of someone else's making warms itself, as Caracal's warmup asks it to.
      if (cache !== undefined && ownRegistry(cache) === undefined) {
        await cache.warm(d.issuer, defaults.zoneId)
        return
      }
      // Make the engine first, so the zone's document is imported into it now, not on the first request.
      engineOf(d, memo, MANDATE_USE_RESOURCE)
      await registryOf(cache).warm(d.issuer, d.zoneId)
    },
  }
}

// ---------------------------------------------------------------------------------------------
// Fetch-standard helpers (`fetch.ts`)

/** The JSON error body of every HTTP adapter: `{ error, error_description, error_hint? }`. */
export function authErrorBody(err: AuthError): { error: string; error_description: string; error_hint?: string } {
  return {
    error: err.code,
    error_description: err.description,
    ...(err.hint ? { error_hint: err.hint } : {}),
  }
}

/** `authenticate` for the bearer mandate of a fetch-standard `Request`. */
export function authenticateRequest(request: Request, deps: AuthDeps): Promise<AuthResult> {
  const token = extractBearer(request.headers.get('authorization') ?? undefined)
  return authenticate(token ?? '', deps)
}

/** An `AuthError` as a JSON `Response` with its 401 or 403. */
export function unauthorizedResponse(error: AuthError): Response {
  return new Response(JSON.stringify(authErrorBody(error)), {
    status: httpStatusForAuthError(error.code),
    headers: { 'content-type': 'application/json' },
  })
}
