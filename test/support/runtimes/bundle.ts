/**
 * The application bundles, built with esbuild as each platform's tooling builds them:
 * - workerd as wrangler bundles a Worker: format esm, target es2022, the conditions `workerd`,
 *   `worker`, `browser` (in that order), `*.wasm` imports left as module imports (wrangler's
 *   CompiledWasm rule) and listed for the config as wasm modules; with `nodejs_compat` the `node:*`
 *   builtins stay imports for workerd to provide, without it they cannot be resolved (a build error,
 *   as wrangler reports it);
 * - the browser as a web app's bundler would: platform browser, format esm, nothing copied beside
 *   the bundle (the `browser` condition carries caracal.wasm inline, so no asset is served);
 * - Deno and Bun: the application's own modules in one file, every package import left for the
 *   runtime to resolve from the app's node_modules, as it resolves a user's.
 */
import { basename, join } from 'node:path'
import { build, type BuildOptions, type Plugin } from 'esbuild'
import type { LinkedApp } from './linked-app.js'

export const WORKERD_CONDITIONS = ['workerd', 'worker', 'browser']

export interface WasmModule {
  /** The module name the bundle imports (`./caracal.wasm` is imported as `caracal.wasm`). */
  readonly name: string
  readonly path: string
}

export interface WorkerdBundle {
  readonly main: string
  readonly wasmModules: readonly WasmModule[]
}

/** Every `*.wasm` import becomes an external module import by file name, recorded for the config. */
function wasmModulesPlugin(found: WasmModule[]): Plugin {
  return {
    name: 'wasm-modules',
    setup(b) {
      b.onResolve({ filter: /\.wasm$/ }, (args) => {
        const path = join(args.resolveDir, args.path)
        const name = basename(path)
        const known = found.find((m) => m.name === name)
        if (known !== undefined && known.path !== path) return { errors: [{ text: `two wasm modules named ${name}` }] }
        if (known === undefined) found.push({ name, path })
        return { path: `./${name}`, external: true }
      })
    },
  }
}

/** One entry of the app bundled into `outfile` as ESM for ES2022, with what the platform adds; `outfile` back. */
async function buildApp(app: LinkedApp, entry: string, outfile: string, platform: BuildOptions): Promise<string> {
  await build({
    entryPoints: [join(app.srcDir, entry)],
    absWorkingDir: app.dir,
    bundle: true,
    format: 'esm',
    target: 'es2022',
    outfile,
    logLevel: 'silent',
    ...platform,
  })
  return outfile
}

export async function bundleForWorkerd(
  app: LinkedApp,
  entry: string,
  outName: string,
  options: { nodejsCompat: boolean },
): Promise<WorkerdBundle> {
  const wasmModules: WasmModule[] = []
  const main = await buildApp(app, entry, join(app.dir, outName), {
    conditions: WORKERD_CONDITIONS,
    external: options.nodejsCompat ? ['node:*'] : [],
    plugins: [wasmModulesPlugin(wasmModules)],
  })
  return { main, wasmModules }
}

/** `bundle.js` in `outDir`, and nothing else: the browser build carries caracal.wasm inline, so the page serves no wasm file. */
export async function bundleForBrowser(app: LinkedApp, entry: string, outDir: string): Promise<string> {
  return buildApp(app, entry, join(outDir, 'bundle.js'), { platform: 'browser' })
}

/** The app's own modules in one ESM file; `caracal-fastmcp` and every other package stay imports. */
export async function bundleAppModules(app: LinkedApp, entry: string, outName: string): Promise<string> {
  return buildApp(app, entry, join(app.dir, outName), { packages: 'external', platform: 'neutral' })
}
