/** One measured line of the bench; `baseline` names the row its ratio is taken against. */
export interface BenchRow {
  readonly suite: string
  readonly alg?: string
  readonly group: string
  readonly name: string
  readonly opsPerSec?: number
  /** For measurements that are not throughput (latency percentiles, ns per op). */
  readonly value?: number
  readonly unit?: string
  readonly baseline?: string
}

/** What every suite is given: the time per task, and `quick` (every scenario briefly, for CI: sizes cut, one round). */
export interface SuiteOptions {
  readonly timeMs: number
  readonly quick: boolean
}
