// The raw pointer API of the wasm backend (src/backends/wasm.ts). Only numbers cross the boundary:
// the host copies bytes into the staging buffer below and calls in; nothing is allocated per call.
// Keys live in slots of linear memory (assembly/heap.ts) from import until release.
import { b64uDecode } from './base64url'
import { fadd, fmul, fsqr, fsub } from './p256-field'
import { ecVerify } from './p256'
import { rsaVerify } from './rsa'
import { shaFinal, shaInit, shaUpdate } from './sha256'
import { BUILD_ID } from './build-id'

export { ecImport, ecFree, ecVerify, ecVerifyDigest, ecTableBytes } from './p256'
export { ecSchedule, ecBuild, ecStage } from './p256-tables'
export { rsaImport, rsaFree, rsaVerify, rsaKeyBytes } from './rsa'
export {
  mandateVerify, mandateTokenPtr, mandateTokenBytes, mandatePolicyBytes, mandatePayloadPtr, mandatePolicyPtr, mandateDigestPtr, mandateSpansPtr,
  mandateNumbersPtr, mandateReasonClaim, mandateClaimIndex,
} from './mandate'

/** The hash of the sources this module was built from: the host refuses a module that is not its own. */
export function buildId(): u32 {
  return BUILD_ID
}

/** The staging buffer: a message (or a chunk of a long one) followed by its signature, or key bytes. */
const IO_BYTES: usize = 16384
const IO: usize = memory.data(16384, 16)

export function ioPtr(): usize {
  return IO
}

export function ioBytes(): usize {
  return IO_BYTES
}

/** One crossing for the common case: the message at IO[0..msgLen), the 64-byte r‖s right after. */
export function ecVerifyMessage(slot: usize, msgLen: usize): bool {
  shaInit()
  shaUpdate(IO, msgLen)
  return ecVerify(slot, IO + msgLen)
}

/** As ecVerifyMessage, for RSA: `sigLen` signature bytes right after the message. */
export function rsaVerifyMessage(slot: usize, msgLen: usize, sigLen: usize): bool {
  shaInit()
  shaUpdate(IO, msgLen)
  return rsaVerify(slot, IO + msgLen, sigLen)
}

/**
 * Strict base64url: `len` characters at IO decoded in place (the output is never longer than the
 * input, and it is written behind the reading position). The byte count, or -1 when not canonical.
 */
export function base64urlDecode(len: usize): i32 {
  return b64uDecode(IO, len, IO)
}

// Messages longer than the staging buffer are hashed in chunks first, then ecVerify/rsaVerify
// finish the digest and check the signature placed in IO.

export function hashStart(): void {
  shaInit()
}

/** Feeds `len` bytes at IO to SHA-256. */
export function hashUpdate(len: usize): void {
  shaUpdate(IO, len)
}

/** For the tests: the SHA-256 digest of what was fed, to IO[0..32). */
export function hashDigest(): void {
  shaFinal(IO)
}

/** For the tests: r = a op b mod p on 32-byte little-endian operands, r at IO, a at IO+32, b at IO+64. */
export function fieldOp(op: i32): void {
  if (op == 0) fmul(IO, IO + 32, IO + 64)
  else if (op == 1) fsqr(IO, IO + 32)
  else if (op == 2) fadd(IO, IO + 32, IO + 64)
  else if (op == 3) fsub(IO, IO + 32, IO + 64)
}
