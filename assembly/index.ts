// The raw pointer API of the wasm backend (src/backends/wasm.ts). Only numbers cross the boundary:
// the host copies bytes into the static buffers below and calls in; nothing is allocated per call.
import { shaFinal, shaInit, shaUpdate } from './sha256'
import { fadd, fmul, fsqr, fsub } from './p256-field'

export { ecImport, ecFree, ecVerify } from './p256'
export { rsaImport, rsaFree, rsaVerify } from './rsa'

/** Input staging buffer: message chunks for SHA-256, then the signature or key bytes. */
export const IO_BYTES: usize = 16384
const IO: usize = memory.data(16384, 16)

export function ioPtr(): usize {
  return IO
}

export function hashStart(): void {
  shaInit()
}

/** Feeds `len` bytes at IO to SHA-256. */
export function hashUpdate(len: usize): void {
  shaUpdate(IO, len)
}

/** Writes the SHA-256 digest of what was fed to IO[0..32) (tests compare it with node:crypto). */
export function hashDigest(): void {
  shaFinal(IO)
}

/** Field and scalar operations on 32-byte little-endian operands in IO, for the tests. */
export function fieldOp(op: i32): void {
  if (op == 0) fmul(IO, IO + 32, IO + 64)
  else if (op == 1) fsqr(IO, IO + 32)
  else if (op == 2) fadd(IO, IO + 32, IO + 64)
  else if (op == 3) fsub(IO, IO + 32, IO + 64)
}

