// Type-checked with no @types/node in the program (tsconfig.fetch.json: "types": []), as in a
// Workers, Deno or browser project: the Fetch entry's declarations must not need Node's.
import {
  authenticateRequest,
  caracalHono,
  type FetchAuthResult,
  type FetchVerifier,
  type HonoContextLike,
  withCaracalAuth,
} from 'caracal-fastmcp/fetch'

export function worker(auth: FetchVerifier) {
  return {
    fetch: withCaracalAuth(auth, (_request, claims, env: { ZONE: string }) =>
      Response.json({ sub: claims.sub, zone: env.ZONE }),
    ),
  }
}

export async function route(auth: FetchVerifier, request: Request): Promise<Response> {
  const result: FetchAuthResult = await authenticateRequest(auth, request, { retryAfterSec: 2 })
  return result.ok ? new Response(result.claims.clientId) : result.response
}

export async function middleware(auth: FetchVerifier, c: HonoContextLike): Promise<Response | undefined> {
  return caracalHono(auth)(c, async () => {})
}
