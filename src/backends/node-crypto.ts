/**
 * `#node-crypto` everywhere but Node, Bun and Deno (package.json `imports`, README "Runtimes"):
 * nothing. `node:crypto` is never imported under the workerd, browser and default conditions —
 * workerd's `nodejs_compat` has one whose `verify` throws on ES256 keys — so their backends are
 * wasm and noble.
 */
import type { SignatureBackend } from './types.js'

export const nodeCryptoBackend: SignatureBackend | undefined = undefined
export const nodeCryptoSha256: ((message: Uint8Array) => Uint8Array) | undefined = undefined
export const nodeCryptoMissing: string | undefined =
  'node:crypto is used only under the node, bun and deno conditions (README "Runtimes")'
