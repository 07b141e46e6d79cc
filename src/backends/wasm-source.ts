/**
 * `#wasm-source` under the default condition, for runtimes no other condition names (package.json
 * `imports`, README "Runtimes"; browsers take the inline module of wasm-source.browser.ts): the
 * module is fetched from beside this file. The literal `new URL('./caracal.wasm',
 * import.meta.url)` is the form bundlers (Vite, webpack, Parcel) recognise and copy the file for.
 * Where that does not hold, `initWasm(source)` gives the module explicitly.
 */

/** How the wasm module arrives on its own, if it can. */
export type AutomaticWasm =
  /** At once: compiled and instantiated synchronously on first use (Node reads the file; workerd imports it). */
  | { readonly kind: 'now'; readonly source: WebAssembly.Module | Uint8Array<ArrayBuffer>; readonly hint: string }
  /** Later: `verify` and `auto` wait for it (README "Runtimes"); browsers give the inline bytes, compiled asynchronously. */
  | { readonly kind: 'later'; readonly source: Promise<Response | Uint8Array>; readonly hint: string }
  /** Not at all, and why; `broken`: a defect of the build or the install, an error wherever wasm is asked for. */
  | { readonly kind: 'none'; readonly reason: string; readonly broken: boolean }

export function automaticWasm(): AutomaticWasm {
  if (typeof fetch !== 'function') {
    return {
      kind: 'none',
      broken: false,
      reason: 'this runtime has no fetch to load caracal.wasm: call initWasm(source)',
    }
  }
  const url = new URL('./caracal.wasm', import.meta.url)
  return { kind: 'later', source: fetch(url), hint: `; call initWasm(source) where ${url.href} is not served` }
}
