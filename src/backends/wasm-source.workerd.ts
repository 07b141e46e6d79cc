/**
 * `#wasm-source` under the workerd condition (package.json `imports`, README "Runtimes"): workerd
 * refuses to compile wasm from bytes and takes it only as a module import, which wrangler bundles
 * (its `CompiledWasm` rule) as a `WebAssembly.Module`; instantiating one is allowed, synchronously.
 */
import compiled from './caracal.wasm'
import type { AutomaticWasm } from './wasm-source.js'

export function automaticWasm(): AutomaticWasm {
  return { kind: 'now', source: compiled, hint: '' }
}
