/**
 * The bench's cold start (bench/runtime-hosts.ts), in a module that imports nothing of the
 * library: each fresh isolate answers one request, which does nothing (the control), only
 * imports `caracal-fastmcp` (its module evaluation), or imports it, builds a verifier and verifies
 * its first token. The differences between the three are what a first request pays for each part.
 * Bundled (workerd, Chromium) the import evaluates the bundled modules then; in Deno and Bun it
 * also resolves and reads them from node_modules, as a user's dynamic import would.
 */
import type { ColdInput, ColdResult } from './protocol.js'

export async function coldRoute(input: ColdInput): Promise<ColdResult> {
  if (input.stage === 'none') return { stage: input.stage, importMs: 0, constructMs: 0, firstVerifyMs: 0 }
  const start = performance.now()
  const { CaracalAuth, InMemoryRevocationStore } = await import('caracal-fastmcp')
  const imported = performance.now()
  if (input.stage === 'import')
    return { stage: input.stage, importMs: imported - start, constructMs: 0, firstVerifyMs: 0 }
  const auth = new CaracalAuth({
    issuer: input.issuer,
    audience: input.audience,
    revocations: new InMemoryRevocationStore(),
    jwks: { keys: [input.jwk] },
  })
  const built = performance.now()
  await auth.verify(input.tokens[0]!)
  return {
    stage: input.stage,
    importMs: imported - start,
    constructMs: built - imported,
    firstVerifyMs: performance.now() - built,
  }
}

/** `POST /bench/cold`, the only route of the cold entries' servers. */
export async function serveCold(request: Request): Promise<Response> {
  if (new URL(request.url).pathname !== '/bench/cold' || request.method !== 'POST')
    return new Response('not found', { status: 404 })
  const result = await coldRoute((await request.json()) as ColdInput)
  return new Response(JSON.stringify(result), { headers: { 'content-type': 'application/json' } })
}
