/**
 * Every performance target (bench/README.md's micro targets and issue 13's "What must hold"),
 * checked against one run's results: the measured value, the bound, and met or missed — computed
 * here, written into bench/results.json, and rendered from there into bench/README.md.
 */
import type { E2eResults, E2eVariantResult, RoundRatios } from './e2e-suite.js'
import { HEAP_PER_CACHED_TARGET_BYTES } from './memory-suite.js'
import type { BenchRow } from './rows.js'
import type { ServerKind } from './e2e-protocol.js'

export interface TargetResult {
  readonly area: 'micro' | 'revocation' | 'compat' | 'e2e' | 'memory' | 'pool'
  readonly what: string
  /** The measured value (a ratio, ops/s, ns, ms or bytes as `unit` says), or null when this run did not measure it. */
  readonly value: number | null
  readonly unit: '×' | 'ops/s' | 'ns/op' | 'ms' | 'bytes' | 'responses'
  readonly op: '≥' | '≤'
  readonly bound: number
  /** null: not measured, or measured too briefly to judge (`note` says which). */
  readonly met: boolean | null
  readonly note?: string
}

/** The micro targets of bench/README.md: `[what, row, against (a row, or 1 for an absolute floor), at least]`. */
const MICRO: readonly [string, string, string | number, number][] = [
  ['cached ES256 ≥ 1 M/s', 'ES256 CaracalAuth cached (auto)', 1, 1_000_000],
  ['cached RS256 ≥ 1 M/s', 'RS256 CaracalAuth cached (auto)', 1, 1_000_000],
  ['cached ES256 ≥ 4× fast-jwt cache', 'ES256 CaracalAuth cached (auto)', 'ES256 fast-jwt (cache)', 4],
  ['cached RS256 ≥ 4× fast-jwt cache', 'RS256 CaracalAuth cached (auto)', 'RS256 fast-jwt (cache)', 4],
  ['cold ES256 node ≥ 2× plain jose', 'ES256 CaracalAuth cold (node)', 'ES256 plain jose verifier', 2],
  [
    'cold ES256 node ≥ 0.95× raw node:crypto',
    'ES256 CaracalAuth cold (node)',
    'ES256 raw node:crypto verify + JSON.parse',
    0.95,
  ],
  [
    'cold RS256 auto ≥ 0.9× raw node:crypto',
    'RS256 CaracalAuth cold (auto)',
    'RS256 raw node:crypto verify + JSON.parse',
    0.9,
  ],
  ['cold ES256 auto ≥ 4× plain jose', 'ES256 CaracalAuth cold (auto)', 'ES256 plain jose verifier', 4],
  ['wasm ES256 signature ≥ 2× node:crypto', 'ES256 signature (wasm)', 'ES256 signature (node)', 2],
  ['wasm ES256 signature ≥ 20× noble', 'ES256 signature (wasm)', 'ES256 signature (noble)', 20],
  ['wasm RS256-2048 ≥ 1.0× BigInt', 'RS256 signature (wasm)', 'RS256 signature (noble BigInt)', 1],
]
/** bench/revocation-suite.ts: markRevoked at the store's bound, and propagation p99. */
const MARK_REVOKED_NS = 5_000
const PROPAGATION_P99_MS = 50
/** Issue 12: each drop-in entry point within 5% of CaracalAuth. */
const COMPAT_AT_LEAST = 0.95
/** The pool's rows (issue 13 item 3, bench/pool-suite.ts when it exists): the best `workers` for 2 cores, against the main thread alone. */
export const POOL_ROWS = {
  pool: 'ES256 pool of 1 + main thread (cold)',
  main: 'ES256 main thread alone (cold)',
} as const
/** Rounds below which an end-to-end ratio is shown but not judged (issue 13: ≥ 5, ≥ 7 for fastmcp). */
const MIN_ROUNDS: Readonly<Record<ServerKind, number>> = { gateway: 5, fastmcp: 7 }

export const rowKey = (r: BenchRow): string => `${r.alg ? `${r.alg} ` : ''}${r.name}`

function judged(value: number | null, op: '≥' | '≤', bound: number): boolean | null {
  if (value === null || !Number.isFinite(value)) return null
  return op === '≥' ? value >= bound : value <= bound
}

export function evaluateTargets(rows: readonly BenchRow[], e2e: E2eResults | undefined): TargetResult[] {
  const byName = new Map(rows.map((r) => [rowKey(r), r]))
  const out: TargetResult[] = []
  const push = (t: Omit<TargetResult, 'met'> & { met?: boolean | null }) =>
    out.push({ ...t, met: t.met === undefined ? judged(t.value, t.op, t.bound) : t.met })

  for (const [what, rowName, against, atLeast] of MICRO) {
    const row = byName.get(rowName)?.opsPerSec
    const base = typeof against === 'number' ? against : byName.get(against)?.opsPerSec
    const value = row === undefined || base === undefined ? null : row / base
    push({
      area: 'micro',
      what,
      value: typeof against === 'number' && row !== undefined ? row : value,
      unit: typeof against === 'number' ? 'ops/s' : '×',
      op: '≥',
      bound: atLeast,
    })
  }
  for (const r of rows.filter((r) => r.suite === 'revocation' && r.group === 'markRevoked'))
    push({
      area: 'revocation',
      what: `markRevoked, ${r.name}`,
      value: r.value ?? null,
      unit: 'ns/op',
      op: '≤',
      bound: MARK_REVOKED_NS,
    })
  for (const r of rows.filter((r) => r.suite === 'revocation' && r.group === 'propagation' && r.name.includes('p99')))
    push({
      area: 'revocation',
      what: `revocation propagation ${r.name}`,
      value: r.value ?? null,
      unit: 'ms',
      op: '≤',
      bound: PROPAGATION_P99_MS,
    })
  for (const r of rows.filter((r) => r.suite === 'compat' && r.baseline !== undefined && rowKey(r) !== r.baseline)) {
    const base = byName.get(r.baseline!)?.opsPerSec
    push({
      area: 'compat',
      what: `${rowKey(r)} within 5% of CaracalAuth`,
      value: r.opsPerSec === undefined || base === undefined ? null : r.opsPerSec / base,
      unit: '×',
      op: '≥',
      bound: COMPAT_AT_LEAST,
    })
  }

  const memory = rows.find((r) => r.suite === 'memory' && r.group === 'cache')
  push({
    area: 'memory',
    what: 'heap per cached mandate (100 000 cached) ≤ 2 KiB',
    value: memory?.value ?? null,
    unit: 'bytes',
    op: '≤',
    bound: HEAP_PER_CACHED_TARGET_BYTES,
    ...(memory !== undefined && !memory.name.includes('100,000')
      ? { met: null, note: `measured with fewer cached: ${memory.name}` }
      : {}),
  })

  const pool = byName.get(POOL_ROWS.pool)?.opsPerSec
  const main = byName.get(POOL_ROWS.main)?.opsPerSec
  push({
    area: 'pool',
    what: "workers: 1 (what 'auto' gives on 2 cores) + the main thread ≥ 1.7× the main thread alone, in-process",
    value: pool === undefined || main === undefined ? null : pool / main,
    unit: '×',
    op: '≥',
    bound: 1.7,
    ...(pool === undefined ? { note: 'the pool suite did not run (issue 13 item 3)' } : {}),
  })

  const variant = (server: ServerKind, id: string): [E2eVariantResult | undefined, number] => {
    const s = e2e?.servers.find((x) => x.server === server)
    return [s?.variants.find((v) => v.id === id), s?.rounds ?? 0]
  }
  const e2eTarget = (
    server: ServerKind,
    id: string,
    base: string,
    measure: keyof RoundRatios,
    what: string,
    op: '≥' | '≤',
    bound: number,
  ) => {
    const [v, rounds] = variant(server, id)
    const value = v?.vs[base]?.[measure] ?? null
    const few = value !== null && rounds < MIN_ROUNDS[server]
    push({
      area: 'e2e',
      what,
      value,
      unit: '×',
      op,
      bound,
      ...(few ? { met: null, note: `${rounds} rounds; judged from ${MIN_ROUNDS[server]}` } : {}),
      ...(value === null && v?.skipped !== undefined ? { note: v.skipped } : {}),
    })
  }
  e2eTarget(
    'gateway',
    'caracal-cold',
    'jose',
    'reqPerSec',
    'gateway hop: CaracalAuth cold ≥ 2.5× plain jose req/s',
    '≥',
    2.5,
  )
  e2eTarget(
    'gateway',
    'caracal-cold',
    'jose',
    'cpuPerReq',
    'gateway hop: CaracalAuth cold ≤ 0.45× plain jose CPU/request',
    '≤',
    0.45,
  )
  e2eTarget(
    'gateway',
    'caracal-warm',
    'none',
    'reqPerSec',
    'gateway hop: CaracalAuth warm ≥ 0.97× no auth req/s',
    '≥',
    0.97,
  )
  e2eTarget(
    'fastmcp',
    'caracal-warm',
    'none',
    'reqPerSec',
    'fastmcp: CaracalAuth warm ≥ 0.95× no auth req/s',
    '≥',
    0.95,
  )
  e2eTarget(
    'fastmcp',
    'caracal-cold',
    'none',
    'reqPerSec',
    'fastmcp: CaracalAuth cold ≥ 0.95× no auth req/s',
    '≥',
    0.95,
  )
  e2eTarget(
    'gateway',
    'caracal-cold-replay',
    'caracal-cold',
    'reqPerSec',
    'gateway hop: single use (RedisReplayStore) ≥ 0.85× cold req/s (costs ≤ 15%)',
    '≥',
    0.85,
  )
  e2eTarget(
    'gateway',
    'caracal-cold-replay-script',
    'caracal-cold',
    'reqPerSec',
    'gateway hop: single use (RedisReplayStore, scriptBatches) ≥ 0.85× cold req/s (costs ≤ 15%)',
    '≥',
    0.85,
  )
  const valid = e2e?.servers.flatMap((s) => s.variants) ?? []
  const bad = valid.reduce((n, v) => n + v.non2xx + v.errors, 0)
  push({
    area: 'e2e',
    what: 'non-2xx and connection errors for valid tokens, every variant',
    value: e2e === undefined ? null : bad,
    unit: 'responses',
    op: '≤',
    bound: 0,
  })
  return out
}

const fmtNumber = (n: number) => (Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(3))

/** `1.234×`, `1,744,751 ops/s`, `709 ns/op`: the value as the report shows it. */
export function shownValue(t: TargetResult): string {
  if (t.value === null) return 'not measured'
  if (t.unit === '×') return `${t.value.toFixed(3)}×`
  if (t.unit === 'responses') return String(t.value)
  return `${fmtNumber(t.value)} ${t.unit}`
}

export function verdict(t: TargetResult): 'met' | 'MISSED' | '—' {
  return t.met === null ? '—' : t.met ? 'met' : 'MISSED'
}
