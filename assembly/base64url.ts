// Strict base64url decoding (README "What is checked", RFC 7515 §2): the URL-safe alphabet only, no padding, no
// whitespace, and the unused low bits of the final character zero, so that every byte string has
// exactly one accepted spelling. The same rules as src/jws/base64url.ts, byte for byte.

/** Value of each ASCII byte in the alphabet, -1 for every other byte. */
const VALUE: usize = memory.data<i8>([
  -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
  -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
  -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1,
  52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
  -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
  15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, 63,
  -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
  41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
])

// @ts-ignore: decorator
@inline
function value(c: u32): i32 {
  return c < 128 ? <i32>load<i8>(VALUE + c) : -1
}

/** Decodes `len` characters at `src` to `dst`; the byte count, or -1 when not canonical base64url. */
export function b64uDecode(src: usize, len: usize, dst: usize): i32 {
  // One leftover character carries 6 bits: not a whole byte, never produced by an encoder.
  if ((len & 3) == 1) return -1
  const full = len & ~<usize>3
  let out = dst
  for (let i: usize = 0; i < full; i += 4) {
    const a = value(load<u8>(src + i))
    const b = value(load<u8>(src + i + 1))
    const c = value(load<u8>(src + i + 2))
    const d = value(load<u8>(src + i + 3))
    if ((a | b | c | d) < 0) return -1
    const w = <u32>((a << 18) | (b << 12) | (c << 6) | d)
    store<u8>(out, <u8>(w >>> 16))
    store<u8>(out + 1, <u8>(w >>> 8))
    store<u8>(out + 2, <u8>w)
    out += 3
  }
  const rest = len - full
  if (rest > 0) {
    const a = value(load<u8>(src + full))
    const b = value(load<u8>(src + full + 1))
    if ((a | b) < 0) return -1
    if (rest == 2) {
      if ((b & 0x0f) != 0) return -1 // stray bits (RFC 4648 §3.5)
      store<u8>(out, <u8>((a << 2) | (b >> 4)))
      out += 1
    } else {
      const c = value(load<u8>(src + full + 2))
      if (c < 0 || (c & 0x03) != 0) return -1
      store<u8>(out, <u8>((a << 2) | (b >> 4)))
      store<u8>(out + 1, <u8>((b << 4) | (c >> 2)))
      out += 2
    }
  }
  return <i32>(out - dst)
}
