/**
 * `#wasm-source` in browsers (package.json `imports`, README "Runtimes"): the module travels inside
 * the JavaScript bundle as base64url, so no bundler has to copy an asset, no page has to serve it,
 * and the first verification pays no `fetch`. A page's first `fetch` costs its main thread ~2–3 ms
 * of CPU, which was a fifth of a fresh page's first verification (bench/README.md "Runtimes").
 * The bytes are compiled asynchronously, as `verify` and `auto` wait for them; `initWasm(source)`
 * still takes any other source.
 */
import { decodeBase64urlBytes } from '../jws/base64url.js'
import { CARACAL_WASM_BASE64URL } from './caracal-wasm-inline.js'
import type { AutomaticWasm } from './wasm-source.js'

/** TC39's `Uint8Array.fromBase64`, native in current engines; older ones take the library's decoder. */
type FromBase64 = (text: string, options: { alphabet: 'base64url' }) => Uint8Array<ArrayBuffer>

function decode(text: string): Uint8Array | undefined {
  const native = (Uint8Array as unknown as { fromBase64?: FromBase64 }).fromBase64
  return typeof native === 'function' ? native(text, { alphabet: 'base64url' }) : decodeBase64urlBytes(text)
}

export function automaticWasm(): AutomaticWasm {
  const bytes = decode(CARACAL_WASM_BASE64URL)
  if (bytes === undefined) return { kind: 'none', broken: true, reason: 'the inline caracal.wasm does not decode' }
  return { kind: 'later', source: Promise.resolve(bytes), hint: '' }
}
