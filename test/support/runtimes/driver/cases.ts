/**
 * The application every runtime runs: `CaracalAuth` from `caracal-fastmcp` and the Fetch adapter
 * from `caracal-fastmcp/fetch`, imported as a user imports them, given the tokens the suite minted.
 * It reports what happened; the suite (in Node) decides what is right.
 */
import { CaracalAuth, InMemoryRevocationStore, type CaracalAuthOptions } from 'caracal-fastmcp'
import { authenticateRequest, withCaracalAuth } from 'caracal-fastmcp/fetch'
import {
  ANSWER_HEADERS,
  BACKEND_CHOICES,
  REQUEST_NAMES,
  REQUEST_TOKENS,
  TOKEN_NAMES,
  type AuthenticateOutcome,
  type CaseInput,
  type CaseResults,
  type DriverBackend,
  type HttpAnswer,
  type RequestName,
  type TokenName,
  type Verdict,
  type VerifierRun,
} from './protocol.js'

export function verifierOptions(input: CaseInput, extra: Partial<CaracalAuthOptions> = {}): CaracalAuthOptions {
  return {
    issuer: input.issuer,
    audience: input.audience,
    expectedZoneId: input.zoneId,
    requiredScopes: [...input.requiredScopes],
    revocations: new InMemoryRevocationStore(),
    ...extra,
  }
}

function describeThrown(error: unknown): Verdict & { ok: false } {
  const e = error as { name?: unknown; code?: unknown; description?: unknown; status?: unknown; message?: unknown }
  return {
    ok: false,
    name: typeof e?.name === 'string' ? e.name : typeof error,
    code: typeof e?.code === 'string' ? e.code : undefined,
    description: typeof e?.description === 'string' ? e.description : undefined,
    status: typeof e?.status === 'number' ? e.status : undefined,
    message: typeof e?.message === 'string' ? e.message : String(error),
  }
}

async function verdictOf(auth: CaracalAuth, token: string): Promise<Verdict> {
  try {
    const claims = await auth.verify(token)
    return { ok: true, sub: claims.sub, jti: claims.jti }
  } catch (error) {
    return describeThrown(error)
  }
}

async function runVerifier(input: CaseInput, options: CaracalAuthOptions): Promise<VerifierRun> {
  let auth: CaracalAuth
  try {
    auth = new CaracalAuth(options)
  } catch (error) {
    const d = describeThrown(error)
    return { constructError: `${d.name}: ${d.message}` }
  }
  try {
    const verdicts = {} as Record<TokenName, Verdict>
    for (const name of TOKEN_NAMES) verdicts[name] = await verdictOf(auth, input.tokens[name])
    const stats = auth.stats()
    return {
      backend: { ...stats.backend },
      backends: JSON.parse(JSON.stringify(stats.backends)) as VerifierRun['backends'],
      verdicts,
      jwksFetches: stats.jwks.fetches,
      jwksLastError: stats.jwks.lastError,
    }
  } finally {
    await auth.close()
  }
}

export async function answerOf(response: Response): Promise<HttpAnswer> {
  const headers: Record<string, string> = {}
  for (const name of ANSWER_HEADERS) {
    const value = response.headers.get(name)
    if (value !== null) headers[name] = value
  }
  return { status: response.status, headers, body: await response.text() }
}

export function requestFor(name: RequestName, tokens: CaseInput['tokens'], url = 'http://mcp.test/mcp'): Request {
  const token = REQUEST_TOKENS[name]
  return new Request(url, {
    method: 'POST',
    headers: token === undefined ? {} : { authorization: `Bearer ${tokens[token]}` },
  })
}

/** What the protected handler answers: who the mandate is for, nothing of the token. */
export function protectedHandler(): (request: Request, claims: { sub: string }) => Response {
  return (_request, claims) =>
    new Response(JSON.stringify({ sub: claims.sub }), { headers: { 'content-type': 'application/json' } })
}

async function runAdapter(input: CaseInput): Promise<NonNullable<CaseResults['adapter']>> {
  const auth = new CaracalAuth(verifierOptions(input, { jwks: { keys: [...input.jwks.keys] } }))
  try {
    const handler = withCaracalAuth(auth, protectedHandler())
    const answers = {} as Record<RequestName, HttpAnswer>
    const outcomes = {} as Record<RequestName, AuthenticateOutcome>
    for (const name of REQUEST_NAMES) {
      answers[name] = await answerOf(await handler(requestFor(name, input.tokens)))
      const outcome = await authenticateRequest(auth, requestFor(name, input.tokens))
      outcomes[name] = outcome.ok
        ? { ok: true, sub: outcome.claims.sub }
        : {
            ok: false,
            code: outcome.error.code,
            status: outcome.response.status,
            answer: await answerOf(outcome.response),
          }
    }
    return { withCaracalAuth: answers, authenticateRequest: outcomes }
  } finally {
    await auth.close()
  }
}

export async function runCases(input: CaseInput): Promise<CaseResults> {
  const g = globalThis as { Buffer?: unknown; process?: unknown; navigator?: { userAgent?: string } }
  const staticRuns = {} as Record<DriverBackend, VerifierRun>
  for (const backend of BACKEND_CHOICES) {
    staticRuns[backend] = await runVerifier(
      input,
      verifierOptions(input, { backend, jwks: { keys: [...input.jwks.keys] } }),
    )
  }
  const remote = await runVerifier(input, verifierOptions(input, { backend: 'auto' }))
  let adapter: CaseResults['adapter']
  let adapterError: string | undefined
  try {
    adapter = await runAdapter(input)
  } catch (error) {
    const d = describeThrown(error)
    adapterError = `${d.name}: ${d.message}`
  }
  return {
    runtime: {
      userAgent: g.navigator?.userAgent ?? 'unknown',
      buffer: typeof g.Buffer === 'function',
      process: typeof g.process === 'object' && g.process !== null,
    },
    static: staticRuns,
    remote,
    ...(adapter === undefined ? {} : { adapter }),
    ...(adapterError === undefined ? {} : { adapterError }),
  }
}
