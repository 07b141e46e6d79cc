/**
 * The one error class of the library. `code` is stable and is what callers (and tests) match on;
 * `description` is safe to send to a client: it never contains token contents.
 */
export type CaracalErrorCode =
  | 'missing_token'
  | 'invalid_token'
  | 'invalid_zone'
  | 'session_revoked'
  | 'delegation_stale'
  | 'token_replayed'
  | 'insufficient_scope'
  | 'agent_required'
  | 'delegation_required'
  | 'chain_mismatch'
  | 'hop_count_exceeded'

export interface CodeInfo {
  readonly status: 401 | 403
  readonly hint: string
}

/** Status and caller hint per code (README "Errors"). */
export const ERROR_CODES: Readonly<Record<CaracalErrorCode, CodeInfo>> = Object.freeze({
  missing_token: { status: 401, hint: 'Send a Caracal mandate as "Authorization: Bearer <token>".' },
  invalid_token: { status: 401, hint: 'Obtain a fresh mandate from the Caracal STS.' },
  invalid_zone: { status: 401, hint: 'Obtain a mandate issued for this zone.' },
  session_revoked: { status: 401, hint: 'The session was revoked: start a new session and obtain a new mandate.' },
  delegation_stale: { status: 401, hint: 'Refresh the mandate: the delegation graph changed after it was issued.' },
  token_replayed: { status: 401, hint: 'Mint a new mandate: each resource mandate may be used once.' },
  insufficient_scope: { status: 403, hint: 'Request a mandate that carries the required scopes.' },
  agent_required: { status: 403, hint: 'Call through an agent session: the mandate needs agent_session_id.' },
  delegation_required: { status: 403, hint: 'Call through a delegation: the mandate needs delegation_edge_id.' },
  chain_mismatch: { status: 403, hint: 'Call through a delegation chain that includes the required applications.' },
  hop_count_exceeded: { status: 403, hint: 'Shorten the delegation chain.' },
})

export interface CaracalAuthErrorOptions {
  /** Scopes the caller lacked (for `insufficient_scope`), echoed in `WWW-Authenticate`. */
  readonly scope?: readonly string[]
  /** The revocation state could not be trusted (store failing closed): HTTP adapters answer 503. */
  readonly unavailable?: boolean
  readonly cause?: unknown
}

/**
 * Marks the class's instances across copies of this module: a bundle or an install can end up with
 * two (two versions side by side, a dependency bundling its own), and a refusal from one copy must
 * still be recognised by the adapters of the other, never turned into "token could not be verified".
 */
const BRAND: unique symbol = Symbol.for('caracal-fastmcp.CaracalAuthError') as never

export class CaracalAuthError extends Error {
  override readonly name = 'CaracalAuthError'
  readonly [BRAND] = true
  readonly code: CaracalErrorCode
  readonly description: string
  readonly hint: string
  readonly status: 401 | 403
  readonly scope: readonly string[] | undefined
  readonly unavailable: boolean

  constructor(code: CaracalErrorCode, description: string, options: CaracalAuthErrorOptions = {}) {
    super(`${code}: ${description}`, options.cause === undefined ? undefined : { cause: options.cause })
    const info = ERROR_CODES[code]
    this.code = code
    this.description = description
    this.hint = info.hint
    this.status = info.status
    this.scope = options.scope
    this.unavailable = options.unavailable === true
  }
}

/** True for errors of this class, from this copy of the module or another (see `BRAND`). */
export function isCaracalAuthError(value: unknown): value is CaracalAuthError {
  if (value instanceof CaracalAuthError) return true
  if (typeof value !== 'object' || value === null || (value as { [BRAND]?: unknown })[BRAND] !== true) return false
  const code = (value as { code?: unknown }).code
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code)
}

/** Shorthand used on every invalid_token path. */
export function invalidToken(description: string): CaracalAuthError {
  return new CaracalAuthError('invalid_token', description)
}
