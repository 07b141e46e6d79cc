// SHA-256 (FIPS 180-4) over linear memory, streaming: init, update(ptr, len)*, final(out).

import { compress as compressAt } from './sha256-compress'

const H: usize = memory.data(32, 16)
const BLOCK: usize = memory.data(64, 16)
let blockLen: usize = 0
let totalLen: u64 = 0

export function shaInit(): void {
  store<u32>(H, 0x6a09e667, 0)
  store<u32>(H, 0xbb67ae85, 4)
  store<u32>(H, 0x3c6ef372, 8)
  store<u32>(H, 0xa54ff53a, 12)
  store<u32>(H, 0x510e527f, 16)
  store<u32>(H, 0x9b05688c, 20)
  store<u32>(H, 0x1f83d9ab, 24)
  store<u32>(H, 0x5be0cd19, 28)
  blockLen = 0
  totalLen = 0
}

function compress(p: usize): void {
  compressAt(H, p)
}

export function shaUpdate(p: usize, len: usize): void {
  totalLen += <u64>len
  if (blockLen > 0) {
    const take = min<usize>(64 - blockLen, len)
    memory.copy(BLOCK + blockLen, p, take)
    blockLen += take
    p += take
    len -= take
    if (blockLen < 64) return
    compress(BLOCK)
    blockLen = 0
  }
  while (len >= 64) {
    compress(p)
    p += 64
    len -= 64
  }
  if (len > 0) {
    memory.copy(BLOCK, p, len)
    blockLen = len
  }
}

/** Writes the 32-byte digest (big-endian, as bytes) to `out`. */
export function shaFinal(out: usize): void {
  const bits = totalLen << 3
  store<u8>(BLOCK + blockLen, 0x80)
  blockLen++
  if (blockLen > 56) {
    memory.fill(BLOCK + blockLen, 0, 64 - blockLen)
    compress(BLOCK)
    blockLen = 0
  }
  memory.fill(BLOCK + blockLen, 0, 56 - blockLen)
  store<u64>(BLOCK + 56, bswap<u64>(bits))
  compress(BLOCK)
  for (let i: usize = 0; i < 8; i++) store<u32>(out + (i << 2), bswap<u32>(load<u32>(H + (i << 2))))
}
