// A JSON scanner over UTF-8 bytes with the grammar of ECMAScript's JSON.parse (RFC 8259): it finds
// where values start and end and what type they are, without building anything. The text must be
// followed by at least 8 zero bytes: a zero is invalid in every position of JSON, so the scanner
// stops on it without bounds checks. The caller validates UTF-8 first.

export const J_STRING: i32 = 1
export const J_NUMBER: i32 = 2
export const J_OBJECT: i32 = 3
export const J_ARRAY: i32 = 4
export const J_TRUE: i32 = 5
export const J_FALSE: i32 = 6
export const J_NULL: i32 = 7

/** Set by `scanString`: the literal holds an escape (its bytes are not its value). */
export let stringEscaped = false
/** Set by `scanString`: the literal holds a byte ≥ 0x80. */
export let stringNonAscii = false
/** Set by `scanNumber`: the literal has a fraction or an exponent. */
export let numberHasFraction = false

// Containers open while skipping a value: one byte each, 1 object, 2 array. Nesting is bounded by
// the text's length, which the caller keeps below this.
export const MAX_DEPTH: usize = 16384
const STACK: usize = memory.data(16384, 16)

// @ts-ignore: decorator
@inline
export function isDigit(c: u32): bool {
  return c - 0x30 < 10
}

// @ts-ignore: decorator
@inline
function isHex(c: u32): bool {
  return c - 0x30 < 10 || (c | 0x20) - 0x61 < 6
}

/** JSON whitespace is exactly space, tab, LF and CR. */
export function skipWs(p: usize): usize {
  while (true) {
    const c = <u32>load<u8>(p)
    if (c != 0x20 && c != 0x0a && c != 0x0d && c != 0x09) return p
    p++
  }
}

/** The type of the value starting with byte `c` (0 when no value starts so). */
export function typeOf(c: u32): i32 {
  if (c == 0x22) return J_STRING
  if (c == 0x7b) return J_OBJECT
  if (c == 0x5b) return J_ARRAY
  if (c == 0x2d || isDigit(c)) return J_NUMBER
  if (c == 0x74) return J_TRUE
  if (c == 0x66) return J_FALSE
  if (c == 0x6e) return J_NULL
  return 0
}

/** `p` at an opening quote: the position after the closing one, or 0 when the literal is invalid. */
export function scanString(p: usize): usize {
  let escaped = false
  let high: u32 = 0
  p++
  while (true) {
    const c = <u32>load<u8>(p)
    if (c == 0x22) break
    if (c < 0x20) return 0 // control characters must be escaped; also the terminating zeros
    high |= c
    if (c == 0x5c) {
      escaped = true
      const e = <u32>load<u8>(p + 1)
      if (e == 0x75) {
        if (!isHex(load<u8>(p + 2)) || !isHex(load<u8>(p + 3)) || !isHex(load<u8>(p + 4)) || !isHex(load<u8>(p + 5))) return 0
        p += 6
      } else if (e == 0x22 || e == 0x5c || e == 0x2f || e == 0x62 || e == 0x66 || e == 0x6e || e == 0x72 || e == 0x74) {
        p += 2
      } else {
        return 0
      }
    } else {
      p++
    }
  }
  stringEscaped = escaped
  stringNonAscii = (high & 0x80) != 0
  return p + 1
}

/** `p` at '-' or a digit: the end of the number, or 0 when it is not a JSON number. */
export function scanNumber(p: usize): usize {
  if (load<u8>(p) == 0x2d) p++
  const first = <u32>load<u8>(p)
  if (first == 0x30) p++
  else if (first - 0x31 < 9) {
    p++
    while (isDigit(load<u8>(p))) p++
  } else return 0
  let fraction = false
  if (load<u8>(p) == 0x2e) {
    p++
    if (!isDigit(load<u8>(p))) return 0
    while (isDigit(load<u8>(p))) p++
    fraction = true
  }
  const e = <u32>load<u8>(p)
  if (e == 0x65 || e == 0x45) {
    p++
    const sign = <u32>load<u8>(p)
    if (sign == 0x2b || sign == 0x2d) p++
    if (!isDigit(load<u8>(p))) return 0
    while (isDigit(load<u8>(p))) p++
    fraction = true
  }
  numberHasFraction = fraction
  return p
}

// @ts-ignore: decorator
@inline
function matches4(p: usize, word: u32): bool {
  return load<u32>(p) == word
}

/** `p` at the first byte of a value: the position after the whole value, or 0 when invalid. */
export function skipValue(p: usize): usize {
  let depth: usize = 0
  while (true) {
    // One value begins at p (an opening bracket pushes and loops back here for its first member).
    const c = <u32>load<u8>(p)
    if (c == 0x22) {
      p = scanString(p)
      if (p == 0) return 0
    } else if (c == 0x7b) {
      p = skipWs(p + 1)
      if (load<u8>(p) == 0x7d) {
        p++
      } else {
        if (depth == MAX_DEPTH) return 0
        store<u8>(STACK + depth, 1)
        depth++
        p = memberValue(p)
        if (p == 0) return 0
        continue
      }
    } else if (c == 0x5b) {
      p = skipWs(p + 1)
      if (load<u8>(p) == 0x5d) {
        p++
      } else {
        if (depth == MAX_DEPTH) return 0
        store<u8>(STACK + depth, 2)
        depth++
        continue
      }
    } else if (c == 0x2d || isDigit(c)) {
      p = scanNumber(p)
      if (p == 0) return 0
    } else if (c == 0x74 && matches4(p, 0x65757274)) { // "true"
      p += 4
    } else if (c == 0x66 && matches4(p + 1, 0x65736c61)) { // "alse"
      p += 5
    } else if (c == 0x6e && matches4(p, 0x6c6c756e)) { // "null"
      p += 4
    } else {
      return 0
    }
    // After a value: close containers, or step to the next element or member.
    while (true) {
      if (depth == 0) return p
      p = skipWs(p)
      const d = <u32>load<u8>(p)
      const kind = <u32>load<u8>(STACK + depth - 1)
      if (d == 0x2c) {
        p = skipWs(p + 1)
        if (kind == 1) {
          p = memberValue(p)
          if (p == 0) return 0
        }
        break
      }
      if ((kind == 1 && d == 0x7d) || (kind == 2 && d == 0x5d)) {
        p++
        depth--
        continue
      }
      return 0
    }
  }
}

/** `p` at a member's name: the start of its value (whitespace skipped), or 0. */
export function memberValue(p: usize): usize {
  if (load<u8>(p) != 0x22) return 0
  p = scanString(p)
  if (p == 0) return 0
  p = skipWs(p)
  if (load<u8>(p) != 0x3a) return 0
  return skipWs(p + 1)
}

/**
 * Writes the value of the string literal [start, end) (quotes included) to `out` as WTF-8: UTF-8,
 * with escaped surrogate pairs joined and lone escaped surrogates kept as three bytes, so that two
 * literals decode to the same bytes exactly when JSON.parse gives the same JS string. The length.
 */
export function unescapeString(start: usize, end: usize, out: usize): usize {
  let p = start + 1
  const stop = end - 1
  let o = out
  while (p < stop) {
    const c = <u32>load<u8>(p)
    if (c != 0x5c) {
      store<u8>(o, <u8>c)
      o++
      p++
      continue
    }
    const e = <u32>load<u8>(p + 1)
    if (e != 0x75) {
      let v: u32 = e // '"', '\\', '/'
      if (e == 0x62) v = 0x08
      else if (e == 0x66) v = 0x0c
      else if (e == 0x6e) v = 0x0a
      else if (e == 0x72) v = 0x0d
      else if (e == 0x74) v = 0x09
      store<u8>(o, <u8>v)
      o++
      p += 2
      continue
    }
    let cp = hex4(p + 2)
    p += 6
    if (cp - 0xd800 < 0x400 && load<u8>(p) == 0x5c && load<u8>(p + 1) == 0x75) {
      const low = hex4(p + 2)
      if (low - 0xdc00 < 0x400) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00)
        p += 6
      }
    }
    o = putCodePoint(o, cp)
  }
  return o - out
}

function hex4(p: usize): u32 {
  let v: u32 = 0
  for (let i: usize = 0; i < 4; i++) {
    const c = <u32>load<u8>(p + i)
    v = (v << 4) | (c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x61 + 10)
  }
  return v
}

function putCodePoint(o: usize, cp: u32): usize {
  if (cp < 0x80) {
    store<u8>(o, <u8>cp)
    return o + 1
  }
  if (cp < 0x800) {
    store<u8>(o, <u8>(0xc0 | (cp >> 6)))
    store<u8>(o + 1, <u8>(0x80 | (cp & 0x3f)))
    return o + 2
  }
  if (cp < 0x10000) {
    store<u8>(o, <u8>(0xe0 | (cp >> 12)))
    store<u8>(o + 1, <u8>(0x80 | ((cp >> 6) & 0x3f)))
    store<u8>(o + 2, <u8>(0x80 | (cp & 0x3f)))
    return o + 3
  }
  store<u8>(o, <u8>(0xf0 | (cp >> 18)))
  store<u8>(o + 1, <u8>(0x80 | ((cp >> 12) & 0x3f)))
  store<u8>(o + 2, <u8>(0x80 | ((cp >> 6) & 0x3f)))
  store<u8>(o + 3, <u8>(0x80 | (cp & 0x3f)))
  return o + 4
}
