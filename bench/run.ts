/**
 * `npm run bench`: every suite in one process, a table with each row's ratio to its baseline,
 * and bench/results.json. Set BENCH_TIME_MS to trade precision for time (default 1500), and
 * BENCH_SUITES (e.g. `wasm` or `verify,wasm`) to run only some suites.
 */
import { writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import type { BenchRow } from './rows.js'
import { verifySuite } from './verify-suite.js'

const timeMs = Number(process.env.BENCH_TIME_MS ?? 1500)

async function optionalSuite(file: string, exported: string): Promise<BenchRow[]> {
  try {
    const mod = (await import(file)) as Record<string, (o: { timeMs: number }) => Promise<BenchRow[]>>
    return typeof mod[exported] === 'function' ? await mod[exported]!({ timeMs }) : []
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') return []
    throw error
  }
}

const only = process.env.BENCH_SUITES?.split(',').map((s) => s.trim())
const wanted = (suite: string) => only === undefined || only.includes(suite)

const rows: BenchRow[] = [
  ...(wanted('verify') ? await verifySuite({ timeMs }) : []),
  ...(wanted('wasm') ? await optionalSuite('./wasm-suite.js', 'wasmSuite') : []),
  ...(wanted('revocation') ? await optionalSuite('./revocation-suite.js', 'revocationSuite') : []),
  ...(wanted('compat') ? await optionalSuite('./compat-suite.js', 'compatSuite') : []),
  ...(wanted('pool') ? await optionalSuite('./pool-suite.js', 'poolSuite') : []),
]

const byName = new Map(rows.map((r) => [`${r.alg ? `${r.alg} ` : ''}${r.name}`, r]))
const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2))
const lines = rows.map((r) => {
  const label = `${r.alg ? `${r.alg} ` : ''}${r.name}`
  const base = r.baseline === undefined ? undefined : byName.get(r.baseline)
  const ratio =
    r.opsPerSec !== undefined && base?.opsPerSec !== undefined ? `${(r.opsPerSec / base.opsPerSec).toFixed(2)}×` : ''
  const measure = r.opsPerSec !== undefined ? `${fmt(r.opsPerSec)} ops/s` : `${fmt(r.value ?? NaN)} ${r.unit ?? ''}`
  return { label: `[${r.suite}/${r.group}] ${label}`, measure, ratio, vs: base ? `vs ${r.baseline}` : '' }
})
const w = Math.max(...lines.map((l) => l.label.length))
const m = Math.max(...lines.map((l) => l.measure.length))
const cpu = cpus()[0]?.model ?? 'unknown CPU'
console.log(`caracal-fastmcp bench — Node ${process.version}, ${cpu} (${cpus().length} cores), ${timeMs} ms per task`)
for (const l of lines) console.log(`${l.label.padEnd(w)}  ${l.measure.padStart(m)}  ${l.ratio.padStart(7)}  ${l.vs}`)
/** The performance targets (bench/README.md), checked against this run: `[what, row, against, at least]`. */
const TARGETS: readonly [string, string, string | number, number][] = [
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
  ['pool of 2 ≥ 1.7× main thread, ES256 cold', 'ES256 pool of 2 (cold)', 'ES256 main thread alone (cold)', 1.7],
  ['wasm RS256-2048 ≥ 1.0× BigInt', 'RS256 signature (wasm)', 'RS256 signature (noble BigInt)', 1],
]
console.log('\ntargets')
for (const [what, rowName, against, atLeast] of TARGETS) {
  const row = byName.get(rowName)?.opsPerSec
  const base = typeof against === 'number' ? against : byName.get(against)?.opsPerSec
  if (row === undefined || base === undefined) {
    console.log(`  -    ${what}: not measured in this run`)
    continue
  }
  const ratio = row / base
  const shown = typeof against === 'number' ? `${fmt(row)} ops/s` : `${ratio.toFixed(3)}×`
  console.log(`  ${ratio >= atLeast ? 'met ' : 'MISS'} ${what}: ${shown}`)
}

// bench/results.json beside the sources (this file runs from dist/bench).
writeFileSync(
  new URL('../../bench/results.json', import.meta.url),
  JSON.stringify({ node: process.version, cpu, date: new Date().toISOString(), timeMs, rows }, null, 2),
)
