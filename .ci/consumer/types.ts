// Type-checked against the published declarations with moduleResolution node16 and bundler, and
// with ioredis 5 and 6 installed: the names a consumer writes must resolve and keep their types.
import type { Redis } from 'ioredis'
import {
  CaracalAuth,
  CaracalAuthError,
  type CaracalSession,
  type Claims,
  InMemoryRevocationStore,
  type RevocationStore,
} from 'caracal-fastmcp'
import { startDevSts } from 'caracal-fastmcp/dev'
import { verifyJws } from 'caracal-fastmcp/jws'
import { mcpSdkVerifier } from 'caracal-fastmcp/mcp-sdk'
import {
  RedisDelegationInvalidationConsumer,
  RedisRevocationConsumer,
  RedisRevocationStore,
} from 'caracal-fastmcp/redis'

/** The seed's wiring, in the Caracal packages' positional form. */
export function wiring(redis: Redis): { store: RevocationStore; poll: () => Promise<number> } {
  const store = new RedisRevocationStore(redis, { failClosed: true })
  const revocations = new RedisRevocationConsumer(redis, store, { consumer: 'fastmcp-server-1' })
  const epochs = new RedisDelegationInvalidationConsumer(redis, store, { consumer: 'fastmcp-server-1' })
  return { store, poll: async () => (await revocations.pollOnce()) + (await epochs.pollOnce()) }
}

export async function consumer(token: string): Promise<string> {
  const sts = await startDevSts({ zoneId: 'zone' })
  const auth = new CaracalAuth({
    issuer: sts.issuer,
    audience: 'resource://documents',
    revocations: new InMemoryRevocationStore(),
    zoneId: 'zone',
    requireSession: true,
  })
  const verifier = mcpSdkVerifier(auth)
  const { header } = await verifyJws(token, { keys: [] })
  try {
    const claims: Claims = await auth.verify(token)
    const session: CaracalSession | undefined = undefined
    const hop = claims.delegationChain?.[0]?.delegationId ?? claims.graphEpoch
    return `${claims.sub} ${String(header.alg)} ${typeof verifier.verifyAccessToken} ${String(session)} ${String(hop)}`
  } catch (error) {
    return error instanceof CaracalAuthError ? `${error.code} ${error.status}` : 'other'
  }
}

// The drop-in entry points type-check as their Caracal counterparts are used.
import { caracalAuth } from 'caracal-fastmcp/compat/express'
import { verifyFastMcpToken } from 'caracal-fastmcp/compat/fastmcp'
import { type JwtConfig, verify } from 'caracal-fastmcp/compat/identity'
import { InMemoryRevocationStore as CompatMemoryStore } from 'caracal-fastmcp/compat/revocation'
import { RedisRevocationStore as CompatRedisStore } from 'caracal-fastmcp/compat/revocation-redis'
import { type AuthResult, createMandateVerifier } from 'caracal-fastmcp/compat/verify'

export const dropIn = { caracalAuth, verifyFastMcpToken, verify, CompatMemoryStore, CompatRedisStore }
export async function compat(token: string, config: JwtConfig): Promise<AuthResult> {
  const verifier = createMandateVerifier({ ...config, revocations: new CompatMemoryStore() })
  // The overrides as the Caracal docs write them, requireAgent and a zone included.
  return verifier.authenticate(token, { requiredScopes: ['tool:call'], requireAgent: true, zoneId: 'zone' })
}
