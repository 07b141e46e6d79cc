/**
 * `npm run bench:readme`: bench/README.md regenerated from bench/results.json and the hand-written
 * bench/README.template.md, whose `<!-- bench:NAME -->` lines are replaced by tables generated
 * here (run, targets, e2e, memory, micro, charts; runtimes from bench/runtimes-results.json, which
 * `npm run bench:runtimes` writes), plus the charts in bench/charts/. Nothing in the tables is
 * typed by hand: every number and every met/missed comes from the results files. The Markdown is
 * laid out by Biome, as the rest of the repository's is.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { runtimesBlock } from './readme-runtimes.js'
import type { BenchResults } from './run.js'
import type { E2eServerResult } from './e2e-suite.js'
import type { BenchRow } from './rows.js'
import { barChart } from './svg-chart.js'
import { rowKey, shownValue, verdict } from './targets.js'

const here = (p: string) => fileURLToPath(new URL(`../../bench/${p}`, import.meta.url))

const int = (n: number) => Math.round(n).toLocaleString('en-US')
const num = (n: number | null | undefined, digits = 2) => (n === null || n === undefined ? '—' : n.toFixed(digits))
const times = (n: number | null | undefined) => (n === null || n === undefined ? '—' : `${n.toFixed(2)}×`)

function table(head: readonly string[], rows: readonly (readonly string[])[], right: readonly number[] = []): string {
  const line = (cells: readonly string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`
  const rule = head.map((_, i) => (right.includes(i) ? '--:' : '---'))
  return [line(head), line(rule), ...rows.map(line)].join('\n')
}

function runBlock(r: BenchResults): string {
  const m = r.machine
  const lines = [
    `Run of ${r.run.date.slice(0, 10)} (${r.run.mode}, ${r.run.seconds < 120 ? `${r.run.seconds} s` : `${Math.round(r.run.seconds / 60)} min`}${r.run.args.length > 0 ? `, \`${r.run.args.join(' ')}\`` : ''}).`,
    `Machine: ${m.cpu}, ${m.cores} cores${m.allowedCpus === null ? '' : ` (CPUs ${m.allowedCpus.join(', ')} allowed)`}; ` +
      `Node ${m.node}, OpenSSL ${m.openssl}, V8 ${m.v8}, ${m.platform}; load average ${m.loadavg.join(' / ')} at the start` +
      `${m.commit === null ? '' : `; commit \`${m.commit}\``}.`,
  ]
  // Results written before 2026-12-02 carry one warm-up and window for both servers.
  const legacy = (r.e2e ?? {}) as { warmupSec?: number; durationSec?: number }
  if (r.e2e !== undefined)
    lines.push(
      r.e2e.pinned === null
        ? 'End to end: **not pinned** (fewer than two CPUs, or no `taskset`): server and load generator shared the cores.'
        : `End to end: each server on CPU ${r.e2e.pinned.server}, autocannon on CPU ${r.e2e.pinned.loader}; ` +
            `${r.e2e.connections} connections; per variant and round, ` +
            `${r.e2e.servers.map((s) => `${s.server} ${s.warmupSec ?? legacy.warmupSec} s warm-up and ${s.durationSec ?? legacy.durationSec} s measured`).join(', ')}.`,
    )
  const warn =
    r.run.mode === 'full'
      ? []
      : [
          '',
          `> **Not a reference run** (${r.run.mode}${r.run.note === undefined ? '' : `: ${r.run.note}`}): fewer rounds or shorter` +
            ' windows than `npm run bench`, so read the numbers as a smoke test, not as results.',
        ]
  return [...lines.map((l) => `${l}  `), ...warn].join('\n').replace(/ {2}$/, '')
}

function targetsBlock(r: BenchResults): string {
  const rows = r.targets.map((t) => [
    t.area,
    t.what,
    shownValue(t),
    `${t.op} ${t.unit === '×' ? `${t.bound}×` : `${t.bound.toLocaleString('en-US')} ${t.unit}`}`,
    verdict(t),
    t.note ?? '',
  ])
  const met = r.targets.filter((t) => t.met === true).length
  const missed = r.targets.filter((t) => t.met === false).length
  const open = r.targets.length - met - missed
  return `${table(['area', 'target', 'measured', 'bound', 'verdict', 'note'], rows)}\n\n${met} met, ${missed} missed, ${open} not judged in this run.`
}

function e2eTable(s: E2eServerResult): string {
  const rows = s.variants.map((v) => {
    const m = v.median
    if (m === undefined) return [`${v.label} — not run: ${v.skipped ?? ''}`, v.tokens, ...Array<string>(11).fill('—')]
    return [
      v.label,
      v.tokens,
      int(m.reqPerSec),
      times(v.vs.none?.reqPerSec),
      times(v.vs.jose?.reqPerSec),
      num(m.p50Ms, 0),
      num(m.p99Ms, 0),
      num(m.cpuUsPerReq, 1),
      times(v.vs.jose?.cpuPerReq),
      String(v.non2xx + v.errors),
      num(m.peakRssMiB, 0),
      num(m.heapAfterGcMiB, 1),
      num(m.wasmMiB, 1),
    ]
  })
  return table(
    [
      'variant',
      'tokens',
      'req/s',
      '× no auth',
      '× jose',
      'p50 ms',
      'p99 ms',
      'CPU µs/req',
      'CPU × jose',
      'non-2xx',
      'peak RSS MiB',
      'heap MiB',
      'wasm MiB',
    ],
    rows,
    [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
  )
}

function e2eBlock(r: BenchResults): string {
  if (r.e2e === undefined) return '_The end-to-end suite did not run._'
  return r.e2e.servers
    .map(
      (s) =>
        `**${s.server === 'gateway' ? 'Plain node:http gateway hop' : 'fastmcp stateless HTTP stream, `tools/call`'}** ` +
        `(medians of ${s.rounds} round${s.rounds === 1 ? '' : 's'}; × columns are medians of the ratios within each round):\n\n${e2eTable(s)}`,
    )
    .join('\n\n')
}

function memoryBlock(r: BenchResults): string {
  const rows = r.rows
    .filter((x) => x.suite === 'memory' || (x.suite === 'wasm' && x.group === 'key' && x.unit !== 'ms/key'))
    .map((x) => [rowKey(x), `${num(x.value, x.unit === 'bytes' ? 0 : 2)} ${x.unit ?? ''}`])
  const e2e = (r.e2e?.servers ?? []).flatMap((s) =>
    s.variants
      .filter((v) => v.median !== undefined && v.id.startsWith('caracal-'))
      .map((v) => [
        `${s.server}: ${v.label}, peak RSS / heap after GC / wasm`,
        `${num(v.median!.peakRssMiB, 0)} / ${num(v.median!.heapAfterGcMiB, 1)} / ${num(v.median!.wasmMiB, 1)} MiB`,
      ]),
  )
  if (rows.length + e2e.length === 0) return '_The memory rows did not run._'
  return table(['what', 'measured'], [...rows, ...e2e], [1])
}

function microBlock(r: BenchResults): string {
  const micro = r.rows.filter((x) => x.suite !== 'memory')
  if (micro.length === 0) return '_No micro suite ran._'
  const byName = new Map(r.rows.map((x) => [rowKey(x), x]))
  const rows = micro.map((x: BenchRow) => {
    const base = x.baseline === undefined ? undefined : byName.get(x.baseline)
    const ratio = x.opsPerSec !== undefined && base?.opsPerSec !== undefined ? times(x.opsPerSec / base.opsPerSec) : ''
    const measured = x.opsPerSec !== undefined ? `${int(x.opsPerSec)} ops/s` : `${num(x.value)} ${x.unit ?? ''}`
    return [`${x.suite}/${x.group}`, rowKey(x), measured, ratio, base === undefined ? '' : (x.baseline ?? '')]
  })
  return table(['suite', 'row', 'measured', 'ratio', 'vs'], rows, [2, 3])
}

function charts(r: BenchResults): Record<string, string> {
  if (r.e2e === undefined) return {}
  const panels = (value: (v: E2eServerResult['variants'][number]) => number | null, shown: (n: number) => string) =>
    r.e2e!.servers.map((s) => ({
      title: s.server === 'gateway' ? 'node:http gateway hop' : 'fastmcp stateless HTTP stream, tools/call',
      bars: s.variants.flatMap((v) => {
        const n = v.median === undefined ? null : value(v)
        return n === null ? [] : [{ label: v.label, value: n, shown: shown(n), accent: v.id.startsWith('caracal-') }]
      }),
    }))
  const pinned = r.e2e.pinned === null ? 'not pinned' : 'server on one core, load on the other'
  return {
    'e2e-req-per-sec.svg': barChart(
      `End to end: requests per second (median; ${pinned}; ${r.run.mode} run of ${r.run.date.slice(0, 10)})`,
      panels(
        (v) => v.median!.reqPerSec,
        (n) => `${int(n)} req/s`,
      ),
    ),
    'e2e-cpu-per-request.svg': barChart(
      `End to end: server CPU per request, all threads (median; ${r.run.mode} run of ${r.run.date.slice(0, 10)})`,
      panels(
        (v) => v.median!.cpuUsPerReq,
        (n) => `${n.toFixed(1)} µs`,
      ),
    ),
  }
}

/** Writes bench/README.md and bench/charts/*.svg from the results; returns the files written. */
/** Each server's warm-up curve: req/s in each second of the warm-up, then in the measured window (medians over rounds). */
function warmupBlock(r: BenchResults): string {
  if (r.e2e === undefined) return '_The end-to-end suite did not run._'
  return r.e2e.servers
    .map((s) => {
      const ran = s.variants.filter((v) => v.median?.warmupPerSec !== undefined)
      if (ran.length === 0)
        return `**${s.server}**: _this run did not record its warm-up (results written before 2026-12-02)._`
      const seconds = Math.max(0, ...ran.map((v) => v.median!.warmupPerSec.length))
      const head = ['variant', ...Array.from({ length: seconds }, (_, i) => `s ${i + 1}`), 'measured']
      const rows = ran.map((v) => [
        v.label,
        ...Array.from({ length: seconds }, (_, i) => {
          const n = v.median!.warmupPerSec[i]
          return n === undefined ? '—' : int(n)
        }),
        int(v.median!.reqPerSec),
      ])
      const right = Array.from({ length: seconds + 1 }, (_, i) => i + 1)
      return `**${s.server}**, req/s in each second of the warm-up (medians over rounds):\n\n${table(head, rows, right)}`
    })
    .join('\n\n')
}

export function writeReadme(resultsFile = here('results.json')): string[] {
  const results = JSON.parse(readFileSync(resultsFile, 'utf8')) as BenchResults
  const svg = charts(results)
  const chartsDir = here('charts')
  mkdirSync(chartsDir, { recursive: true })
  const written: string[] = []
  for (const [name, body] of Object.entries(svg)) {
    writeFileSync(`${chartsDir}/${name}`, body)
    written.push(`bench/charts/${name}`)
  }
  const blocks: Record<string, string> = {
    run: runBlock(results),
    targets: targetsBlock(results),
    e2e: e2eBlock(results),
    warmup: warmupBlock(results),
    charts: Object.keys(svg)
      .map((name) => `![${name.replace(/\.svg$/, '').replace(/-/g, ' ')}](charts/${name})`)
      .join('\n\n'),
    memory: memoryBlock(results),
    micro: microBlock(results),
    runtimes: runtimesBlock(here('runtimes-results.json'), table),
  }
  const template = readFileSync(here('README.template.md'), 'utf8')
  const readme = template.replace(/^<!-- bench:([a-z0-9-]+) -->$/gm, (_line, name: string) => {
    const block = blocks[name]
    if (block === undefined) throw new Error(`bench/README.template.md: no block named ${name}`)
    return block
  })
  const target = here('README.md')
  writeFileSync(target, readme)
  written.push('bench/README.md')
  // Biome lays out the Markdown (tables aligned), as `npx biome ci` expects it of every file.
  const biome = createRequire(import.meta.url).resolve('@biomejs/biome/bin/biome')
  const formatted = spawnSync(process.execPath, [biome, 'format', '--write', target], { encoding: 'utf8' })
  if (formatted.status !== 0) throw new Error(`biome format failed on ${target}: ${formatted.stderr}`)
  return written
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const f of writeReadme(process.argv[2])) console.log(`wrote ${f}`)
}
