/**
 * The demo's moving parts, startable in-process: a development STS (or an external one), the
 * revocation store, CaracalAuth, and the `documents` server on fastmcp's HTTP stream transport.
 */
import { CaracalAuth } from '../caracal-auth.js'
import type { CaracalSession } from '../adapters/fastmcp.js'
import { InMemoryRevocationStore } from '../revocation/in-memory-store.js'
import type { RevocationStore } from '../revocation/types.js'
import { FAIL_FAST_REDIS_OPTIONS, RedisRevocationStore } from '../redis.js'
import { startDevSts, type DevSts } from '../dev/sts.js'
import { createDocumentsServer } from './documents.js'
import { startHttpStream } from './listen.js'

export const DEMO_AUDIENCE = 'resource://documents'
export const DEFAULT_ZONE_ID = 'demo-zone'

export interface DemoOptions {
  /** MCP server port; 0 (default) for any free port. */
  readonly port?: number
  /** Use this STS instead of starting one (`CARACAL_STS_URL`). */
  readonly stsUrl?: string | undefined
  /** `CARACAL_ZONE_ID`. */
  readonly zoneId?: string | undefined
  /** `REDIS_URL`: revocations in Redis (needs the `caracal-fastmcp/redis` module and ioredis). */
  readonly redisUrl?: string | undefined
  readonly onToolRun?: (tool: string, session: CaracalSession | undefined) => void
}

export interface Demo {
  readonly mcpUrl: URL
  readonly stsUrl: string
  /** The embedded STS; undefined with an external one. */
  readonly sts: DevSts | undefined
  readonly auth: CaracalAuth
  readonly revocations: RevocationStore
  readonly revocationsKind: 'in-memory' | 'redis'
  /** Mints through the embedded STS, or through an external STS's `POST /mint` when it has one. */
  readonly mint: ((overrides: Record<string, unknown>) => Promise<string>) | undefined
  close(): Promise<void>
}

interface ClosableStore extends RevocationStore {
  close?(): Promise<void> | void
}

/** The Redis store, with ioredis loaded only when asked for (REDIS_URL), so that it is needed only then. */
async function redisRevocations(redisUrl: string): Promise<ClosableStore> {
  const { Redis } = await import('ioredis')
  const redis = new Redis(redisUrl, { connectTimeout: 2000, ...FAIL_FAST_REDIS_OPTIONS })
  let lastError = ''
  // Without a listener ioredis prints every reconnection failure; the store reports staleness itself.
  redis.on('error', (error: unknown) => {
    lastError = error instanceof Error ? error.message : String(error)
  })
  const store = new RedisRevocationStore(redis, { failClosed: true })
  try {
    await store.ready({ timeoutMs: 5000 })
  } catch (cause) {
    await store.close()
    redis.disconnect()
    const safeUrl = redisUrl.replace(/\/\/[^@/]*@/, '//***@')
    throw new Error(`cannot load revocations from Redis at ${safeUrl}${lastError === '' ? '' : `: ${lastError}`}`, {
      cause,
    })
  }
  return {
    isRevoked: (anchor) => store.isRevoked(anchor),
    markRevoked: (anchor, ttl) => store.markRevoked(anchor, ttl),
    currentDelegationEpoch: (zone) => store.currentDelegationEpoch(zone),
    markDelegationEpoch: (zone, epoch, ttl) => store.markDelegationEpoch(zone, epoch, ttl),
    unavailableReason: () => store.unavailableReason(),
    close: async () => {
      await store.close()
      redis.disconnect()
    },
  }
}

/** An external STS may still mint (another `startDevSts`, say): try its `POST /mint` once. */
async function httpMinter(stsUrl: string): Promise<Demo['mint']> {
  const mintUrl = `${stsUrl.replace(/\/+$/, '')}/mint`
  const mint = async (overrides: Record<string, unknown>): Promise<string> => {
    // JSON has no undefined: the dev STS reads null as "leave the claim out".
    const claims = Object.fromEntries(Object.entries(overrides).map(([k, v]) => [k, v === undefined ? null : v]))
    const response = await fetch(mintUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ claims }),
      signal: AbortSignal.timeout(5000),
    })
    const body = (await response.json().catch(() => undefined)) as { token?: unknown } | undefined
    if (!response.ok || typeof body?.token !== 'string') throw new Error(`${mintUrl} answered ${response.status}`)
    return body.token
  }
  try {
    await mint({})
    return mint
  } catch {
    return undefined
  }
}

export async function startDemo(options: DemoOptions = {}): Promise<Demo> {
  const zoneId = options.zoneId ?? DEFAULT_ZONE_ID
  const cleanup: (() => Promise<void> | void)[] = []
  const closeAll = async (): Promise<void> => {
    for (const step of cleanup.reverse()) await step()
  }
  try {
    const revocations: ClosableStore =
      options.redisUrl === undefined ? new InMemoryRevocationStore() : await redisRevocations(options.redisUrl)
    if (revocations.close !== undefined) cleanup.push(() => revocations.close!())

    let sts: DevSts | undefined
    let stsUrl: string
    let mint: Demo['mint']
    if (options.stsUrl === undefined) {
      sts = await startDevSts({ zoneId, audience: DEMO_AUDIENCE, revocations })
      cleanup.push(() => sts!.close())
      stsUrl = sts.url
      const local = sts
      mint = async (overrides) => local.mint(overrides)
    } else {
      stsUrl = options.stsUrl.replace(/\/+$/, '')
      mint = await httpMinter(stsUrl)
    }

    const auth = new CaracalAuth({
      issuer: sts?.issuer ?? stsUrl,
      audience: DEMO_AUDIENCE,
      revocations,
      requiredScopes: ['tool:call'],
      expectedZoneId: zoneId,
      requireAgent: true,
    })
    cleanup.push(() => auth.close())
    await auth.warmup()

    const server = createDocumentsServer({
      authenticate: auth.authenticate,
      ...(options.onToolRun ? { onToolRun: options.onToolRun } : {}),
    })
    const mcpUrl = await startHttpStream(server, { port: options.port ?? 0 })
    cleanup.push(() => server.stop())

    return {
      mcpUrl,
      stsUrl,
      sts,
      auth,
      revocations,
      revocationsKind: options.redisUrl === undefined ? 'in-memory' : 'redis',
      mint,
      close: closeAll,
    }
  } catch (error) {
    await closeAll().catch(() => {})
    throw error
  }
}
