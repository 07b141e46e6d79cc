/**
 * Memory (issue 13 item 5), in process: the heap one cached mandate takes with 100 000 cached,
 * and how much the wasm module's linear memory grows while verifying them (nothing, if flat). Each
 * token reaches `verify` as a new string decoded from bytes (as a header does) and only the bytes
 * are kept here, so whatever of the token the cache keeps alive is counted. The per-key tables are
 * the wasm suite's `[wasm/key]` rows; RSS and heap under sustained load are the end-to-end
 * servers' (bench/e2e-suite.ts).
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { CaracalAuth, InMemoryRevocationStore } from '../src/index.js'
import { wasmMemoryBytes } from '../src/backends/wasm.js'
import { AUDIENCE, ISSUER, REQUIRED_SCOPES, ZONE, makeFixture } from './fixtures.js'
import type { BenchRow, SuiteOptions } from './rows.js'

const CACHED = 100_000
const QUICK_CACHED = 5_000
/** Issue 13: at most 2 KiB of heap per cached mandate. */
export const HEAP_PER_CACHED_TARGET_BYTES = 2048

function wasmBytes(): number | undefined {
  try {
    return wasmMemoryBytes()
  } catch {
    return undefined
  }
}

function collectGarbage(): void {
  // bench/run.ts is started without --expose-gc; V8 lets the flag be set late for a fresh context.
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  // Twice: what the first collection's finalizers free goes in the second.
  gc()
  gc()
}

export async function memorySuite(options: SuiteOptions): Promise<BenchRow[]> {
  const count = options.quick ? QUICK_CACHED : CACHED
  const f = makeFixture('ES256', count, ISSUER, '-memory')
  const wire = f.pool.map((t) => Buffer.from(t, 'latin1'))
  // Only the bytes stay: the strings makeFixture built are dropped before the baseline is taken.
  ;(f as { pool: unknown }).pool = []
  const auth = new CaracalAuth({
    issuer: ISSUER,
    audience: AUDIENCE,
    revocations: new InMemoryRevocationStore(),
    requiredScopes: REQUIRED_SCOPES,
    expectedZoneId: ZONE,
    requireAgent: true,
    jwks: { keys: { keys: [f.key.publicJwk] } },
    cache: { max: count },
  })
  try {
    await auth.warmup()
    // One verification first, so that the module and the code paths are in the baseline. The key's
    // tables come once it is hot (docs/architecture.md "P-256 tables"): alone, this suite's growth
    // row shows them (~5.8 MiB); after the wasm suite they take the slots its released keys left.
    const probe = makeFixture('ES256', 1, ISSUER, '-memory-probe')
    await auth.verify(probe.hot).catch(() => undefined)
    collectGarbage()
    const before = process.memoryUsage().heapUsed
    const wasmBefore = wasmBytes()
    // Twice each: a run of tokens that never come back is stored on their second verification
    // (src/cache/verified-token-cache.ts).
    for (const bytes of wire) {
      await auth.verify(bytes.toString('latin1'))
      await auth.verify(bytes.toString('latin1'))
    }
    collectGarbage()
    const after = process.memoryUsage().heapUsed
    const cached = auth.stats().cache.size
    if (cached < count) throw new Error(`only ${cached} of ${count} mandates stayed cached`)
    const wasmAfter = wasmBytes()
    return [
      {
        suite: 'memory',
        alg: 'ES256',
        group: 'cache',
        name: `heap per cached mandate (${count.toLocaleString('en-US')} cached)`,
        value: (after - before) / cached,
        unit: 'bytes',
      },
      // Growth only: earlier suites in this process imported keys of their own, and linear memory never shrinks.
      ...(wasmBefore === undefined || wasmAfter === undefined
        ? []
        : [
            {
              suite: 'memory',
              alg: 'ES256',
              group: 'wasm',
              name: `wasm linear memory growth over ${count.toLocaleString('en-US')} verifications`,
              value: (wasmAfter - wasmBefore) / 1024,
              unit: 'KiB',
            },
          ]),
    ]
  } finally {
    await auth.close()
  }
}
