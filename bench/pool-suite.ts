/**
 * The verification pool (README "Several cores in one process"), in-process: cold ES256 tokens
 * (every one distinct, minted before timing) through CaracalAuth on the main thread alone, with
 * `workers: 1` (what `'auto'` gives on 2 cores: the worker and the main thread verify) and with
 * `workers: 2`. The variants alternate within each round and the ratio is taken within a round;
 * the rows give the median over the rounds, and the spread row how far the rounds were apart (a
 * shared machine moves all of them). On Linux, the CPU per token of the main thread and of the
 * process's other threads (from /proc): what bounds the rate on cores of their own, whatever else
 * runs on the machine.
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
  /** The other threads of the process (the workers, and V8's and libuv's own), per token. */
  readonly otherNsPerToken: number | undefined
}

/** Every token once, `IN_FLIGHT` at a time, each a new string decoded from bytes (as a header arrives). */
async function pass(a: CaracalAuth, wire: readonly Buffer[]): Promise<Pass> {
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < wire.length) await a.verify(wire[next++]!.toString('latin1'))
  }
  const ns0 = mainThreadNs()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane))
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  const ns1 = mainThreadNs()
  const main = ns0 === undefined || ns1 === undefined ? undefined : ns1 - ns0
  return {
    opsPerSec: (wire.length * 1000) / ms,
    mainNsPerToken: main === undefined ? undefined : main / wire.length,
    otherNsPerToken: main === undefined ? undefined : ((cpu.user + cpu.system) * 1000 - main) / wire.length,
  }
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

const VARIANTS = [
  { name: 'main thread alone (cold)', workers: 0 },
  { name: 'pool of 1 + main thread (cold)', workers: 1 },
  { name: 'pool of 2 + main thread (cold)', workers: 2 },
] as const
/** The variant bench/targets.ts judges (POOL_ROWS): the best `workers` for 2 cores. */
const TARGET = 1

export async function poolSuite(options: { timeMs: number }): Promise<BenchRow[]> {
  // ~0.25 s of the main thread alone per pass at the default BENCH_TIME_MS.
  const tokens = Math.max(1024, Math.round((options.timeMs / 1500) * 6000))
  const f = makeFixture('ES256', tokens, ISSUER, '-pool')
  const wire = f.pool.map((t) => Buffer.from(t, 'latin1'))
  const variants = VARIANTS.map((v) => ({ ...v, auth: auth(f, v.workers) }))
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
    const rows: BenchRow[] = variants.map((v, i) => ({
      suite: 'pool',
      alg: 'ES256',
      group: 'cold',
      name: v.name,
      opsPerSec: median(results[i]!.map((p) => p.opsPerSec)),
      baseline: 'ES256 main thread alone (cold)',
    }))
    const ratios = results[TARGET]!.map((p, r) => p.opsPerSec / results[0]![r]!.opsPerSec)
    const lo = Math.min(...ratios)
    const hi = Math.max(...ratios)
    rows.push({
      suite: 'pool',
      alg: 'ES256',
      group: 'spread',
      name: `${variants[TARGET]!.name.replace(' (cold)', '')} / main thread alone, within a round (median of ${ROUNDS}; ${lo.toFixed(2)}–${hi.toFixed(2)}×)`,
      value: median(ratios),
      unit: '×',
    })
    variants.forEach((v, i) => {
      const main = results[i]!.map((p) => p.mainNsPerToken)
      const other = results[i]!.map((p) => p.otherNsPerToken)
      if (!main.every((n) => n !== undefined) || !other.every((n) => n !== undefined)) return
      const label = v.name.replace(' (cold)', '')
      rows.push(
        {
          suite: 'pool',
          alg: 'ES256',
          group: 'CPU per token',
          name: `main thread, ${label}`,
          value: median(main) / 1000,
          unit: 'µs',
        },
        {
          suite: 'pool',
          alg: 'ES256',
          group: 'CPU per token',
          name: `other threads, ${label}`,
          value: median(other) / 1000,
          unit: 'µs',
        },
      )
    })
    return rows
  } finally {
    for (const v of variants) await v.auth.close()
  }
}
