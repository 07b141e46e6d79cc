/**
 * Entry `caracal-fastmcp/compat/express`: a drop-in for `@caracalai/express` (README "Migrating from
 * the Caracal TypeScript packages"), Express 5 middleware built on `./verify.js` exactly as the
 * original builds on `@caracalai/verify`. Same exports — `caracalAuth` and the types
 * `MiddlewareOptions`, `VerifierMiddlewareOptions`, `CaracalRequest` — and the same answers:
 *
 * - No usable bearer token: `401 {"error":"missing_token","error_description":"Missing bearer token"}`
 *   (no `error_hint`, as in the original, which builds this error itself).
 * - A refusal: `httpStatusForAuthError(code)` with `authErrorBody(error)` as JSON
 *   (`error`, `error_description`, and `error_hint` when there is one). No `WWW-Authenticate`.
 * - Accepted: `req.caracal` and `req.caracalClaims` are the principal; `req.caracalContext` is the
 *   Caracal context built from the verified claims, with the W3C Trace Context and Baggage headers
 *   filling what the claims do not carry (signed claims win over unsigned baggage); unless
 *   `bindContext: false`, `next()` runs with that context bound for the rest of the request.
 *
 * Deliberate differences from `@caracalai/express`:
 * - A request with more than one Authorization header is answered as one without a token (the same
 *   401 `missing_token` body) instead of being judged on the first header, as this library's own
 *   adapters do (README "HTTP answers"): two credentials are ambiguous, RFC 6750 §3.1.
 * - A refusal that `./verify.js` marks temporary (`unavailable`: the JWKS could not be fetched, or the
 *   revocation store cannot be trusted, README "Revocation") is answered 503 with `Retry-After: 5`
 *   and the same body, where the original answers 401: the mandate may be valid, and a 401 would
 *   send the client off to re-authorize for nothing (README "HTTP answers").
 * - The merged dependencies `{ ...options, ...route }` (without `bindContext`) are built once, when
 *   the middleware is made, not per request, and verified through a verifier of this middleware's
 *   own (`createMandateVerifier`, same answers as `authenticate`), so that many middlewares with
 *   different dependencies each keep their engine at hand. Mutating the options object afterwards
 *   has no effect.
 * - The ambient context: the original binds it with `@caracalai/sdk/advanced`'s `bind`, which its
 *   `current()` reads. When that package can be imported, the same `bind` is used, so handlers
 *   calling the SDK's `current()` see the context unchanged; otherwise this module binds it in its
 *   own AsyncLocalStorage, read with the `current()` exported here (an addition; the SDK is not a
 *   dependency of this library).
 * - The envelope headers are read as the SDK reads them (W3C Trace Context `traceparent` and
 *   `tracestate`; W3C Baggage with the `caracal.agent_session`, `caracal.delegation_edge`,
 *   `caracal.parent_edge` and `caracal.hop` members, at most 8192 characters and 64 members, the
 *   hop capped at 10) by this module's own reader; a baggage member named `__proto__` is kept as an
 *   ordinary entry.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { DEFAULT_RETRY_AFTER_SEC, authorizationHeader } from '../adapters/http-error.js'
import type { Claims } from './identity.js'
import {
  authErrorBody,
  createMandateVerifier,
  extractBearer,
  httpStatusForAuthError,
  type AuthDeps,
  type AuthError,
  type AuthOverrides,
  type AuthResult,
  type MandateVerifier,
} from './verify.js'

export interface MiddlewareOptions extends AuthDeps {
  bindContext?: boolean
}

export interface VerifierMiddlewareOptions {
  verifier: MandateVerifier
  bindContext?: boolean
}

/**
 * The context the middleware binds, with the fields of `@caracalai/sdk`'s `CaracalContext` (the
 * SDK's own `ownToken` marker is never set on an inbound context).
 */
export interface CaracalContext {
  /** The bearer mandate the request presented. */
  subjectToken: string
  zoneId: string
  applicationId: string
  sessionId?: string
  delegationId?: string
  parentDelegationId?: string
  subjectAuthorityRecordId?: string
  traceId?: string
  traceFlags?: string
  traceState?: string
  baggage?: Record<string, string>
  hop: number
}

export interface CaracalRequest extends Request {
  caracal?: Claims
  caracalClaims?: Claims
  caracalContext?: CaracalContext
}

interface ContextBinder {
  bind<T>(ctx: CaracalContext, fn: () => T): T
  current(): CaracalContext | undefined
}

const local = new AsyncLocalStorage<CaracalContext>()
const ownBinder: ContextBinder = {
  bind: (ctx, fn) => local.run(ctx, fn),
  current: () => local.getStore(),
}

/** Held in a variable so that bundlers and type-checkers do not require the optional package. */
const SDK_ADVANCED = '@caracalai/sdk/advanced'

let binder: ContextBinder | undefined
let loadingBinder: Promise<ContextBinder> | undefined

function loadBinder(): Promise<ContextBinder> {
  loadingBinder ??= import(SDK_ADVANCED).then(
    (sdk: { bind?: unknown; current?: unknown }) => {
      const { bind, current } = sdk
      binder =
        typeof bind === 'function' && typeof current === 'function' ? (sdk as unknown as ContextBinder) : ownBinder
      return binder
    },
    () => {
      binder = ownBinder
      return binder
    },
  )
  return loadingBinder
}

/**
 * The context `caracalAuth` bound for the current request, when it bound it here (that is, when
 * `@caracalai/sdk/advanced` could not be imported; with the SDK, read its `current()`).
 */
export function current(): CaracalContext | undefined {
  return (binder ?? ownBinder).current()
}

const MISSING_TOKEN: AuthError = Object.freeze({ code: 'missing_token', description: 'Missing bearer token' })

function refuse(res: Response, error: AuthError): void {
  if ((error as { unavailable?: unknown }).unavailable === true) {
    res.status(503).set('retry-after', String(DEFAULT_RETRY_AFTER_SEC)).json(authErrorBody(error))
    return
  }
  res.status(httpStatusForAuthError(error.code)).json(authErrorBody(error))
}

/** `Authorization`, or undefined when the request has none or more than one. */
function singleAuthorization(req: Request): string | undefined {
  try {
    const header = authorizationHeader(req)
    return typeof header === 'string' ? header : undefined
  } catch {
    return undefined
  }
}

// W3C Trace Context / Baggage as the Caracal SDK reads them.
const MAX_BAGGAGE_CHARS = 8192
const MAX_BAGGAGE_MEMBERS = 64
const MAX_HOP = 10
const BAGGAGE_SESSION = 'caracal.agent_session'
const BAGGAGE_DELEGATION = 'caracal.delegation_edge'
const BAGGAGE_PARENT = 'caracal.parent_edge'
const BAGGAGE_SUBJECT_SESSION = 'caracal.session'
const BAGGAGE_HOP = 'caracal.hop'
const HEX2 = /^[0-9a-f]{2}$/
const HEX16 = /^[0-9a-f]{16}$/
const HEX32 = /^[0-9a-f]{32}$/
const DIGITS = /^[0-9]+$/

interface Envelope {
  sessionId: string | undefined
  delegationId: string | undefined
  parentDelegationId: string | undefined
  traceId: string | undefined
  traceFlags: string | undefined
  traceState: string | undefined
  baggage: Record<string, string> | undefined
  hop: number
}

function headerText(value: string | string[] | undefined, joinRepeats: boolean): string | undefined {
  if (Array.isArray(value)) return joinRepeats ? value.join(',') : value[0]
  return value
}

function parseTraceparent(value: string): { traceId: string; flags: string } | undefined {
  const parts = value.trim().split('-')
  if (parts.length < 4) return undefined
  const [version, traceId, spanId, flags] = parts as [string, string, string, string]
  if (!HEX2.test(version) || version === 'ff') return undefined
  if (version === '00' && parts.length !== 4) return undefined
  if (!HEX32.test(traceId) || /^0+$/.test(traceId)) return undefined
  if (!HEX16.test(spanId) || /^0+$/.test(spanId)) return undefined
  if (!HEX2.test(flags)) return undefined
  return { traceId, flags }
}

/** Never written to: what a request without (usable) baggage reads, without a Map per request. */
const NO_BAGGAGE: ReadonlyMap<string, string> = new Map()

function parseBaggage(value: string | undefined): ReadonlyMap<string, string> {
  if (value === undefined || value === '' || value.length > MAX_BAGGAGE_CHARS) return NO_BAGGAGE
  const members = value.split(',')
  if (members.length > MAX_BAGGAGE_MEMBERS) return NO_BAGGAGE
  const out = new Map<string, string>()
  for (const member of members) {
    const eq = member.indexOf('=')
    if (eq <= 0) continue
    const key = member.slice(0, eq).trim()
    if (key === '') continue
    const semi = member.indexOf(';', eq + 1)
    const raw = (semi === -1 ? member.slice(eq + 1) : member.slice(eq + 1, semi)).trim()
    let decoded = raw
    try {
      decoded = decodeURIComponent(raw)
    } catch {
      // not percent-encoded as RFC 3986 wants: keep it as sent
    }
    out.set(key, decoded)
  }
  return out
}

function readEnvelope(headers: Request['headers']): Envelope {
  const traceparent = headerText(headers.traceparent, false)
  const trace = traceparent === undefined ? undefined : parseTraceparent(traceparent)
  const traceState = headerText(headers.tracestate, false)?.trim()
  const bag = parseBaggage(headerText(headers.baggage, true))
  let extras: Record<string, string> | undefined
  for (const [key, value] of bag) {
    if (
      key === BAGGAGE_SESSION ||
      key === BAGGAGE_DELEGATION ||
      key === BAGGAGE_PARENT ||
      key === BAGGAGE_SUBJECT_SESSION ||
      key === BAGGAGE_HOP
    )
      continue
    extras ??= {}
    // defineProperty: a member named __proto__ becomes an entry, not the object's prototype.
    Object.defineProperty(extras, key, { value, enumerable: true, writable: true, configurable: true })
  }
  const hopText = bag.get(BAGGAGE_HOP)
  return {
    sessionId: bag.get(BAGGAGE_SESSION) || undefined,
    delegationId: bag.get(BAGGAGE_DELEGATION) || undefined,
    parentDelegationId: bag.get(BAGGAGE_PARENT) || undefined,
    traceId: trace?.traceId,
    traceFlags: trace?.flags,
    traceState: traceState || undefined,
    baggage: extras,
    hop: hopText !== undefined && DIGITS.test(hopText) ? Math.min(MAX_HOP, Number.parseInt(hopText, 10)) : 0,
  }
}

/**
 * Express 5 middleware: verifies the bearer mandate with `options` (the dependencies of
 * `authenticate`, or `{ verifier }` from `createMandateVerifier`) and the route's overrides; answers
 * a refusal itself, and calls `next()` only for an accepted mandate.
 */
export function caracalAuth(
  options: MiddlewareOptions | VerifierMiddlewareOptions,
  route: AuthOverrides = {},
): RequestHandler {
  const given = 'verifier' in options ? options.verifier : undefined
  let own: MandateVerifier | undefined
  if (given === undefined) {
    const { bindContext: _bindContext, ...deps } = { ...(options as MiddlewareOptions), ...route }
    own = createMandateVerifier(deps as AuthDeps)
  }
  const defaultZone = given === undefined ? (options as MiddlewareOptions).zoneId : given.defaults.zoneId
  const bindContext = options.bindContext !== false
  if (bindContext) void loadBinder()

  return async (req: CaracalRequest, res: Response, next: NextFunction): Promise<void> => {
    const token = extractBearer(singleAuthorization(req))
    if (!token) {
      refuse(res, MISSING_TOKEN)
      return
    }
    const result: AuthResult =
      given === undefined ? await own!.authenticate(token) : await given.authenticate(token, route)
    if (!result.ok) {
      refuse(res, result.error)
      return
    }
    const principal = result.principal
    req.caracal = principal
    req.caracalClaims = principal

    const env = readEnvelope(req.headers)
    const ctx: CaracalContext = {
      subjectToken: token,
      zoneId: principal.zoneId ?? defaultZone ?? '',
      applicationId: principal.clientId ?? '',
      sessionId: principal.sessionId ?? env.sessionId,
      delegationId: principal.delegationId ?? env.delegationId,
      parentDelegationId: env.parentDelegationId,
      subjectAuthorityRecordId: principal.authorityRecordId,
      traceId: env.traceId,
      traceFlags: env.traceFlags,
      traceState: env.traceState,
      baggage: env.baggage,
      hop: principal.hopCount ?? env.hop,
    }
    req.caracalContext = ctx

    if (!bindContext) {
      next()
      return
    }
    ;(binder ?? (await loadBinder())).bind(ctx, () => {
      next()
    })
  }
}
