// ECDSA P-256 verification (FIPS 186-4 §6.4.2) with fixed-base tables (docs/architecture.md "Backends").
//
// A scalar u is written in signed w-bit digits d_i in [-2^(w-1), 2^(w-1)], so that
// u·P = Σ d_i·(2^(w·i)·P). A table holds |d|·2^(w·i)·P in affine form for every window i and digit
// 1..2^(w-1): u1·G + u2·Q is then one mixed addition per nonzero digit (48 at most) and no
// doubling. The generator's table (w = 13, 5 MiB) is built once per process by the first EC
// import; the table of a public key Q (w = 10, 832 KiB) when the key is imported, and kept for as
// long as the key is. OpenSSL keeps none for Q: that is where this beats it. The result is checked
// as X == r·Z² (or (r + n)·Z²), without a field inversion, and s⁻¹ mod n comes from a
// variable-time almost-inverse (the signature is public) whose 2^-k rides on the scalar products.
import { addInPlace, cmp, fromBytes, isZero, montMul, montR2, negInv32 } from './bignum'
import { fadd, fmul, fsqr, fsub } from './p256-field'
import { slotAlloc, slotFree } from './heap'
import { shaFinal } from './sha256'

const AFFINE: usize = 64 // x, y: 32 bytes each
// Window widths: signed w-bit digits need 2^(w-1) entries per window and ceil(257/w) windows.
// The generator's table is built once per process, so it gets the wider window. Measured (verify
// alone, best of 7 × 20 000): w = 12: 22 windows, 28.7 µs, first import 52 ms, 2.75 MiB; w = 13:
// 20 windows, 28.1 µs, 83 ms, 5 MiB; w = 14: 19 windows, ~0.2 µs less again (within run-to-run
// noise), but 142 ms and 9.5 MiB. 13 keeps most of the gain at half of 14's memory and first-import
// time. Anything up to 14 works: JAC/PREFIX below are sized from G_BITS, digits are read 64 bits
// at a time (bit offset ≤ 7 + w ≤ 64), and U1/U2 have zero bytes past the top limb.
const G_BITS: u32 = 13
const Q_BITS: u32 = 10
function windowsOf(bits: u32): usize {
  return (256 + <usize>bits) / <usize>bits // ceil(257 / bits)
}
function entriesOf(bits: u32): usize {
  return <usize>1 << (bits - 1)
}
const Q_TABLE_BYTES: usize = windowsOf(Q_BITS) * entriesOf(Q_BITS) * AFFINE
const EC_SLOTS: usize = 0
const G_SLOT: usize = 2

// Little-endian 32-bit limbs.
const P: usize = memory.data<u32>([0xffffffff, 0xffffffff, 0xffffffff, 0, 0, 0, 1, 0xffffffff])
const P_MINUS_2: usize = memory.data<u32>([0xfffffffd, 0xffffffff, 0xffffffff, 0, 0, 0, 1, 0xffffffff])
const N: usize = memory.data<u32>([0xfc632551, 0xf3b9cac2, 0xa7179e84, 0xbce6faad, 0xffffffff, 0xffffffff, 0, 0xffffffff])
const B: usize = memory.data<u32>([0x27d2604b, 0x3bce3c3e, 0xcc53b0f6, 0x651d06b0, 0x769886bc, 0xb3ebbd55, 0xaa3a93e7, 0x5ac635d8])
const GX: usize = memory.data<u32>([0xd898c296, 0xf4a13945, 0x2deb33a0, 0x77037d81, 0x63a440f2, 0xf8bce6e5, 0xe12c4247, 0x6b17d1f2])
const GY: usize = memory.data<u32>([0x37bf51f5, 0xcbb64068, 0x6b315ece, 0x2bce3357, 0x7c0f9e16, 0x8ee7eb4a, 0xfe1a7f9b, 0x4fe342e2])
const ZERO: usize = memory.data(32, 16)
const ONE: usize = memory.data<u32>([1, 0, 0, 0, 0, 0, 0, 0])

// Field temporaries.
const T1: usize = memory.data(32, 16)
const T2: usize = memory.data(32, 16)
const T3: usize = memory.data(32, 16)
const T4: usize = memory.data(32, 16)
const T5: usize = memory.data(32, 16)
const T6: usize = memory.data(32, 16)
const T7: usize = memory.data(32, 16)

// Scalar temporaries (mod n).
const RN_R2: usize = memory.data(32, 16) // R² mod n, R = 2^256
let nInv: u32 = 0
const SR: usize = memory.data(32, 16)
const SS: usize = memory.data(32, 16)
const SE: usize = memory.data(32, 16)
const SW: usize = memory.data(32, 16)
// 40 bytes: digits are read 64 bits at a time past the top limb, which stays zero.
const U1: usize = memory.data(48, 16)
const U2: usize = memory.data(48, 16)
const RN: usize = memory.data(36, 16)
const DIGEST: usize = memory.data(32, 16)

// The accumulator of a verify (Jacobian X, Y, Z) and the gathered table entries it adds.
const ACC: usize = memory.data(96, 16)
const GATHER: usize = memory.data(2 * 33 * 64, 16)

// Table building: Jacobian multiples of one window's base, prefix products of their Z, sized from
// the widest window (G_BITS) so that widening G cannot overrun them into the heap (the tables).
const MAX_ENTRIES: i32 = 1 << (G_BITS - 1)
const JAC: usize = memory.data((MAX_ENTRIES + 1) * 96, 16)
const PREFIX: usize = memory.data((MAX_ENTRIES + 1) * 32, 16)
const BASE: usize = memory.data(64, 16)

let gTable: usize = 0

function feq(a: usize, b: usize): bool {
  return load<u64>(a, 0) == load<u64>(b, 0) && load<u64>(a, 8) == load<u64>(b, 8) &&
    load<u64>(a, 16) == load<u64>(b, 16) && load<u64>(a, 24) == load<u64>(b, 24)
}

function fzero(a: usize): bool {
  return (load<u64>(a, 0) | load<u64>(a, 8) | load<u64>(a, 16) | load<u64>(a, 24)) == 0
}

/** r = a⁻¹ mod p (Fermat); only used while building tables. */
function finv(r: usize, a: usize): void {
  memory.copy(T7, a, 32)
  memory.copy(r, ONE, 32)
  for (let i = 255; i >= 0; i--) {
    fsqr(r, r)
    if (((load<u32>(P_MINUS_2 + (<usize>(i >> 5) << 2)) >>> <u32>(i & 31)) & 1) != 0) fmul(r, r, T7)
  }
}

/** Jacobian doubling in place, a = -3 (dbl-2001-b). */
function pdouble(pt: usize): void {
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
function madd(pt: usize, qx: usize, qy: usize): bool {
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

/** Fills `table` with d·2^(bits·i)·(x, y), affine, for every window i and d in 1..2^(bits-1). */
function buildTable(table: usize, x: usize, y: usize, bits: u32): void {
  const windows = windowsOf(bits)
  const entries = entriesOf(bits)
  memory.copy(BASE, x, 32)
  memory.copy(BASE + 32, y, 32)
  for (let w: usize = 0; w < windows; w++) {
    memory.copy(JAC, BASE, 64)
    memory.copy(JAC + 64, ONE, 32)
    for (let j: usize = 1; j < entries; j++) {
      const pt = JAC + j * 96
      memory.copy(pt, pt - 96, 96)
      // j·B is never infinity: B has prime order n > 2^bits.
      madd(pt, BASE, BASE + 32)
    }
    const last = JAC + entries * 96
    memory.copy(last, last - 96, 96)
    pdouble(last) // 2^bits·B, the next window's base
    // Batch inversion (Montgomery's trick): one field inversion for the whole window.
    memory.copy(PREFIX, JAC + 64, 32)
    for (let j: usize = 1; j <= entries; j++) fmul(PREFIX + j * 32, PREFIX + (j - 1) * 32, JAC + j * 96 + 64)
    finv(T6, PREFIX + entries * 32) // T6 is safe: finv uses T7, fmul/fsqr none
    for (let j = <isize>entries; j >= 0; j--) {
      const pt = JAC + <usize>j * 96
      const zi = U1 // scratch: scalars are not in use while building
      if (j > 0) {
        fmul(zi, T6, PREFIX + (<usize>j - 1) * 32)
        fmul(T6, T6, pt + 64)
      } else {
        memory.copy(zi, T6, 32)
      }
      const out = <usize>j < entries ? table + (w * entries + <usize>j) * AFFINE : BASE
      fsqr(U2, zi)
      fmul(out, pt, U2)
      fmul(U2, U2, zi)
      fmul(out + 32, pt + 32, U2)
    }
  }
}

function ensureGenerator(): bool {
  if (gTable != 0) return true
  const t = slotAlloc(G_SLOT, windowsOf(G_BITS) * entriesOf(G_BITS) * AFFINE)
  if (t == 0) return false
  nInv = negInv32(load<u32>(N))
  buildTable(t, GX, GY, G_BITS)
  montR2(RN_R2, N, 8)
  gTable = t
  return true
}

const QX: usize = memory.data(32, 16)
const QY: usize = memory.data(32, 16)

/** Imports the point (x, y), 32 big-endian bytes each; 0 when it is not on the curve. */
export function ecImport(xPtr: usize, yPtr: usize): usize {
  if (!ensureGenerator()) return 0
  fromBytes(QX, xPtr, 32, 8)
  fromBytes(QY, yPtr, 32, 8)
  if (cmp(QX, P, 8) >= 0 || cmp(QY, P, 8) >= 0) return 0
  // y² = x³ - 3x + b: a point off the curve would open an invalid-curve attack.
  fsqr(T1, QX)
  fmul(T1, T1, QX)
  fsub(T1, T1, QX)
  fsub(T1, T1, QX)
  fsub(T1, T1, QX)
  fadd(T1, T1, B)
  fsqr(T2, QY)
  if (!feq(T1, T2)) return 0
  const slot = slotAlloc(EC_SLOTS, Q_TABLE_BYTES)
  if (slot == 0) return 0
  buildTable(slot, QX, QY, Q_BITS)
  return slot
}

/** Bytes of linear memory one imported EC key holds (its table); `generator`: the G table, once. */
export function ecTableBytes(generator: bool): usize {
  return generator ? windowsOf(G_BITS) * entriesOf(G_BITS) * AFFINE : Q_TABLE_BYTES
}

export function ecFree(slot: usize): void {
  slotFree(EC_SLOTS, slot)
}

// n as 64-bit limbs, least significant first.
const N0: u64 = 0xf3b9cac2fc632551
const N1: u64 = 0xbce6faada7179e84
const N2: u64 = 0xffffffffffffffff
const N3: u64 = 0xffffffff00000000

// 2^256 mod n = 2^256 - n: the power of two 2^256 in almost-inverse corrections below.
const R_MOD_N: usize = memory.data<u32>([0x039cdaaf, 0x0c46353d, 0x58e8617b, 0x43190552, 0, 0, 0xffffffff, 0])
const POW2: usize = memory.data(32, 16)

/** POW2 = 2^j mod n for j in [0, 256] (2^j < n below 256: n > 2^255). */
function pow2ModN(j: i32): usize {
  if (j == 256) return R_MOD_N
  memory.fill(POW2, 0, 32)
  store<u32>(POW2 + (<usize>(j >> 5) << 2), <u32>1 << <u32>(j & 31))
  return POW2
}

/**
 * out ≡ a⁻¹·2^k (mod n), out < n, for a in [1, n-1]; returns k (0..512). Kaliski's "almost
 * inverse" with whole-word shifts (variable time: a is public). Invariants, all numbers ≥ 0:
 * x·a ≡ u·2^k, y·a ≡ -v·2^k (mod n), and x·v + y·u = n, so x, y ≤ n and x + y never overflows.
 * Halving u by 2^t doubles y by 2^t (one shift), where the plain binary method it replaces halved x
 * modulo n one bit at a time (a conditional add of n per bit); the 2^-k is folded into the
 * Montgomery multiplications that follow. Measured (verify alone, G w = 14): 27.2 → 24.3 µs, so
 * s⁻¹ went from ≈ 3 µs to a few tenths of one.
 */
function almostInvModN(out: usize, a: usize): i32 {
  let u0 = load<u64>(a, 0), u1 = load<u64>(a, 8), u2 = load<u64>(a, 16), u3 = load<u64>(a, 24)
  let v0 = N0, v1 = N1, v2 = N2, v3 = N3
  let x0: u64 = 1, x1: u64 = 0, x2: u64 = 0, x3: u64 = 0
  let y0: u64 = 0, y1: u64 = 0, y2: u64 = 0, y3: u64 = 0
  let k: i32 = 0
  let uTurn = true
  for (;;) {
    if (uTurn) {
      // u /= 2^t, y *= 2^t, k += t (u is never 0: gcd(a, n) = 1)
      while ((u0 & 1) == 0) {
        if (u0 == 0) {
          u0 = u1; u1 = u2; u2 = u3; u3 = 0
          y3 = y2; y2 = y1; y1 = y0; y0 = 0
          k += 64
        } else {
          const t = ctz<u64>(u0) // 1..63
          const r = 64 - t
          u0 = (u0 >> t) | (u1 << r); u1 = (u1 >> t) | (u2 << r); u2 = (u2 >> t) | (u3 << r); u3 >>= t
          y3 = (y3 << t) | (y2 >> r); y2 = (y2 << t) | (y1 >> r); y1 = (y1 << t) | (y0 >> r); y0 <<= t
          k += <i32>t
        }
      }
      if (u0 == 1 && (u1 | u2 | u3) == 0) {
        store<u64>(out, x0, 0); store<u64>(out, x1, 8); store<u64>(out, x2, 16); store<u64>(out, x3, 24)
        return k
      }
    } else {
      while ((v0 & 1) == 0) {
        if (v0 == 0) {
          v0 = v1; v1 = v2; v2 = v3; v3 = 0
          x3 = x2; x2 = x1; x1 = x0; x0 = 0
          k += 64
        } else {
          const t = ctz<u64>(v0)
          const r = 64 - t
          v0 = (v0 >> t) | (v1 << r); v1 = (v1 >> t) | (v2 << r); v2 = (v2 >> t) | (v3 << r); v3 >>= t
          x3 = (x3 << t) | (x2 >> r); x2 = (x2 << t) | (x1 >> r); x1 = (x1 << t) | (x0 >> r); x0 <<= t
          k += <i32>t
        }
      }
      if (v0 == 1 && (v1 | v2 | v3) == 0) {
        // a⁻¹·2^k ≡ -y: n - y, with 1 ≤ y ≤ n.
        const d0 = N0 - y0; const b0 = <u64>(N0 < y0)
        const d1a = N1 - y1; const d1 = d1a - b0; const b1 = <u64>(N1 < y1) | <u64>(d1a < b0)
        const d2a = N2 - y2; const d2 = d2a - b1; const b2 = <u64>(N2 < y2) | <u64>(d2a < b1)
        store<u64>(out, d0, 0); store<u64>(out, d1, 8); store<u64>(out, d2, 16); store<u64>(out, N3 - y3 - b2, 24)
        return k
      }
    }
    // Both odd and unequal: subtract the smaller from the larger, add the coefficients (no mod n).
    const uGeV = u3 != v3 ? u3 > v3 : u2 != v2 ? u2 > v2 : u1 != v1 ? u1 > v1 : u0 >= v0
    if (uGeV) {
      const d0 = u0 - v0; const b0 = <u64>(u0 < v0)
      const d1a = u1 - v1; const d1 = d1a - b0; const b1 = <u64>(u1 < v1) | <u64>(d1a < b0)
      const d2a = u2 - v2; const d2 = d2a - b1; const b2 = <u64>(u2 < v2) | <u64>(d2a < b1)
      u3 = u3 - v3 - b2; u0 = d0; u1 = d1; u2 = d2
      const s0 = x0 + y0; const c0 = <u64>(s0 < x0)
      const s1a = x1 + y1; const s1 = s1a + c0; const c1 = <u64>(s1a < x1) | <u64>(s1 < s1a)
      const s2a = x2 + y2; const s2 = s2a + c1; const c2 = <u64>(s2a < x2) | <u64>(s2 < s2a)
      x0 = s0; x1 = s1; x2 = s2; x3 = x3 + y3 + c2
      uTurn = true
    } else {
      const d0 = v0 - u0; const b0 = <u64>(v0 < u0)
      const d1a = v1 - u1; const d1 = d1a - b0; const b1 = <u64>(v1 < u1) | <u64>(d1a < b0)
      const d2a = v2 - u2; const d2 = d2a - b1; const b2 = <u64>(v2 < u2) | <u64>(d2a < b1)
      v3 = v3 - u3 - b2; v0 = d0; v1 = d1; v2 = d2
      const s0 = y0 + x0; const c0 = <u64>(s0 < y0)
      const s1a = y1 + x1; const s1 = s1a + c0; const c1 = <u64>(s1a < y1) | <u64>(s1 < s1a)
      const s2a = y2 + x2; const s2 = s2a + c1; const c2 = <u64>(s2a < y2) | <u64>(s2 < s2a)
      y0 = s0; y1 = s1; y2 = s2; y3 = y3 + x3 + c2
      uTurn = false
    }
  }
  return -1 // not reached: the loop ends at u = 1 or v = 1
}

/** Appends the table entries of u's signed digits to GATHER; returns the new count. */
function gather(table: usize, bits: u32, u: usize, count: usize): usize {
  const windows = windowsOf(bits)
  const entries = entriesOf(bits)
  const mask: u64 = (<u64>1 << bits) - 1
  const half: i32 = <i32>entries
  const full: i32 = half << 1
  let carry: i32 = 0
  for (let i: usize = 0; i < windows; i++) {
    const bit = i * <usize>bits
    let d: i32 = <i32>((load<u64>(u + (bit >> 3)) >> <u64>(bit & 7)) & mask) + carry
    if (d > half) {
      d -= full
      carry = 1
    } else {
      carry = 0
    }
    if (d != 0) {
      const neg = d < 0
      const m: usize = <usize>(neg ? -d : d)
      const src = table + (i * entries + m - 1) * AFFINE
      const dst = GATHER + count * AFFINE
      memory.copy(dst, src, 32)
      if (neg) fsub(dst + 32, ZERO, src + 32)
      else memory.copy(dst + 32, src + 32, 32)
      count++
    }
  }
  return count
}

/** Is (r, s) at `sigPtr` (64 bytes) a signature by the key in `slot` on the SHA-256 fed so far? */
export function ecVerify(slot: usize, sigPtr: usize): bool {
  shaFinal(DIGEST)
  return ecVerifyDigest(slot, DIGEST, sigPtr)
}

/** ECDSA over a SHA-256 digest computed by the host (`auto` may hash with node:crypto). */
export function ecVerifyDigest(slot: usize, digestPtr: usize, sigPtr: usize): bool {
  fromBytes(SR, sigPtr, 32, 8)
  fromBytes(SS, sigPtr + 32, 32, 8)
  if (isZero(SR, 8) || isZero(SS, 8) || cmp(SR, N, 8) >= 0 || cmp(SS, N, 8) >= 0) return false
  fromBytes(SE, digestPtr, 32, 8) // a 256-bit hash needs no truncation for a 256-bit order
  // SW = s⁻¹·2^k. montMul(a, b) = a·b·2^-256 mod n, so two of them with 2^(512-k) give e·s⁻¹
  // when k ≥ 256 (the common case): no more multiplications than with an exact inverse.
  const k = almostInvModN(SW, SS)
  if (k >= 256) {
    const c = pow2ModN(512 - k)
    montMul(U1, SE, SW, N, nInv, 8) // e·w·2^k·R⁻¹ (e < R, w < n)
    montMul(U1, U1, c, N, nInv, 8) // e·w mod n
    montMul(U2, SR, SW, N, nInv, 8)
    montMul(U2, U2, c, N, nInv, 8)
  } else {
    montMul(SW, SW, pow2ModN(256 - k), N, nInv, 8) // w = s⁻¹ exactly
    montMul(U1, SE, SW, N, nInv, 8) // e·w·R⁻¹ (e < R, w < n)
    montMul(U1, U1, RN_R2, N, nInv, 8) // e·w mod n
    montMul(U2, SR, SW, N, nInv, 8)
    montMul(U2, U2, RN_R2, N, nInv, 8)
  }
  store<u64>(U1, 0, 32)
  store<u64>(U2, 0, 32)
  let count = gather(gTable, G_BITS, U1, 0)
  count = gather(slot, Q_BITS, U2, count)
  let inf = true
  for (let i: usize = 0; i < count; i++) {
    const e = GATHER + i * AFFINE
    if (inf) {
      memory.copy(ACC, e, 64)
      memory.copy(ACC + 64, ONE, 32)
      inf = false
    } else if (!madd(ACC, e, e + 32)) {
      inf = true
    }
  }
  if (inf) return false
  // x(R) mod n == r, without inverting Z: X == r·Z², or X == (r + n)·Z² when r + n < p.
  fsqr(T1, ACC + 64)
  fmul(T2, SR, T1)
  if (feq(T2, ACC)) return true
  memory.copy(RN, SR, 32)
  if (addInPlace(RN, N, 8) != 0 || cmp(RN, P, 8) >= 0) return false
  fmul(T2, RN, T1)
  return feq(T2, ACC)
}

