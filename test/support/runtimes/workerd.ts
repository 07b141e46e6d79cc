/**
 * workerd, the Cloudflare Workers runtime (the `workerd` npm package), serving one Worker bundle on
 * 127.0.0.1: a Cap'n Proto config in the app directory, the socket on a port workerd picks and
 * reports on its control descriptor, outbound fetches allowed to loopback only (the test's STS).
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

export interface RunningWorkerd {
  readonly url: string
  readonly process: RuntimeProcess
  stop(): Promise<void>
}

const capnpString = (s: string) => JSON.stringify(s)

export function workerdConfig(bundle: WorkerdBundle, configDir: string, nodejsCompat: boolean): string {
  const embed = (path: string) => capnpString(relative(configDir, path))
  const modules = [
    `(name = "worker.js", esModule = embed ${embed(bundle.main)})`,
    ...bundle.wasmModules.map((m) => `(name = ${capnpString(m.name)}, wasm = embed ${embed(m.path)})`),
  ]
  return `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "loopback", network = (allow = ["local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:0", http = (), service = "main")],
);

const worker :Workerd.Worker = (
  modules = [
    ${modules.join(',\n    ')},
  ],
  compatibilityDate = ${capnpString(COMPATIBILITY_DATE)},
  compatibilityFlags = [${compatibilityFlags(nodejsCompat).map(capnpString).join(', ')}],
  globalOutbound = "loopback",
);
`
}

export async function startWorkerd(
  bundle: WorkerdBundle,
  options: { nodejsCompat: boolean; configName?: string },
): Promise<RunningWorkerd> {
  const configDir = dirname(bundle.main)
  const config = join(configDir, options.configName ?? `workerd-${options.nodejsCompat ? 'compat' : 'plain'}.capnp`)
  writeFileSync(config, workerdConfig(bundle, configDir, options.nodejsCompat))
  const proc = startProcess(WORKERD.path, ['serve', config, '--control-fd=3'], {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  })
  try {
    const port = await firstMatchingLine(
      proc,
      proc.child.stdio[3] as Readable,
      (line) => {
        const event = JSON.parse(line) as { event?: string; socket?: string; port?: number }
        return event.event === 'listen' && event.socket === 'http' ? event.port : undefined
      },
      20_000,
      'workerd',
    )
    return { url: `http://127.0.0.1:${port}`, process: proc, stop: () => proc.stop() }
  } catch (error) {
    await proc.stop()
    throw error
  }
}
