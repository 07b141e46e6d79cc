// What P-256 verification (assembly/p256.ts) reads besides the signature: per key a record with
// its point and odd multiples, and the fixed-base tables of the key and of the generator, built
// only once a key has proved hot and then a bounded chunk per verification (docs/architecture.md
// "Backends"). Built in one go, the two tables cost ~95 ms of CPU on the first import, above what
// an edge request may spend; spread out, no verification pays more than one chunk.
//
// A fixed-base table writes a scalar u in signed w-bit digits d_i in [-2^(w-1), 2^(w-1)], so that
// u·P = Σ d_i·(2^(w·i)·P); it holds |d|·2^(w·i)·P in affine form for every window i and digit
// 1..2^(w-1), and u1·G + u2·Q is one mixed addition per nonzero digit (46 at most) and no doubling.
// Until both tables are complete, verification doubles and adds (assembly/p256.ts, `straus`) with
// the odd multiples: ~5× slower per call (0.17 against 0.03 ms), but nothing to build.
import { slotAlloc, slotFree } from './heap'
import { fsub } from './p256-field'
import { AFFINE, BATCH_MAX, GX, GY, JACOBIAN, ONE, ZERO, madd, pdouble, toAffine } from './p256-point'

// Window widths: signed w-bit digits need 2^(w-1) entries per window and ceil(257/w) windows.
// The generator's table is built once per process, so it gets the wider window. Measured (verify
// alone, best of 7 × 20 000): w = 12: 22 windows, 28.7 µs, build 52 ms, 2.75 MiB; w = 13:
// 20 windows, 28.1 µs, 83 ms, 5 MiB; w = 14: 19 windows, ~0.2 µs less again (within run-to-run
// noise), but 142 ms and 9.5 MiB. 13 keeps most of the gain at half of 14's memory and build time.
// Anything up to 14 works: digits are read 64 bits at a time (bit offset ≤ 7 + w ≤ 64), and
// U1/U2 in p256.ts have zero bytes past the top limb.
export const G_BITS: u32 = 13
export const Q_BITS: u32 = 10
function windowsOf(bits: u32): usize {
  return (256 + <usize>bits) / <usize>bits // ceil(257 / bits)
}
function entriesOf(bits: u32): usize {
  return <usize>1 << (bits - 1)
}
const Q_ENTRIES: usize = windowsOf(Q_BITS) * entriesOf(Q_BITS)
const G_ENTRIES: usize = windowsOf(G_BITS) * entriesOf(G_BITS)
export const Q_TABLE_BYTES: usize = Q_ENTRIES * AFFINE
export const G_TABLE_BYTES: usize = G_ENTRIES * AFFINE

// Odd multiples for the double-and-add path: width-w NAF digits are odd and below 2^(w-1) in
// magnitude, so 2^(w-2) points. The generator's are computed once per process and can be wider
// (fewer additions); a key's at each import, where 8 cost ~0.05 ms.
export const G_NAF: u32 = 7
export const Q_NAF: u32 = 5
const G_ODD_COUNT: usize = <usize>1 << (G_NAF - 2)
const Q_ODD_COUNT: usize = <usize>1 << (Q_NAF - 2)

// Heap kinds (assembly/heap.ts; 1 is RSA, assembly/rsa.ts).
const KEY_KIND: usize = 0
const G_KIND: usize = 2
const TABLE_KIND: usize = 3

// A key record: the point, its odd multiples, then the state of its table.
export const KEY_ODD: usize = 64
const KEY_TABLE: usize = KEY_ODD + Q_ODD_COUNT * AFFINE // u32: the table's slot, 0 before it is hot
const KEY_DONE: usize = KEY_TABLE + 4 // u32: table entries written
const KEY_USES: usize = KEY_TABLE + 8 // u32: verifications seen, saturating
const KEY_NO_ROOM: usize = KEY_TABLE + 12 // u32: 1 once memory could not grow for the table
export const KEY_BYTES: usize = (KEY_TABLE + 16 + 63) & ~<usize>63 // as heap.ts rounds a slot

export const G_ODD: usize = memory.data(<i32>(G_ODD_COUNT * AFFINE), 16)
let gOddReady = false

// Jacobian points of one chunk, or of the multiples the odd ones are taken from.
const JAC: usize = memory.data(<i32>(BATCH_MAX * JACOBIAN), 16)

/** Writes (2j+1)·(x, y) for j < count to `out`, affine: the multiples 1..2·count-1, every other one. */
function oddMultiples(out: usize, x: usize, y: usize, count: usize): void {
  memory.copy(JAC, x, 32)
  memory.copy(JAC + 32, y, 32)
  memory.copy(JAC + 64, ONE, 32)
  for (let i: usize = 1; i < 2 * count - 1; i++) {
    const pt = JAC + i * JACOBIAN
    memory.copy(pt, pt - JACOBIAN, JACOBIAN)
    // i·(x, y) is never infinity: the point has prime order n > 2·count.
    madd(pt, x, y)
  }
  toAffine(out, JAC, 2, count)
}

/** Once per process: the generator's odd multiples. */
export function ensureGeneratorOdd(): void {
  if (gOddReady) return
  oddMultiples(G_ODD, GX, GY, G_ODD_COUNT)
  gOddReady = true
}

/** A record for the point (x, y), on the curve; 0 when memory cannot grow. */
export function keyImport(x: usize, y: usize): usize {
  const key = slotAlloc(KEY_KIND, KEY_BYTES)
  if (key == 0) return 0
  memory.copy(key, x, 32)
  memory.copy(key + 32, y, 32)
  oddMultiples(key + KEY_ODD, x, y, Q_ODD_COUNT)
  store<u32>(key + KEY_TABLE, 0)
  store<u32>(key + KEY_DONE, 0)
  store<u32>(key + KEY_USES, 0)
  store<u32>(key + KEY_NO_ROOM, 0)
  return key
}

// ---- Building, one chunk at a time. One table is built at a time: its chunks go on whichever key
// is verified next, so the state below is global.

/** Verifications of a key before its table, then the generator's, start; u32.MAX_VALUE: never. */
let hotAfter: u32 = 16
/** Chunks built per verification once building. */
let chunksPerVerify: u32 = 1

const BUILDING_G: usize = 1
/** What is being built: a key record, BUILDING_G, or 0. */
let building: usize = 0
let gTable: usize = 0
let gDone: usize = 0
let gNoRoom = false

/**
 * Extends a table of `bits`-wide windows from `done` entries by at most BATCH_MAX, and never past
 * the first entry of a new window (the entries after it are sums with it, in affine form); the
 * new count. Entry j of window i is (j+1)·2^(bits·i)·P: the previous entry plus the window's first,
 * and a window's first is twice the previous window's last.
 */
function extend(table: usize, bits: u32, done: usize): usize {
  const entries = entriesOf(bits)
  const total = windowsOf(bits) * entries
  let k: usize = 0
  let idx = done
  while (idx < total && k < BATCH_MAX) {
    const pt = JAC + k * JACOBIAN
    if (k == 0) {
      memory.copy(pt, table + (idx - 1) * AFFINE, AFFINE)
      memory.copy(pt + 64, ONE, 32)
    } else {
      memory.copy(pt, pt - JACOBIAN, JACOBIAN)
    }
    const j = idx % entries
    k++
    idx++
    if (j == 0) {
      pdouble(pt)
      break
    }
    // (j+1)·base is never infinity: j + 1 ≤ 2^(bits-1) < n.
    const first = table + (idx - 1 - j) * AFFINE
    madd(pt, first, first + 32)
  }
  toAffine(table + done * AFFINE, JAC, 1, k)
  return idx
}

/** Starts the next table `key`'s verifications call for: its own, then the generator's. */
function start(key: usize): bool {
  if (load<u32>(key + KEY_TABLE) == 0) {
    if (load<u32>(key + KEY_NO_ROOM) != 0) return false
    const t = slotAlloc(TABLE_KIND, Q_TABLE_BYTES)
    if (t == 0) {
      store<u32>(key + KEY_NO_ROOM, 1)
      return false
    }
    memory.copy(t, key, AFFINE) // entry 0 of window 0: the point itself
    store<u32>(key + KEY_TABLE, <u32>t)
    store<u32>(key + KEY_DONE, 1)
    building = key
    return true
  }
  if (gTable != 0 || gNoRoom) return false
  const t = slotAlloc(G_KIND, G_TABLE_BYTES)
  if (t == 0) {
    gNoRoom = true
    return false
  }
  memory.copy(t, GX, 32)
  memory.copy(t + 32, GY, 32)
  gTable = t
  gDone = 1
  building = BUILDING_G
  return true
}

/** One chunk of the table being built, or of the next one `key` calls for; false when none is left. */
function buildChunk(key: usize): bool {
  if (building == 0 && !start(key)) return false
  if (building == BUILDING_G) {
    gDone = extend(gTable, G_BITS, gDone)
    if (gDone == G_ENTRIES) building = 0
  } else {
    const k = building
    const done = extend(load<u32>(k + KEY_TABLE), Q_BITS, load<u32>(k + KEY_DONE))
    store<u32>(k + KEY_DONE, <u32>done)
    if (done == Q_ENTRIES) building = 0
  }
  return true
}

/** After each verification with `key` (the verdict is settled: building reuses no scratch of it). */
export function afterVerify(key: usize): void {
  const uses = load<u32>(key + KEY_USES)
  if (uses != u32.MAX_VALUE) store<u32>(key + KEY_USES, uses + 1)
  if (hotAfter == u32.MAX_VALUE || uses + 1 < hotAfter) return
  for (let c: u32 = 0; c < chunksPerVerify; c++) if (!buildChunk(key)) return
}

/** The key's table when complete, else 0. */
export function keyTable(key: usize): usize {
  return load<u32>(key + KEY_DONE) == <u32>Q_ENTRIES ? <usize>load<u32>(key + KEY_TABLE) : 0
}

/** The generator's table when complete, else 0. */
export function generatorTable(): usize {
  return gDone == G_ENTRIES ? gTable : 0
}

export function keyFree(key: usize): void {
  if (building == key) building = 0 // its table is abandoned with the key
  const t = <usize>load<u32>(key + KEY_TABLE)
  if (t != 0) slotFree(TABLE_KIND, t)
  slotFree(KEY_KIND, key)
}

/** Appends the table entries of u's signed digits to `out` (count entries there already); the new count. */
export function gather(table: usize, bits: u32, u: usize, out: usize, count: usize): usize {
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
      const dst = out + count * AFFINE
      memory.copy(dst, src, 32)
      if (neg) fsub(dst + 32, ZERO, src + 32)
      else memory.copy(dst + 32, src + 32, 32)
      count++
    }
  }
  return count
}

// ---- For the tests and the bench (src/backends/wasm.ts `wasmInternalsForTests`).

/** Sets when building starts (verifications of a key; u32.MAX_VALUE: never) and its pace. */
export function ecSchedule(verifiesBeforeBuilding: u32, chunks: u32): void {
  hotAfter = verifiesBeforeBuilding
  chunksPerVerify = chunks
}

/** Builds up to `chunks` chunks as verifications of a hot `key` would; the stage after (ecStage). */
export function ecBuild(key: usize, chunks: u32): u32 {
  for (let c: u32 = 0; c < chunks; c++) if (!buildChunk(key)) break
  return ecStage(key)
}

/** Bits: 1 key table complete, 2 key table being built, 4 generator table complete, 8 being built. */
export function ecStage(key: usize): u32 {
  let s: u32 = 0
  if (keyTable(key) != 0) s |= 1
  else if (load<u32>(key + KEY_TABLE) != 0) s |= 2
  if (generatorTable() != 0) s |= 4
  else if (gTable != 0) s |= 8
  return s
}
