// Run inside an empty project where only the packed tarball (and the optional peers) is installed:
// every entry point imports, and a development mandate verifies on every backend.
import assert from 'node:assert/strict'
import * as root from 'caracal-fastmcp'
import * as dev from 'caracal-fastmcp/dev'
import * as fetchApi from 'caracal-fastmcp/fetch'
import * as jws from 'caracal-fastmcp/jws'
import * as mcpSdk from 'caracal-fastmcp/mcp-sdk'
import * as redis from 'caracal-fastmcp/redis'
import * as compatExpress from 'caracal-fastmcp/compat/express'
import * as compatFastmcp from 'caracal-fastmcp/compat/fastmcp'
import * as compatIdentity from 'caracal-fastmcp/compat/identity'
import * as compatRevocation from 'caracal-fastmcp/compat/revocation'
import * as compatRevocationRedis from 'caracal-fastmcp/compat/revocation-redis'
import * as compatVerify from 'caracal-fastmcp/compat/verify'

for (const [entry, names] of [
  [root, ['CaracalAuth', 'CaracalAuthError', 'InMemoryRevocationStore', 'createAuthenticate', 'hasScopes']],
  [dev, ['startDevSts', 'signJws', 'generateSigningKey']],
  [jws, ['verifyJws', 'verifySignature']],
  [fetchApi, ['authenticateRequest', 'withCaracalAuth', 'caracalHono', 'serveProtectedResourceMetadata']],
  [mcpSdk, ['mcpSdkVerifier', 'protectedResourceMetadataHandler']],
  [redis, ['RedisRevocationStore', 'RedisRevocationConsumer', 'RedisReplayStore', 'FAIL_FAST_REDIS_OPTIONS']],
  [compatIdentity, ['verify', 'createJwksCache', 'warmJwks', 'clearJwksCache', 'CaracalError', 'TokenInvalidError']],
  [compatVerify, ['authenticate', 'createMandateVerifier', 'extractBearer', 'httpStatusForAuthError', 'authErrorBody']],
  [compatRevocation, ['InMemoryRevocationStore']],
  [compatRevocationRedis, ['RedisRevocationStore', 'RedisRevocationConsumer', 'RedisDelegationInvalidationConsumer']],
  [compatFastmcp, ['verifyFastMcpToken', 'FastMcpAuthError', 'extractBearer']],
  [compatExpress, ['caracalAuth']],
]) {
  for (const name of names) assert.ok(entry[name] !== undefined, `export ${name} is missing`)
}

const sts = await dev.startDevSts({ zoneId: 'consumer-zone' })
try {
  for (const backend of ['auto', 'wasm', 'node', 'noble']) {
    const auth = new root.CaracalAuth({
      issuer: sts.issuer,
      audience: 'resource://documents',
      revocations: new root.InMemoryRevocationStore(),
      expectedZoneId: 'consumer-zone',
      requiredScopes: ['tool:call'],
      backend,
    })
    for (const alg of ['ES256', 'RS256']) {
      const claims = await auth.verify(sts.mint({}, { alg }))
      assert.equal(claims.zoneId, 'consumer-zone', `${backend} ${alg}`)
    }
    const served = auth.stats().backend
    if (backend === 'auto') assert.equal(served.ES256, 'wasm', 'auto serves ES256 from wasm')
    else assert.equal(served.ES256, backend)
    await assert.rejects(
      auth.verify('not.a.token'),
      (e) => e instanceof root.CaracalAuthError && e.code === 'invalid_token',
    )
    // The Fetch entry on the same verifier: 200 with the claims, 401 with the challenge.
    const handler = fetchApi.withCaracalAuth(auth, (_request, claims) => new Response(claims.zoneId))
    const ok = await handler(new Request('http://mcp.test/', { headers: { authorization: `Bearer ${sts.mint({})}` } }))
    assert.equal(await ok.text(), 'consumer-zone', `${backend} fetch adapter`)
    const refused = await handler(new Request('http://mcp.test/'))
    assert.equal(refused.status, 401)
    assert.match(refused.headers.get('www-authenticate'), /^Bearer error="invalid_token"/)
    auth.close()
    console.log(
      `consumer: ${backend} verified ES256 and RS256 (ES256 served by ${served.ES256}, RS256 by ${served.RS256})`,
    )
  }
} finally {
  await sts.close()
}
console.log('consumer: every entry point imports')
