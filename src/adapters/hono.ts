/**
 * Hono middleware on the Fetch adapter. Hono is not a dependency: the middleware is typed by the
 * part of Hono's `Context` it touches, which Hono's own `Context` satisfies.
 */
import type { Claims } from '../policy/claims.js'
import { authenticateRequest, type FetchAuthOptions, type FetchVerifier } from './fetch.js'

/** The variable the middleware sets; `new Hono<CaracalHonoEnv>()` types `c.get('caracal')`. */
export type CaracalHonoEnv = { Variables: { caracal: Claims } }

/** What the middleware reads and writes of Hono's `Context`. */
export interface HonoContextLike {
  readonly req: { readonly raw: Request }
  set(key: 'caracal', value: Claims): void
}

export type CaracalHonoMiddleware = (c: HonoContextLike, next: () => Promise<void>) => Promise<Response | undefined>

/**
 * `app.use('/mcp/*', caracalHono(auth))`: the claims in `c.get('caracal')`, or the refusal returned
 * as the response (Hono sends a middleware's returned `Response` without running the route).
 */
export function caracalHono(auth: FetchVerifier, options?: FetchAuthOptions): CaracalHonoMiddleware {
  return async (c, next) => {
    const result = await authenticateRequest(auth, c.req.raw, options)
    if (!result.ok) return result.response
    c.set('caracal', result.claims)
    await next()
    return undefined
  }
}
