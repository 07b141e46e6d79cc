/**
 * Strict base64url (RFC 7515 §2, RFC 4648 §5): the URL-safe alphabet only, no padding, no
 * whitespace, and canonical final characters. Node's decoder silently skips characters outside the
 * alphabet and ignores stray low bits, so everything is validated here before it is decoded: two
 * spellings of the same bytes would otherwise both verify, which makes tokens malleable.
 */

/** Value of each base64url character, -1 for every other code unit below 128. */
const VALUE = new Int8Array(128).fill(-1)
{
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  for (let i = 0; i < alphabet.length; i++) VALUE[alphabet.charCodeAt(i)] = i
}

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
  if (!isCanonicalBase64url(s)) return undefined
  return Buffer.from(s, 'base64url')
}
