/**
 * A development STS: signs Caracal mandates with ES256 and RS256 keys and publishes their JWKS, on
 * loopback only. For demos and tests; it has no authentication of its own, which is why it refuses
 * any address a remote host could reach.
 */
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { ALL_ALGORITHMS, isAlgorithm, type Algorithm } from '../jws/algorithms.js'
import { OptionReader } from '../option-reader.js'
import { isRevocationStore, type RevocationStore } from '../revocation/types.js'
import { generateSigningKey, signJws, type SigningKey } from './sign-jws.js'

export interface DevStsOptions {
  /** Default 0: an ephemeral port. */
  readonly port?: number
  /** Loopback only: `127.0.0.1` (default), `::1` or `localhost`. */
  readonly host?: string
  /**
   * `zone_id` of minted mandates. When set, the JWKS is served as a Caracal STS serves it: only at
   * `/.well-known/jwks.json?zone_id=<zone>`, 400 without `zone_id`. Unset: zone `dev-zone`, and
   * the keys also at the plain `/.well-known/jwks.json`.
   */
  readonly zoneId?: string
  /** Keys to hold, one per algorithm; the first signs by default. Default `['ES256', 'RS256']`. */
  readonly algorithms?: readonly Algorithm[]
  /** `iss` of minted mandates. Default: the STS's own URL (so `CaracalAuth({ issuer: sts.url })` finds the JWKS). */
  readonly issuer?: string
  /** `aud` of minted mandates. Default `resource://documents`. */
  readonly audience?: string | readonly string[]
  /** Lifetime of minted mandates. Default 300 s. */
  readonly ttlSec?: number
  /** `scope` of minted mandates. Default `tool:call documents:read`. */
  readonly scope?: string
  /** Where `POST /revoke` writes. Without it that endpoint answers 404. */
  readonly revocations?: RevocationStore
  /** Clock in ms (for tests). */
  readonly now?: () => number
}

export interface MintOptions {
  /** Which of the STS's keys signs. Default: the first of `algorithms`. */
  readonly alg?: Algorithm
  /** Extra or overriding JOSE header members (e.g. a foreign `kid`, for negative tests). */
  readonly header?: Record<string, unknown>
}

export interface IssuedMandate {
  readonly token: string
  /** The claims as signed (overrides applied, removed claims absent). */
  readonly claims: Readonly<Record<string, unknown>>
  readonly alg: Algorithm
  readonly kid: string
}

export interface DevSts {
  /** Base URL, e.g. `http://127.0.0.1:54321`. */
  readonly url: string
  readonly issuer: string
  /** Where the keys are: zone-scoped (`?zone_id=`) when `zoneId` was given. */
  readonly jwksUrl: string
  readonly zoneId: string
  /** The published JWKS, as served. */
  jwks(): { keys: JsonWebKey[] }
  /** The current signing keys, one per algorithm. */
  readonly signingKeys: readonly SigningKey[]
  /**
   * A signed mandate: Caracal's claim set with fresh `jti`, `sid` and `agent_session_id`, then
   * `overrides` (a claim overridden with `undefined` is left out).
   */
  mint(overrides?: Record<string, unknown>, options?: MintOptions): string
  /** Like `mint`, with the signed claims and the key used. */
  issue(overrides?: Record<string, unknown>, options?: MintOptions): IssuedMandate
  /**
   * New keys (new kids) for every algorithm; the previous ones stay published until the next
   * rotation unless `keepPrevious` is false, so mandates already issued keep verifying.
   */
  rotateKeys(options?: { keepPrevious?: boolean }): string[]
  /** Marks an anchor (`sid`, `root_sid`, `agent_session_id`, `delegation_edge_id`) revoked in `store`. */
  revoke(anchor: string, store: RevocationStore, ttlMs?: number): Promise<void>
  close(): Promise<void>
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost'])
const DEV_STS_OPTIONS: readonly (keyof DevStsOptions)[] = [
  'port',
  'host',
  'zoneId',
  'algorithms',
  'issuer',
  'audience',
  'ttlSec',
  'scope',
  'revocations',
  'now',
]
const MAX_BODY_BYTES = 64 * 1024

function keysFor(algorithms: readonly Algorithm[], generation: number): SigningKey[] {
  const tag = randomUUID().slice(0, 8)
  return algorithms.map((alg) => generateSigningKey(alg, `${alg.toLowerCase()}-${generation}-${tag}`))
}

export async function startDevSts(options: DevStsOptions = {}): Promise<DevSts> {
  const o = new OptionReader('startDevSts', options, DEV_STS_OPTIONS)
  const listenPort = o.integer('port', 0, 0, 65_535)
  const host = o.string('host', '127.0.0.1')
  if (!LOOPBACK.has(host)) o.fail('host', `must be a loopback address, not ${host}`)
  const zoneScoped = o.raw('zoneId') !== undefined
  const zoneId = o.string('zoneId', 'dev-zone')
  const algorithms = o.choiceList('algorithms', ALL_ALGORITHMS, ALL_ALGORITHMS)
  const configuredIssuer = o.optionalString('issuer')
  // A string stays a string (a minted `aud` is then a string), an array stays an array.
  const audience =
    o.raw('audience') === undefined || typeof o.raw('audience') === 'string'
      ? o.string('audience', 'resource://documents')
      : o.stringList('audience', true)
  const ttlSec = o.integer('ttlSec', 300)
  const scope = o.string('scope', 'tool:call documents:read', true)
  const revocations = o.guarded(
    'revocations',
    (v): v is RevocationStore | undefined => v === undefined || isRevocationStore(v),
    'must be a RevocationStore (isRevoked, markRevoked)',
  )
  const now = o.fn('now', Date.now)

  let generation = 1
  let current = keysFor(algorithms, generation)
  let previous: SigningKey[] = []
  let counter = 0

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error' })
      else res.end()
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(listenPort, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`
  const issuer = configuredIssuer ?? url

  const sts: DevSts = {
    url,
    issuer,
    jwksUrl: zoneScoped
      ? `${url}/.well-known/jwks.json?${new URLSearchParams({ zone_id: zoneId })}`
      : `${url}/.well-known/jwks.json`,
    zoneId,
    jwks: () => ({ keys: [...current, ...previous].map((k) => ({ ...k.publicJwk })) }),
    get signingKeys() {
      return [...current]
    },
    mint: (overrides, mintOptions) => sts.issue(overrides, mintOptions).token,
    issue(overrides = {}, mintOptions = {}) {
      const alg = mintOptions.alg ?? current[0]!.alg
      const key = current.find((k) => k.alg === alg)
      if (key === undefined) throw new TypeError(`startDevSts: this STS holds no ${alg} key`)
      counter++
      const nowSec = Math.floor(now() / 1000)
      const claims: Record<string, unknown> = {
        iss: issuer,
        aud: audience,
        exp: nowSec + ttlSec,
        iat: nowSec,
        jti: randomUUID(),
        sub: 'dev-user',
        client_id: 'dev-client',
        sid: `sid-${counter}-${randomUUID().slice(0, 8)}`,
        root_sid: 'root-dev',
        use: 'resource',
        sub_type: 'user',
        scope,
        zone_id: zoneId,
        agent_session_id: `agent-${counter}-${randomUUID().slice(0, 8)}`,
        ...overrides,
      }
      for (const name of Object.keys(claims)) if (claims[name] === undefined) delete claims[name]
      return {
        token: signJws(key, claims, mintOptions.header),
        claims: Object.freeze(claims),
        alg: key.alg,
        kid: key.kid,
      }
    },
    rotateKeys({ keepPrevious = true } = {}) {
      generation++
      previous = keepPrevious ? current : []
      current = keysFor(algorithms, generation)
      return current.map((k) => k.kid)
    },
    async revoke(anchor, store, ttlMs) {
      await store.markRevoked(anchor, ttlMs)
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()))
        server.closeAllConnections()
      }),
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestUrl = new URL(req.url ?? '/', url)
    const path = requestUrl.pathname
    if (path === '/.well-known/jwks.json') {
      if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: 'method_not_allowed' })
      const zone = requestUrl.searchParams.get('zone_id')
      if (zone === null && zoneScoped) {
        return sendJson(res, 400, {
          error: 'invalid_request',
          error_description: 'zone_id required: this STS serves one signing keyset per zone',
        })
      }
      if (zone !== null && zone !== zoneId)
        return sendJson(res, 404, { error: 'not_found', error_description: 'no keyset for this zone' })
      return sendJson(res, 200, sts.jwks(), { 'cache-control': 'max-age=60' })
    }
    if (path === '/mint' || path === '/revoke' || path === '/rotate') {
      if (req.method !== 'POST') return sendJson(res, 405, { error: 'method_not_allowed' })
      const body = await readJson(req)
      if (body === undefined)
        return sendJson(res, 400, { error: 'invalid_request', error_description: 'body must be a JSON object' })
      if (path === '/rotate')
        return sendJson(res, 200, { kids: sts.rotateKeys({ keepPrevious: body.keepPrevious !== false }) })
      if (path === '/revoke') {
        if (revocations === undefined)
          return sendJson(res, 404, { error: 'not_found', error_description: 'this STS has no revocation store' })
        if (typeof body.anchor !== 'string' || body.anchor === '')
          return sendJson(res, 400, {
            error: 'invalid_request',
            error_description: 'anchor must be a non-empty string',
          })
        const ttlMs = typeof body.ttlMs === 'number' ? body.ttlMs : undefined
        await sts.revoke(body.anchor, revocations, ttlMs)
        return sendJson(res, 200, { revoked: body.anchor })
      }
      return mintOverHttp(res, body)
    }
    if (path === '/' && req.method === 'GET') {
      return sendJson(res, 200, {
        issuer,
        jwks_uri: sts.jwksUrl,
        mint: `POST ${url}/mint`,
        revoke: `POST ${url}/revoke`,
        rotate: `POST ${url}/rotate`,
      })
    }
    sendJson(res, 404, { error: 'not_found' })
  }

  /** `POST /mint {"claims": {...}, "alg": "RS256"}`; over JSON a claim set to null is left out. */
  function mintOverHttp(res: ServerResponse, body: Record<string, unknown>): void {
    const alg = body.alg === undefined ? undefined : body.alg
    if (alg !== undefined && !(isAlgorithm(alg) && current.some((k) => k.alg === alg))) {
      sendJson(res, 400, { error: 'invalid_request', error_description: 'unsupported alg' })
      return
    }
    const raw = body.claims ?? {}
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      sendJson(res, 400, { error: 'invalid_request', error_description: 'claims must be a JSON object' })
      return
    }
    const overrides = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, v === null ? undefined : v]))
    const issued = sts.issue(overrides, alg === undefined ? {} : { alg })
    sendJson(res, 200, { token: issued.token, claims: issued.claims, alg: issued.alg, kid: issued.kid })
  }

  return sts
}

function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  res
    .writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers })
    .end(JSON.stringify(value))
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY_BYTES) return undefined
    chunks.push(chunk)
  }
  if (size === 0) return {}
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'))
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}
