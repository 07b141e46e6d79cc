/**
 * Strict base64url (RFC 7515 §2, RFC 4648 §5): the URL-safe alphabet only, no padding, no
 * whitespace, and canonical final characters. Two spellings of the same bytes would otherwise both
 * verify, which makes tokens malleable. The library's only base64url codec: on Node, Bun and Deno
 * `#bytes` (src/platform/bytes.node.ts) decodes with Buffer instead, behind the same checks.
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/** Value of each base64url character, -1 for every other code unit below 128. */
const VALUE = new Int8Array(128).fill(-1)
for (let i = 0; i < ALPHABET.length; i++) VALUE[ALPHABET.charCodeAt(i)] = i

/** True if `s[start, end)` is canonical unpadded base64url. */
export function isCanonicalBase64url(s: string, start = 0, end = s.length): boolean {
  const length = end - start
  // One leftover character carries 6 bits: not a whole byte, never produced by an encoder.
  if (length % 4 === 1) return false
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i)
    if (c >= 128 || VALUE[c]! < 0) return false
  }
  return hasCanonicalTail(s, start, end)
}

/**
 * The unused low bits of the final character must be zero (RFC 4648 §3.5). A final character
 * outside the alphabet is not this rule's to judge (true): the alphabet check refuses it, and says so.
 */
export function hasCanonicalTail(s: string, start: number, end: number): boolean {
  const rest = (end - start) % 4
  if (rest === 0) return true
  if (rest === 1) return false
  const c = s.charCodeAt(end - 1)
  const last = c < 128 ? VALUE[c]! : -1
  if (last < 0) return true
  return rest === 2 ? (last & 0x0f) === 0 : (last & 0x03) === 0
}

/** Decodes canonical base64url; returns undefined for anything else. */
export function decodeBase64url(s: string): Uint8Array | undefined {
  if (!hasCanonicalTail(s, 0, s.length)) return undefined
  return decodeBase64urlBytes(s)
}

function value(s: string, i: number): number {
  const c = s.charCodeAt(i)
  return c < 128 ? VALUE[c]! : -1
}

/**
 * The bytes of base64url text, or undefined when a character is outside the alphabet (padding
 * included) or one character is left over. The unused low bits of the last character are not
 * looked at (`hasCanonicalTail` judges them).
 */
export function decodeBase64urlBytes(s: string): Uint8Array | undefined {
  const n = s.length
  if (n % 4 === 1) return undefined
  const out = new Uint8Array(Math.floor((n * 3) / 4))
  let o = 0
  let i = 0
  for (; i + 4 <= n; i += 4) {
    const a = value(s, i)
    const b = value(s, i + 1)
    const c = value(s, i + 2)
    const d = value(s, i + 3)
    if ((a | b | c | d) < 0) return undefined
    const v = (a << 18) | (b << 12) | (c << 6) | d
    out[o++] = v >> 16
    out[o++] = (v >> 8) & 0xff
    out[o++] = v & 0xff
  }
  const rest = n - i
  if (rest > 0) {
    const a = value(s, i)
    const b = value(s, i + 1)
    const c = rest === 3 ? value(s, i + 2) : 0
    if ((a | b | c) < 0) return undefined
    const v = (a << 18) | (b << 12) | (c << 6)
    out[o++] = v >> 16
    if (rest === 3) out[o] = (v >> 8) & 0xff
  }
  return out
}

/** Unpadded base64url of `bytes`. */
export function encodeBase64url(bytes: Uint8Array): string {
  let out = ''
  let i = 0
  for (; i + 3 <= bytes.length; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!
    out += ALPHABET[v >> 18]! + ALPHABET[(v >> 12) & 63]! + ALPHABET[(v >> 6) & 63]! + ALPHABET[v & 63]!
  }
  const rest = bytes.length - i
  if (rest > 0) {
    const v = (bytes[i]! << 16) | (rest === 2 ? bytes[i + 1]! << 8 : 0)
    out += ALPHABET[v >> 18]! + ALPHABET[(v >> 12) & 63]!
    if (rest === 2) out += ALPHABET[(v >> 6) & 63]!
  }
  return out
}
