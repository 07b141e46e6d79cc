/**
 * Fetch API integration: a `Request` in, the claims or a ready `Response` out, for Cloudflare
 * Workers, `Deno.serve`, `Bun.serve` and any framework built on `Request`/`Response`. The rules are
 * the Node adapters' (http-error.ts): one Authorization header, the Bearer scheme, the same
 * 401/403/503 rendering. Nothing here may need Node: no `node:*`, no `Buffer`, no `process`.
 */
import type { CaracalAuthError } from '../errors.js'
import type { Claims } from '../policy/claims.js'
import {
  asAuthError,
  authErrorResponse,
  bearerToken,
  challengeOf,
  fetchAuthorizationHeader,
  type ChallengeDefaults,
  type ChallengeOptions,
} from './http-error.js'
import {
  metadataAnswer,
  protectedResourceMetadata,
  protectedResourceMetadataUrl,
  type MetadataDefaults,
  type ProtectedResourceMetadataOptions,
} from './resource-metadata.js'

/** The part of `CaracalAuth` the Fetch adapter needs (structural: this entry imports no verifier). */
export interface FetchVerifier extends ChallengeDefaults {
  verify(token: string): Promise<Claims>
}

export type FetchAuthOptions = ChallengeOptions

export type FetchAuthResult =
  | { readonly ok: true; readonly claims: Claims }
  | { readonly ok: false; readonly response: Response; readonly error: CaracalAuthError }

/**
 * Verifies the bearer mandate of `request`. Never rejects: a refusal is a fresh `Response` (401,
 * 403, or 503 with `Retry-After`) to return as is, with the `CaracalAuthError` it renders.
 */
export async function authenticateRequest(
  auth: FetchVerifier,
  request: Request,
  options?: FetchAuthOptions,
): Promise<FetchAuthResult> {
  try {
    const token = bearerToken(fetchAuthorizationHeader(request.headers))
    return { ok: true, claims: await auth.verify(token) }
  } catch (thrown) {
    const error = asAuthError(thrown)
    return { ok: false, response: authErrorResponse(error, challengeOf(auth, options)), error }
  }
}

/**
 * A handler that runs only for a verified mandate. Whatever else the runtime passes after the
 * request (Workers' `env` and `ctx`, Deno's `info`, Bun's `server`) reaches `handler` unchanged.
 */
export function withCaracalAuth<Rest extends unknown[]>(
  auth: FetchVerifier,
  handler: (request: Request, claims: Claims, ...rest: Rest) => Response | Promise<Response>,
  options?: FetchAuthOptions,
): (request: Request, ...rest: Rest) => Promise<Response> {
  return async (request, ...rest) => {
    const result = await authenticateRequest(auth, request, options)
    return result.ok ? handler(request, result.claims, ...rest) : result.response
  }
}

/**
 * The RFC 9728 metadata document at its path, as the node:http handler serves it (GET/HEAD, CORS
 * preflight, 405 otherwise); `undefined` for any other path, so it chains:
 * `return metadata(request) ?? handler(request, env, ctx)`.
 */
export function serveProtectedResourceMetadata(
  auth: MetadataDefaults,
  options: ProtectedResourceMetadataOptions,
): (request: Request) => Response | undefined {
  const body = JSON.stringify(protectedResourceMetadata(auth, options))
  const path = new URL(protectedResourceMetadataUrl(options.resourceServerUrl)).pathname
  return (request) => {
    if (new URL(request.url).pathname !== path) return undefined
    const answer = metadataAnswer(request.method, body)
    return new Response(answer.body ?? null, { status: answer.status, headers: answer.headers })
  }
}
