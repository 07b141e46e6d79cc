/**
 * `npm run bench`: every suite (micro rows in this process, end to end in child processes), a
 * table with each row's ratio to its baseline, the targets as met/missed lines, bench/results.json
 * and, from it, bench/README.md with its charts (bench/readme.ts). Progress goes to the terminal as
 * it runs. Arguments:
 *
 *   --quick                 every scenario briefly (CI: it must run, its numbers are not judged)
 *   --suites a,b            only these (verify, wasm, revocation, compat, memory, pool, cold, e2e; also BENCH_SUITES)
 *   --server gateway|fastmcp, --variant id,id   one end-to-end scenario (ids: bench/e2e-protocol.ts)
 *   --rounds n, --warmup s, --duration s, --connections n   end-to-end settings
 *   --cpu-prof              the servers write CPU profiles (bench/profiles/); --time-verify times each verify in the server
 *   --unpinned              servers on every allowed CPU
 *   --out file              where results go (default: bench/results.json for a full run, nowhere otherwise)
 *   --note text             stored with the results, shown in the README
 *
 * BENCH_TIME_MS (default 1500) is the time per micro task.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { allowedCpus } from './children.js'
import { SERVERS, VARIANTS, type ServerKind } from './e2e-protocol.js'
import { e2eSuite, formatE2e, type E2eResults } from './e2e-suite.js'
import { writeReadme } from './readme.js'
import type { BenchRow, SuiteOptions } from './rows.js'
import { evaluateTargets, rowKey, shownValue, verdict, type TargetResult } from './targets.js'

const SUITES = ['verify', 'wasm', 'revocation', 'compat', 'memory', 'pool', 'cold', 'e2e'] as const
type Suite = (typeof SUITES)[number]

export interface Machine {
  readonly cpu: string
  readonly cores: number
  readonly allowedCpus: readonly number[] | null
  readonly node: string
  readonly openssl: string
  readonly v8: string
  readonly platform: string
  /** 1, 5 and 15 minute load averages when the run started: how busy the machine was. */
  readonly loadavg: readonly number[]
  readonly commit: string | null
}

export interface BenchResults {
  readonly run: {
    /** `full`: every suite at its default settings; anything else is not a reference run. */
    readonly mode: 'full' | 'quick' | 'partial'
    readonly note?: string
    readonly date: string
    readonly seconds: number
    readonly args: readonly string[]
    readonly timeMs: number
  }
  readonly machine: Machine
  readonly rows: readonly BenchRow[]
  readonly e2e?: E2eResults
  readonly targets: readonly TargetResult[]
}

interface Args {
  quick: boolean
  suites?: Suite[]
  servers?: ServerKind[]
  variants?: string[]
  rounds?: number
  warmupSec?: number
  durationSec?: number
  connections?: number
  cpuProf: boolean
  timeVerify: boolean
  unpinned: boolean
  out?: string
  note?: string
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { quick: false, cpuProf: false, timeVerify: false, unpinned: false }
  const list = (v: string) => v.split(',').map((s) => s.trim())
  const oneOf = <T extends string>(what: string, allowed: readonly T[], values: string[]): T[] => {
    for (const v of values) if (!allowed.includes(v as T)) throw new Error(`${what} ${v}: one of ${allowed.join(', ')}`)
    return values as T[]
  }
  const positive = (name: string, v: string) => {
    const n = Number(v)
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} needs a positive number`)
    return n
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const value = () => {
      const v = argv[++i]
      if (v === undefined || v.startsWith('--')) throw new Error(`${a} needs a value`)
      return v
    }
    if (a === '--quick') args.quick = true
    else if (a === '--cpu-prof') args.cpuProf = true
    else if (a === '--time-verify') args.timeVerify = true
    else if (a === '--unpinned') args.unpinned = true
    else if (a === '--suites') args.suites = oneOf('suite', SUITES, list(value()))
    else if (a === '--server') args.servers = oneOf('server', SERVERS, list(value()))
    else if (a === '--variant')
      args.variants = oneOf(
        'variant',
        VARIANTS.map((v) => v.id),
        list(value()),
      )
    else if (a === '--rounds') args.rounds = Math.round(positive(a, value()))
    else if (a === '--warmup') args.warmupSec = Number(value())
    else if (a === '--duration') args.durationSec = positive(a, value())
    else if (a === '--connections') args.connections = Math.round(positive(a, value()))
    else if (a === '--out') args.out = value()
    else if (a === '--note') args.note = value()
    else throw new Error(`unknown argument ${a} (see bench/run.ts)`)
  }
  if (args.suites === undefined && process.env.BENCH_SUITES !== undefined)
    args.suites = oneOf('suite', SUITES, list(process.env.BENCH_SUITES))
  // One end-to-end scenario asked for: the end-to-end suite only, unless suites were named too.
  if (args.suites === undefined && (args.servers !== undefined || args.variants !== undefined)) args.suites = ['e2e']
  return args
}

function machine(): Machine {
  const git = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' })
  return {
    cpu: cpus()[0]?.model ?? 'unknown CPU',
    cores: cpus().length,
    allowedCpus: allowedCpus() ?? null,
    node: process.version,
    openssl: process.versions.openssl ?? 'none',
    v8: process.versions.v8,
    platform: `${process.platform} ${process.arch}`,
    loadavg: loadavg().map((l) => Math.round(l * 100) / 100),
    commit: git.status === 0 ? git.stdout.trim() : null,
  }
}

export function machineLine(m: Machine): string {
  const allowed = m.allowedCpus === null ? '' : `, CPUs ${m.allowedCpus.join(',')} allowed`
  return (
    `${m.cpu}, ${m.cores} cores${allowed}; Node ${m.node}, OpenSSL ${m.openssl}, V8 ${m.v8}, ${m.platform}; ` +
    `load average ${m.loadavg.join(' / ')} at the start${m.commit === null ? '' : `; commit ${m.commit}`}`
  )
}

async function optionalSuite(file: string, exported: string, options: SuiteOptions): Promise<BenchRow[]> {
  try {
    const mod = (await import(file)) as Record<string, (o: SuiteOptions) => Promise<BenchRow[]>>
    return typeof mod[exported] === 'function' ? await mod[exported]!(options) : []
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') return []
    throw error
  }
}

function printRows(rows: readonly BenchRow[]): void {
  const byName = new Map(rows.map((r) => [rowKey(r), r]))
  const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2))
  const lines = rows.map((r) => {
    const base = r.baseline === undefined ? undefined : byName.get(r.baseline)
    const ratio =
      r.opsPerSec !== undefined && base?.opsPerSec !== undefined ? `${(r.opsPerSec / base.opsPerSec).toFixed(2)}×` : ''
    const measure = r.opsPerSec !== undefined ? `${fmt(r.opsPerSec)} ops/s` : `${fmt(r.value ?? NaN)} ${r.unit ?? ''}`
    return { label: `[${r.suite}/${r.group}] ${rowKey(r)}`, measure, ratio, vs: base ? `vs ${r.baseline}` : '' }
  })
  const w = Math.max(0, ...lines.map((l) => l.label.length))
  const m = Math.max(0, ...lines.map((l) => l.measure.length))
  for (const l of lines) console.log(`${l.label.padEnd(w)}  ${l.measure.padStart(m)}  ${l.ratio.padStart(7)}  ${l.vs}`)
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2))
  const timeMs = Number(process.env.BENCH_TIME_MS ?? (args.quick ? 100 : 1500))
  const t0 = performance.now()
  const stamp = () => {
    const s = Math.round((performance.now() - t0) / 1000)
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`
  }
  const wanted = (s: Suite) => args.suites === undefined || args.suites.includes(s)
  const m = machine()
  const e2eChanged = [args.rounds, args.warmupSec, args.durationSec, args.connections].some((x) => x !== undefined)
  const mode: BenchResults['run']['mode'] = args.quick
    ? 'quick'
    : args.suites === undefined && !e2eChanged && process.env.BENCH_TIME_MS === undefined && !args.unpinned
      ? 'full'
      : 'partial'
  console.log(`caracal-fastmcp bench (${mode}) — ${machineLine(m)}; ${timeMs} ms per micro task`)

  const options: SuiteOptions = { timeMs, quick: args.quick }
  const rows: BenchRow[] = []
  const micro: [Suite, () => Promise<BenchRow[]>][] = [
    ['verify', () => import('./verify-suite.js').then((s) => s.verifySuite(options))],
    ['wasm', () => optionalSuite('./wasm-suite.js', 'wasmSuite', options)],
    ['revocation', () => optionalSuite('./revocation-suite.js', 'revocationSuite', options)],
    ['compat', () => optionalSuite('./compat-suite.js', 'compatSuite', options)],
    ['memory', () => import('./memory-suite.js').then((s) => s.memorySuite(options))],
    // The worker pool's in-process rows (issue 13 item 3), where that suite exists.
    ['pool', () => optionalSuite('./pool-suite.js', 'poolSuite', options)],
    // The wasm backend's cold start, in fresh processes (issue 14 item 4).
    ['cold', () => import('./cold-start.js').then((s) => s.coldStartSuite(options))],
  ]
  for (const [name, run] of micro) {
    if (!wanted(name)) continue
    console.log(`[${stamp()}] suite ${name}…`)
    const got = await run()
    rows.push(...got)
    console.log(`[${stamp()}] suite ${name}: ${got.length} rows`)
  }

  let e2e: E2eResults | undefined
  if (wanted('e2e')) {
    console.log(`[${stamp()}] suite e2e…`)
    const profiles = fileURLToPath(new URL('../../bench/profiles/', import.meta.url))
    if (args.cpuProf) mkdirSync(profiles, { recursive: true })
    e2e = await e2eSuite({
      quick: args.quick,
      ...(args.servers === undefined ? {} : { servers: args.servers }),
      ...(args.variants === undefined ? {} : { variants: args.variants }),
      ...(args.rounds === undefined ? {} : { rounds: args.rounds }),
      ...(args.warmupSec === undefined ? {} : { warmupSec: args.warmupSec }),
      ...(args.durationSec === undefined ? {} : { durationSec: args.durationSec }),
      ...(args.connections === undefined ? {} : { connections: args.connections }),
      serverNodeOptions: args.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${profiles}`] : [],
      unpinned: args.unpinned,
      timeVerify: args.timeVerify,
      log: (line) => console.log(`[${stamp()}] ${line}`),
    })
    if (args.cpuProf) console.log(`[${stamp()}] e2e: server CPU profiles in ${profiles}`)
  }

  console.log('')
  printRows(rows)
  if (e2e !== undefined) for (const line of formatE2e(e2e)) console.log(line)

  const targets = evaluateTargets(rows, e2e)
  console.log(args.quick ? '\ntargets (quick run: shown, not judged)' : '\ntargets')
  for (const t of targets) {
    const mark = args.quick ? '  ·   ' : `  ${verdict(t).padEnd(6)}`
    console.log(`${mark}${t.what}: ${shownValue(t)}${t.note === undefined ? '' : ` (${t.note})`}`)
  }

  const seconds = Math.round((performance.now() - t0) / 1000)
  console.log(`\n[${stamp()}] done in ${seconds} s`)
  const results: BenchResults = {
    run: {
      mode,
      ...(args.note === undefined ? {} : { note: args.note }),
      date: new Date().toISOString(),
      seconds,
      args: process.argv.slice(2),
      timeMs,
    },
    machine: m,
    rows,
    ...(e2e === undefined ? {} : { e2e }),
    targets: args.quick ? targets.map((t) => ({ ...t, met: null, note: 'quick run: not judged' })) : targets,
  }
  // bench/results.json beside the sources (this file runs from dist/bench), for a full run; a
  // partial or quick one writes only where --out says, so it never replaces the reference run.
  const out =
    args.out ?? (mode === 'full' ? fileURLToPath(new URL('../../bench/results.json', import.meta.url)) : undefined)
  if (out !== undefined) {
    writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`)
    console.log(`results   ${out}`)
  }
  if (mode === 'full' && args.out === undefined) for (const f of writeReadme()) console.log(`wrote     ${f}`)
}

main().catch((error: unknown) => {
  console.error(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  process.exit(1)
})
