// Type-checked against the published declarations, once with moduleResolution node16 and once with
// bundler: the names a consumer writes must resolve and keep their types.
import {
  CaracalAuth,
  CaracalAuthError,
  type CaracalSession,
  type Claims,
  InMemoryRevocationStore,
} from 'caracal-fastmcp'
import { startDevSts } from 'caracal-fastmcp/dev'
import { verifyJws } from 'caracal-fastmcp/jws'
import { mcpSdkVerifier } from 'caracal-fastmcp/mcp-sdk'
import type { RedisRevocationStore } from 'caracal-fastmcp/redis'

export async function consumer(token: string): Promise<string> {
  const sts = await startDevSts({ zoneId: 'zone' })
  const auth = new CaracalAuth({
    issuer: sts.issuer,
    audience: 'resource://documents',
    revocations: new InMemoryRevocationStore(),
  })
  const verifier = mcpSdkVerifier(auth)
  const { header } = await verifyJws(token, { keys: [] })
  const store: typeof RedisRevocationStore | undefined = undefined
  try {
    const claims: Claims = await auth.verify(token)
    const session: CaracalSession | undefined = undefined
    return `${claims.sub} ${String(header.alg)} ${typeof verifier.verifyAccessToken} ${String(session)} ${String(store)}`
  } catch (error) {
    return error instanceof CaracalAuthError ? `${error.code} ${error.status}` : 'other'
  }
}
