/**
 * Entry `caracal-fastmcp/compat/fastmcp`: a drop-in for `@caracalai/fastmcp` (README "Migrating from
 * the Caracal TypeScript packages"). The same exports — `verifyFastMcpToken`, `FastMcpAuthError`,
 * `extractBearer` and the types `FastMcpAuthOptions`, `FastMcpContext` — with the same signatures,
 * built on `./verify.js` exactly as the original builds on `@caracalai/verify`: a verifier made by
 * `createMandateVerifier` is asked with the route's overrides, anything else is treated as the
 * dependencies of a plain `authenticate` merged with the route's overrides.
 *
 * Deliberate differences from `@caracalai/fastmcp`:
 * - Everything the engine does beyond the original (stricter parsing, ES256 only, the fail-closed
 *   revocation mirror, JWKS outages) arrives here through `./verify.js` unchanged: this module adds
 *   no check of its own.
 * - A refusal that `./verify.js` marks temporary (the JWKS could not be fetched, or the revocation
 *   store cannot be trusted) gives a `FastMcpAuthError` with a non-enumerable `unavailable: true`,
 *   so a server can answer 503 with Retry-After instead of sending the client off to re-authorize
 *   (README "HTTP answers"). Its enumerable fields, `toJSON()` and `instanceof` are the original's.
 * - Without a route argument the verifier is asked with one shared, frozen empty overrides object
 *   rather than a new `{}` per call (equal by value).
 * - `FastMcpContext` is a type alias, not an interface (no declaration merging), so that it can be
 *   fastmcp's session type.
 * - `FastMcpAuthError` extends the `CaracalError` of `caracal-fastmcp/compat/identity` (the
 *   original's extends `@caracalai/core`'s).
 */
import { CaracalError } from './identity.js'
import {
  authenticate,
  extractBearer,
  type AuthDeps,
  type AuthErrorCode,
  type AuthOverrides,
  type AuthResult,
  type MandateVerifier,
} from './verify.js'

export type FastMcpAuthOptions = AuthDeps | MandateVerifier

/**
 * What `verifyFastMcpToken` resolves to: the subject, its zone and its scope string. A type alias
 * (the original's is an interface) so that it satisfies fastmcp's `Record<string, unknown>` session
 * constraint and can be returned from `authenticate` as it is.
 */
export type FastMcpContext = {
  sub: string
  zoneId: string
  scope: string
}

/**
 * Thrown by `verifyFastMcpToken` for every refusal: `code` is the verify package's error code,
 * `message` its description and `hint` its operator hint (the fields of `AuthError`).
 */
export class FastMcpAuthError extends CaracalError {
  readonly hint?: string

  constructor(code: AuthErrorCode, description: string, hint?: string) {
    super(code, description)
    this.name = 'FastMcpAuthError'
    this.hint = hint
  }
}

const NO_ROUTE: AuthOverrides = Object.freeze({})

/** `{ ...options, ...route }`, without the copy when there is no route. */
function depsFor(options: AuthDeps, route: AuthOverrides): AuthDeps {
  return route === NO_ROUTE ? options : { ...options, ...route }
}

/** The original's test for a reusable verifier: it has both `authenticate` and `defaults`. */
function isVerifier(options: FastMcpAuthOptions): options is MandateVerifier {
  return 'authenticate' in options && 'defaults' in options
}

/**
 * Verifies `token` and returns `{ sub, zoneId, scope }`, or throws `FastMcpAuthError` with the
 * verify package's code, description and hint. `options` is either a verifier from
 * `createMandateVerifier` (asked with `route` as its overrides) or the dependencies of
 * `authenticate` (merged with `route`).
 */
export async function verifyFastMcpToken(
  token: string,
  options: FastMcpAuthOptions,
  route: AuthOverrides = NO_ROUTE,
): Promise<FastMcpContext> {
  const result: AuthResult = isVerifier(options)
    ? await options.authenticate(token, route)
    : await authenticate(token, depsFor(options, route))
  if (!result.ok) {
    const error = new FastMcpAuthError(result.error.code, result.error.description, result.error.hint)
    if ((result.error as { unavailable?: unknown }).unavailable === true)
      Object.defineProperty(error, 'unavailable', { value: true, enumerable: false })
    throw error
  }
  const claims = result.principal
  return { sub: claims.sub, zoneId: claims.zoneId, scope: claims.scope }
}

export { extractBearer }
