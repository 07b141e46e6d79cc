/**
 * workerd, the Cloudflare Workers runtime (the `workerd` npm package), serving Worker bundles on
 * 127.0.0.1: a Cap'n Proto config in the app directory, one socket per Worker on a port workerd picks
 * and reports on its control descriptor, outbound fetches allowed to loopback only (the test's STS).
 */
import { writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import type { Readable } from 'node:stream'
import type { WorkerdBundle } from './bundle.js'
import { firstMatchingLine, startProcess, type RuntimeProcess } from './child-process.js'
import { packageBinary } from './runtime-binaries.js'

export const WORKERD = packageBinary('workerd', 'workerd')

/** Recent: nodejs_compat became the default on 2026-08-04, so "without" has to switch it off. */
export const COMPATIBILITY_DATE = '2026-11-01'

/**
 * With: the flag as a wrangler.toml that asks for it writes it. Without: both halves switched off
 * (`no_nodejs_compat` alone still leaves Buffer and process as globals at this date).
 */
export function compatibilityFlags(nodejsCompat: boolean): readonly string[] {
  return nodejsCompat ? ['nodejs_compat'] : ['no_nodejs_compat', 'no_nodejs_compat_v2']
}

/** One Worker of the config: its bundle, its flags, and the socket that serves it. */
export interface WorkerdWorker {
  /** The socket's and the service's name (letters and digits). */
  readonly name: string
  readonly bundle: WorkerdBundle
  readonly nodejsCompat: boolean
}

export interface RunningWorkerd {
  /** Per worker name, the origin of its socket. */
  readonly urls: Readonly<Record<string, string>>
  readonly process: RuntimeProcess
  stop(): Promise<void>
}

const capnpString = (s: string) => JSON.stringify(s)

/**
 * One config for every worker, so that one workerd serves them all (one start per suite): each
 * worker its own modules, flags and socket, all with outbound fetches to loopback only.
 */
export function workerdConfig(workers: readonly WorkerdWorker[], configDir: string): string {
  const embed = (path: string) => capnpString(relative(configDir, path))
  const worker = (w: WorkerdWorker) => {
    const modules = [
      `(name = "worker.js", esModule = embed ${embed(w.bundle.main)})`,
      ...w.bundle.wasmModules.map((m) => `(name = ${capnpString(m.name)}, wasm = embed ${embed(m.path)})`),
    ]
    return `const ${w.name} :Workerd.Worker = (
  modules = [
    ${modules.join(',\n    ')},
  ],
  compatibilityDate = ${capnpString(COMPATIBILITY_DATE)},
  compatibilityFlags = [${compatibilityFlags(w.nodejsCompat).map(capnpString).join(', ')}],
  globalOutbound = "loopback",
);
`
  }
  return `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    ${workers.map((w) => `(name = ${capnpString(w.name)}, worker = .${w.name}),`).join('\n    ')}
    (name = "loopback", network = (allow = ["local"])),
  ],
  sockets = [
    ${workers.map((w) => `(name = ${capnpString(w.name)}, address = "127.0.0.1:0", http = (), service = ${capnpString(w.name)}),`).join('\n    ')}
  ],
);

${workers.map(worker).join('\n')}`
}

/** workerd serving `workers`, each on a port workerd picks and reports on its control descriptor. */
export async function startWorkerd(workers: readonly WorkerdWorker[], configName: string): Promise<RunningWorkerd> {
  for (const w of workers)
    if (!/^[a-z][a-zA-Z0-9]*$/.test(w.name)) throw new Error(`workerd: bad worker name ${w.name}`)
  const configDir = dirname(workers[0]!.bundle.main)
  const config = join(configDir, configName)
  writeFileSync(config, workerdConfig(workers, configDir))
  const proc = startProcess(WORKERD.path, ['serve', config, '--control-fd=3'], {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  })
  try {
    const urls: Record<string, string> = {}
    await firstMatchingLine(
      proc,
      proc.child.stdio[3] as Readable,
      (line) => {
        const event = JSON.parse(line) as { event?: string; socket?: string; port?: number }
        if (event.event === 'listen' && event.socket !== undefined)
          urls[event.socket] = `http://127.0.0.1:${event.port}`
        return workers.every((w) => w.name in urls) ? true : undefined
      },
      20_000,
      'workerd',
    )
    return { urls, process: proc, stop: () => proc.stop() }
  } catch (error) {
    await proc.stop()
    throw error
  }
}
