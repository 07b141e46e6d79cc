/**
 * Verification throughput: CaracalAuth (cold and cached, per backend) against its peers, ES256 and
 * RS256-2048, one process, the same tokens. Each row's ratio is to the plain jose verifier.
 */
import { CaracalAuth, InMemoryRevocationStore } from '../src/index.js'
import { isBackendAvailable } from '../src/backends/index.js'
import type { BackendChoice } from '../src/backends/types.js'
import { AUDIENCE, ISSUER, REQUIRED_SCOPES, ZONE, makeFixture, type AlgFixture } from './fixtures.js'
import { fastJwtVerifier, nodeRsVerifier, plainJoseVerifier, rawNodeVerifier } from './peers.js'
import { measure } from './measure.js'
import type { BenchRow, SuiteOptions } from './rows.js'

type Verify = (token: string) => unknown

interface Contender {
  readonly name: string
  readonly group: string
  readonly tokens: readonly string[]
  readonly verify: Verify
  /** Verifications per timed iteration: fast contenders run in batches so the harness's own cost does not dominate. */
  readonly batch: number
}

function caracal(f: AlgFixture, backend: BackendChoice, cached: boolean): CaracalAuth {
  return new CaracalAuth({
    issuer: ISSUER,
    audience: AUDIENCE,
    revocations: new InMemoryRevocationStore(),
    requiredScopes: REQUIRED_SCOPES,
    expectedZoneId: ZONE,
    requireAgent: true,
    backend,
    jwks: { keys: { keys: [f.key.publicJwk] } },
    // Cold: a small cache and a larger pool of distinct tokens, so every call misses and inserts.
    cache: { max: cached ? 10_000 : 64 },
  })
}

export async function verifySuite(options: SuiteOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = []
  for (const alg of ['ES256', 'RS256'] as const) {
    const f = makeFixture(alg, 2048)
    const revocations = new InMemoryRevocationStore()
    const backends: BackendChoice[] = [
      'auto',
      'node',
      'noble',
      ...(isBackendAvailable('wasm') ? (['wasm'] as const) : []),
    ]
    const contenders: Contender[] = [
      {
        name: 'plain jose verifier',
        group: 'cold',
        tokens: f.pool,
        verify: plainJoseVerifier(f, revocations),
        batch: 1,
      },
      {
        name: 'fast-jwt (no cache)',
        group: 'cold',
        tokens: f.pool,
        verify: fastJwtVerifier(f, revocations, false),
        batch: 1,
      },
      {
        name: '@node-rs/jsonwebtoken',
        group: 'cold',
        tokens: f.pool,
        verify: nodeRsVerifier(f, revocations),
        batch: 1,
      },
      {
        name: 'raw node:crypto verify + JSON.parse',
        group: 'cold',
        tokens: f.pool,
        verify: rawNodeVerifier(f),
        batch: 1,
      },
      ...backends.map((b) => ({
        name: `CaracalAuth cold (${b})`,
        group: 'cold',
        tokens: f.pool,
        verify: caracal(f, b, false).verify,
        batch: 1,
      })),
      {
        name: 'fast-jwt (cache)',
        group: 'cached',
        tokens: [f.hot],
        verify: fastJwtVerifier(f, revocations, true),
        batch: 256,
      },
      {
        name: 'CaracalAuth cached (auto)',
        group: 'cached',
        tokens: [f.hot],
        verify: caracal(f, 'auto', true).verify,
        batch: 256,
      },
      // What the harness itself costs per call (the new string and the await), for reference.
      {
        name: 'harness only (new token string + await)',
        group: 'cached',
        tokens: [f.hot],
        verify: (t) => t.length,
        batch: 256,
      },
    ]
    const tasks = contenders.map((c) => {
      // Each call gets a new string decoded from bytes, as an HTTP server hands over a header: a
      // string reused across calls would let V8 reuse its cached hash, which no real request has.
      const wire = c.tokens.map((t) => Buffer.from(t, 'latin1'))
      let i = 0
      const n = wire.length
      return {
        name: `${alg} ${c.name}`,
        batch: c.batch,
        fn: async () => {
          for (let b = 0; b < c.batch; b++) {
            await c.verify(wire[i]!.toString('latin1'))
            i = i + 1 === n ? 0 : i + 1
          }
        },
      }
    })
    // Every contender must accept the tokens, or the comparison means nothing.
    for (const c of contenders) await c.verify(c.tokens[0]!)
    const opsPerSec = await measure(tasks, options.timeMs, options.quick ? 1 : undefined)
    contenders.forEach((c, k) => {
      rows.push({
        suite: 'verify',
        alg,
        group: c.group,
        name: c.name,
        opsPerSec: opsPerSec[k]!,
        baseline: `${alg} plain jose verifier`,
      })
    })
  }
  return rows
}
