/**
 * `#wasm-source` on Node, Bun and Deno (package.json `imports`, README "Runtimes"): the file beside
 * this module, read synchronously on first use, so that nothing on Node has to await the module.
 */
import { readFileSync } from 'node:fs'
import type { AutomaticWasm } from './wasm-source.js'

/**
 * The module sits beside this file (`npm run build` writes it to src/backends and dist/src/backends):
 * a literal `new URL(…, import.meta.url)` is what installed packages and bundlers resolve.
 */
const MODULE_URL = new URL('./caracal.wasm', import.meta.url)

export function automaticWasm(): AutomaticWasm {
  try {
    return { kind: 'now', source: new Uint8Array(readFileSync(MODULE_URL)), hint: '; run `npm run build`' }
  } catch (error) {
    const code = (error as { code?: unknown }).code
    // A file that is not there is a broken build or install; one the runtime may not read (Deno
    // without --allow-read) is a limit of this process: `auto` does without, and says why.
    const broken = code === 'ENOENT' || code === 'EISDIR'
    const why = typeof code === 'string' && broken ? code : (error as Error).message
    return {
      kind: 'none',
      broken,
      reason: `caracal.wasm cannot be read beside ${new URL('.', import.meta.url).pathname} (${why})${broken ? '; run `npm run build`' : ''}`,
    }
  }
}
