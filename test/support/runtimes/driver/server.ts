/**
 * The HTTP application of the runtimes that serve (workerd, Deno, Bun): `POST /cases` runs the
 * cases and then protects `/mcp` with the Fetch adapter, as a user's Worker, `Deno.serve` or
 * `Bun.serve` handler would; `/bench/*` runs the bench's batches.
 */
import { CaracalAuth } from 'caracal-fastmcp'
import { withCaracalAuth } from 'caracal-fastmcp/fetch'
import { benchRoute } from './bench.js'
import { protectedHandler, runCases, verifierOptions } from './cases.js'
import type { CaseInput } from './protocol.js'

type Handler = (request: Request, ...rest: unknown[]) => Promise<Response>

let mcp: Handler | undefined

const json = (value: unknown, status = 200) =>
  new Response(JSON.stringify(value), { status, headers: { 'content-type': 'application/json' } })

export async function serve(request: Request, ...rest: unknown[]): Promise<Response> {
  const path = new URL(request.url).pathname
  if (path === '/cases' && request.method === 'POST') {
    const input = (await request.json()) as CaseInput
    const results = await runCases(input)
    mcp = withCaracalAuth(
      new CaracalAuth(verifierOptions(input, { jwks: { keys: [...input.jwks.keys] } })),
      protectedHandler(),
    )
    return json(results)
  }
  if (path === '/mcp') return mcp === undefined ? json({ error: 'POST /cases first' }, 409) : mcp(request, ...rest)
  if (path.startsWith('/bench/')) return json(await benchRoute(path.slice('/bench/'.length), await request.json()))
  return json({ error: 'not found' }, 404)
}
