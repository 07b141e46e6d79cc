// RSASSA-PKCS1-v1_5 verification with SHA-256 (RFC 8017 §8.2.2) for 2048–8192-bit moduli. The
// key is prepared once (limbs, -n⁻¹ mod 2^32, R² mod n); a verify is a Montgomery exponentiation by
// the public exponent and a byte comparison of the whole encoded block with the expected one.
import { MAX_LIMBS, cmp, fromBytes, montMul, montMulSimd, montR2, negInv32, toBytes } from './bignum'
import { slotAlloc, slotFree } from './heap'
import { shaFinal } from './sha256'

const HDR: usize = 16
const MAX_BYTES: usize = MAX_LIMBS * 4
const RSA_SLOTS: usize = 1
const SLOT_BYTES: usize = HDR + 2 * MAX_BYTES

// 16 bytes more than the largest modulus: the zero limbs above k that squaring reads.
const A: usize = memory.data(1024 + 16, 16)
const X: usize = memory.data(1024 + 16, 16)
const AM: usize = memory.data(1024 + 16, 16)
const EM: usize = memory.data(1024, 16)
const DIGEST: usize = memory.data(32, 16)

// DER of DigestInfo's AlgorithmIdentifier for SHA-256 with NULL parameters (RFC 8017 §9.2 note 1).
const DIGEST_INFO: usize = memory.data<u8>([
  0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
])
const DIGEST_INFO_LEN: usize = 19

/** Imports n (big-endian, `nLen` bytes at `nPtr`, no leading zero) and e; 0 when unusable. */
export function rsaImport(nPtr: usize, nLen: usize, e: u32): usize {
  if (nLen < 256 || nLen > MAX_BYTES || load<u8>(nPtr) == 0) return 0
  if ((load<u8>(nPtr + nLen - 1) & 1) == 0 || e < 3 || (e & 1) == 0) return 0
  const slot = slotAlloc(RSA_SLOTS, SLOT_BYTES)
  if (slot == 0) return 0
  // Limbs rounded up to a multiple of 4 for the SIMD rows: zero limbs on top change nothing.
  const k = ((nLen + 15) >> 4) << 2
  const n = slot + HDR
  fromBytes(n, nPtr, nLen, k)
  store<u32>(slot, <u32>k, 0)
  store<u32>(slot, negInv32(load<u32>(n)), 4)
  store<u32>(slot, e, 8)
  store<u32>(slot, <u32>nLen, 12)
  montR2(n + MAX_BYTES, n, k)
  return slot
}

/** Bytes of linear memory one imported RSA key holds (any size up to 8192 bits). */
export function rsaKeyBytes(): usize {
  return SLOT_BYTES
}

export function rsaFree(slot: usize): void {
  slotFree(RSA_SLOTS, slot)
}

/** The signature (`sigLen` bytes at `sigPtr`) against the SHA-256 state fed so far. */
export function rsaVerify(slot: usize, sigPtr: usize, sigLen: usize): bool {
  const k: usize = load<u32>(slot, 0)
  const mInv = load<u32>(slot, 4)
  const e = load<u32>(slot, 8)
  const nLen: usize = load<u32>(slot, 12)
  const n = slot + HDR
  const r2 = n + MAX_BYTES
  shaFinal(DIGEST)
  if (sigLen != nLen) return false
  fromBytes(A, sigPtr, sigLen, k)
  // RFC 8017 §5.2.2: the signature representative must be below the modulus.
  if (cmp(A, n, k) >= 0) return false
  // S stays in A; X runs in the Montgomery domain. e is odd, so the last step is a multiply: by the
  // plain S, which leaves the domain for free (xR·S·R⁻¹ = x·S).
  memory.fill(X + (k << 2), 0, 16)
  montMul(X, A, r2, n, mInv, k) // S·R mod n
  memory.copy(AM, X, k << 2)
  const top = 31 - clz<u32>(e)
  for (let i = top - 1; i >= 0; i--) {
    montMulSimd(X, X, X, n, mInv, k)
    if (((e >>> <u32>i) & 1) != 0) montMulSimd(X, X, i == 0 ? A : AM, n, mInv, k)
  }
  toBytes(EM, X, nLen)
  return encodedBlockMatches(nLen)
}

/** EM = 0x00 0x01 FF…FF 0x00 DigestInfo ‖ H, compared in full (never parsed). */
function encodedBlockMatches(len: usize): bool {
  const t = DIGEST_INFO_LEN + 32
  const psEnd = len - t - 1
  let diff: u32 = <u32>load<u8>(EM) | (<u32>load<u8>(EM, 1) ^ 1) | <u32>load<u8>(EM + psEnd)
  for (let i: usize = 2; i < psEnd; i++) diff |= <u32>load<u8>(EM + i) ^ 0xff
  for (let i: usize = 0; i < DIGEST_INFO_LEN; i++) diff |= <u32>(load<u8>(EM + psEnd + 1 + i) ^ load<u8>(DIGEST_INFO + i))
  for (let i: usize = 0; i < 32; i++) diff |= <u32>(load<u8>(EM + len - 32 + i) ^ load<u8>(DIGEST + i))
  return diff == 0
}
