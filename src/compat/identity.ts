/**
 * `caracal-fastmcp/compat/identity`: the exports of `@caracalai/identity` (its `verify`, JWKS
 * cache, scope helpers, claim types, constants and error classes), backed by this library's
 * engine. Change the import specifier; every other line stays.
 *
 * How it is built: `verify(token, config)` finds a `CaracalAuth` engine in a registry keyed by what
 * fixes keys and claim rules — the JWKS cache, issuer, zone, audience and `requiredUse`
 * (`src/compat/jwks-registry.ts`) — made once and reused for every later call with the same
 * settings. The engine checks the compact JWS, the signature, the claims and the zone, and memoizes
 * verified tokens (README "The verified-token cache"). The rest of the config — scopes, targets,
 * session, delegation, hop count, chain — is applied here to the claims, in Caracal's order and with
 * Caracal's errors, on every call; it never selects an engine. So any number of policies over one
 * zone cost one JWKS fetch and one signature check per token.
 *
 * Deliberate differences from `@caracalai/identity` (the engine's stricter rules are kept; the
 * results keep Caracal's shapes, classes, codes and messages):
 * - Parsing and claims follow README "What is checked": the whole compact JWS is checked first
 *   (length cap 8192, canonical base64url, no `crit`, key type tied to `alg`); string claims must be
 *   non-empty; numbers non-negative safe integers; `iat` and `nbf` at most 60 s ahead; a mandate is
 *   expired at `exp` (no 60 s leeway after it). Every such refusal is `TokenInvalidError` with
 *   Caracal's message, "Token validation failed"; the engine's reason is its `cause`.
 * - All claim types are checked before the zone and the policy, so a token that breaks both a type
 *   rule and a policy rule is `TokenInvalidError` where Caracal may name the policy. A `use` other
 *   than `requiredUse` is refused before the zone is compared.
 * - `requiredUse` defaults to `resource`: without it Caracal accepts a session mandate too; here a
 *   session mandate needs `requiredUse: 'session'`.
 * - `requireAgent` (the older name) is read as `requireSession`.
 * - Without `zoneId` the keys come from `{issuer}/.well-known/jwks.json` (README "Keys (JWKS)"),
 *   where Caracal cannot fetch any; `zone_id` must still be present in the token.
 * - An `http:` issuer must be a loopback host (`CARACAL_ALLOW_INSECURE_CONFIG_URLS` is not read);
 *   an unusable config is `TokenInvalidError` whose `cause` is the engine's `TypeError`.
 * - Scopes: `hasScope`/`parseScope` split on whitespace as Caracal's do; the policy compares in place.
 * - `jwksCache` takes a cache made by this module's `createJwksCache`; any other object with Caracal's
 *   `JwksCache` shape is accepted (and warmed by `@caracalai/verify`'s `warmup`), but its keys are
 *   not used: the default cache fetches them. `getKeySet` answers a jose-style key getter that gives
 *   Node `KeyObject`s for the cache's current document.
 * - An unknown `kid` refetches the JWKS at once (at most once per 30 s, or per `ttlMs` when that is
 *   shorter), and a JWKS that cannot be refreshed keeps its keys until `maxStaleMs` (10 min by
 *   default, as in Caracal), then refuses. One fetch per zone serves every audience: a document
 *   fetched by one engine is given to the others of its zone while it is younger than `ttlMs`.
 * - The claims object is the engine's: frozen, the same object for every call with the same token,
 *   and an absent optional claim is absent (no `undefined` member).
 * - `CaracalError` is exported here too (Caracal's lives in `@caracalai/core`); its subclasses are
 *   this module's own, so `instanceof` works against these classes, not Caracal's.
 */
export {
  DEFAULT_MAX_HOP_COUNT,
  MANDATE_USE_RESOURCE,
  MANDATE_USE_SESSION,
  SUBJECT_TYPE_APPLICATION,
  SUBJECT_TYPE_USER,
  CaracalError,
  ChainMismatchError,
  DelegationRequiredError,
  HopCountExceededError,
  ScopeInsufficientError,
  SessionRequiredError,
  // The older versions' name of the same refusal (a mandate without a session): programs written
  // against them import it, and `instanceof` answers as for SessionRequiredError.
  SessionRequiredError as AgentIdentityRequiredError,
  TokenInvalidError,
  ZoneInvalidError,
  clearJwksCache,
  createJwksCache,
  getKeySet,
  hasScope,
  parseScope,
  scopesAllowed,
  verify,
  verifyChainContains,
  warmJwks,
  type ChainHop,
  type Claims,
  type JwksCache,
  type JwksCacheOptions,
  type JwtConfig,
} from './identity-core.js'
