/**
 * fastmcp integration: `authenticate` for `new FastMCP({ authenticate })`. fastmcp (through
 * mcp-proxy) calls it on every HTTP request, passes a thrown `Response` through unchanged and turns
 * anything else it catches into a bare 401 — so every failure here is a rendered `Response`.
 * No runtime import of fastmcp: it is an optional peer dependency.
 */
import type { IncomingMessage } from 'node:http'
import { scopeEntries, type Claims } from '../policy/claims.js'
import type { ResolvedOptions } from '../options.js'
import {
  asAuthError,
  authErrorResponse,
  authorizationHeader,
  bearerToken,
  challengeOf,
  type AuthorizationSource,
  type ChallengeOptions,
} from './http-error.js'

/**
 * What tools receive as `context.session`. A type alias, not an interface, so that it satisfies
 * fastmcp's `Record<string, unknown>` session constraint.
 */
export type CaracalSession = {
  /** The validated claims of the mandate. */
  readonly claims: Claims
  /** The `scope` claim split on runs of ASCII whitespace, as `requiredScopes` reads it; fastmcp's `requireScopes` reads this. */
  readonly scopes: readonly string[]
  readonly sub: string
  readonly clientId: string
  readonly zoneId: string | undefined
  /** The agent session (`agent_session_id`), when the call comes through an agent. */
  readonly agentSessionId: string | undefined
  /** Seconds since the epoch (`exp`). */
  readonly expiresAt: number
}

/** The part of `CaracalAuth` an adapter needs (kept structural to avoid an import cycle). */
export interface MandateVerifier {
  verify(token: string): Promise<Claims>
  readonly options: ResolvedOptions
}

export type AuthenticateOptions = ChallengeOptions

/**
 * Sessions are memoized per claims object: a verified-token cache hit returns the same (frozen)
 * claims, so a warm request allocates nothing here.
 */
const sessions = new WeakMap<Claims, CaracalSession>()

export function sessionOf(claims: Claims): CaracalSession {
  let session = sessions.get(claims)
  if (session === undefined) {
    session = Object.freeze({
      claims,
      scopes: Object.freeze(scopeEntries(claims.scope)),
      sub: claims.sub,
      clientId: claims.clientId,
      zoneId: claims.zoneId,
      agentSessionId: claims.sessionId,
      expiresAt: claims.expiresAt,
    })
    sessions.set(claims, session)
  }
  return session
}

/**
 * One per verifier and options: the rejection handler is built once, so the warm path allocates no
 * closure (measured with tinybench on a cache hit: 1.24 µs per call against 1.74 µs with per-call
 * closures; `verify` alone is 0.39 µs).
 */
class Authenticator {
  readonly #auth: MandateVerifier
  readonly #challenge: ChallengeOptions
  readonly #reject: (error: unknown) => never

  constructor(auth: MandateVerifier, options: AuthenticateOptions) {
    this.#auth = auth
    const challenge = challengeOf(auth, options)
    this.#challenge = challenge
    this.#reject = (error) => {
      throw authErrorResponse(asAuthError(error), challenge)
    }
  }

  run(req: AuthorizationSource | undefined): Promise<CaracalSession> {
    let token: string
    try {
      // Through authorizationHeader: a repeated Authorization header is refused, not half-read.
      token = bearerToken(authorizationHeader(req))
    } catch (error) {
      return Promise.reject(authErrorResponse(asAuthError(error), this.#challenge))
    }
    return this.#auth.verify(token).then(sessionOf, this.#reject)
  }
}

const defaultAuthenticators = new WeakMap<MandateVerifier, Authenticator>()

/**
 * Verifies the bearer mandate of `req`; on failure rejects with a `Response` (401, 403, or 503
 * with `Retry-After`). With no request at all (fastmcp's stdio transport) there is no token: 401.
 */
export function authenticateRequest(
  auth: MandateVerifier,
  req: AuthorizationSource | undefined,
  options?: AuthenticateOptions,
): Promise<CaracalSession> {
  let authenticator = options === undefined ? defaultAuthenticators.get(auth) : undefined
  if (authenticator === undefined) {
    authenticator = new Authenticator(auth, options ?? {})
    if (options === undefined) defaultAuthenticators.set(auth, authenticator)
  }
  return authenticator.run(req)
}

/** `authenticate` with adapter options (Retry-After, a metadata URL other than the verifier's). */
export function createAuthenticate(
  auth: MandateVerifier,
  options: AuthenticateOptions = {},
): (req: IncomingMessage | undefined) => Promise<CaracalSession> {
  const authenticator = new Authenticator(auth, options)
  return (req) => authenticator.run(req)
}

/**
 * For fastmcp's `canAccess`: the tool is listed and callable only when the mandate carries every
 * scope. fastmcp evaluates it when it builds a session (every request in stateless mode, at
 * `initialize` otherwise).
 */
export function hasScopes(...required: string[]): (session: CaracalSession | undefined) => boolean {
  return (session) => session !== undefined && required.every((s) => session.scopes.includes(s))
}
