/** What a bundler that follows workerd's module rules (wrangler's `CompiledWasm`) makes of a `.wasm` import. */
declare module '*.wasm' {
  const compiled: WebAssembly.Module
  export default compiled
}
