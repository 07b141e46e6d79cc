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
