/**
 * How every HTTP adapter answers a rejected request (README "Errors"): the status of the code,
 * an RFC 6750 challenge, and a JSON-RPC error body an MCP client can read. One renderer, so the
 * fastmcp adapter and the Express middleware cannot drift apart.
 */
import { CaracalAuthError, isCaracalAuthError } from '../errors.js'

export interface ChallengeOptions {
  /** RFC 9728 metadata URL, advertised as `resource_metadata` (MCP authorization spec). */
  readonly resourceMetadataUrl?: string | undefined
  /** Scopes the resource needs, advertised as `scope` when the error itself names none. */
  readonly requiredScopes?: readonly string[] | undefined
  /** Seconds a client should wait when the revocation state is unavailable. Default 5. */
  readonly retryAfterSec?: number | undefined
}

/** The part of a verifier the challenge defaults come from (structural: no import of `CaracalAuth`). */
export interface ChallengeDefaults {
  readonly options: {
    readonly resourceMetadataUrl: string | undefined
    readonly policy: { readonly requiredScopes: readonly string[] }
  }
}

/**
 * An adapter's options over the verifier's own, so every adapter advertises the same metadata URL
 * and scopes for the same verifier.
 */
export function challengeOf(auth: ChallengeDefaults, options: ChallengeOptions = {}): ChallengeOptions {
  return {
    resourceMetadataUrl: options.resourceMetadataUrl ?? auth.options.resourceMetadataUrl,
    requiredScopes: options.requiredScopes ?? auth.options.policy.requiredScopes,
    retryAfterSec: options.retryAfterSec,
  }
}

export interface RenderedAuthError {
  readonly status: 401 | 403 | 503
  readonly headers: Readonly<Record<string, string>>
  /** JSON text of a JSON-RPC 2.0 error response. */
  readonly body: string
}

export const DEFAULT_RETRY_AFTER_SEC = 5

/**
 * JSON-RPC code of an authentication failure: -32000 is what fastmcp and mcp-proxy use for their
 * own 401s, so clients that already recognise those see ours the same way.
 */
export const AUTH_JSON_RPC_CODE = -32000

/**
 * RFC 6750 §3 allows only %x20-21 / %x23-5B / %x5D-7E inside `error_description` and `scope`:
 * anything else is replaced, so a description can never break or inject a header.
 */
export function quotable(text: string): string {
  return text.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '?')
}

/** The RFC 6750 `error` of a code: only two of its values apply to a resource server. */
export function bearerErrorOf(error: CaracalAuthError): 'invalid_token' | 'insufficient_scope' {
  return error.status === 403 ? 'insufficient_scope' : 'invalid_token'
}

/** `Bearer error="…", error_description="…"[, scope="…"][, resource_metadata="…"]`. */
export function wwwAuthenticate(error: CaracalAuthError, options: ChallengeOptions = {}): string {
  let header = `Bearer error="${bearerErrorOf(error)}", error_description="${quotable(error.message)}"`
  const scope = error.scope ?? options.requiredScopes
  if (scope !== undefined && scope.length > 0) header += `, scope="${quotable(scope.join(' '))}"`
  if (options.resourceMetadataUrl !== undefined)
    header += `, resource_metadata="${quotable(options.resourceMetadataUrl)}"`
  return header
}

export function renderAuthError(error: CaracalAuthError, options: ChallengeOptions = {}): RenderedAuthError {
  const data: Record<string, unknown> = {
    error: error.code,
    error_description: error.description,
    hint: error.hint,
  }
  if (error.scope !== undefined) data.scope = error.scope.join(' ')
  const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store' }
  let status: RenderedAuthError['status']
  if (error.unavailable) {
    // The mandate may well be valid: the server cannot check it right now. A 401 would send the
    // client off to re-authorize for nothing, so this is a 503 without a challenge.
    status = 503
    data.unavailable = true
    headers['retry-after'] = String(Math.max(0, Math.ceil(options.retryAfterSec ?? DEFAULT_RETRY_AFTER_SEC)))
  } else {
    status = error.status
    headers['www-authenticate'] = wwwAuthenticate(error, options)
  }
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id: null,
    error: { code: AUTH_JSON_RPC_CODE, message: error.message, data },
  })
  return { status, headers, body }
}

/** The rendered error as a fetch `Response`: what fastmcp (through mcp-proxy) passes through unchanged. */
export function authErrorResponse(error: CaracalAuthError, options: ChallengeOptions = {}): Response {
  const r = renderAuthError(error, options)
  return new Response(r.body, { status: r.status, headers: r.headers })
}

const MORE_THAN_ONE_AUTHORIZATION = 'more than one Authorization header'

/** The part of a request the adapters read: its headers, and the raw list when there is one (node:http). */
export interface AuthorizationSource {
  readonly headers: { readonly authorization?: string | readonly string[] | undefined }
  /** node:http's `rawHeaders`: names and values alternating, every repeat kept. */
  readonly rawHeaders?: readonly string[] | undefined
}

/**
 * The request's Authorization header, refusing a request that carries more than one. node:http keeps
 * only the first repeat in `req.headers` (or joins them, with `joinDuplicateHeaders`), so a second
 * header would go unseen here while a proxy in front may have judged that one: two credentials are
 * ambiguous (RFC 6750 §3.1 lists a repeated parameter as `invalid_request`), whichever is valid.
 * Refused as `missing_token`, as a repeated header given as an array already is: the request holds
 * no single bearer token. Only `rawHeaders` shows the repeat; the scan looks at names of 13 characters.
 */
export function authorizationHeader(req: AuthorizationSource | undefined): string | readonly string[] | undefined {
  if (req === undefined) return undefined
  const raw = req.rawHeaders
  if (raw === undefined) return req.headers.authorization
  // The value comes from the scan too: Node builds `req.headers` lazily, on first read, and a
  // gateway that reads nothing else would pay for the whole object on every request.
  let value: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    if (name.length === 13 && name.toLowerCase() === 'authorization') {
      if (value !== undefined) throw new CaracalAuthError('missing_token', MORE_THAN_ONE_AUTHORIZATION)
      value = raw[i + 1] ?? ''
    }
  }
  return value
}

/** What the Fetch adapter reads of a `Request`'s `Headers`. */
export interface FetchHeaderSource {
  get(name: string): string | null
}

/**
 * The Authorization header of a Fetch `Request`, refusing one that stands for more than one header.
 * `Headers` keeps no repeats: `get` joins them with ", " (Fetch standard, "get" on a header list),
 * as RFC 9110 §5.3 allows a recipient to, so a comma is the only trace a second header leaves. A
 * Bearer credential never holds one (RFC 6750 §2.1: b64token), so no single valid token is lost.
 */
export function fetchAuthorizationHeader(headers: FetchHeaderSource): string | undefined {
  const value = headers.get('authorization')
  if (value === null) return undefined
  if (value.includes(',')) throw new CaracalAuthError('missing_token', MORE_THAN_ONE_AUTHORIZATION)
  return value
}

/**
 * The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1; the scheme is
 * case-insensitive, RFC 7235 §2.1). A missing or empty header, another scheme, or a scheme without
 * a token is `missing_token`; what follows the scheme is handed to the verifier as is, which
 * rejects anything that is not a compact JWS.
 */
export function bearerToken(header: string | readonly string[] | undefined): string {
  if (Array.isArray(header) && header.length > 1)
    throw new CaracalAuthError('missing_token', MORE_THAN_ONE_AUTHORIZATION)
  if (
    typeof header === 'string' &&
    header.length > 7 &&
    header.charCodeAt(6) === 32 &&
    header.slice(0, 6).toLowerCase() === 'bearer'
  ) {
    let start = 7
    while (header.charCodeAt(start) === 32) start++
    const token = header.slice(start).trimEnd()
    if (token !== '') return token
  }
  throw new CaracalAuthError('missing_token', 'no bearer token in the Authorization header')
}

/** Anything a verifier threw, as a `CaracalAuthError` (the verifier promises nothing else, but adapters must never leak a 500). */
export function asAuthError(error: unknown): CaracalAuthError {
  return isCaracalAuthError(error)
    ? error
    : new CaracalAuthError('invalid_token', 'token could not be verified', { cause: error })
}
