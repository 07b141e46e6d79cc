/**
 * `#node-crypto` on Node, Bun and Deno (package.json `imports`, README "Runtimes"): OpenSSL's
 * backend and one-shot SHA-256. Whether a runtime's `node:crypto` really verifies is for `auto`'s
 * known-answer test to find out (src/backends/known-answers.ts), not for this module to assume.
 */
import { nodeBackend, nodeSha256 } from './node.js'
import type { SignatureBackend } from './types.js'

export const nodeCryptoBackend: SignatureBackend | undefined = nodeBackend
export const nodeCryptoSha256: ((message: Uint8Array) => Uint8Array) | undefined = nodeSha256
export const nodeCryptoMissing: string | undefined = undefined
