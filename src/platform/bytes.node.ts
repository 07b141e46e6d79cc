/**
 * Bytes and text on Node, Bun and Deno (package.json `imports` "#bytes", README "Runtimes"):
 * Buffer's native codecs, measured faster there than the portable ones of `bytes.ts` on the
 * token's cold path (bench/README.md "Runtime-neutral core (issue 14): Node keeps its speed").
 * Same functions, same answers.
 */
import { Buffer, isUtf8 } from 'node:buffer'

function buffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** True when every code unit of `s` is below 0x80. */
export function isAscii(s: string): boolean {
  return Buffer.byteLength(s, 'utf8') === s.length
}

/** The bytes of an ASCII string, one per character (callers have checked `isAscii`). */
export function asciiBytes(s: string): Uint8Array {
  return Buffer.from(s, 'latin1')
}

/** Writes an ASCII string into `target` at `at` (callers have checked `isAscii` and the room). */
export function writeAscii(target: Uint8Array, s: string, at: number): void {
  buffer(target).write(s, at, 'latin1')
}

/** The text of bytes known to be ASCII. */
export function asciiText(bytes: Uint8Array, start: number, end: number): string {
  return buffer(bytes).toString('latin1', start, end)
}

/** The text of UTF-8 bytes, or undefined when they are not UTF-8 (a leading BOM is kept). */
export function utf8Text(bytes: Uint8Array, start = 0, end = bytes.length): string | undefined {
  const b = buffer(bytes)
  const part = start === 0 && end === b.length ? b : b.subarray(start, end)
  return isUtf8(part) ? part.toString('utf8') : undefined
}

/** A view of a whole buffer, of the kind the functions above read fastest (a Buffer: no re-wrapping). */
export function byteView(arrayBuffer: ArrayBuffer): Uint8Array {
  return Buffer.from(arrayBuffer)
}

/**
 * The bytes of base64url text, or undefined when a character is outside the alphabet (padding
 * included) or one character is left over. The unused low bits of the last character are not
 * looked at: `hasCanonicalTail` (src/jws/base64url.ts) judges them.
 */
export function base64urlDecode(s: string): Uint8Array | undefined {
  // Node's decoder also takes '+' and '/' (base64), stops at '=' and reads only the low byte of a
  // UTF-16 unit (U+0141 as 'A'); every other stray character it skips, which makes the output
  // shorter than floor(3n/4), strictly so when n mod 4 ≠ 1.
  if (s.length % 4 === 1 || s.includes('+') || s.includes('/') || s.includes('=') || !isAscii(s)) return undefined
  const bytes = Buffer.from(s, 'base64url')
  return bytes.length === Math.floor((s.length * 3) / 4) ? bytes : undefined
}

/**
 * `base64urlDecode` for a segment of a token whose every character `splitCompact` has already
 * checked to be ASCII and none of '+', '/', '=': measured ~0.3 µs per token less than repeating
 * those scans per segment (bench/README.md "Runtime-neutral core (issue 14): Node keeps its speed").
 */
export function base64urlDecodeSegment(s: string): Uint8Array | undefined {
  const bytes = Buffer.from(s, 'base64url')
  return bytes.length === Math.floor((s.length * 3) / 4) && s.length % 4 !== 1 ? bytes : undefined
}

/** Unpadded base64url of `bytes`. */
export function base64urlEncode(bytes: Uint8Array): string {
  return buffer(bytes).toString('base64url')
}
