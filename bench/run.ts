/**
 * `npm run bench`: every suite in one process, a table with each row's ratio to its baseline,
 * and bench/results.json. Set BENCH_TIME_MS to trade precision for time (default 1500).
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

const rows: BenchRow[] = [
  ...(await verifySuite({ timeMs })),
  ...(await optionalSuite('./wasm-suite.js', 'wasmSuite')),
  ...(await optionalSuite('./revocation-suite.js', 'revocationSuite')),
]

const byName = new Map(rows.map((r) => [`${r.alg ? `${r.alg} ` : ''}${r.name}`, r]))
const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2))
const lines = rows.map((r) => {
  const label = `${r.alg ? `${r.alg} ` : ''}${r.name}`
  const base = r.baseline === undefined ? undefined : byName.get(r.baseline)
  const ratio = r.opsPerSec !== undefined && base?.opsPerSec !== undefined ? `${(r.opsPerSec / base.opsPerSec).toFixed(2)}×` : ''
  const measure = r.opsPerSec !== undefined ? `${fmt(r.opsPerSec)} ops/s` : `${fmt(r.value ?? NaN)} ${r.unit ?? ''}`
  return { label: `[${r.suite}/${r.group}] ${label}`, measure, ratio, vs: base ? `vs ${r.baseline}` : '' }
})
const w = Math.max(...lines.map((l) => l.label.length))
const m = Math.max(...lines.map((l) => l.measure.length))
const cpu = cpus()[0]?.model ?? 'unknown CPU'
console.log(`caracal-fastmcp bench — Node ${process.version}, ${cpu} (${cpus().length} cores), ${timeMs} ms per task`)
for (const l of lines) console.log(`${l.label.padEnd(w)}  ${l.measure.padStart(m)}  ${l.ratio.padStart(7)}  ${l.vs}`)
writeFileSync(new URL('./results.json', import.meta.url), JSON.stringify({ node: process.version, cpu, date: new Date().toISOString(), timeMs, rows }, null, 2))
