/**
 * The `<!-- bench:runtimes -->` block of bench/README.md (bench/readme.ts): the tables of
 * bench/runtimes-results.json, written by `npm run bench:runtimes`. Every number and verdict comes
 * from that file; the template says how each was measured.
 */
import { existsSync, readFileSync } from 'node:fs'
import type { BenchVariant } from '../test/support/runtimes/driver/protocol.js'
import {
  FIRST_VERIFICATION_CPU_MS,
  median,
  SPEEDUP_TARGET,
  type RuntimeResult,
  type RuntimesResults,
} from './runtimes-results.js'

type Table = (head: readonly string[], rows: readonly (readonly string[])[], right?: readonly number[]) => string

const int = (n: number) => Math.round(n).toLocaleString('en-US')
const ms = (n: number) => n.toFixed(1)
const verdict = (met: boolean) => (met ? 'met' : '**missed**')
const VARIANTS: readonly BenchVariant[] = ['subtle', 'wasm', 'auto', 'noble']

function runLine(r: RuntimesResults): string {
  const load = (l: readonly number[]) => l.map((x) => x.toFixed(2)).join(' / ')
  const line =
    `Run of ${r.date.slice(0, 10)} (\`npm run bench:runtimes\`, ${r.timeMs} ms per variant over 5 rounds, ` +
    `${r.coldSamples} fresh isolates per kind of first request). Machine: ${r.cpu}, ${r.cores} cores, Node ${r.node}; ` +
    `load average ${load(r.loadavg.start)} at the start, ${load(r.loadavg.end)} at the end.`
  return r.partial ? `${line}\n\n> **Partial run** (\`BENCH_RUNTIMES\`): not every runtime was measured.` : line
}

function speedTable(results: readonly RuntimeResult[], table: Table): string {
  const rows = results.map((x) => {
    if (x.opsPerSec === undefined || x.roundRatios === undefined)
      return [x.name, x.version ?? '—', `not measured: ${x.skipped ?? ''}`, '', '', '', '', '']
    const ops = x.opsPerSec
    const ratio = median(x.roundRatios)
    const wanted = SPEEDUP_TARGET[x.key]
    return [
      x.name,
      x.version ?? '—',
      ...VARIANTS.map((v) => int(ops[v])),
      `**${ratio.toFixed(2)}×** (${Math.min(...x.roundRatios).toFixed(2)}–${Math.max(...x.roundRatios).toFixed(2)})`,
      wanted === undefined ? '—' : `≥ ${wanted}×: ${verdict(ratio >= wanted)}`,
    ]
  })
  return table(
    [
      'runtime',
      'version',
      'crypto.subtle.verify + JSON.parse',
      'wasm',
      'auto',
      'noble',
      'wasm ÷ subtle (median round, range)',
      'target',
    ],
    rows,
    [2, 3, 4, 5, 6],
  )
}

function coldTable(results: readonly RuntimeResult[], table: Table): string {
  const rows = results.flatMap((x) => {
    const k = x.coldSummary
    if (k === undefined) return []
    const t = k.thread.firstVerificationMs
    return [
      [
        x.name,
        `${ms(k.thread.moduleEvaluationMs)} / ${ms(k.process.moduleEvaluationMs)}`,
        `**${ms(t)}** / ${ms(k.process.firstVerificationMs)}`,
        `${ms(k.thread.firstRequestMs)} / ${ms(k.process.firstRequestMs)}`,
        x.key.startsWith('workerd') || x.cold === undefined
          ? '—'
          : `${ms(median(x.cold.importMs))} + ${ms(median(x.cold.constructMs))} + ${ms(median(x.cold.firstVerifyMs))}`,
        `≤ ${FIRST_VERIFICATION_CPU_MS} ms: ${verdict(t <= FIRST_VERIFICATION_CPU_MS)}`,
      ],
    ]
  })
  return table(
    [
      'runtime',
      'module evaluation',
      'first verification',
      'both',
      'wall: import + new CaracalAuth + verify',
      'target (first verification, thread)',
    ],
    rows,
    [1, 2, 3, 4],
  )
}

function autoLine(results: readonly RuntimeResult[]): string {
  return results
    .filter((x) => x.backends?.auto !== undefined)
    .map((x) => `${x.name}: ES256 ${x.backends!.auto!.ES256}, RS256 ${x.backends!.auto!.RS256}`)
    .join('; ')
}

export function runtimesBlock(file: string, table: Table): string {
  if (!existsSync(file)) return '_`npm run bench:runtimes` has not written bench/runtimes-results.json yet._'
  const r = JSON.parse(readFileSync(file, 'utf8')) as RuntimesResults
  return [
    runLine(r),
    `**Steady state**, ES256 verifications per second (the fastest of the 5 rounds; the ratio is the median of the per-round ratios):`,
    speedTable(r.results, table),
    `\`auto\`'s choice per runtime: ${autoLine(r.results)}.`,
    `**Cold start**, ms of CPU (medians; each cell: the request's thread / the whole process), a fresh isolate's first request:`,
    coldTable(r.results, table),
  ].join('\n\n')
}
