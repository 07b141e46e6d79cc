/**
 * Starting fastmcp on a known port. fastmcp does not report the port it bound, so "any port" means:
 * ask the OS for a free loopback port, then start there (retrying if another process won the race).
 */
import { createServer } from 'node:net'
import type { FastMCP } from 'fastmcp'

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, host, () => {
      const address = probe.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      probe.close(() => resolve(port))
    })
  })
}

function inUse(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'EADDRINUSE'
}

export interface HttpStreamOptions {
  readonly host?: string
  /** 0 (default) for any free port; a busy preferred port falls back to a free one. */
  readonly port?: number
  readonly endpoint?: `/${string}`
  /**
   * Stateless (the default here): fastmcp authenticates and builds the session — `canAccess`
   * included — for every request, which is also the faster mode for gateways.
   */
  readonly stateless?: boolean
}

/** Starts `server` on fastmcp's HTTP stream transport; resolves to the MCP endpoint URL. */
export async function startHttpStream<S extends Record<string, unknown> | undefined>(
  server: FastMCP<S>,
  options: HttpStreamOptions = {},
): Promise<URL> {
  const host = options.host ?? '127.0.0.1'
  const endpoint = options.endpoint ?? '/mcp'
  let port = options.port ?? 0
  for (let attempt = 0; ; attempt++) {
    const chosen = port === 0 ? await freePort(host) : port
    try {
      await server.start({
        transportType: 'httpStream',
        httpStream: { host, port: chosen, endpoint, stateless: options.stateless ?? true },
      })
      return new URL(`http://${host.includes(':') ? `[${host}]` : host}:${chosen}${endpoint}`)
    } catch (error) {
      if (!inUse(error) || attempt >= 5) throw error
      port = 0
    }
  }
}
