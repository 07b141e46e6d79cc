/**
 * What every runtime suite needs in Node: a development STS (src/dev) that mints the mandates, the
 * loopback origin that is the issuer and serves the STS's JWKS (and, for Chromium, the page), the
 * tokens for the driver, and what the Node side answers for each of them — the expectation the
 * runtime's answers are compared with, field by field.
 */
import { expect } from 'vitest'
import { createAuthenticate } from '../../../src/adapters/fastmcp.js'
import { CaracalAuth } from '../../../src/caracal-auth.js'
import { startDevSts, type DevSts } from '../../../src/dev/sts.js'
import type { BackendName } from '../../../src/backends/types.js'
import { InMemoryRevocationStore } from '../../../src/revocation/in-memory-store.js'
import {
  ANSWER_HEADERS,
  BACKEND_CHOICES,
  REQUEST_NAMES,
  REQUEST_TOKENS,
  TOKEN_NAMES,
  type CaseInput,
  type CaseResults,
  type HttpAnswer,
  type RequestName,
  type TokenName,
  type Verdict,
  type VerifierRun,
} from './driver/protocol.js'
import { startLoopbackOrigin } from './loopback-origin.js'

export const ZONE_ID = 'runtime-zone'
export const AUDIENCE = 'resource://documents'
export const REQUIRED_SCOPES = ['tool:call']

export interface RuntimeFixture {
  readonly input: CaseInput
  /** What Node's own verifier says of each token: the same answers are expected everywhere. */
  readonly verdicts: Readonly<Record<TokenName, Verdict>>
  /** What the Node adapters (fastmcp's `authenticate`) answer to each request. */
  readonly answers: Readonly<Record<RequestName, HttpAnswer>>
  /** The loopback origin: the issuer, its JWKS, and the files of `staticDir`. */
  readonly origin: string
  readonly sts: DevSts
  jwksRequests(): number
  close(): Promise<void>
}

/** The payload edited (another `sub`), header and signature kept: what an attacker sends. */
export function tamperedPayload(token: string): string {
  const [header, payload, signature] = token.split('.')
  const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as Record<string, unknown>
  const edited = Buffer.from(JSON.stringify({ ...claims, sub: 'someone-else' })).toString('base64url')
  return `${header}.${edited}.${signature}`
}

async function nodeVerdict(auth: CaracalAuth, token: string): Promise<Verdict> {
  try {
    const claims = await auth.verify(token)
    return { ok: true, sub: claims.sub, jti: claims.jti }
  } catch (error) {
    const e = error as { name: string; code: string; description: string; status: number; message: string }
    return { ok: false, name: e.name, code: e.code, description: e.description, status: e.status, message: e.message }
  }
}

async function answerOf(response: Response): Promise<HttpAnswer> {
  const headers: Record<string, string> = {}
  for (const name of ANSWER_HEADERS) {
    const value = response.headers.get(name)
    if (value !== null) headers[name] = value
  }
  return { status: response.status, headers, body: await response.text() }
}

/** `staticDir`: files the origin serves besides the JWKS (the Chromium page and its bundle). */
export async function startRuntimeFixture(staticDir?: string): Promise<RuntimeFixture> {
  let sts: DevSts | undefined
  const loopback = await startLoopbackOrigin({ zoneId: ZONE_ID, jwks: () => sts?.jwks(), staticDir })
  const origin = loopback.origin
  sts = await startDevSts({ zoneId: ZONE_ID, issuer: origin, audience: AUDIENCE })

  const es256 = sts.mint({}, { alg: 'ES256' })
  const rs256 = sts.mint({}, { alg: 'RS256' })
  const tokens: Record<TokenName, string> = {
    es256,
    rs256,
    es256Tampered: tamperedPayload(es256),
    rs256Tampered: tamperedPayload(rs256),
    noScope: sts.mint({ scope: 'documents:read' }, { alg: 'ES256' }),
  }
  const input: CaseInput = {
    issuer: origin,
    audience: AUDIENCE,
    zoneId: ZONE_ID,
    requiredScopes: REQUIRED_SCOPES,
    jwks: sts.jwks(),
    tokens,
  }

  const nodeAuth = new CaracalAuth({
    issuer: origin,
    audience: AUDIENCE,
    expectedZoneId: ZONE_ID,
    requiredScopes: REQUIRED_SCOPES,
    revocations: new InMemoryRevocationStore(),
    jwks: { keys: sts.jwks().keys },
  })
  const verdicts = {} as Record<TokenName, Verdict>
  for (const name of TOKEN_NAMES) verdicts[name] = await nodeVerdict(nodeAuth, tokens[name])
  const authenticate = createAuthenticate(nodeAuth)
  const answers = {} as Record<RequestName, HttpAnswer>
  for (const name of REQUEST_NAMES) {
    const token = REQUEST_TOKENS[name]
    const headers = token === undefined ? {} : { authorization: `Bearer ${tokens[token]}` }
    try {
      const session = await authenticate({ headers } as Parameters<typeof authenticate>[0])
      answers[name] = {
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ sub: session.sub }),
      }
    } catch (thrown) {
      answers[name] = await answerOf(thrown as Response)
    }
  }
  await nodeAuth.close()

  return {
    input,
    verdicts,
    answers,
    origin,
    sts,
    jwksRequests: () => loopback.jwksRequests(),
    async close() {
      await sts!.close()
      await loopback.close()
    },
  }
}

/** The Node answers themselves: a fixture whose expectation were wrong would pass anything. */
export function expectNodeAnswers(fixture: RuntimeFixture): void {
  const { verdicts, answers } = fixture
  expect(verdicts.es256).toMatchObject({ ok: true, sub: 'dev-user' })
  expect(verdicts.rs256).toMatchObject({ ok: true, sub: 'dev-user' })
  for (const name of ['es256Tampered', 'rs256Tampered'] as const) {
    expect(verdicts[name]).toMatchObject({
      ok: false,
      code: 'invalid_token',
      description: 'signature verification failed',
      status: 401,
    })
  }
  expect(verdicts.noScope).toMatchObject({ ok: false, code: 'insufficient_scope', status: 403 })
  expect(answers.valid.status).toBe(200)
  expect([answers.missing.status, answers.tampered.status, answers.noScope.status]).toEqual([401, 401, 403])
}

/** What a runtime's `stats()` must say of its backends. */
export interface ExpectedBackends {
  /** The backend `auto` serves each algorithm with there. */
  readonly auto: Readonly<Record<'ES256' | 'RS256', BackendName>>
  /** node:crypto there: ready (Node's, Deno's and Bun's), or unavailable and why. */
  readonly node: { readonly state: 'ready' } | { readonly state: 'unavailable'; readonly reason: unknown }
}

/** node:crypto outside the node, bun and deno conditions (package.json `imports`, README "Runtimes"). */
export const NODE_CRYPTO_EXCLUDED: ExpectedBackends['node'] = {
  state: 'unavailable',
  reason: expect.stringContaining('only under the node, bun and deno conditions'),
}

/**
 * The verdicts equal Node's, and `stats().backends` is what this runtime should give: wasm and
 * noble ready, node:crypto as expected, and no backend refused by `auto`'s known-answer test (the
 * statuses are compared whole, so a `refused` entry fails the comparison and shows its reason).
 */
function expectRun(run: VerifierRun, fixture: RuntimeFixture, what: string, backends: ExpectedBackends): void {
  expect(run.constructError, `${what}: the constructor threw`).toBeUndefined()
  for (const name of TOKEN_NAMES) expect(run.verdicts?.[name], `${what}: ${name}`).toEqual(fixture.verdicts[name])
  expect(run.backends, `${what}: stats().backends`).toEqual({
    wasm: { state: 'ready' },
    node: backends.node,
    noble: { state: 'ready' },
  })
}

/** Every answer of `runCases` against Node's: the verifiers per backend, the remote JWKS, the adapter. */
export function expectCaseResults(results: CaseResults, fixture: RuntimeFixture, backends: ExpectedBackends): void {
  expectNodeAnswers(fixture)
  for (const backend of BACKEND_CHOICES) expectRun(results.static[backend], fixture, `backend ${backend}`, backends)
  // A forced backend serves both algorithms; auto's choice is the point of running it here: ES256
  // on the wasm path wherever it loads (README "Backends").
  expect(results.static.wasm.backend).toEqual({ ES256: 'wasm', RS256: 'wasm' })
  expect(results.static.noble.backend).toEqual({ ES256: 'noble', RS256: 'noble' })
  expect(results.static.auto.backend, 'auto').toEqual(backends.auto)
  expectRun(results.remote, fixture, 'remote JWKS', backends)
  expect(results.remote.backend, 'auto, remote JWKS').toEqual(backends.auto)
  expect(results.remote.jwksLastError).toBeUndefined()
  expect(results.remote.jwksFetches).toBeGreaterThanOrEqual(1)
  expect(fixture.jwksRequests()).toBeGreaterThanOrEqual(1)
  expect(results.adapterError).toBeUndefined()
  for (const name of REQUEST_NAMES) {
    expect(results.adapter?.withCaracalAuth[name], `withCaracalAuth: ${name}`).toEqual(fixture.answers[name])
    const outcome = results.adapter?.authenticateRequest[name]
    const expected = fixture.answers[name]
    if (expected.status === 200) {
      expect(outcome, `authenticateRequest: ${name}`).toEqual({ ok: true, sub: 'dev-user' })
    } else {
      const rendered = JSON.parse(expected.body) as { error: { data: { error: string } } }
      expect(outcome, `authenticateRequest: ${name}`).toEqual({
        ok: false,
        code: rendered.error.data.error,
        status: expected.status,
        answer: expected,
      })
    }
  }
}

/** The Fetch adapter as the runtime's own server serves it (`/mcp` of the driver's server). */
export async function expectServedAnswers(baseUrl: string, fixture: RuntimeFixture): Promise<void> {
  for (const name of REQUEST_NAMES) {
    const token = REQUEST_TOKENS[name]
    const response = await fetch(`${baseUrl}/mcp`, {
      method: 'POST',
      headers: token === undefined ? {} : { authorization: `Bearer ${fixture.input.tokens[token]}` },
    })
    expect(await answerOf(response), `served: ${name}`).toEqual(fixture.answers[name])
  }
}
