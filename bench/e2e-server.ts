/**
 * One end-to-end server, in a process of its own (started by bench/e2e-suite.ts, which sends its
 * config over IPC and reads its CPU time from /proc): a plain node:http gateway hop that verifies
 * the bearer and answers JSON, or fastmcp's stateless HTTP stream with one tool, each with one
 * variant's verifier (bench/e2e-protocol.ts). Every verifier gets the same public key, the same
 * policy and the same revocation checks as in the micro suites (bench/peers.ts).
 */
import { createPublicKey } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Redis } from 'ioredis'
import { CaracalAuth, InMemoryRevocationStore, type CaracalAuthOptions, type ReplayStore } from '../src/index.js'
import { asAuthError, authorizationHeader, bearerToken, renderAuthError } from '../src/adapters/http-error.js'
import { sendToParent, wasmBytesOrNull } from './child-side.js'
import { AUDIENCE, ISSUER, REQUIRED_SCOPES, ZONE } from './fixtures.js'
import type { PeerKey } from './peers.js'
import type { ServerConfig, ServerFinal, ServerMessage, ToServer } from './e2e-protocol.js'

type Verify = (token: string) => unknown

let stop: (() => Promise<ServerFinal>) | undefined

const send = (message: ServerMessage): Promise<void> => sendToParent(message)

/** The variant's CaracalAuth, or undefined for the peers and for no auth. */
function caracalFor(config: ServerConfig, replay: ReplayStore | undefined): CaracalAuth | undefined {
  if (!config.variant.startsWith('caracal-')) return undefined
  const options: CaracalAuthOptions = {
    issuer: ISSUER,
    audience: AUDIENCE,
    revocations: new InMemoryRevocationStore(),
    requiredScopes: REQUIRED_SCOPES,
    expectedZoneId: ZONE,
    requireAgent: true,
    jwks: { keys: { keys: [config.publicJwk] } },
    ...(replay === undefined ? {} : { replay }),
  }
  // The pool's option (issue 13 item 3) is not in every version: the suite enables this variant
  // only where the constructor takes it.
  return new CaracalAuth(config.variant === 'caracal-cold-pool2' ? { ...options, ...{ workers: 2 } } : options)
}

async function peerFor(config: ServerConfig): Promise<Verify | undefined> {
  if (config.variant === 'none') return undefined
  // Imported only by the servers that use them, as fastmcp and ioredis are: each server process
  // starts in well under a second, which is most of what a short (CI) run of the suite costs.
  const { fastJwtVerifier, nodeRsVerifier, plainJoseVerifier } = await import('./peers.js')
  const key: PeerKey = {
    alg: 'ES256',
    key: { publicJwk: config.publicJwk, publicKey: createPublicKey({ key: { ...config.publicJwk }, format: 'jwk' }) },
  }
  const revocations = new InMemoryRevocationStore()
  switch (config.variant) {
    case 'jose':
      return plainJoseVerifier(key, revocations)
    case 'fast-jwt':
      return fastJwtVerifier(key, revocations, false)
    case 'fast-jwt-cache':
      return fastJwtVerifier(key, revocations, true)
    case 'node-rs':
      return nodeRsVerifier(key, revocations)
    default:
      return undefined
  }
}

const OK = JSON.stringify({ ok: true })

function answer(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers })
  res.end(body)
}

/** The gateway hop: the bearer verified (the same extraction for every verifier), then a small JSON answer. */
function gatewayHandler(verify: Verify | undefined): (req: IncomingMessage, res: ServerResponse) => void {
  if (verify === undefined) return (_req, res) => answer(res, 200, OK)
  return (req, res) => {
    const refuse = (error: unknown) => {
      const r = renderAuthError(asAuthError(error))
      answer(res, r.status, r.body, r.headers)
    }
    try {
      const token = bearerToken(authorizationHeader(req))
      Promise.resolve(verify(token)).then(() => answer(res, 200, OK), refuse)
    } catch (error) {
      refuse(error)
    }
  }
}

async function listenGateway(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{
  url: string
  close: () => Promise<void>
}> {
  const server = createServer({ keepAlive: true }, handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/hop`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

type FastmcpSession = Record<string, unknown>
type Authenticate = (req: IncomingMessage | undefined) => FastmcpSession | Promise<FastmcpSession>

/** A peer's `authenticate` for fastmcp: its refusal a 401 Response, as fastmcp expects and as the library's adapter renders it. */
function peerAuthenticate(verify: Verify): Authenticate {
  return async (req) => {
    try {
      await verify(bearerToken(authorizationHeader(req)))
      return { ok: true }
    } catch (error) {
      const r = renderAuthError(asAuthError(error))
      throw new Response(r.body, { status: r.status, headers: r.headers })
    }
  }
}

async function listenFastmcp(authenticate: Authenticate | undefined): Promise<{
  url: string
  close: () => Promise<void>
}> {
  const { FastMCP } = await import('fastmcp')
  const { quietLogger } = await import('../src/demo/documents.js')
  const { startHttpStream } = await import('../src/demo/listen.js')
  const server = new FastMCP<FastmcpSession>({
    name: 'e2e',
    version: '1.0.0',
    logger: quietLogger,
    // Every Authenticate here returns a promise (async functions, CaracalAuth's adapter); the type allows the sync peers' shape.
    ...(authenticate === undefined
      ? {}
      : { authenticate: authenticate as (req: IncomingMessage | undefined) => Promise<FastmcpSession> }),
  })
  server.addTool({ name: 'whoami', description: 'Answers ok', execute: async () => 'ok' })
  const url = await startHttpStream(server)
  return { url: url.href, close: () => server.stop() }
}

async function start(config: ServerConfig): Promise<() => Promise<ServerFinal>> {
  let redis: Redis | undefined
  let replay: ReplayStore | undefined
  if (config.variant.startsWith('caracal-cold-replay')) {
    const [{ Redis }, { FAIL_FAST_REDIS_OPTIONS, RedisReplayStore }] = await Promise.all([
      import('ioredis'),
      import('../src/redis.js'),
    ])
    redis = new Redis(config.redisUrl!, { connectTimeout: 2000, ...FAIL_FAST_REDIS_OPTIONS })
    redis.on('error', (error: unknown) => {
      console.error(`e2e-server: redis: ${error instanceof Error ? error.message : String(error)}`)
    })
    replay = new RedisReplayStore(redis, {
      keyPrefix: config.replayPrefix!,
      scriptBatches: config.variant === 'caracal-cold-replay-script',
    })
  }
  const auth = caracalFor(config, replay)
  if (auth !== undefined) await auth.warmup()
  const verify = auth === undefined ? await peerFor(config) : auth.verify
  if (config.variant !== 'none' && verify === undefined) throw new Error(`unknown variant ${config.variant}`)
  let verifyMs = 0
  let verifyCalls = 0
  // What each request awaits: the verifier on the gateway; on fastmcp, for CaracalAuth, the
  // library's own adapter (`auth.authenticate`).
  const timed = <A, R>(fn: (a: A) => R | Promise<R>): ((a: A) => R | Promise<R>) => {
    if (!config.timeVerify) return fn
    return async (a) => {
      const t0 = performance.now()
      try {
        return await fn(a)
      } finally {
        verifyMs += performance.now() - t0
        verifyCalls++
      }
    }
  }
  let listening: { url: string; close: () => Promise<void> }
  if (config.server === 'gateway') {
    listening = await listenGateway(gatewayHandler(verify === undefined ? undefined : timed(verify)))
  } else {
    const authenticate =
      auth !== undefined ? auth.authenticate : verify === undefined ? undefined : peerAuthenticate(verify)
    listening = await listenFastmcp(authenticate === undefined ? undefined : timed(authenticate))
  }
  void send({ type: 'ready', url: listening.url })
  return async () => {
    const m = process.memoryUsage()
    const gc = (globalThis as { gc?: () => void }).gc
    // Twice: what the first collection's finalizers free goes in the second.
    gc?.()
    gc?.()
    const final: ServerFinal = {
      rss: m.rss,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      heapAfterGc: gc === undefined ? m.heapUsed : process.memoryUsage().heapUsed,
      wasm: wasmBytesOrNull(),
      verifyUs: verifyCalls === 0 ? null : (verifyMs * 1000) / verifyCalls,
      verifyCalls,
    }
    await listening.close()
    await auth?.close()
    redis?.disconnect()
    return final
  }
}

process.on('message', (message: ToServer) => {
  if (message.type === 'start') {
    start(message.config).then(
      (s) => {
        stop = s
      },
      async (error: unknown) => {
        await send({ type: 'fatal', message: error instanceof Error ? error.message : String(error) })
        process.exit(1)
      },
    )
  } else if (message.type === 'stop') {
    ;(stop ?? (() => Promise.reject(new Error('stopped before it started'))))().then(
      // process.exit, not a kill: --cpu-prof writes its profile on the way out.
      async (final) => {
        await send({ type: 'final', final })
        process.exit(0)
      },
      async (error: unknown) => {
        await send({ type: 'fatal', message: error instanceof Error ? error.message : String(error) })
        process.exit(1)
      },
    )
  }
})
// The suite gone (killed, crashed): nobody is left to stop this server.
process.on('disconnect', () => process.exit(2))
