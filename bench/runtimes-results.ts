/**
 * What `npm run bench:runtimes` (bench/runtimes.ts) writes to bench/runtimes-results.json and
 * `npm run bench:readme` (bench/readme.ts) reads from it: the results' shape, the targets of
 * bench/README.md "Runtimes", and the medians both compute the same way.
 */
import type { BenchVariant, ColdStage } from '../test/support/runtimes/driver/protocol.js'

/** What bench/README.md "Runtimes" asks of each: wasm over the runtime's WebCrypto, and the cold start. */
/** What bench/README.md "Runtimes" asks of each: wasm over the runtime's WebCrypto, and the cold start. */
export const SPEEDUP_TARGET: Readonly<Record<string, number>> = {
  workerd: 1.5,
  'workerd-compat': 1.5,
  chromium: 2,
}
export const FIRST_VERIFICATION_CPU_MS = 15

export interface ColdSamples {
  /** CPU of the isolate's process across its first request, every thread, per stage, ms. */
  readonly cpuMs: Readonly<Record<ColdStage, number[]>>
  /** CPU of the thread that ran the request (bench/runtime-hosts.ts `ColdSample`), per stage, ms. */
  readonly threadMs: Readonly<Record<ColdStage, number[]>>
  /** performance.now() inside the verifying requests (0 in workerd, whose clock is frozen). */
  readonly importMs: number[]
  readonly constructMs: number[]
  readonly firstVerifyMs: number[]
}

/** Differences of the stages' medians, ms: of the whole process and of the request's thread. */
export interface ColdSummary {
  readonly process: ColdCosts
  readonly thread: ColdCosts
}

export interface ColdCosts {
  /** import − nothing: evaluating the library's modules (and, in Deno and Bun, reading them). */
  readonly moduleEvaluationMs: number
  /** verify − import: new CaracalAuth, the key, the first verification (the wasm load too, where it is lazy). */
  readonly firstVerificationMs: number
  /** verify − nothing: both. */
  readonly firstRequestMs: number
}

export interface RuntimeResult {
  readonly key: string
  readonly name: string
  readonly version: string | undefined
  readonly skipped?: string
  readonly backends?: Record<string, Record<string, string>>
  /** The fastest round's rate per variant. */
  readonly opsPerSec?: Record<BenchVariant, number>
  /** wasm ÷ subtle in each round (same round, same tokens). */
  readonly roundRatios?: number[]
  readonly cold?: ColdSamples
  readonly coldSummary?: ColdSummary
}

export interface RuntimesResults {
  readonly cpu: string
  readonly cores: number
  readonly date: string
  readonly node: string
  readonly timeMs: number
  readonly coldSamples: number
  /** os.loadavg() before and after the run: the machine is shared. */
  readonly loadavg: { readonly start: readonly number[]; readonly end: readonly number[] }
  readonly partial: boolean
  readonly results: readonly RuntimeResult[]
}

export const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length === 0 ? Number.NaN : s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

function costs(ms: Readonly<Record<ColdStage, number[]>>): ColdCosts {
  const none = median(ms.none)
  const imported = median(ms.import)
  const verified = median(ms.verify)
  return {
    moduleEvaluationMs: imported - none,
    firstVerificationMs: verified - imported,
    firstRequestMs: verified - none,
  }
}

export function summarizeCold(c: ColdSamples): ColdSummary {
  return { process: costs(c.cpuMs), thread: costs(c.threadMs) }
}
