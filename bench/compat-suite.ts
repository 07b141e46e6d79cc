/**
 * The drop-in entry points against `CaracalAuth` itself (issue 12: within 5%): the same ES256
 * tokens, the same policy, cached (one token again and again) and cold (a pool larger than every
 * cache, cycled, so each call verifies a signature). The keys come from a loopback STS, as the
 * Caracal packages always fetch them.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { CaracalAuth, InMemoryRevocationStore } from '../src/index.js'
import { verify as compatVerify } from '../src/compat/identity.js'
import { InMemoryRevocationStore as CompatRevocations } from '../src/compat/revocation.js'
import { createMandateVerifier } from '../src/compat/verify.js'
import { AUDIENCE, REQUIRED_SCOPES, ZONE, makeFixture, type AlgFixture } from './fixtures.js'
import { measure } from './measure.js'
import type { BenchRow, SuiteOptions } from './rows.js'

/**
 * Per contender, more tokens than a full run verifies (~70 000 at ~35 000 a second): a pool that
 * came back would be served from the cache, which under cold traffic stores the tokens that come
 * back (src/cache/verified-token-cache.ts), and the cold rows would measure hits. A short run
 * (~7 000 calls) needs fewer.
 */
const COLD_POOL = 100_000
const QUICK_COLD_POOL = 16_000

export async function compatSuite(options: SuiteOptions): Promise<BenchRow[]> {
  // One fixture (key and token pool) per contender: the two compat entry points share one engine
  // (and its cache), so a pool they both cycled would give each the other's recent entries as hits.
  const fixtures: AlgFixture[] = []
  const server = createServer((_req, res) => {
    const keys = fixtures.map((f) => f.key.publicJwk)
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  try {
    for (const tag of ['-auth', '-identity', '-verify'])
      fixtures.push(makeFixture('ES256', options.quick ? QUICK_COLD_POOL : COLD_POOL, issuer, tag))
    const policy = { requiredScopes: REQUIRED_SCOPES, zoneId: ZONE }
    const auth = new CaracalAuth({ issuer, audience: AUDIENCE, revocations: new InMemoryRevocationStore(), ...policy })
    const verifier = createMandateVerifier({
      issuer,
      audience: AUDIENCE,
      revocations: new CompatRevocations(),
      ...policy,
    })
    const config = { issuer, audience: AUDIENCE, ...policy }
    const contenders = [
      { name: 'CaracalAuth.verify', pool: fixtures[0]!.pool, verify: (t: string) => auth.verify(t) },
      {
        name: 'compat/identity verify(token, config)',
        pool: fixtures[1]!.pool,
        verify: (t: string) => compatVerify(t, config),
      },
      {
        name: 'compat/verify createMandateVerifier().authenticate',
        pool: fixtures[2]!.pool,
        // Acceptance is checked once before timing; the timed call is the entry point alone.
        verify: (t: string) => verifier.authenticate(t),
      },
    ]
    // Fetches the keys, and must accept: a refusal would make the comparison mean nothing.
    for (const c of contenders) {
      const r = (await c.verify(c.pool[0]!)) as { ok?: boolean } | undefined
      if (r?.ok === false) throw new Error(`${c.name} refused the bench token`)
    }
    const rows: BenchRow[] = []
    for (const [group, batch] of [
      ['cached', 256],
      ['cold', 1],
    ] as const) {
      const tasks = contenders.map((c) => {
        // The cold pool leaves out the cached group's token (still cached).
        const tokens = group === 'cached' ? [c.pool[0]!] : c.pool.slice(1)
        const wire = tokens.map((t) => Buffer.from(t, 'latin1'))
        let i = 0
        return {
          name: `${group} ${c.name}`,
          batch,
          fn: async () => {
            for (let b = 0; b < batch; b++) {
              await c.verify(wire[i]!.toString('latin1'))
              i = i + 1 === wire.length ? 0 : i + 1
            }
          },
        }
      })
      const hitsBefore = auth.stats().cache.hits
      const opsPerSec = await measure(tasks, options.timeMs, options.quick ? 1 : undefined)
      if (group === 'cold' && auth.stats().cache.hits !== hitsBefore)
        throw new Error('compat suite: the cold pool came back as cache hits (make it larger)')
      contenders.forEach((c, k) => {
        rows.push({
          suite: 'compat',
          alg: 'ES256',
          group,
          name: `${c.name} (${group})`,
          opsPerSec: opsPerSec[k]!,
          baseline: `ES256 CaracalAuth.verify (${group})`,
        })
      })
    }
    await auth.close()
    return rows
  } finally {
    // 300 000 token strings: emptied in place, since whatever still holds the arrays (the timed
    // closures, the entry points' registry) would keep them alive into the memory suite's baseline,
    // whose growth they would then turn negative as they go.
    for (const f of fixtures) (f.pool as string[]).length = 0
    server.closeAllConnections()
    server.close()
  }
}
