/**
 * One runtime as the bench drives it (bench/runtimes.ts): its steady state in one long-lived
 * instance, and its cold start in fresh ones. The work itself is the driver's
 * (test/support/runtimes/driver/bench.ts); here is only how each runtime is started and timed.
 *
 * Timing: Chromium, Deno and Bun time their batches with `performance.now()`. workerd freezes its
 * clock while a request computes (a Spectre mitigation), so a batch there is the CPU time of the
 * workerd process across the request (every thread, /proc/<pid>/task/<tid>/schedstat, ns) minus
 * that of an empty batch. Cold start everywhere: the CPU of the process that runs the isolate
 * (workerd, deno, bun, or the page's renderer) across the first request, from after the isolate
 * has loaded and settled to 150 ms after the answer, so work it hands to background threads
 * (compilation) counts too — once for a request that verifies and once for one that does not.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Browser, CDPSession, Page } from 'playwright-core'
import { bundleForBrowser, bundleForWorkerd } from '../test/support/runtimes/bundle.js'
import { launchChromium, openDriverPage, writeIndexHtml } from '../test/support/runtimes/chromium.js'
import { processCpuNs } from '../test/support/runtimes/child-process.js'
import type {
  BatchResult,
  BenchInput,
  BenchVariant,
  ColdResult,
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
  /** CPU of the isolate's process across its first request, in ms. */
  readonly cpuMs: number
  readonly result: ColdResult
}

export interface RuntimeHost {
  readonly name: string
  start(): Promise<Instance>
  /** A fresh isolate answering its first request: `verify` or the control. */
  cold(input: BenchInput, verify: boolean): Promise<ColdSample>
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

async function coldOfServed(start: () => Promise<Served>, input: BenchInput, verify: boolean): Promise<ColdSample> {
  const served = await start()
  try {
    await sleep(SETTLE_MS)
    const before = processCpuNs(served.pid)
    const result = await post<ColdResult>(`${served.url}/bench/cold`, { ...input, verify })
    await sleep(AFTER_MS)
    return { cpuMs: (processCpuNs(served.pid) - before) / 1e6, result }
  } finally {
    await served.stop()
  }
}

export function workerdHost(app: LinkedApp, nodejsCompat: boolean): RuntimeHost {
  const bundle = bundleForWorkerd(app, 'worker.ts', `bench-worker-${nodejsCompat}.js`, { nodejsCompat })
  const name = nodejsCompat ? 'compat' : 'plain'
  const start = async (): Promise<Served> => {
    const w = await startWorkerd([{ name, nodejsCompat, bundle: await bundle }], `bench-${name}.capnp`)
    return { url: w.urls[name]!, pid: w.process.pid, stop: () => w.stop() }
  }
  return {
    name: `workerd ${nodejsCompat ? 'with' : 'without'} nodejs_compat`,
    start: async () => servedInstance(await start(), 'process cpu'),
    cold: (input, verify) => coldOfServed(start, input, verify),
    close: async () => {},
  }
}

export function scriptHost(app: LinkedApp, runtime: 'Deno' | 'Bun'): RuntimeHost {
  const start = async (): Promise<Served> => {
    const s = await (runtime === 'Deno' ? startDenoServer(app) : startBunServer(app))
    return { url: s.url, pid: s.process.pid, stop: () => s.stop() }
  }
  return {
    name: runtime,
    start: async () => servedInstance(await start(), 'wall'),
    cold: (input, verify) => coldOfServed(start, input, verify),
    close: async () => {},
  }
}

interface DriverGlobal {
  benchRoute(name: string, body: unknown): Promise<unknown>
}
declare const caracalDriver: DriverGlobal

function route<T>(page: Page, name: string, body: unknown): Promise<T> {
  return page.evaluate(
    ([n, b]) => caracalDriver.benchRoute(n as string, b) as Promise<unknown>,
    [name, body],
  ) as Promise<T>
}

async function rendererPids(cdp: CDPSession): Promise<Set<number>> {
  const info = (await cdp.send('SystemInfo.getProcessInfo')) as { processInfo: { type: string; id: number }[] }
  return new Set(info.processInfo.filter((p) => p.type === 'renderer').map((p) => p.id))
}

export async function chromiumHost(app: LinkedApp): Promise<RuntimeHost> {
  const www = join(app.dir, 'bench-www')
  mkdirSync(www, { recursive: true })
  writeIndexHtml(www)
  await bundleForBrowser(app, 'browser.ts', www)
  const origin = await startLoopbackOrigin({ zoneId: 'bench', jwks: () => undefined, staticDir: www })
  const browser: Browser = await launchChromium()
  const cdp = await browser.newBrowserCDPSession()
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
    async cold(input, verify) {
      const known = await rendererPids(cdp)
      const { page } = await openDriverPage(browser, origin.origin)
      try {
        const mine = [...(await rendererPids(cdp))].filter((pid) => !known.has(pid))
        if (mine.length === 0) throw new Error('no renderer process of its own for the fresh page')
        await sleep(SETTLE_MS)
        const cpu = () => mine.reduce((sum, pid) => sum + processCpuNs(pid), 0)
        const before = cpu()
        const result = await route<ColdResult>(page, 'cold', { ...input, verify })
        await sleep(AFTER_MS)
        return { cpuMs: (cpu() - before) / 1e6, result }
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
