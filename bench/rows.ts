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
