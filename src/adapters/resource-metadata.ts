/**
 * RFC 9728 protected-resource metadata, which the MCP authorization spec asks servers to serve:
 * the document, where it lives, and how a request for it is answered. Runtime-neutral, so the
 * node:http handler (mcp-sdk.ts) and the Fetch one (fetch.ts) answer alike.
 */

/** The part of a verifier the metadata defaults come from (structural: no import of `CaracalAuth`). */
export interface MetadataDefaults {
  readonly options: {
    readonly claimRules: { readonly issuer: string }
    readonly policy: { readonly requiredScopes: readonly string[] }
  }
}

export interface ProtectedResourceMetadataOptions {
  /** The MCP endpoint's URL, e.g. `https://mcp.example.com/mcp`: the `resource` of the metadata. */
  readonly resourceServerUrl: URL | string
  /** Default: the verifier's issuer (the Caracal STS). */
  readonly authorizationServers?: readonly string[]
  /** Default: the verifier's `requiredScopes`, when there are any. */
  readonly scopesSupported?: readonly string[]
  readonly resourceName?: string
  readonly resourceDocumentation?: URL | string
}

/** RFC 9728 §2 metadata document for this resource server. */
export function protectedResourceMetadata(
  auth: MetadataDefaults,
  options: ProtectedResourceMetadataOptions,
): Record<string, unknown> {
  const scopes = options.scopesSupported ?? auth.options.policy.requiredScopes
  const doc: Record<string, unknown> = {
    resource: new URL(String(options.resourceServerUrl)).href,
    authorization_servers: [...(options.authorizationServers ?? [auth.options.claimRules.issuer])],
    bearer_methods_supported: ['header'],
  }
  if (scopes.length > 0) doc.scopes_supported = [...scopes]
  if (options.resourceName !== undefined) doc.resource_name = options.resourceName
  if (options.resourceDocumentation !== undefined) doc.resource_documentation = String(options.resourceDocumentation)
  return doc
}

/**
 * Where RFC 9728 §3.1 puts the metadata of a resource: the well-known segment goes between host and
 * path (`https://h/mcp` → `https://h/.well-known/oauth-protected-resource/mcp`), as the SDK's
 * `getOAuthProtectedResourceMetadataUrl` computes it.
 */
export function protectedResourceMetadataUrl(resourceServerUrl: URL | string): string {
  const u = new URL(String(resourceServerUrl))
  const path = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '')
  return new URL(`/.well-known/oauth-protected-resource${path}`, u).href
}

export interface MetadataAnswer {
  readonly status: 200 | 204 | 405
  readonly headers: Readonly<Record<string, string>>
  readonly body: string | undefined
}

/** CORS open so that browser-based MCP clients can read the document. */
const CORS = { 'access-control-allow-origin': '*', 'access-control-allow-methods': 'GET, OPTIONS' }

/** The answer to a request for the metadata path: GET/HEAD, a CORS preflight, or 405. */
export function metadataAnswer(method: string | undefined, body: string): MetadataAnswer {
  if (method === 'OPTIONS') return { status: 204, headers: CORS, body: undefined }
  if (method === 'GET' || method === 'HEAD') {
    return {
      status: 200,
      headers: { ...CORS, 'content-type': 'application/json', 'cache-control': 'max-age=3600' },
      body: method === 'HEAD' ? undefined : body,
    }
  }
  return { status: 405, headers: { allow: 'GET, HEAD, OPTIONS' }, body: undefined }
}
