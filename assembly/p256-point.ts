// P-256 point arithmetic shared by verification (assembly/p256.ts) and the tables it reads
// (assembly/p256-tables.ts): Jacobian doubling, mixed addition of an affine point, and Montgomery's
// batch conversion of Jacobian points to affine form. Field elements are 8 little-endian 32-bit
// limbs in plain (not Montgomery) form; assembly/p256-field.ts reduces by the NIST special form.
import { fadd, fmul, fsqr, fsub } from './p256-field'

export const AFFINE: usize = 64 // x, y: 32 bytes each
export const JACOBIAN: usize = 96 // X, Y, Z

// Little-endian 32-bit limbs.
export const P: usize = memory.data<u32>([0xffffffff, 0xffffffff, 0xffffffff, 0, 0, 0, 1, 0xffffffff])
const P_MINUS_2: usize = memory.data<u32>([0xfffffffd, 0xffffffff, 0xffffffff, 0, 0, 0, 1, 0xffffffff])
export const B: usize = memory.data<u32>([0x27d2604b, 0x3bce3c3e, 0xcc53b0f6, 0x651d06b0, 0x769886bc, 0xb3ebbd55, 0xaa3a93e7, 0x5ac635d8])
export const GX: usize = memory.data<u32>([0xd898c296, 0xf4a13945, 0x2deb33a0, 0x77037d81, 0x63a440f2, 0xf8bce6e5, 0xe12c4247, 0x6b17d1f2])
export const GY: usize = memory.data<u32>([0x37bf51f5, 0xcbb64068, 0x6b315ece, 0x2bce3357, 0x7c0f9e16, 0x8ee7eb4a, 0xfe1a7f9b, 0x4fe342e2])
export const ZERO: usize = memory.data(32, 16)
export const ONE: usize = memory.data<u32>([1, 0, 0, 0, 0, 0, 0, 0])

// Field temporaries of pdouble and madd (T7 also of finv). Callers keep nothing in them.
export const T1: usize = memory.data(32, 16)
export const T2: usize = memory.data(32, 16)
const T3: usize = memory.data(32, 16)
const T4: usize = memory.data(32, 16)
const T5: usize = memory.data(32, 16)
const T6: usize = memory.data(32, 16)
const T7: usize = memory.data(32, 16)

export function feq(a: usize, b: usize): bool {
  return load<u64>(a, 0) == load<u64>(b, 0) && load<u64>(a, 8) == load<u64>(b, 8) &&
    load<u64>(a, 16) == load<u64>(b, 16) && load<u64>(a, 24) == load<u64>(b, 24)
}

function fzero(a: usize): bool {
  return (load<u64>(a, 0) | load<u64>(a, 8) | load<u64>(a, 16) | load<u64>(a, 24)) == 0
}

/** r = a⁻¹ mod p (Fermat); only used while converting to affine form, once per batch. */
function finv(r: usize, a: usize): void {
  memory.copy(T7, a, 32)
  memory.copy(r, ONE, 32)
  for (let i = 255; i >= 0; i--) {
    fsqr(r, r)
    if (((load<u32>(P_MINUS_2 + (<usize>(i >> 5) << 2)) >>> <u32>(i & 31)) & 1) != 0) fmul(r, r, T7)
  }
}

/** Jacobian doubling in place, a = -3 (dbl-2001-b). */
export function pdouble(pt: usize): void {
  const X = pt, Y = pt + 32, Z = pt + 64
  fsqr(T1, Z) // delta
  fsqr(T2, Y) // gamma
  fmul(T3, X, T2) // beta
  fsub(T4, X, T1)
  fadd(T5, X, T1)
  fmul(T4, T4, T5)
  fadd(T5, T4, T4)
  fadd(T4, T5, T4) // alpha = 3(X - delta)(X + delta)
  fadd(T5, Y, Z)
  fsqr(T5, T5)
  fsub(T5, T5, T2)
  fsub(Z, T5, T1) // Z3 = (Y + Z)² - gamma - delta
  fadd(T3, T3, T3)
  fadd(T3, T3, T3) // 4 beta
  fsqr(T5, T4)
  fsub(T5, T5, T3)
  fsub(X, T5, T3) // X3 = alpha² - 8 beta
  fsub(T3, T3, X)
  fmul(T3, T4, T3)
  fsqr(T2, T2)
  fadd(T2, T2, T2)
  fadd(T2, T2, T2)
  fadd(T2, T2, T2) // 8 gamma²
  fsub(Y, T3, T2) // Y3 = alpha(4 beta - X3) - 8 gamma²
}

/** pt += (qx, qy) for a finite Jacobian pt; false when the sum is the point at infinity. */
export function madd(pt: usize, qx: usize, qy: usize): bool {
  const X = pt, Y = pt + 32, Z = pt + 64
  fsqr(T1, Z)
  fmul(T2, qx, T1) // U2
  fmul(T3, Z, T1)
  fmul(T3, qy, T3) // S2
  fsub(T2, T2, X) // H
  fsub(T3, T3, Y) // r
  if (fzero(T2)) {
    if (fzero(T3)) {
      pdouble(pt)
      return true
    }
    return false
  }
  fsqr(T4, T2) // HH
  fmul(T5, T2, T4) // HHH
  fmul(T6, X, T4) // V
  fmul(Z, Z, T2)
  fsqr(T7, T3)
  fsub(T7, T7, T5)
  fsub(T7, T7, T6)
  fsub(X, T7, T6) // X3 = r² - HHH - 2V
  fsub(T6, T6, X)
  fmul(T6, T3, T6)
  fmul(T5, Y, T5)
  fsub(Y, T6, T5) // Y3 = r(V - X3) - Y1·HHH
  return true
}

/** The most points one `toAffine` call converts (the table builder's chunk, assembly/p256-tables.ts). */
export const BATCH_MAX: usize = 512

const PREFIX: usize = memory.data(<i32>BATCH_MAX * 32, 16)
const INV: usize = memory.data(32, 16)
const ZI: usize = memory.data(32, 16)
const ZZ: usize = memory.data(32, 16)

/**
 * Writes `count` (≤ BATCH_MAX) finite Jacobian points, `stride` points apart from `src`, in affine
 * form to `out` (contiguous). Montgomery's trick: one field inversion for the whole batch.
 */
export function toAffine(out: usize, src: usize, stride: usize, count: usize): void {
  const step = stride * JACOBIAN
  memory.copy(PREFIX, src + 64, 32)
  for (let i: usize = 1; i < count; i++) fmul(PREFIX + i * 32, PREFIX + (i - 1) * 32, src + i * step + 64)
  finv(INV, PREFIX + (count - 1) * 32)
  for (let i = <isize>count - 1; i >= 0; i--) {
    const pt = src + <usize>i * step
    if (i > 0) {
      fmul(ZI, INV, PREFIX + (<usize>i - 1) * 32)
      fmul(INV, INV, pt + 64)
    } else {
      memory.copy(ZI, INV, 32)
    }
    const o = out + <usize>i * AFFINE
    fsqr(ZZ, ZI)
    fmul(o, pt, ZZ)
    fmul(ZZ, ZZ, ZI)
    fmul(o + 32, pt + 32, ZZ)
  }
}
