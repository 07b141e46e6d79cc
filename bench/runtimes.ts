/**
 * `npm run bench:runtimes`: ES256 verification inside workerd (without and with nodejs_compat),
 * headless Chromium, Deno and Bun, on the same tokens: `CaracalAuth.verify` with the wasm, auto and
 * noble backends (no cache: every call checks the signature) against the runtime's own
 * `crypto.subtle.verify` (plus the base64url decoding and `JSON.parse` of the payload, and no claim
 * checks: the floor any verifier on WebCrypto pays), in rounds that alternate the variants; then the
 * CPU a fresh isolate's first request costs when it does nothing, only imports the library, or
 * imports it and verifies a first token (bench/runtime-hosts.ts says how each is measured). Prints
 * each row's ratio to crypto.subtle and the targets of bench/README.md "Runtimes"; writes
 * bench/runtimes-results.json, which `npm run bench:readme` turns into that section's tables.
 *
 * BENCH_TIME_MS (default 1500): time per variant and runtime, over 5 rounds. BENCH_COLD_SAMPLES
 * (default 7): fresh isolates per kind of first request. BENCH_RUNTIMES: a comma-separated subset of
 * `workerd,workerd-compat,chromium,deno,bun` (a subset is written as a partial run).
 */
import { writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { startDevSts } from '../src/dev/sts.js'
import { CHROMIUM } from '../test/support/runtimes/chromium.js'
import {
  BENCH_VARIANTS,
  COLD_STAGES,
  type BenchInput,
  type BenchVariant,
} from '../test/support/runtimes/driver/protocol.js'
import { linkedApp } from '../test/support/runtimes/linked-app.js'
import type { RuntimeBinary } from '../test/support/runtimes/runtime-binaries.js'
import { BUN, DENO } from '../test/support/runtimes/script-runtimes.js'
import { WORKERD } from '../test/support/runtimes/workerd.js'
import { chromiumHost, scriptHost, workerdHost, type RuntimeHost } from './runtime-hosts.js'
import {
  FIRST_VERIFICATION_CPU_MS,
  median,
  SPEEDUP_TARGET,
  summarizeCold,
  type ColdCosts,
  type ColdSamples,
  type RuntimeResult,
  type RuntimesResults,
} from './runtimes-results.js'

const ROUNDS = 5
const timeMs = Number(process.env.BENCH_TIME_MS ?? 1500)
const coldSamples = Number(process.env.BENCH_COLD_SAMPLES ?? 7)
const only = process.env.BENCH_RUNTIMES?.split(',').map((s) => s.trim())

const LABELS: Record<BenchVariant, string> = {
  subtle: 'crypto.subtle.verify + JSON.parse',
  wasm: 'CaracalAuth.verify (wasm)',
  auto: 'CaracalAuth.verify (auto)',
  noble: 'CaracalAuth.verify (noble)',
}

async function benchRuntime(
  host: RuntimeHost,
  input: BenchInput,
): Promise<Omit<RuntimeResult, 'key' | 'name' | 'version'>> {
  const instance = await host.start()
  let backends: Record<string, Record<string, string>>
  const best = { subtle: 0, wasm: 0, auto: 0, noble: 0 }
  const roundRatios: number[] = []
  try {
    const prepared = await instance.prepare(input)
    for (const variant of BENCH_VARIANTS) {
      const wanted = variant === 'noble' ? 4 : input.tokens.length
      if (prepared.accepted[variant] !== wanted)
        throw new Error(`${host.name}: ${variant} accepted ${prepared.accepted[variant]} of ${wanted} tokens`)
    }
    backends = prepared.backend
    // Batch sizes for about timeMs / ROUNDS per batch, from a short first batch.
    const counts = {} as Record<BenchVariant, number>
    for (const variant of BENCH_VARIANTS) {
      const probe = variant === 'noble' ? 4 : 200
      const ms = Math.max(0.5, await instance.batch(variant, probe))
      counts[variant] = Math.max(probe, Math.round((probe * timeMs) / ROUNDS / ms))
    }
    for (let round = 0; round < ROUNDS; round++) {
      const order = BENCH_VARIANTS.map((_, i) => BENCH_VARIANTS[(i + round) % BENCH_VARIANTS.length]!)
      const thisRound = {} as Record<BenchVariant, number>
      for (const variant of order) {
        const ms = await instance.batch(variant, counts[variant])
        thisRound[variant] = (counts[variant] * 1000) / ms
        best[variant] = Math.max(best[variant], thisRound[variant])
      }
      roundRatios.push(thisRound.wasm / thisRound.subtle)
    }
  } finally {
    await instance.stop()
  }
  const cold: ColdSamples = {
    cpuMs: { none: [], import: [], verify: [] },
    threadMs: { none: [], import: [], verify: [] },
    importMs: [],
    constructMs: [],
    firstVerifyMs: [],
  }
  // The stages alternate, so that a change in the machine's load falls on all three alike.
  for (let i = 0; i < coldSamples * COLD_STAGES.length; i++) {
    const stage = COLD_STAGES[i % COLD_STAGES.length]!
    const sample = await host.cold(input, stage)
    cold.cpuMs[stage].push(sample.cpuMs)
    cold.threadMs[stage].push(sample.threadMs)
    if (stage === 'verify') {
      cold.importMs.push(sample.result.importMs)
      cold.constructMs.push(sample.result.constructMs)
      cold.firstVerifyMs.push(sample.result.firstVerifyMs)
    }
  }
  return { backends, opsPerSec: best, roundRatios, cold, coldSummary: summarizeCold(cold) }
}

const loadStart = loadavg()
const sts = await startDevSts({ algorithms: ['ES256'] })
const input: BenchInput = {
  issuer: sts.issuer,
  audience: 'resource://documents',
  jwk: sts.jwks().keys[0]!,
  tokens: Array.from({ length: 256 }, () => sts.mint()),
}
await sts.close()

const app = linkedApp('bench')
const plan: [string, RuntimeBinary, () => Promise<RuntimeHost>][] = [
  ['workerd', WORKERD, async () => workerdHost(app, false)],
  ['workerd-compat', WORKERD, async () => workerdHost(app, true)],
  ['chromium', CHROMIUM, () => chromiumHost(app)],
  ['deno', DENO, async () => scriptHost(app, 'Deno')],
  ['bun', BUN, async () => scriptHost(app, 'Bun')],
]
const results: RuntimeResult[] = []
try {
  for (const [key, binary, makeHost] of plan) {
    if (only !== undefined && !only.includes(key)) continue
    const base = { key, name: key, version: binary.version }
    if (binary.problem !== undefined) {
      results.push({ ...base, skipped: binary.problem })
      continue
    }
    const host = await makeHost()
    try {
      results.push({ ...base, name: host.name, ...(await benchRuntime(host, input)) })
    } catch (error) {
      results.push({ ...base, name: host.name, skipped: (error as Error).message.split('\n')[0] })
    } finally {
      await host.close()
    }
  }
} finally {
  app.remove()
}

const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2))
const cpu = cpus()[0]?.model ?? 'unknown CPU'
console.log(`caracal-fastmcp bench:runtimes — ${cpu} (${cpus().length} cores), ${timeMs} ms per variant, ES256`)
const targets: string[] = []
for (const r of results) {
  const head = `[runtimes/${r.key}] ${r.name}${r.version ? ` (${r.version})` : ''}`
  if (r.skipped !== undefined) {
    console.log(`${head}: NOT MEASURED — ${r.skipped}`)
    targets.push(`  -    ${r.key}: not measured`)
    continue
  }
  console.log(`${head}; backends chosen by auto: ${JSON.stringify(r.backends?.auto)}`)
  for (const v of BENCH_VARIANTS) {
    const ops = r.opsPerSec![v]
    console.log(`  ${LABELS[v].padEnd(36)} ${fmt(ops).padStart(9)} ops/s  ${(ops / r.opsPerSec!.subtle).toFixed(2)}×`)
  }
  console.log(`  wasm ÷ subtle per round: ${r.roundRatios!.map((x) => x.toFixed(2)).join(' · ')}`)
  const c = r.cold!
  const k = r.coldSummary!
  const line = (what: string, ms: ColdSamples['cpuMs'], k: ColdCosts) =>
    console.log(
      `  first request CPU (${what}), median of ${ms.verify.length}: nothing ${fmt(median(ms.none))} ms, ` +
        `import ${fmt(median(ms.import))} ms, import + verify ${fmt(median(ms.verify))} ms → module evaluation ` +
        `${fmt(k.moduleEvaluationMs)} ms, first verification ${fmt(k.firstVerificationMs)} ms, both ${fmt(k.firstRequestMs)} ms`,
    )
  line('process', c.cpuMs, k.process)
  line(r.key === 'chromium' ? 'main thread' : 'busiest thread', c.threadMs, k.thread)
  if (!r.key.startsWith('workerd'))
    console.log(
      `  performance.now(): import ${fmt(median(c.importMs))} ms, new CaracalAuth ${fmt(median(c.constructMs))} ms, first verify ${fmt(median(c.firstVerifyMs))} ms`,
    )
  const speedup = median(r.roundRatios!)
  const wanted = SPEEDUP_TARGET[r.key]
  if (wanted !== undefined)
    targets.push(
      `  ${speedup >= wanted ? 'met ' : 'MISS'} ${r.key}: wasm ≥ ${wanted}× crypto.subtle: ${speedup.toFixed(2)}× (median round)`,
    )
  const t = k.thread
  targets.push(
    `  ${t.firstVerificationMs <= FIRST_VERIFICATION_CPU_MS ? 'met ' : 'MISS'} ${r.key}: first verification ≤ ${FIRST_VERIFICATION_CPU_MS} ms CPU ` +
      `(request's thread): ${fmt(t.firstVerificationMs)} ms (${fmt(t.firstRequestMs)} ms with module evaluation; ` +
      `whole process ${fmt(k.process.firstVerificationMs)} / ${fmt(k.process.firstRequestMs)} ms)`,
  )
}
console.log(`\ntargets\n${targets.join('\n')}`)

const written: RuntimesResults = {
  cpu,
  cores: cpus().length,
  date: new Date().toISOString(),
  node: process.version,
  timeMs,
  coldSamples,
  loadavg: { start: loadStart, end: loadavg() },
  partial: only !== undefined,
  results,
}
console.log(
  `load average: ${loadStart.map((x) => x.toFixed(2)).join(' / ')} at the start, ${written.loadavg.end.map((x) => x.toFixed(2)).join(' / ')} at the end`,
)
writeFileSync(new URL('../../bench/runtimes-results.json', import.meta.url), `${JSON.stringify(written, null, 2)}\n`)
