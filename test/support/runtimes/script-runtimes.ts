/**
 * Deno and Bun (their npm packages ship the binaries) running the driver's server as a user's
 * script: the app's own modules in one file, `caracal-fastmcp` resolved by the runtime from the
 * app's node_modules through the package's `exports` — Deno with `--node-modules-dir=manual`, as it
 * runs a project that has a package.json and an installed node_modules.
 */
import type { Readable } from 'node:stream'
import { bundleAppModules } from './bundle.js'
import { firstMatchingLine, startProcess, type RuntimeProcess } from './child-process.js'
import { packageBinary, type RuntimeBinary } from './runtime-binaries.js'
import { REPO_ROOT, type LinkedApp } from './linked-app.js'

export const DENO = packageBinary('Deno', 'deno')
export const BUN = packageBinary('Bun', 'bun')

export interface RunningScript {
  readonly url: string
  readonly process: RuntimeProcess
  stop(): Promise<void>
}

/** The least Deno needs: the app and the linked package to read, loopback to serve and fetch. */
export function denoArgs(app: LinkedApp, main: string): string[] {
  return [
    'run',
    '--no-prompt',
    '--node-modules-dir=manual',
    `--allow-read=${app.dir},${REPO_ROOT}`,
    '--allow-net=127.0.0.1',
    main,
  ]
}

async function startScript(binary: RuntimeBinary, args: string[], app: LinkedApp): Promise<RunningScript> {
  const proc = startProcess(binary.path, args, {
    cwd: app.dir,
    // No update checks or telemetry from a test run.
    env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', DO_NOT_TRACK: '1', NO_COLOR: '1' },
  })
  try {
    const port = await firstMatchingLine(
      proc,
      proc.child.stdout as Readable,
      (line) => {
        try {
          return (JSON.parse(line) as { listening?: number }).listening
        } catch {
          return undefined
        }
      },
      20_000,
      binary.name,
    )
    return { url: `http://127.0.0.1:${port}`, process: proc, stop: () => proc.stop() }
  } catch (error) {
    await proc.stop()
    throw error
  }
}

/** `entry`: the driver's module to run (`deno.ts`, or the bench's `cold-deno.ts`). */
export async function startDenoServer(app: LinkedApp, entry = 'deno.ts'): Promise<RunningScript> {
  const main = await bundleAppModules(app, entry, entry.replace(/\.ts$/, '-main.js'))
  return startScript(DENO, denoArgs(app, main), app)
}

export async function startBunServer(app: LinkedApp, entry = 'bun.ts'): Promise<RunningScript> {
  const main = await bundleAppModules(app, entry, entry.replace(/\.ts$/, '-main.js'))
  return startScript(BUN, ['run', main], app)
}
