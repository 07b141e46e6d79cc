/**
 * Cold start of the wasm backend (bench/README.md "Cold start"): fresh `node` processes, each
 * measuring with process.cpuUsage (user + system) what a new edge isolate pays for its first ES256
 * verification — compiling and instantiating the module, importing the key, one verify — then
 * each verification while the key's and the generator's tables are being built
 * (assembly/p256-tables.ts), and how long until they are. `--suites cold` in `npm run bench`;
 * test/cold-start.test.ts runs it with fewer processes and wide bounds.
 */
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { ProbeResult } from './cold-start-probe.js'
import type { BenchRow, SuiteOptions } from './rows.js'

/** The probe from source (under tsx, for vitest) or from dist/, whichever this file runs as. */
function probeCommand(maxVerifies: number): string[] {
  const fromSource = fileURLToPath(import.meta.url).endsWith('.ts')
  const script = fileURLToPath(new URL(`./cold-start-probe${fromSource ? '.ts' : '.js'}`, import.meta.url))
  const tsx = fromSource ? ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href] : []
  return [...tsx, script, String(maxVerifies)]
}

function probe(maxVerifies: number): Promise<ProbeResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, probeCommand(maxVerifies), { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
    })
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString()
    })
    child.on('error', reject)
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`cold-start probe exited with ${code}: ${err.trim()}`))
      else resolve(JSON.parse(out) as ProbeResult)
    })
  })
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}
const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0)

export interface ColdStart {
  readonly processes: number
  /** Medians over the processes, ms of CPU. */
  readonly jsImportMs: number
  readonly loadMs: number
  readonly keyImportMs: number
  readonly firstVerifyMs: number
  /** Module load + key import + first verification: what the issue's ≤ 15 ms is about. */
  readonly firstVerificationMs: number
  /** Verifications 2..steady: the median one, and the most expensive one (median of each process's). */
  readonly buildingVerifyMs: number
  readonly buildingMaxVerifyMs: number
  /** Verifications until both tables are complete, and the CPU all of them took together. */
  readonly verifiesToSteady: number
  readonly msToSteady: number
  /** A verification once steady (median; process.cpuUsage's own cost included). */
  readonly steadyVerifyMs: number
  /** Wrong verdicts, all processes together. */
  readonly wrong: number
  /** Processes whose tables were not complete within their run. */
  readonly neverSteady: number
}

/** `processes` fresh processes, one after the other (never side by side: they would share cores). */
export async function runColdStart(processes: number, maxVerifies = 2000): Promise<ColdStart> {
  const runs: ProbeResult[] = []
  for (let i = 0; i < processes; i++) runs.push(await probe(maxVerifies))
  const steady = runs.filter((r) => r.steadyAfter !== null)
  const per = (f: (r: ProbeResult, steadyAfter: number) => number) =>
    steady.length === 0 ? Number.NaN : median(steady.map((r) => f(r, r.steadyAfter!)))
  return {
    processes,
    jsImportMs: median(runs.map((r) => r.jsImportMs)),
    loadMs: median(runs.map((r) => r.loadMs)),
    keyImportMs: median(runs.map((r) => r.keyImportMs)),
    firstVerifyMs: median(runs.map((r) => r.verifyMs[0]!)),
    firstVerificationMs: median(runs.map((r) => r.loadMs + r.keyImportMs + r.verifyMs[0]!)),
    buildingVerifyMs: per((r, s) => median(r.verifyMs.slice(1, s))),
    buildingMaxVerifyMs: per((r, s) => Math.max(...r.verifyMs.slice(1, s))),
    verifiesToSteady: per((_, s) => s),
    msToSteady: per((r, s) => sum(r.verifyMs.slice(0, s))),
    steadyVerifyMs: per((r, s) => median(r.verifyMs.slice(s))),
    wrong: sum(runs.map((r) => r.wrong)),
    neverSteady: runs.length - steady.length,
  }
}

export async function coldStartSuite(options: SuiteOptions): Promise<BenchRow[]> {
  const c = await runColdStart(Number(process.env.BENCH_COLD_PROCESSES ?? (options.quick ? 3 : 9)))
  if (c.wrong !== 0 || c.neverSteady !== 0)
    throw new Error(`cold start: ${c.wrong} wrong verdicts, ${c.neverSteady} processes never steady`)
  const row = (name: string, value: number, unit = 'ms CPU'): BenchRow => ({
    suite: 'cold',
    alg: 'ES256',
    group: `wasm, median of ${c.processes} processes`,
    name,
    value,
    unit,
  })
  return [
    row('first verification (module load + key import + verify)', c.firstVerificationMs),
    row('  module load (read, compile, instantiate)', c.loadMs),
    row('  key import', c.keyImportMs),
    row('  first verify', c.firstVerifyMs),
    row('importing the backend JavaScript', c.jsImportMs),
    row('a verification while tables are built (median)', c.buildingVerifyMs),
    row('the costliest verification while tables are built', c.buildingMaxVerifyMs),
    row('verifications until the tables are complete', c.verifiesToSteady, ''),
    row('CPU of those verifications together', c.msToSteady),
    row('a verification after (median)', c.steadyVerifyMs),
  ]
}
