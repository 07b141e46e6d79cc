/**
 * MCP TypeScript SDK integration (entry `caracal-fastmcp/mcp-sdk`):
 * - `mcpSdkVerifier(auth)`, the SDK's `OAuthTokenVerifier` for its `requireBearerAuth`. The SDK maps
 *   only its own error classes to statuses (a plain `Error` becomes a 500), so every rejection is
 *   one of them;
 * - `requireCaracalAuth(auth)`, a drop-in for `requireBearerAuth` that renders errors the way the
 *   fastmcp adapter does (Caracal code in a JSON-RPC body, 503 + Retry-After when the revocation
 *   state is unavailable, where the SDK can only answer 500);
 * - RFC 9728 protected-resource metadata, which the MCP authorization spec asks servers to serve.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { InsufficientScopeError, InvalidTokenError, ServerError } from '@modelcontextprotocol/sdk/server/auth/errors.js'
import type { OAuthTokenVerifier } from '@modelcontextprotocol/sdk/server/auth/provider.js'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import { utf8Text } from '#bytes'
import type { CaracalAuthError } from '../errors.js'
import { decodeBase64urlBytes } from '../jws/base64url.js'
import { scopeEntries, type Claims } from '../policy/claims.js'
import type { MandateVerifier } from './fastmcp.js'
import {
  asAuthError,
  authorizationHeader,
  bearerToken,
  challengeOf,
  quotable,
  renderAuthError,
  type ChallengeOptions,
} from './http-error.js'
import {
  metadataAnswer,
  protectedResourceMetadata,
  protectedResourceMetadataUrl,
  type ProtectedResourceMetadataOptions,
} from './resource-metadata.js'

export {
  protectedResourceMetadata,
  protectedResourceMetadataUrl,
  type ProtectedResourceMetadataOptions,
} from './resource-metadata.js'

export interface McpSdkVerifierOptions {
  /**
   * RFC 8707 resource reported in `AuthInfo.resource` (what `requireBearerAuth`'s
   * `expectedResource` compares). Default: the audience the mandate was accepted for, when it is
   * a URL.
   */
  readonly resource?: URL | string
}

/** The SDK's error class for a rejection: 401, 403, or "server" when the state is unavailable. */
export function toSdkError(error: CaracalAuthError): InvalidTokenError | InsufficientScopeError | ServerError {
  // The SDK copies the message unescaped into a quoted header parameter.
  const message = quotable(error.message)
  if (error.unavailable) return new ServerError(message)
  return error.status === 403 ? new InsufficientScopeError(message) : new InvalidTokenError(message)
}

function asUrl(value: string): URL | undefined {
  try {
    return new URL(value)
  } catch {
    return undefined
  }
}

/**
 * The accepted audience a verified token names. With one configured audience that is it; with
 * several, the (already verified) payload says which.
 */
function acceptedAudience(token: string, audiences: ReadonlySet<string>): string | undefined {
  if (audiences.size === 1) return audiences.values().next().value
  try {
    const bytes = decodeBase64urlBytes(token.split('.')[1] ?? '')
    const payload = JSON.parse(bytes === undefined ? '' : (utf8Text(bytes) ?? '')) as { aud?: unknown }
    const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud]
    return aud.find((a): a is string => typeof a === 'string' && audiences.has(a))
  } catch {
    return undefined
  }
}

/** `AuthInfo` for the SDK; handlers read it as `extra.authInfo` (claims in `extra.authInfo.extra.claims`). */
export function authInfoOf(token: string, claims: Claims, resource: URL | undefined): AuthInfo {
  const info: AuthInfo = {
    token,
    clientId: claims.clientId,
    scopes: scopeEntries(claims.scope),
    expiresAt: claims.expiresAt,
    extra: { claims },
  }
  if (resource !== undefined) info.resource = resource
  return info
}

/**
 * `AuthInfo.resource` for a verified token: the configured resource, else the accepted audience when
 * it is a URL. Which audiences parse as URLs is worked out once, not per request.
 */
function resourceResolver(auth: MandateVerifier, options: McpSdkVerifierOptions): (token: string) => URL | undefined {
  if (options.resource !== undefined) {
    const href = new URL(String(options.resource)).href
    return () => new URL(href)
  }
  const audiences = auth.options.claimRules.audiences
  const urls = new Map<string, string>()
  for (const a of audiences) {
    const u = asUrl(a)
    if (u !== undefined) urls.set(a, u.href)
  }
  if (urls.size === 0) return () => undefined
  return (token) => {
    const audience = acceptedAudience(token, audiences)
    const href = audience === undefined ? undefined : urls.get(audience)
    // A fresh URL per request: AuthInfo is the handler's to keep or modify.
    return href === undefined ? undefined : new URL(href)
  }
}

export function mcpSdkVerifier(auth: MandateVerifier, options: McpSdkVerifierOptions = {}): OAuthTokenVerifier {
  const resourceOf = resourceResolver(auth, options)
  return {
    async verifyAccessToken(token: string): Promise<AuthInfo> {
      let claims: Claims
      try {
        claims = await auth.verify(token)
      } catch (error) {
        throw toSdkError(asAuthError(error))
      }
      return authInfoOf(token, claims, resourceOf(token))
    },
  }
}

export interface RequireCaracalAuthOptions extends ChallengeOptions, McpSdkVerifierOptions {}

export type NodeMiddleware = (
  req: IncomingMessage & { auth?: AuthInfo },
  res: ServerResponse,
  next: (error?: unknown) => void,
) => void

/**
 * Express (or plain node:http) middleware: sets `req.auth`, which the SDK's
 * `StreamableHTTPServerTransport` hands to handlers as `extra.authInfo`; or answers the request
 * with the shared rendering (401/403 with `WWW-Authenticate`, 503 with `Retry-After`).
 */
export function requireCaracalAuth(auth: MandateVerifier, options: RequireCaracalAuthOptions = {}): NodeMiddleware {
  const challenge = challengeOf(auth, options)
  const resourceOf = resourceResolver(auth, options)
  return (req, res, next) => {
    let token: string
    try {
      // Through authorizationHeader: a repeated Authorization header is refused, not half-read.
      token = bearerToken(authorizationHeader(req))
    } catch (error) {
      reject(res, asAuthError(error), challenge)
      return
    }
    auth.verify(token).then(
      (claims) => {
        req.auth = authInfoOf(token, claims, resourceOf(token))
        next()
      },
      (error: unknown) => reject(res, asAuthError(error), challenge),
    )
  }
}

function reject(res: ServerResponse, error: CaracalAuthError, challenge: ChallengeOptions): void {
  const r = renderAuthError(error, challenge)
  res.writeHead(r.status, r.headers).end(r.body)
}

/**
 * Serves the metadata document at its RFC 9728 path (GET/HEAD, CORS open so browser-based MCP
 * clients can read it); any other path goes to `next` (Express), or gets a 404 on plain node:http.
 */
export function protectedResourceMetadataHandler(auth: MandateVerifier, options: ProtectedResourceMetadataOptions) {
  const body = JSON.stringify(protectedResourceMetadata(auth, options))
  const path = new URL(protectedResourceMetadataUrl(options.resourceServerUrl)).pathname
  return (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void => {
    const requested = new URL(req.url ?? '/', 'http://localhost').pathname
    if (requested !== path) {
      if (next !== undefined) next()
      else res.writeHead(404).end()
      return
    }
    const answer = metadataAnswer(req.method, body)
    res.writeHead(answer.status, answer.headers).end(answer.body)
  }
}
