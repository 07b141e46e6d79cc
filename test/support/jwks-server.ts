/**
 * A real JWKS endpoint on 127.0.0.1 (node:http, port 0) for the JWKS tests: it counts requests per
 * path and serves what the test sets, or whatever a custom handler answers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export type JwksHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>

export interface JwksServer {
  /** `http://127.0.0.1:<port>`: the issuer, whose JWKS is at `/.well-known/jwks.json`. */
  readonly issuer: string
  readonly jwksUrl: string
  /** Requests received, by path. */
  readonly hits: Map<string, number>
  readonly jwksHits: number
  /** What `/.well-known/jwks.json` serves (JSON-encoded with Content-Length) when no handler is set. */
  keys: { keys: unknown[] }
  /** Replaces the default answer for every path. */
  handler: JwksHandler | undefined
  /** Stops accepting and drops open connections: the STS is down. */
  close(): Promise<void>
}

export const JWKS_PATH = '/.well-known/jwks.json'

export async function startJwksServer(keys: { keys: unknown[] } = { keys: [] }): Promise<JwksServer> {
  const hits = new Map<string, number>()
  let server: Server
  const state: JwksServer = {
    issuer: '',
    jwksUrl: '',
    hits,
    get jwksHits() {
      return hits.get(JWKS_PATH) ?? 0
    },
    keys,
    handler: undefined,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
  server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0]!
    hits.set(path, (hits.get(path) ?? 0) + 1)
    if (state.handler !== undefined) {
      void Promise.resolve(state.handler(req, res)).catch(() => res.destroy())
      return
    }
    if (path !== JWKS_PATH) {
      res.writeHead(404).end()
      return
    }
    sendJson(res, state.keys)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  ;(state as { issuer: string }).issuer = `http://127.0.0.1:${port}`
  ;(state as { jwksUrl: string }).jwksUrl = `http://127.0.0.1:${port}${JWKS_PATH}`
  return state
}

export function sendJson(res: ServerResponse, value: unknown): void {
  const body = Buffer.from(JSON.stringify(value))
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
  res.end(body)
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Polls until `condition` holds (for background work the test cannot await directly). */
export async function eventually(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time')
    await sleep(5)
  }
}
