/**
 * The verification pool (README "Several cores in one process"), in-process: cold ES256 tokens
 * (every one distinct, minted before timing) through CaracalAuth on the main thread alone and
 * with `workers: 1` and `workers: 2`. The variants alternate within each round and the ratio is
 * taken within a round; the rows give the median over the rounds, and the spread row how far the
 * rounds were apart (a shared machine moves all of them). On Linux, the main thread's own CPU per
 * token (from /proc), which bounds what any number of workers can give.
 */
import { readFileSync } from 'node:fs'
import { CaracalAuth, InMemoryRevocationStore } from '../src/index.js'
import { AUDIENCE, ISSUER, REQUIRED_SCOPES, ZONE, makeFixture, type AlgFixture } from './fixtures.js'
import type { BenchRow } from './rows.js'

const ROUNDS = 7
/** Requests in flight at once: as a busy server has them, so that batches can form. */
const IN_FLIGHT = 512

function auth(f: AlgFixture, workers: number): CaracalAuth {
  return new CaracalAuth({
    issuer: ISSUER,
    audience: AUDIENCE,
    revocations: new InMemoryRevocationStore(),
    requiredScopes: REQUIRED_SCOPES,
    expectedZoneId: ZONE,
    requireAgent: true,
    jwks: { keys: { keys: [f.key.publicJwk] } },
    // As the verify suite's cold rows: a small cache, so every call misses and inserts.
    cache: { max: 64 },
    workers,
  })
}

/** Nanoseconds the main thread has run, or undefined off Linux. */
function mainThreadNs(): number | undefined {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0])
  } catch {
    return undefined
  }
}

interface Pass {
  readonly opsPerSec: number
  readonly mainNsPerToken: number | undefined
}

/** Every token once, `IN_FLIGHT` at a time, each a new string decoded from bytes (as a header arrives). */
async function pass(a: CaracalAuth, wire: readonly Buffer[]): Promise<Pass> {
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < wire.length) await a.verify(wire[next++]!.toString('latin1'))
  }
  const ns0 = mainThreadNs()
  const t0 = performance.now()
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane))
  const ms = performance.now() - t0
  const ns1 = mainThreadNs()
  return {
    opsPerSec: (wire.length * 1000) / ms,
    mainNsPerToken: ns0 === undefined || ns1 === undefined ? undefined : (ns1 - ns0) / wire.length,
  }
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

export async function poolSuite(options: { timeMs: number }): Promise<BenchRow[]> {
  // ~0.25 s of the main thread alone per pass at the default BENCH_TIME_MS.
  const tokens = Math.max(1024, Math.round((options.timeMs / 1500) * 6000))
  const f = makeFixture('ES256', tokens, ISSUER, '-pool')
  const wire = f.pool.map((t) => Buffer.from(t, 'latin1'))
  const variants = [
    { name: 'main thread alone (cold)', auth: auth(f, 0) },
    { name: 'pool of 1 (cold)', auth: auth(f, 1) },
    { name: 'pool of 2 (cold)', auth: auth(f, 2) },
  ]
  try {
    // Workers started and their keys imported before anything is timed; every variant must accept.
    for (const v of variants) await Promise.all(f.pool.slice(0, 256).map((t) => v.auth.verify(t)))
    const results = variants.map(() => [] as Pass[])
    for (let round = 0; round < ROUNDS; round++) {
      // The order turns each round, so no variant always runs first (or last) in a round.
      for (let k = 0; k < variants.length; k++) {
        const i = (k + round) % variants.length
        results[i]!.push(await pass(variants[i]!.auth, wire))
      }
    }
    const ops = results.map((r) => median(r.map((p) => p.opsPerSec)))
    const ratios = results[2]!.map((p, r) => p.opsPerSec / results[0]![r]!.opsPerSec)
    const rows: BenchRow[] = variants.map((v, i) => ({
      suite: 'pool',
      alg: 'ES256',
      group: 'cold',
      name: v.name,
      opsPerSec: ops[i]!,
      baseline: 'ES256 main thread alone (cold)',
    }))
    const lo = Math.min(...ratios)
    const hi = Math.max(...ratios)
    rows.push({
      suite: 'pool',
      alg: 'ES256',
      group: 'spread',
      name: `pool of 2 / main thread alone, within a round (median of ${ROUNDS}; ${lo.toFixed(2)}–${hi.toFixed(2)}×)`,
      value: median(ratios),
      unit: '×',
    })
    const mainNs = results[2]!.map((p) => p.mainNsPerToken)
    if (mainNs.every((n) => n !== undefined)) {
      rows.push({
        suite: 'pool',
        alg: 'ES256',
        group: 'main thread',
        name: 'main thread CPU per token, pool of 2',
        value: median(mainNs as number[]) / 1000,
        unit: 'µs',
      })
      rows.push({
        suite: 'pool',
        alg: 'ES256',
        group: 'main thread',
        name: 'main thread CPU per token, alone',
        value: median(results[0]!.map((p) => p.mainNsPerToken!)) / 1000,
        unit: 'µs',
      })
    }
    return rows
  } finally {
    for (const v of variants) await v.auth.close()
  }
}
