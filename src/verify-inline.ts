/**
 * `CaracalAuth[verifyInline](token)`: `verify` without its promise — the claims themselves when
 * every step answered synchronously (a cache hit, a known key, a synchronous store), a promise
 * otherwise (also for a cold token that waits for the end of its turn under load: README "Cold
 * tokens under load"); a `CaracalAuthError` thrown, not rejected. For the drop-in entry points
 * (`src/compat/`), which wrap the result in their own shapes: going through `verify` would cost
 * them one more promise hop per call. Not exported from the package's entry points.
 */
export const verifyInline: unique symbol = Symbol('caracal-fastmcp.verifyInline')
