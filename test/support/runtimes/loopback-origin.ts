/**
 * The test's loopback origin (node:http on 127.0.0.1): the issuer, whose JWKS it serves as a
 * Caracal STS does (one keyset per zone, `?zone_id=`), and the files of a directory (the Chromium
 * page and its bundle, same-origin with the JWKS as an STS-hosted app would be).
 */
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { extname, join, normalize } from 'node:path'

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  // instantiateStreaming accepts nothing else.
  '.wasm': 'application/wasm',
}

export interface LoopbackOrigin {
  readonly origin: string
  /** Requests for the JWKS so far. */
  jwksRequests(): number
  close(): Promise<void>
}

export interface LoopbackOriginOptions {
  readonly zoneId: string
  /** The keyset served; undefined until the STS exists (404 meanwhile). */
  readonly jwks: () => unknown
  readonly staticDir?: string | undefined
}

export async function startLoopbackOrigin(options: LoopbackOriginOptions): Promise<LoopbackOrigin> {
  let jwksRequests = 0
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    if (url.pathname === '/.well-known/jwks.json') {
      jwksRequests++
      const keys = url.searchParams.get('zone_id') === options.zoneId ? options.jwks() : undefined
      res
        .writeHead(keys === undefined ? 404 : 200, { 'content-type': 'application/json' })
        .end(JSON.stringify(keys ?? { error: 'not_found' }))
      return
    }
    try {
      if (options.staticDir === undefined) throw new Error('no files to serve')
      const file = join(options.staticDir, normalize(url.pathname).replace(/^(\.\.[/\\])+/, ''))
      const body = readFileSync(file)
      res.writeHead(200, { 'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream' }).end(body)
    } catch {
      res.writeHead(404).end()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    jwksRequests: () => jwksRequests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
