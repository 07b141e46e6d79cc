/**
 * One runtime as the bench drives it (bench/runtimes.ts): its steady state in one long-lived
 * instance, and its cold start in fresh ones. The work itself is the driver's
 * (test/support/runtimes/driver/bench.ts); here is only how each runtime is started and timed.
 *
 * Timing: Chromium, Deno and Bun time their batches with `performance.now()`. workerd freezes its
 * clock while a request computes (a Spectre mitigation), so a batch there is the CPU time of the
 * workerd process across the request (every thread, /proc/<pid>/task/<tid>/schedstat, ns) minus
 * that of an empty batch. Cold start everywhere: CPU across a fresh isolate's first request, from
 * after the isolate has loaded and settled to 150 ms after the answer, twice: the whole process
 * that runs it (workerd, deno, bun: every thread from /proc; Chromium: the page's renderer as CDP
 * counts it, in 10 ms steps), so work handed to background threads (compilation) counts too; and
 * the request's own thread (the busiest thread; Chromium: the renderer's main thread). The isolate runs the cold entry (driver/cold.ts), which has imported
 * nothing of the library yet; its one request does nothing, imports `caracal-fastmcp`, or imports
 * it and verifies a first token (`ColdStage`). workerd compiles the bundle's wasm module when it
 * loads the Worker, before any request, as it does in production: that is not in the window.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Browser, CDPSession, Page } from 'playwright-core'
import { bundleForBrowser, bundleForWorkerd } from '../test/support/runtimes/bundle.js'
import { launchChromium, openDriverPage, writeIndexHtml } from '../test/support/runtimes/chromium.js'
import { busiestThreadNs, processCpuNs, threadCpuNs } from '../test/support/runtimes/child-process.js'
import type {
  BatchResult,
  BenchInput,
  BenchVariant,
  ColdInput,
  ColdResult,
  ColdStage,
  PreparedBench,
} from '../test/support/runtimes/driver/protocol.js'
import type { LinkedApp } from '../test/support/runtimes/linked-app.js'
import { startLoopbackOrigin } from '../test/support/runtimes/loopback-origin.js'
import { startBunServer, startDenoServer } from '../test/support/runtimes/script-runtimes.js'
import { startWorkerd } from '../test/support/runtimes/workerd.js'

const SETTLE_MS = 300
const AFTER_MS = 150

export interface Instance {
  prepare(input: BenchInput): Promise<PreparedBench>
  /** Milliseconds `count` verifications of `variant` took. */
  batch(variant: BenchVariant, count: number): Promise<number>
  stop(): Promise<void>
}

export interface ColdSample {
  /** CPU of the isolate's process across its first request, every thread, in ms. */
  readonly cpuMs: number
  /**
   * CPU of the thread that ran the request, in ms: the busiest thread of the process (workerd,
   * Deno, Bun), or the main thread of the page's renderer (Chromium's own count). What the isolate
   * itself spent, without the compiler and garbage-collector threads it handed work to.
   */
  readonly threadMs: number
  readonly result: ColdResult
}

export interface RuntimeHost {
  readonly name: string
  start(): Promise<Instance>
  /** A fresh isolate of the cold entry answering its first request, which does `stage`. */
  cold(input: BenchInput, stage: ColdStage): Promise<ColdSample>
  close(): Promise<void>
}

async function post<T>(url: string, body: unknown): Promise<T> {
  const response = await fetch(url, { method: 'POST', body: JSON.stringify(body) })
  const text = await response.text()
  if (!response.ok) throw new Error(`${url} answered ${response.status}: ${text}`)
  return JSON.parse(text) as T
}

interface Served {
  readonly url: string
  readonly pid: number
  stop(): Promise<void>
}

function servedInstance(served: Served, clock: 'wall' | 'process cpu'): Instance {
  const batchCpuNs = async (variant: BenchVariant, count: number) => {
    const before = processCpuNs(served.pid)
    await post<BatchResult>(`${served.url}/bench/batch`, { variant, count })
    return processCpuNs(served.pid) - before
  }
  return {
    prepare: (input) => post<PreparedBench>(`${served.url}/bench/prepare`, input),
    async batch(variant, count) {
      if (clock === 'wall') return (await post<BatchResult>(`${served.url}/bench/batch`, { variant, count })).elapsedMs
      const empty = await batchCpuNs(variant, 0)
      return Math.max(0, (await batchCpuNs(variant, count)) - empty) / 1e6
    },
    stop: () => served.stop(),
  }
}

const sum = (threads: ReadonlyMap<string, number>) => [...threads.values()].reduce((a, b) => a + b, 0)

async function coldOfServed(start: () => Promise<Served>, input: BenchInput, stage: ColdStage): Promise<ColdSample> {
  const served = await start()
  try {
    await sleep(SETTLE_MS)
    const before = threadCpuNs(served.pid)
    const result = await post<ColdResult>(`${served.url}/bench/cold`, { ...input, stage } satisfies ColdInput)
    await sleep(AFTER_MS)
    const after = threadCpuNs(served.pid)
    return { cpuMs: (sum(after) - sum(before)) / 1e6, threadMs: busiestThreadNs(before, after) / 1e6, result }
  } finally {
    await served.stop()
  }
}

export function workerdHost(app: LinkedApp, nodejsCompat: boolean): RuntimeHost {
  const name = nodejsCompat ? 'compat' : 'plain'
  const starter = (entry: string, kind: string) => {
    const bundle = bundleForWorkerd(app, entry, `bench-${kind}-${name}.js`, { nodejsCompat })
    return async (): Promise<Served> => {
      const w = await startWorkerd([{ name, nodejsCompat, bundle: await bundle }], `bench-${kind}-${name}.capnp`)
      return { url: w.urls[name]!, pid: w.process.pid, stop: () => w.stop() }
    }
  }
  const start = starter('worker.ts', 'steady')
  const startCold = starter('cold-worker.ts', 'cold')
  return {
    name: `workerd ${nodejsCompat ? 'with' : 'without'} nodejs_compat`,
    start: async () => servedInstance(await start(), 'process cpu'),
    cold: (input, stage) => coldOfServed(startCold, input, stage),
    close: async () => {},
  }
}

export function scriptHost(app: LinkedApp, runtime: 'Deno' | 'Bun'): RuntimeHost {
  const starter = (entry: string) => async (): Promise<Served> => {
    const s = await (runtime === 'Deno' ? startDenoServer(app, entry) : startBunServer(app, entry))
    return { url: s.url, pid: s.process.pid, stop: () => s.stop() }
  }
  const start = starter(runtime === 'Deno' ? 'deno.ts' : 'bun.ts')
  const startCold = starter(runtime === 'Deno' ? 'cold-deno.ts' : 'cold-bun.ts')
  return {
    name: runtime,
    start: async () => servedInstance(await start(), 'wall'),
    cold: (input, stage) => coldOfServed(startCold, input, stage),
    close: async () => {},
  }
}

interface DriverGlobal {
  benchRoute(name: string, body: unknown): Promise<unknown>
  coldRoute(input: ColdInput): Promise<ColdResult>
}
declare const caracalDriver: DriverGlobal

function route<T>(page: Page, name: string, body: unknown): Promise<T> {
  return page.evaluate(
    ([n, b]) => caracalDriver.benchRoute(n as string, b) as Promise<unknown>,
    [name, body],
  ) as Promise<T>
}

/**
 * CPU of the page's renderer as Chromium counts it (CDP `Performance.getMetrics`, seconds): its main
 * thread (`ThreadTime`), which runs the page's scripts, and the whole process (`ProcessTime`). The
 * page's renderer cannot be told apart by pid: a new page takes the spare renderer started earlier,
 * and other renderers run beside it.
 */
async function rendererCpu(session: CDPSession): Promise<{ thread: number; process: number }> {
  const { metrics } = (await session.send('Performance.getMetrics')) as { metrics: { name: string; value: number }[] }
  const value = (name: string) => {
    const m = metrics.find((x) => x.name === name)
    if (m === undefined) throw new Error(`Chromium reports no ${name} metric`)
    return m.value * 1000
  }
  return { thread: value('ThreadTime'), process: value('ProcessTime') }
}

export async function chromiumHost(app: LinkedApp): Promise<RuntimeHost> {
  const www = join(app.dir, 'bench-www')
  // The cold entry's page: /cold/index.html, its own bundle and caracal.wasm beside it.
  const coldWww = join(www, 'cold')
  mkdirSync(coldWww, { recursive: true })
  writeIndexHtml(www)
  writeIndexHtml(coldWww)
  await bundleForBrowser(app, 'browser.ts', www)
  await bundleForBrowser(app, 'cold-browser.ts', coldWww)
  const origin = await startLoopbackOrigin({ zoneId: 'bench', jwks: () => undefined, staticDir: www })
  const browser: Browser = await launchChromium()
  return {
    name: 'Chromium',
    async start() {
      const { page } = await openDriverPage(browser, origin.origin)
      return {
        prepare: (input) => route<PreparedBench>(page, 'prepare', input),
        batch: async (variant, count) => (await route<BatchResult>(page, 'batch', { variant, count })).elapsedMs,
        stop: () => page.context().close(),
      }
    },
    async cold(input, stage) {
      const { page } = await openDriverPage(browser, origin.origin, '/cold')
      try {
        const session = await page.context().newCDPSession(page)
        await session.send('Performance.enable')
        await sleep(SETTLE_MS)
        const before = await rendererCpu(session)
        const result = await page.evaluate((body) => caracalDriver.coldRoute(body), {
          ...input,
          stage,
        } satisfies ColdInput)
        await sleep(AFTER_MS)
        const after = await rendererCpu(session)
        return { cpuMs: after.process - before.process, threadMs: after.thread - before.thread, result }
      } finally {
        await page.context().close()
      }
    },
    async close() {
      await browser.close()
      await origin.close()
    },
  }
}
