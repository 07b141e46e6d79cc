/**
 * Bytes and text without `Buffer`, for every runtime but Node, Bun and Deno (package.json
 * `imports` "#bytes" selects `bytes.node.ts` there, where Buffer's native codecs are faster;
 * README "Runtimes"). Both files export the same functions with the same answers
 * (test/platform-bytes.test.ts compares them).
 */
export {
  decodeBase64urlBytes as base64urlDecode,
  /** `base64urlDecode` for a segment of a token `splitCompact` checked (the same check here). */
  decodeBase64urlBytes as base64urlDecodeSegment,
  encodeBase64url as base64urlEncode,
} from '../jws/base64url.js'

// ignoreBOM keeps a leading U+FEFF in the text, as Buffer does: JSON.parse must refuse it on
// every runtime alike (README "What is checked": the payload is UTF-8 JSON, nothing around it).
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
const looseUtf8 = new TextDecoder('utf-8', { ignoreBOM: true })
const encoder = new TextEncoder()
// Anchored over the whole string: measured ~2.5× faster in V8 than searching for a non-ASCII unit.
// biome-ignore lint/suspicious/noControlCharactersInRegex: ASCII starts at U+0000
const ALL_ASCII = /^[\u0000-\u007f]*$/

/** True when every code unit of `s` is below 0x80. */
export function isAscii(s: string): boolean {
  return ALL_ASCII.test(s)
}

/** The bytes of an ASCII string, one per character (callers have checked `isAscii`). */
export function asciiBytes(s: string): Uint8Array {
  return encoder.encode(s)
}

/** Writes an ASCII string into `target` at `at` (callers have checked `isAscii` and the room). */
export function writeAscii(target: Uint8Array, s: string, at: number): void {
  encoder.encodeInto(s, target.subarray(at, at + s.length))
}

/** The text of bytes known to be ASCII. */
export function asciiText(bytes: Uint8Array, start: number, end: number): string {
  return looseUtf8.decode(bytes.subarray(start, end))
}

/** The text of UTF-8 bytes, or undefined when they are not UTF-8 (a leading BOM is kept). */
export function utf8Text(bytes: Uint8Array, start = 0, end = bytes.length): string | undefined {
  try {
    return strictUtf8.decode(bytes.subarray(start, end))
  } catch {
    return undefined
  }
}

/** A view of a whole buffer, of the kind the functions above read fastest. */
export function byteView(buffer: ArrayBuffer): Uint8Array {
  return new Uint8Array(buffer)
}
