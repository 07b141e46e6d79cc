// Unsigned multi-precision integers as little-endian 32-bit limbs at a pointer, with Montgomery
// multiplication (R = 2^(32k)) for any odd modulus of k limbs: RSA moduli and the P-256 order n.

/** Enough limbs for an 8192-bit modulus. */
export const MAX_LIMBS: usize = 256

const T: usize = memory.data((256 + 2) * 4, 16)

/** -m⁻¹ mod 2^32 for odd m0 (Newton: each step doubles the correct low bits). */
export function negInv32(m0: u32): u32 {
  let x: u32 = m0 // correct to 3 bits for odd m0
  x *= 2 - m0 * x
  x *= 2 - m0 * x
  x *= 2 - m0 * x
  x *= 2 - m0 * x
  return 0 - x
}

/** -1, 0 or 1 as a <, =, > b. */
export function cmp(a: usize, b: usize, k: usize): i32 {
  for (let i = <isize>k - 1; i >= 0; i--) {
    const x = load<u32>(a + (<usize>i << 2))
    const y = load<u32>(b + (<usize>i << 2))
    if (x != y) return x < y ? -1 : 1
  }
  return 0
}

export function isZero(a: usize, k: usize): bool {
  for (let i: usize = 0; i < k; i++) if (load<u32>(a + (i << 2)) != 0) return false
  return true
}

/** a -= b; returns the borrow (0 or 1). */
export function subInPlace(a: usize, b: usize, k: usize): u32 {
  let t: i64 = 0
  for (let i: usize = 0; i < k; i++) {
    const x: u32 = load<u32>(a + (i << 2))
    const y: u32 = load<u32>(b + (i << 2))
    t += <i64>x - <i64>y
    store<u32>(a + (i << 2), <u32>t)
    t >>= 32
  }
  return <u32>(t & 1)
}

/** a += b; returns the carry (0 or 1). */
export function addInPlace(a: usize, b: usize, k: usize): u32 {
  let t: u64 = 0
  for (let i: usize = 0; i < k; i++) {
    const x: u32 = load<u32>(a + (i << 2))
    const y: u32 = load<u32>(b + (i << 2))
    t += <u64>x + <u64>y
    store<u32>(a + (i << 2), <u32>t)
    t >>= 32
  }
  return <u32>t
}

/** r = a·b·R⁻¹ mod m, for a·b < R·m (so a < R, b < m suffices). r may alias a or b. */
export function montMul(r: usize, a: usize, b: usize, m: usize, mInv: u32, k: usize): void {
  memory.fill(T, 0, (k + 1) << 2)
  const a0: u32 = load<u32>(a)
  const m0: u32 = load<u32>(m)
  for (let i: usize = 0; i < k; i++) {
    const bi32: u32 = load<u32>(b + (i << 2))
    const bi: u64 = <u64>bi32
    const t0: u32 = load<u32>(T)
    let s: u64 = <u64>t0 + <u64>a0 * bi
    let c1: u64 = s >> 32
    const q: u32 = <u32>s * mInv
    const qq: u64 = <u64>q
    s = (s & 0xffffffff) + qq * <u64>m0
    let c2: u64 = s >> 32
    for (let j: usize = 1; j < k; j++) {
      const tj: u32 = load<u32>(T + (j << 2))
      const aj: u32 = load<u32>(a + (j << 2))
      const mj: u32 = load<u32>(m + (j << 2))
      s = <u64>tj + <u64>aj * bi + c1
      c1 = s >> 32
      s = (s & 0xffffffff) + qq * <u64>mj + c2
      c2 = s >> 32
      store<u32>(T + ((j - 1) << 2), <u32>s)
    }
    const tk: u32 = load<u32>(T + (k << 2))
    s = <u64>tk + c1 + c2
    store<u32>(T + ((k - 1) << 2), <u32>s)
    store<u32>(T + (k << 2), <u32>(s >> 32))
  }
  // T < 2m: one conditional subtraction makes it canonical.
  if (load<u32>(T + (k << 2)) != 0 || cmp(T, m, k) >= 0) subInPlace(T, m, k)
  memory.copy(r, T, k << 2)
}

/** out = R² mod m (R = 2^(32k)), by doubling 1 modulo m 2·32·k times; done once per key. */
export function montR2(out: usize, m: usize, k: usize): void {
  memory.fill(out, 0, k << 2)
  store<u32>(out, 1)
  const steps: usize = 64 * k
  for (let s: usize = 0; s < steps; s++) {
    const carry = addInPlace(out, out, k)
    if (carry != 0 || cmp(out, m, k) >= 0) subInPlace(out, m, k)
  }
}

/** Big-endian bytes (len ≤ 4k) into k limbs, zero-extended. */
export function fromBytes(dst: usize, src: usize, len: usize, k: usize): void {
  memory.fill(dst, 0, k << 2)
  for (let i: usize = 0; i < len; i++) {
    const byte: u32 = load<u8>(src + len - 1 - i)
    const at = dst + ((i >> 2) << 2)
    store<u32>(at, load<u32>(at) | (byte << (<u32>(i & 3) << 3)))
  }
}

/** The low `len` bytes of a k-limb number, big-endian. */
export function toBytes(dst: usize, src: usize, len: usize): void {
  for (let i: usize = 0; i < len; i++) {
    const w: u32 = load<u32>(src + ((i >> 2) << 2))
    store<u8>(dst + len - 1 - i, <u8>(w >>> (<u32>(i & 3) << 3)))
  }
}

// Column sums of a Montgomery product, 64 bits each, carried lazily: the products of a row do not
// wait on each other's carries, and two of them come from one SIMD multiply.
const COLS: usize = memory.data((512 + 8) * 8, 16)

/**
 * COLS[j] += x·src[j] for j < k (k a multiple of 4), lazily: 64-bit column sums, the high halves of
 * the products added one column up. Four products per step, two per SIMD multiply.
 */
// @ts-ignore: decorator
@inline
function addRow(col: usize, x: u32, src: usize, k: usize): void {
  const xv = i32x4.splat(x)
  const mask = i64x2.splat(0xffffffff)
  let hPrev = i64x2.splat(0)
  for (let j: usize = 0; j < k; j += 4) {
    const s = v128.load(src + (j << 2))
    const p0 = i64x2.extmul_low_i32x4_u(xv, s)
    const p1 = i64x2.extmul_high_i32x4_u(xv, s)
    const h0 = i64x2.shr_u(p0, 32)
    const h1 = i64x2.shr_u(p1, 32)
    const at = col + (j << 3)
    const c0 = v128.load(at)
    const c1 = v128.load(at, 16)
    v128.store(at, i64x2.add(i64x2.add(c0, v128.and(p0, mask)), v128.shuffle<u64>(hPrev, h0, 1, 2)))
    v128.store(at, i64x2.add(i64x2.add(c1, v128.and(p1, mask)), v128.shuffle<u64>(h0, h1, 1, 2)), 16)
    hPrev = h1
  }
  const top = col + (k << 3)
  store<u64>(top, load<u64>(top) + i64x2.extract_lane(hPrev, 1))
}

/**
 * r = a·b·R⁻¹ mod m for a, b < m, k a multiple of 4 (numbers zero-padded to k limbs). When a == b
 * the square is formed from the cross products a_i·a_j (i < j) doubled plus the squares a_i²:
 * a quarter fewer products. Limbs a[k..k+4) must be zero (rows of the square read past k).
 */
export function montMulSimd(r: usize, a: usize, b: usize, m: usize, mInv: u32, k: usize): void {
  const words = (k << 1) + 4
  memory.fill(COLS, 0, words << 3)
  if (a == b) {
    for (let i: usize = 0; i + 1 < k; i++) {
      const len = ((k - i - 1 + 3) >> 2) << 2
      addRow(COLS + (((i << 1) + 1) << 3), load<u32>(a + (i << 2)), a + ((i + 1) << 2), len)
    }
    for (let j: usize = 0; j < words; j += 2) {
      const at = COLS + (j << 3)
      v128.store(at, i64x2.shl(v128.load(at), 1))
    }
    for (let i: usize = 0; i < k; i++) {
      const ai32: u32 = load<u32>(a + (i << 2))
      const sq: u64 = <u64>ai32 * <u64>ai32
      const at = COLS + ((i << 1) << 3)
      store<u64>(at, load<u64>(at) + (sq & 0xffffffff))
      store<u64>(at, load<u64>(at, 8) + (sq >> 32), 8)
    }
  } else {
    for (let i: usize = 0; i < k; i++) addRow(COLS + (i << 3), load<u32>(a + (i << 2)), b, k)
  }
  for (let i: usize = 0; i < k; i++) {
    const base = COLS + (i << 3)
    const ci: u64 = load<u64>(base)
    store<u64>(base, ci & 0xffffffff)
    store<u64>(base + 8, load<u64>(base + 8) + (ci >> 32))
    const q: u32 = <u32>ci * mInv
    addRow(base, q, m, k)
    // Column i is now a multiple of 2^32: only its carry remains.
    store<u64>(base + 8, load<u64>(base + 8) + (load<u64>(base) >> 32))
  }
  let carry: u64 = 0
  const res = COLS + (k << 3)
  for (let j: usize = 0; j < k; j++) {
    carry += load<u64>(res + (j << 3))
    store<u32>(r + (j << 2), <u32>carry)
    carry >>= 32
  }
  carry += load<u64>(res + (k << 3))
  if (carry != 0 || cmp(r, m, k) >= 0) subInPlace(r, m, k)
}
