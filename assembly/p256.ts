// ECDSA P-256 verification (FIPS 186-4 §6.4.2), docs/architecture.md "Backends".
//
// u1·G + u2·Q is computed one of two ways. Once the key's and the generator's fixed-base tables are
// complete (assembly/p256-tables.ts), it is one mixed addition per nonzero digit (46 at most) and
// no doubling: OpenSSL keeps no table for Q, and that is where this beats it. Before, for a key
// that has not proved hot or while its tables are being built, it is Straus' interleaved
// double-and-add over width-w NAF digits of both scalars with their odd multiples: 256 doublings
// shared by the two, nothing to build. The result is checked as X == r·Z² (or (r + n)·Z²),
// without a field inversion, and s⁻¹ mod n comes from a variable-time almost-inverse (the
// signature is public) whose 2^-k rides on the scalar products.
import { addInPlace, cmp, fromBytes, isZero, montMul, montR2, negInv32 } from './bignum'
import { fadd, fmul, fsqr, fsub } from './p256-field'
import { AFFINE, B, ONE, P, T1, T2, ZERO, feq, madd, pdouble } from './p256-point'
import {
  G_BITS, G_NAF, G_ODD, G_TABLE_BYTES, KEY_BYTES, KEY_ODD, Q_BITS, Q_NAF, Q_TABLE_BYTES, afterVerify,
  ensureGeneratorOdd, gather, generatorTable, keyFree, keyImport, keyTable,
} from './p256-tables'
import { shaFinal } from './sha256'

const N: usize = memory.data<u32>([0xfc632551, 0xf3b9cac2, 0xa7179e84, 0xbce6faad, 0xffffffff, 0xffffffff, 0, 0xffffffff])

// Scalar temporaries (mod n).
const RN_R2: usize = memory.data(32, 16) // R² mod n, R = 2^256
let nInv: u32 = 0
const SR: usize = memory.data(32, 16)
const SS: usize = memory.data(32, 16)
const SE: usize = memory.data(32, 16)
const SW: usize = memory.data(32, 16)
// 48 bytes: digits are read 64 bits at a time past the top limb, which stays zero.
const U1: usize = memory.data(48, 16)
const U2: usize = memory.data(48, 16)
const RN: usize = memory.data(36, 16)
const DIGEST: usize = memory.data(32, 16)

// The accumulator of a verify (Jacobian X, Y, Z); the gathered table entries it adds; the NAF
// digits of u1 and u2 (one per bit, 257 bits: a digit can carry past the top one); a negated y.
const ACC: usize = memory.data(96, 16)
const GATHER: usize = memory.data(2 * 33 * 64, 16)
const NAF1: usize = memory.data(260, 16)
const NAF2: usize = memory.data(260, 16)
const NEG_Y: usize = memory.data(32, 16)

let scalarsReady = false

const QX: usize = memory.data(32, 16)
const QY: usize = memory.data(32, 16)

/** Imports the point (x, y), 32 big-endian bytes each; 0 when it is not on the curve. */
export function ecImport(xPtr: usize, yPtr: usize): usize {
  if (!scalarsReady) {
    nInv = negInv32(load<u32>(N))
    montR2(RN_R2, N, 8)
    ensureGeneratorOdd()
    scalarsReady = true
  }
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
  return keyImport(QX, QY)
}

/**
 * Bytes of linear memory: 0, an imported EC key's record; 1, the table a key adds once hot;
 * 2, the generator's table (once per process, when the first key is hot).
 */
export function ecTableBytes(which: i32): usize {
  return which == 0 ? KEY_BYTES : which == 1 ? Q_TABLE_BYTES : G_TABLE_BYTES
}

export function ecFree(slot: usize): void {
  keyFree(slot)
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

/**
 * Width-w NAF of the 256-bit scalar at k (zero bytes above): digits at out[0..257), odd or 0, below
 * 2^(w-1) in magnitude, nonzero ones at least w apart; the index after the top nonzero digit.
 */
function wnaf(out: usize, k: usize, w: u32): i32 {
  memory.fill(out, 0, 257)
  let carry: u32 = 0
  let top: i32 = 0
  let bit: u32 = 0
  while (bit < 257) {
    if (<u32>((load<u8>(k + (bit >> 3)) >> (bit & 7)) & 1) == carry) {
      bit++
      continue
    }
    const now = w < 257 - bit ? w : 257 - bit
    let digit = <i32>((load<u64>(k + (bit >> 3)) >> <u64>(bit & 7)) & ((<u64>1 << now) - 1)) + <i32>carry
    carry = <u32>(digit >> (w - 1)) & 1
    digit -= <i32>(carry << w)
    store<i8>(out + bit, <i8>digit)
    top = <i32>bit + 1
    bit += now
  }
  return top
}

/** ACC += d·P for an odd digit d, P's odd multiples at `odd`; the new `inf` (ACC at infinity). */
function addOdd(odd: usize, d: i32, inf: bool): bool {
  const e = odd + (<usize>((d < 0 ? -d : d) >> 1)) * AFFINE
  let y = e + 32
  if (d < 0) {
    fsub(NEG_Y, ZERO, y)
    y = NEG_Y
  }
  if (inf) {
    memory.copy(ACC, e, 32)
    memory.copy(ACC + 32, y, 32)
    memory.copy(ACC + 64, ONE, 32)
    return false
  }
  return !madd(ACC, e, y)
}

/** ACC = u1·G + u2·Q by interleaved double-and-add; true when it is the point at infinity. */
function straus(key: usize): bool {
  const top1 = wnaf(NAF1, U1, G_NAF)
  const top2 = wnaf(NAF2, U2, Q_NAF)
  let inf = true
  for (let i = (top1 > top2 ? top1 : top2) - 1; i >= 0; i--) {
    if (!inf) pdouble(ACC)
    const d1 = <i32>load<i8>(NAF1 + <usize>i)
    if (d1 != 0) inf = addOdd(G_ODD, d1, inf)
    const d2 = <i32>load<i8>(NAF2 + <usize>i)
    if (d2 != 0) inf = addOdd(key + KEY_ODD, d2, inf)
  }
  return inf
}

/** ACC = u1·G + u2·Q from the two fixed-base tables; true when it is the point at infinity. */
function fixedBase(gTable: usize, qTable: usize): bool {
  let count = gather(gTable, G_BITS, U1, GATHER, 0)
  count = gather(qTable, Q_BITS, U2, GATHER, count)
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
  return inf
}

/** Is (r, s) at `sigPtr` (64 bytes) a signature by the key in `slot` on the SHA-256 fed so far? */
export function ecVerify(slot: usize, sigPtr: usize): bool {
  shaFinal(DIGEST)
  return ecVerifyDigest(slot, DIGEST, sigPtr)
}

/** ECDSA over a SHA-256 digest computed by the host (`auto` may hash with node:crypto). */
export function ecVerifyDigest(slot: usize, digestPtr: usize, sigPtr: usize): bool {
  const valid = check(slot, digestPtr, sigPtr)
  afterVerify(slot)
  return valid
}

function check(slot: usize, digestPtr: usize, sigPtr: usize): bool {
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
  const gTable = generatorTable()
  const qTable = keyTable(slot)
  if (gTable != 0 && qTable != 0 ? fixedBase(gTable, qTable) : straus(slot)) return false
  // x(R) mod n == r, without inverting Z: X == r·Z², or X == (r + n)·Z² when r + n < p.
  fsqr(T1, ACC + 64)
  fmul(T2, SR, T1)
  if (feq(T2, ACC)) return true
  memory.copy(RN, SR, 32)
  if (addInPlace(RN, N, 8) != 0 || cmp(RN, P, 8) >= 0) return false
  fmul(T2, RN, T1)
  return feq(T2, ACC)
}
