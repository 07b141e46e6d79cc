/**
 * Throughput of several tasks measured the same way: tinybench, in rounds that alternate the
 * tasks, keeping each task's best round. A shared machine drifts over a run; measured one after
 * the other, two tasks would be compared at different moments, and the ratio would carry the drift.
 */
import { Bench } from 'tinybench'

export interface Task {
  readonly name: string
  /** One timed iteration: `batch` operations. */
  readonly fn: () => unknown
  readonly batch: number
}

export const ROUNDS = 5

/** Operations per second of each task, in the order given. */
export async function measure(tasks: readonly Task[], timeMs: number, rounds = ROUNDS): Promise<number[]> {
  const best = tasks.map(() => 0)
  const roundMs = Math.max(100, timeMs / rounds)
  for (let round = 0; round < rounds; round++) {
    const bench = new Bench({ time: roundMs, warmupTime: round === 0 ? Math.min(300, roundMs) : 50 })
    for (const t of tasks) bench.add(t.name, t.fn)
    await bench.run()
    tasks.forEach((t, i) => {
      const opsPerSec = (t.batch * 1000) / bench.tasks[i]!.result!.latency.mean
      best[i] = Math.max(best[i]!, opsPerSec)
    })
  }
  return best
}
