/**
 * The attack corpus (test/support/attack-corpus.ts) on every backend: each case gets its exact
 * code and the description that says why, on the first call and again on a second call to the
 * same verifier (the verified-token cache must not turn a refusal into an acceptance, nor change
 * its reason). Then the HTTP cases through the three adapters over a real socket, and two promises that
 * hold across the whole run: no key URL in a header is ever fetched (README "Keys (JWKS)"), and no
 * description, message, hint, warning, response body or challenge ever echoes a token (README "Errors").
 */
import { createPublicKey, verify as cryptoVerify, type JsonWebKeyInput } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { InsufficientScopeError, InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import { afterAll, describe, expect, it } from 'vitest'
import { CaracalAuthError, ERROR_CODES, type Claims } from '../src/index.js'
import { authenticateRequest } from '../src/adapters/fastmcp.js'
import { authenticateRequest as authenticateFetchRequest, withCaracalAuth } from '../src/fetch.js'
import { mcpSdkVerifier, requireCaracalAuth } from '../src/adapters/mcp-sdk.js'
import type { BackendChoice } from '../src/backends/types.js'
import {
  ATTACKER_JWKS,
  buildAttackCorpus,
  type AttackCase,
  type HttpCase,
  type VerifierName,
} from './support/attack-corpus.js'
import { TEST_BACKENDS } from './support/backends.js'
import { P256_N, splitToken } from './support/compact-tokens.js'
import { sendJson, startJwksServer } from './support/jwks-server.js'
import { staticJwks } from './support/mandates.js'
import { testVerifier, type TestVerifier } from './support/verifiers.js'

/** Every text the library produced during the run: what must never hold a piece of a token. */
const produced: string[] = []
const onWarning = (warning: Error): void => {
  produced.push(`${warning.name} ${(warning as { code?: string }).code ?? ''} ${warning.message}`)
}
process.on('warning', onWarning)

// The attacker's server answers every path with its JWKS and counts what it is asked: jku and x5u
// point here, so a verifier that followed them would both fetch and find the attacker's key.
const attackerServer = await startJwksServer()
attackerServer.handler = (_req, res) => sendJson(res, ATTACKER_JWKS)
const jwksServer = await startJwksServer(staticJwks)
const corpus = buildAttackCorpus({ attacker: attackerServer.issuer, jwks: jwksServer.jwksUrl })

const verifiers = new Map<string, TestVerifier>()
/** `workers`: through a verification pool (README "Several cores in one process"). */
function verifierFor(backend: BackendChoice, name: VerifierName, workers = 0): TestVerifier {
  const key = `${backend}/${name}/${workers}`
  let v = verifiers.get(key)
  if (v === undefined) {
    const spec = corpus.verifiers[name]
    v = testVerifier(backend, { ...spec.options, workers })
    spec.prepare?.(v)
    verifiers.set(key, v)
  }
  return v
}

afterAll(async () => {
  process.off('warning', onWarning)
  for (const v of verifiers.values()) await v.auth.close()
  await attackerServer.close()
  await jwksServer.close()
})

function recordError(error: unknown): void {
  if (error instanceof Error) produced.push(error.message, error.stack ?? '')
  if (error instanceof CaracalAuthError) produced.push(error.description, error.hint)
}

interface Result {
  readonly error?: CaracalAuthError
  readonly claims?: Claims
}

async function run(v: TestVerifier, token: unknown): Promise<Result> {
  try {
    return { claims: await v.auth.verify(token as string) }
  } catch (error) {
    recordError(error)
    // verify never throws anything but CaracalAuthError (README "Verifying a mandate").
    expect(error).toBeInstanceOf(CaracalAuthError)
    return { error: error as CaracalAuthError }
  }
}

function expectOutcome(c: AttackCase, result: Result, call: string): void {
  if (c.expect === 'accepted') {
    expect(result.error?.description, `${call}: refused`).toBeUndefined()
    c.check?.(result.claims!)
    return
  }
  expect(result.error?.code, `${call}: code`).toBe(c.expect)
  expect(result.error?.status, `${call}: status`).toBe(ERROR_CODES[c.expect].status)
  if (typeof c.why === 'string') expect(result.error?.description, `${call}: why`).toBe(c.why)
  else expect(result.error?.description, `${call}: why`).toMatch(c.why!)
}

describe('the corpus', () => {
  it('names every case once, and says why each refusal is refused', () => {
    const names = corpus.cases.map((c) => `${c.group}: ${c.name}`)
    expect(new Set(names).size).toBe(names.length)
    for (const c of corpus.cases) if (c.expect !== 'accepted') expect(c.why, c.name).toBeDefined()
    expect(new Set(corpus.http.map((c) => c.name)).size).toBe(corpus.http.length)
  })

  it('holds real forgeries: each cube-root signature cubes to the block a lenient parser accepts', () => {
    const n = corpus.forgeries.e3Modulus
    expect(corpus.forgeries.cubes).toHaveLength(3)
    for (const f of corpus.forgeries.cubes) {
      const cube = f.signature ** 3n
      // Below n, so s^3 mod n is s^3 itself: the key's modulus plays no part in the forgery.
      expect(cube < n, f.name).toBe(true)
      const block = Buffer.from(cube.toString(16).padStart(512, '0'), 'hex')
      expect(block.subarray(0, f.prefix.length).equals(f.prefix), `${f.name}: prefix`).toBe(true)
      if (f.suffix !== undefined)
        expect(block.subarray(256 - f.suffix.length).equals(f.suffix), `${f.name}: suffix`).toBe(true)
    }
  })

  it('holds a real crafted EC key: its small-r, small-s signature verifies with OpenSSL, and r + n fits 32 bytes', () => {
    const { token, jwk, r, s } = corpus.forgeries.crafted
    const [h, p, sig] = splitToken(token)
    const ok = cryptoVerify(
      'sha256',
      Buffer.from(`${h}.${p}`),
      { key: createPublicKey({ key: jwk as JsonWebKeyInput['key'], format: 'jwk' }), dsaEncoding: 'ieee-p1363' },
      Buffer.from(sig, 'base64url'),
    )
    expect(ok).toBe(true)
    expect(r + P256_N < 2n ** 256n).toBe(true)
    expect(s).toBeLessThan(2n ** 64n)
    expect(corpus.forgeries.e3Genuine.signature + corpus.forgeries.e3Modulus < 2n ** 2048n).toBe(true)
  })
})

const VARIANTS = [
  ...TEST_BACKENDS.map((backend) => ({ name: backend, backend, workers: 0 })),
  { name: 'auto through a verification pool (workers: 1)', backend: 'auto' as const, workers: 1 },
]

describe.each(VARIANTS)('attack corpus on $name', ({ backend, workers }) => {
  it.each(corpus.cases.map((c) => [`${c.group}: ${c.name}`, c] as const))('%s', async (_name, c) => {
    const v = verifierFor(backend, c.verifier, workers)
    const first = await run(v, c.token)
    expectOutcome(c, first, 'first call')
    // The second call may be a cache hit: it must come out exactly the same.
    const second = await run(v, c.token)
    expectOutcome(c, second, 'second call')
    expect(second.error?.description).toBe(first.error?.description)
  })
})

// ── HTTP: raw requests to a node:http server that runs each adapter ─────────────────────────────────

interface RawResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/** A request written byte for byte on a socket, so repeated headers, tabs and spacing arrive as written. */
function rawRequest(port: number, path: string, headers: readonly string[], body = ''): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', (d: Buffer) => chunks.push(d))
    socket.on('error', reject)
    socket.on('end', () => resolve(parseResponse(Buffer.concat(chunks).toString('utf8'))))
    const head = [`POST ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', ...headers]
    socket.end(`${head.join('\r\n')}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
  })
}

function parseResponse(text: string): RawResponse {
  const at = text.indexOf('\r\n\r\n')
  const [statusLine, ...lines] = text.slice(0, at).split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
  }
  let body = text.slice(at + 4)
  if (headers['transfer-encoding'] === 'chunked') {
    let out = ''
    for (;;) {
      const eol = body.indexOf('\r\n')
      const size = Number.parseInt(body.slice(0, eol), 16)
      if (!(size > 0)) break
      out += body.slice(eol + 2, eol + 2 + size)
      body = body.slice(eol + 2 + size + 2)
    }
    body = out
  }
  return { status: Number(statusLine!.split(' ')[1]), headers, body }
}

async function startAdapters(v: TestVerifier): Promise<{ port: number; server: Server }> {
  const sdk = requireCaracalAuth(v.auth)
  const ok = (res: ServerResponse, sub: string): void => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sub }))
  }
  const fetchHandler = withCaracalAuth(v.auth, (_request, claims) => Response.json({ sub: claims.sub }))
  const server = createServer((req: IncomingMessage & { auth?: AuthInfo }, res) => {
    if ((req.url ?? '').startsWith('/fetch')) {
      void asFetchRequest(req)
        .then(fetchHandler)
        .then((response) => sendResponse(res, response))
    } else if ((req.url ?? '').startsWith('/fastmcp')) {
      v.auth.authenticate(req).then(
        (session) => ok(res, session.sub),
        async (rejection: unknown) => {
          if (!(rejection instanceof Response)) {
            res.writeHead(500).end('not a Response')
            return
          }
          await sendResponse(res, rejection)
        },
      )
    } else sdk(req, res, () => ok(res, (req.auth?.extra?.claims as Claims | undefined)?.sub ?? ''))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as AddressInfo).port, server }
}

/**
 * The request as a Fetch server hands it over (Deno.serve, Bun.serve, workerd, @hono/node-server):
 * one `Headers.append` per field line as received, so repeats are joined the way `Headers` joins them.
 */
async function asFetchRequest(req: IncomingMessage): Promise<Request> {
  const headers = new Headers()
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!)
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return new Request(new URL(req.url ?? '/', 'http://127.0.0.1'), {
    method: req.method ?? 'GET',
    headers,
    body: chunks.length === 0 ? null : Buffer.concat(chunks),
  })
}

async function sendResponse(res: ServerResponse, response: Response): Promise<void> {
  const headers: Record<string, string> = {}
  response.headers.forEach((value, name) => {
    headers[name] = value
  })
  res.writeHead(response.status, headers).end(await response.text())
}

/**
 * What the Fetch adapter must answer. `Headers` joins two field lines with ", " (RFC 9110 §5.3 makes
 * that the same message), so one header holding two comma-separated credentials is refused as two
 * headers are, where the Node adapters, which see the lines apart, hand it to the verifier.
 */
function overFetch(c: HttpCase): HttpCase {
  return c.name === 'two mandates in one header'
    ? { ...c, expect: 'missing_token', why: 'more than one Authorization header' }
    : c
}

function expectHttp(c: HttpCase, r: RawResponse, adapter: string): void {
  produced.push(r.body, r.headers['www-authenticate'] ?? '')
  if (c.expect === 'accepted') {
    expect(r.status, `${adapter}: ${r.body}`).toBe(200)
    expect(JSON.parse(r.body)).toEqual({ sub: 'user-1' })
    return
  }
  expect(r.status, adapter).toBe(ERROR_CODES[c.expect].status)
  expect(r.headers['www-authenticate'], adapter).toMatch(/^Bearer error="invalid_token", error_description="/)
  const data = (JSON.parse(r.body) as { error: { data: { error: string; error_description: string } } }).error.data
  expect(data.error, adapter).toBe(c.expect)
  if (typeof c.why === 'string') expect(data.error_description, adapter).toBe(c.why)
  else expect(data.error_description, adapter).toMatch(c.why!)
}

describe.each(TEST_BACKENDS)('HTTP requests through the adapters on %s', (backend) => {
  let adapters: Promise<{ port: number; server: Server }> | undefined
  const port = async (): Promise<number> => {
    adapters ??= startAdapters(verifierFor(backend, 'default'))
    return (await adapters).port
  }
  afterAll(async () => {
    if (adapters !== undefined) (await adapters).server.close()
  })

  it.each(corpus.http.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const p = await port()
    expectHttp(c, await rawRequest(p, `/fastmcp${c.path}`, c.headers, c.body), 'fastmcp authenticate')
    expectHttp(c, await rawRequest(p, `/sdk${c.path}`, c.headers, c.body), 'requireCaracalAuth')
    expectHttp(overFetch(c), await rawRequest(p, `/fetch${c.path}`, c.headers, c.body), 'Fetch withCaracalAuth')
  })
})

// ── every case through the adapters' rendering (node backend: the rendering is backend-free) ──────

describe('every case through the adapters', () => {
  const headerSafe = corpus.cases.filter(
    (c): c is AttackCase & { token: string } =>
      typeof c.token === 'string' && c.token !== '' && c.token.trim() === c.token,
  )

  it.each(headerSafe.map((c) => [`${c.group}: ${c.name}`, c] as const))('%s', async (_name, c) => {
    const v = verifierFor('node', c.verifier)
    const authorization = `Bearer ${c.token}`

    // fastmcp: the session, or a Response with the code in its JSON-RPC body.
    try {
      const session = await authenticateRequest(v.auth, {
        headers: { authorization },
        rawHeaders: ['Authorization', authorization],
      })
      expect(c.expect, 'fastmcp accepted').toBe('accepted')
      expect(session.claims.sub).toMatch(/\S/)
    } catch (rejection) {
      expect(rejection).toBeInstanceOf(Response)
      const r = rejection as Response
      const body = await r.text()
      produced.push(body, r.headers.get('www-authenticate') ?? '')
      expect(JSON.parse(body).error.data.error, 'fastmcp code').toBe(c.expect)
    }

    // requireCaracalAuth: next() or the same rendering on a ServerResponse.
    const rendered = await new Promise<{ status: number; headers: Record<string, string>; body: string } | 'next'>(
      (resolve) => {
        const res = {
          writeHead(status: number, headers: Record<string, string>) {
            return { end: (body: string) => resolve({ status, headers, body }) }
          },
        } as unknown as ServerResponse
        requireCaracalAuth(v.auth)(
          { headers: { authorization }, rawHeaders: ['Authorization', authorization] } as never,
          res,
          () => resolve('next'),
        )
      },
    )
    if (rendered === 'next') expect(c.expect, 'requireCaracalAuth accepted').toBe('accepted')
    else {
      produced.push(rendered.body, rendered.headers['www-authenticate'] ?? '')
      expect(JSON.parse(rendered.body).error.data.error, 'requireCaracalAuth code').toBe(c.expect)
    }

    // The Fetch adapter: the claims, or the same rendering as a Response. A comma in the token reads as
    // two joined headers (see overFetch); NUL, CR, LF or a character above U+00FF cannot be in a
    // `Headers` value at all (Fetch: a header value is a byte sequence without them).
    let request: Request | undefined
    try {
      request = new Request('http://127.0.0.1/', { headers: { authorization } })
    } catch (error) {
      expect(error, 'Headers refused the value').toBeInstanceOf(TypeError)
      expect(authorization).toMatch(/[\0\r\n\u0100-\u{10ffff}]/u)
    }
    const fetched = request === undefined ? undefined : await authenticateFetchRequest(v.auth, request)
    if (fetched === undefined) expect(c.expect, 'a value Headers refuses is never a valid mandate').not.toBe('accepted')
    else if (fetched.ok) expect(c.expect, 'Fetch adapter accepted').toBe('accepted')
    else {
      const body = await fetched.response.text()
      produced.push(body, fetched.response.headers.get('www-authenticate') ?? '')
      expect(JSON.parse(body).error.data.error, 'Fetch adapter code').toBe(
        c.token.includes(',') ? 'missing_token' : c.expect,
      )
    }

    // The SDK verifier: only the SDK's own error classes, 401 or 403 as the code says.
    try {
      await mcpSdkVerifier(v.auth).verifyAccessToken(c.token)
      expect(c.expect, 'mcpSdkVerifier accepted').toBe('accepted')
    } catch (error) {
      recordError(error)
      expect(c.expect).not.toBe('accepted')
      expect(error).toBeInstanceOf(
        ERROR_CODES[c.expect as Exclude<typeof c.expect, 'accepted'>].status === 403
          ? InsufficientScopeError
          : InvalidTokenError,
      )
    }
  })
})

// ── after every case ────────────────────────────────────────────────────────────────────────────────

/** Every 12-character window of every token segment of at least 12 characters. */
function tokenWindows(tokens: readonly string[]): Set<string> {
  const windows = new Set<string>()
  for (const token of new Set(tokens)) {
    for (const seg of token.split('.')) for (let i = 0; i + 12 <= seg.length; i++) windows.add(seg.slice(i, i + 12))
  }
  return windows
}

function leaks(text: string, windows: ReadonlySet<string>): boolean {
  for (let i = 0; i + 12 <= text.length; i++) if (windows.has(text.slice(i, i + 12))) return true
  return false
}

function redact(text: string, windows: ReadonlySet<string>): string {
  const hidden = new Array<boolean>(text.length).fill(false)
  for (let i = 0; i + 12 <= text.length; i++) if (windows.has(text.slice(i, i + 12))) hidden.fill(true, i, i + 12)
  return text
    .split('')
    .map((ch, i) => (hidden[i] ? '#' : ch))
    .join('')
    .slice(0, 300)
}

describe('after every case', () => {
  // These read what the cases above left behind: run the file whole (a -t filter starves them).
  it('the second calls were served by the verified-token cache', () => {
    const accepted = corpus.cases.filter((c) => c.expect === 'accepted').length
    let hits = 0
    for (const v of verifiers.values()) hits += v.auth.stats().cache.hits
    expect(hits).toBeGreaterThanOrEqual(accepted * TEST_BACKENDS.length)
  })

  it('no jku or x5u was ever fetched, while the remote JWKS was', () => {
    expect(attackerServer.hits.size, [...attackerServer.hits.keys()].join(' ')).toBe(0)
    expect(jwksServer.jwksHits).toBeGreaterThan(0)
  })

  it('no description, message, hint, warning, body or challenge holds a piece of any token', () => {
    const windows = tokenWindows(corpus.tokens)
    // The detector itself finds a piece of a token in the middle of a text.
    const sample = corpus.tokens[0]!
    expect(leaks(`error: ${sample.slice(20, 40)} here`, windows)).toBe(true)
    expect(produced.length).toBeGreaterThan(corpus.cases.length * TEST_BACKENDS.length)
    // A failure shows where the text leaked, with the token pieces blanked out (never printed).
    const leaked = [...new Set(produced)].filter((text) => leaks(text, windows)).map((text) => redact(text, windows))
    expect(leaked).toEqual([])
  })
})
