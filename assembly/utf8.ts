// Strict UTF-8 validation (RFC 3629), the rule of Node's `buffer.isUtf8` that the JS path applies
// to the payload: no overlong forms, no encoded surrogates, nothing above U+10FFFF, no truncation.

/** Whether the `len` bytes at `p` are well-formed UTF-8. */
export function isUtf8(p: usize, len: usize): bool {
  const end = p + len
  while (p < end) {
    // Payloads are mostly ASCII: eight bytes at a time while no high bit is set.
    if (p + 8 <= end && (load<u64>(p) & 0x8080808080808080) == 0) {
      p += 8
      continue
    }
    const c = <u32>load<u8>(p)
    if (c < 0x80) {
      p++
      continue
    }
    if (c < 0xc2) return false // a continuation byte first, or an overlong two-byte form
    if (c < 0xe0) {
      if (p + 1 >= end || !isContinuation(load<u8>(p + 1))) return false
      p += 2
      continue
    }
    if (c < 0xf0) {
      if (p + 2 >= end) return false
      const c1 = <u32>load<u8>(p + 1)
      if (!isContinuation(c1) || !isContinuation(load<u8>(p + 2))) return false
      if (c == 0xe0 && c1 < 0xa0) return false // overlong
      if (c == 0xed && c1 >= 0xa0) return false // U+D800..U+DFFF
      p += 3
      continue
    }
    if (c < 0xf5) {
      if (p + 3 >= end) return false
      const c1 = <u32>load<u8>(p + 1)
      if (!isContinuation(c1) || !isContinuation(load<u8>(p + 2)) || !isContinuation(load<u8>(p + 3))) return false
      if (c == 0xf0 && c1 < 0x90) return false // overlong
      if (c == 0xf4 && c1 >= 0x90) return false // above U+10FFFF
      p += 4
      continue
    }
    return false
  }
  return true
}

// @ts-ignore: decorator
@inline
function isContinuation(c: u32): bool {
  return (c & 0xc0) == 0x80
}
