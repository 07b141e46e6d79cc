/**
 * Strict JWS Compact Serialization parsing (RFC 7515 §7.1, README "What is checked"): length cap first, then the
 * two dots, then strict base64url for each segment, checked with native scans rather than a loop
 * over every character (this runs on every uncached request).
 */
import { asciiBytes, base64urlDecodeSegment, isAscii, utf8Text } from '#bytes'
import { ALGORITHMS, isAlgorithm, type Algorithm } from './algorithms.js'
import { hasCanonicalTail } from './base64url.js'
import { invalidToken } from '../errors.js'

export const DEFAULT_MAX_TOKEN_LENGTH = 8192

export interface JwsHeader {
  readonly alg: Algorithm
  readonly kid: string | undefined
  /** The whole protected header as parsed, for callers of the low-level layer. */
  readonly raw: Readonly<Record<string, unknown>>
}

export interface ParsedJws {
  readonly header: JwsHeader
  /** ASCII bytes of `header.payload`: what was signed. */
  readonly signingInput: Uint8Array
  readonly payload: Uint8Array
  readonly signature: Uint8Array
}

/**
 * Parsed headers by their base64url text. A service sees a handful of distinct headers (one per
 * key), so decoding and checking them once saves a JSON.parse per token. Bounded; only headers
 * that passed every check are kept.
 */
const headerCache = new Map<string, JwsHeader>()
const HEADER_CACHE_MAX = 256

/** Where the segments of a compact JWS are, with its checked header: nothing else decoded yet. */
export interface SplitJws {
  readonly header: JwsHeader
  /** Offsets of the two dots. */
  readonly dot1: number
  readonly dot2: number
}

/** What a token can fail on after the header, worded once for the JS path and the wasm one. */
export const JWS_ERRORS = Object.freeze({
  outsideAlphabet: 'not a compact JWS: a character outside base64url',
  signature: 'signature verification failed',
  notUtf8: (what: string) => `${what} is not UTF-8`,
  notJson: (what: string) => `${what} is not JSON`,
  notObject: (what: string) => `${what} is not a JSON object`,
})

export function parseCompact(token: string, maxLength = DEFAULT_MAX_TOKEN_LENGTH): ParsedJws {
  return decodeSegments(token, splitCompact(token, maxLength))
}

/**
 * Every check of the whole token (length cap, segments, alphabet, canonical tails) and the header;
 * payload and signature are left encoded, for whichever path verifies them (docs/architecture.md "Backends").
 */
export function splitCompact(token: string, maxLength = DEFAULT_MAX_TOKEN_LENGTH): SplitJws {
  // The cap comes before any other work, so a huge input costs one comparison.
  if (token.length > maxLength) throw invalidToken(`token longer than ${maxLength} characters`)
  const dot1 = token.indexOf('.')
  const dot2 = dot1 < 0 ? -1 : token.indexOf('.', dot1 + 1)
  if (dot2 < 0 || token.indexOf('.', dot2 + 1) >= 0) throw invalidToken('not a compact JWS: expected three segments')
  if (dot1 === 0) throw invalidToken('empty protected header')
  if (dot2 === token.length - 1) throw invalidToken('empty signature')
  // The base64 alphabet ('+', '/') and padding are refused by name; every other stray character
  // by the decoder (`decodeExact`).
  if (token.includes('+') || token.includes('/') || token.includes('='))
    throw invalidToken('not base64url: padding or base64 characters')
  // Node's decoder and the latin1 signing input keep only the low byte of a UTF-16 unit, so
  // U+0141 would read as 'A' and verify: any non-ASCII character is refused (~0.1 µs, native).
  if (!isAscii(token)) throw invalidToken('not base64url: a non-ASCII character')
  if (
    !hasCanonicalTail(token, 0, dot1) ||
    !hasCanonicalTail(token, dot1 + 1, dot2) ||
    !hasCanonicalTail(token, dot2 + 1, token.length)
  ) {
    throw invalidToken('non-canonical base64url')
  }
  const headerText = token.slice(0, dot1)
  const header = headerCache.get(headerText) ?? readHeader(headerText)
  return { header, dot1, dot2 }
}

/** The JS decoding of what `splitCompact` left encoded. */
export function decodeSegments(token: string, split: SplitJws): ParsedJws {
  const { dot1, dot2 } = split
  const payload = decodeExact(token.slice(dot1 + 1, dot2))
  const signature = decodeExact(token.slice(dot2 + 1))
  // One copy of the ASCII token; what was signed is a view of it (no second slice and copy).
  const signingInput = asciiBytes(token).subarray(0, dot2)
  return { header: split.header, signingInput, payload, signature }
}

/**
 * Decodes a segment of a token `splitCompact` checked (ASCII, no '+', '/' or '=', a canonical
 * final character); any other character outside the alphabet is refused.
 */
function decodeExact(segment: string): Uint8Array {
  const bytes = base64urlDecodeSegment(segment)
  if (bytes === undefined) throw invalidToken(JWS_ERRORS.outsideAlphabet)
  return bytes
}

function readHeader(headerText: string): JwsHeader {
  const raw = parseJsonObject(decodeExact(headerText), 'protected header')
  const alg = raw.alg
  if (typeof alg !== 'string') throw invalidToken('header has no alg')
  if (!isAlgorithm(alg)) throw invalidToken('alg not allowed')
  // No extension is understood, so any crit must be refused (RFC 7515 §4.1.11).
  if (raw.crit !== undefined) throw invalidToken('crit header is not supported')
  // RFC 7797 unencoded payloads change what is signed: refused.
  if (raw.b64 !== undefined && raw.b64 !== true) throw invalidToken('b64 header is not supported')
  const kid = raw.kid
  if (kid !== undefined && (typeof kid !== 'string' || kid === '')) throw invalidToken('kid must be a non-empty string')
  // jku, x5u, jwk and x5c are deliberately never read: keys come only from the configured JWKS.
  const header: JwsHeader = Object.freeze({ alg: ALGORITHMS[alg].name, kid, raw: Object.freeze(raw) })
  if (headerCache.size >= HEADER_CACHE_MAX) headerCache.clear()
  headerCache.set(headerText, header)
  return header
}

/** UTF-8 JSON object or `invalid_token`; duplicate members: the last wins, as JSON.parse does. */
export function parseJsonObject(bytes: Uint8Array, what: string): Record<string, unknown> {
  const text = utf8Text(bytes)
  if (text === undefined) throw invalidToken(JWS_ERRORS.notUtf8(what))
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw invalidToken(JWS_ERRORS.notJson(what))
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalidToken(JWS_ERRORS.notObject(what))
  return value as Record<string, unknown>
}
