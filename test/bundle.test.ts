/**
 * The runtime-neutral core (README "Runtimes"): `caracal-fastmcp`, `caracal-fastmcp/jws` and `caracal-fastmcp/fetch`,
 * bundled from the built package by esbuild for browsers and as wrangler bundles for workerd,
 * import no `node:*` module and name no `Buffer` or `process` — the only access to `process` is
 * the warning shim's guarded `globalThis.process` (src/platform/warning.ts) and lru-cache's
 * `typeof process` guard. On Node, the same entry points do select the Node modules.
 */
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { build, type BuildOptions, type Metafile } from 'esbuild'
import { beforeAll, describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('..', import.meta.url))
/** The built module as the browser build carries it (src/backends/wasm-source.browser.ts). */
const INLINE_WASM = existsSync(`${root}/dist/src/backends/caracal.wasm`)
  ? readFileSync(`${root}/dist/src/backends/caracal.wasm`).toString('base64url')
  : ''

/** The two ways the runtimes are bundled (interfaces agreed with the runtime tests). */
const TARGETS: Record<string, BuildOptions> = {
  browser: { platform: 'browser' },
  workerd: { platform: 'neutral', conditions: ['workerd', 'worker', 'browser'], mainFields: ['module', 'main'] },
}
const ENTRIES = {
  'caracal-fastmcp': './dist/src/index.js',
  'caracal-fastmcp/jws': './dist/src/jws/index.js',
  'caracal-fastmcp/fetch': './dist/src/fetch.js',
}

/** lru-cache's own guard (its browser build): reads `process` only after `typeof` says it exists. */
const LRU_CACHE_GUARD = 'typeof process=="object"&&process?process:{}'

async function bundle(entry: string, target: BuildOptions): Promise<{ code: string; metafile: Metafile }> {
  const result = await build({
    ...target,
    absWorkingDir: root,
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    minify: true,
    write: false,
    metafile: true,
    logLevel: 'silent',
    // What wrangler does with its CompiledWasm rule: the module stays a module import.
    external: ['*.wasm'],
  })
  return { code: result.outputFiles[0]!.text, metafile: result.metafile }
}

/**
 * Every name `Buffer` or `process` that is not a property access (`globalThis.process`,
 * `x.process`) or a method of that name (`process(e,t){`, @noble/hashes' block function).
 */
function bareGlobals(code: string): string[] {
  const stripped = code.split(LRU_CACHE_GUARD).join('')
  return [...stripped.matchAll(/(?<![.\w$])(?:Buffer|process)(?![\w$])(?!\([\w$,]*\)\{)/g)].map((m) =>
    stripped.slice(Math.max(0, m.index - 40), m.index + 40),
  )
}

describe('bundles of the runtime-neutral entry points', () => {
  beforeAll(() => {
    if (!existsSync(`${root}/dist/src/index.js`)) throw new Error('run `npm run build` first (npm test does)')
  })

  for (const [runtime, target] of Object.entries(TARGETS)) {
    for (const [name, entry] of Object.entries(ENTRIES)) {
      it(`${name} for ${runtime}: no node:* import, no Buffer, no unguarded process`, async () => {
        const { code, metafile } = await bundle(entry, target)
        const imports = Object.values(metafile.outputs).flatMap((o) => o.imports.map((i) => i.path))
        expect(imports.filter((path) => path.startsWith('node:') || !path.endsWith('.wasm'))).toEqual([])
        const inputs = Object.keys(metafile.inputs)
        expect(inputs.filter((path) => /\.node\.js$|backends\/node\.js$/.test(path))).toEqual([])
        expect(code.match(/(?:from|import|require)\s*\(?\s*["'`]node:[a-z]+/g)).toBeNull()
        expect(bareGlobals(code)).toEqual([])
        if (runtime === 'workerd' && name === 'caracal-fastmcp') {
          // The module import wrangler turns into a WebAssembly.Module.
          expect(imports).toEqual(['./caracal.wasm'])
          expect(inputs).toContain('dist/src/backends/wasm-source.workerd.js')
        }
        if (runtime === 'browser' && name === 'caracal-fastmcp') {
          // The module inside the bundle: no asset to copy, no fetch of caracal.wasm.
          expect(inputs).toContain('dist/src/backends/wasm-source.browser.js')
          expect(inputs).not.toContain('dist/src/backends/wasm-source.js')
          expect(code).toContain(INLINE_WASM.slice(0, 64))
          expect(code).not.toContain('caracal.wasm",import.meta.url')
        }
      })
    }
  }

  it('for Node, the same entry points select the Node modules (Buffer codecs, node:crypto, the file, worker threads)', async () => {
    const { metafile } = await bundle(ENTRIES['caracal-fastmcp'], { platform: 'node' })
    const inputs = Object.keys(metafile.inputs)
    for (const file of [
      'platform/bytes.node.js',
      'backends/node-crypto.node.js',
      'backends/wasm-source.node.js',
      'pool/index.js',
    ])
      expect(inputs).toContain(`dist/src/${file}`)
  })
})
