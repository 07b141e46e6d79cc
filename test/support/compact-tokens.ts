/**
 * Hand-built compact JWS for the negative tests: segments spelled exactly as a test needs (padding,
 * stray bits, foreign characters, duplicate members, invalid UTF-8), signed over exactly those
 * bytes with a real key, so the one defect under test is the only thing wrong with the token.
 */
import { sign } from 'node:crypto'
import type { SigningKey } from '../../src/dev/sign-jws.js'

/** P-256 group order n. */
export const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n

export function b64u(data: string | Uint8Array): string {
  return (typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data)).toString('base64url')
}

/** A segment from JSON (stringified), raw text (as given), or bytes. */
export function segment(value: unknown): string {
  if (value instanceof Uint8Array) return b64u(value)
  if (typeof value === 'string') return b64u(value)
  return b64u(JSON.stringify(value))
}

/** Signs `headerSeg.payloadSeg` exactly as spelled (latin1, as the signing input is defined). */
export function signSegments(key: SigningKey, headerSeg: string, payloadSeg: string): string {
  const input = Buffer.from(`${headerSeg}.${payloadSeg}`, 'latin1')
  const sig =
    key.alg === 'ES256'
      ? sign('sha256', input, { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
      : sign('sha256', input, key.privateKey)
  return `${headerSeg}.${payloadSeg}.${sig.toString('base64url')}`
}

/** Header `{ alg, kid, typ, ...extra }` of the key, as a segment. */
export function headerSegment(key: SigningKey, extra: Record<string, unknown> = {}): string {
  return segment({ alg: key.alg, kid: key.kid, typ: 'JWT', ...extra })
}

export function splitToken(token: string): [string, string, string] {
  const parts = token.split('.')
  if (parts.length !== 3) throw new Error('test token is not three segments')
  return parts as [string, string, string]
}

/** The token with its signature bytes replaced (re-encoded canonically). */
export function withSignature(token: string, signature: Uint8Array): string {
  const [h, p] = splitToken(token)
  return `${h}.${p}.${b64u(signature)}`
}

export function signatureBytes(token: string): Buffer {
  return Buffer.from(splitToken(token)[2], 'base64url')
}

/** Flips one bit of the decoded segment `index` (0 header, 1 payload, 2 signature), re-encoded canonically. */
export function flipBit(token: string, index: 0 | 1 | 2, bit: number): string {
  const parts = splitToken(token)
  const bytes = Buffer.from(parts[index], 'base64url')
  bytes[bit >> 3]! ^= 0x80 >> (bit & 7)
  parts[index] = b64u(bytes)
  return parts.join('.')
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/**
 * The same segment with a nonzero unused low bit in its final character (RFC 4648 §3.5): decoders
 * that ignore those bits read the same bytes. Undefined when the length leaves no unused bits.
 */
export function withStrayBits(seg: string): string | undefined {
  const rest = seg.length % 4
  if (rest === 0) return undefined
  const value = ALPHABET.indexOf(seg[seg.length - 1]!)
  return seg.slice(0, -1) + ALPHABET[value | 1]
}

export function bigintTo32(v: bigint): Uint8Array {
  return Buffer.from(v.toString(16).padStart(64, '0'), 'hex')
}

export function bytesToBigint(b: Uint8Array): bigint {
  return BigInt(`0x${Buffer.from(b).toString('hex')}`)
}

/** ES256 r‖s with r or s replaced. */
export function es256Signature(r: bigint, s: bigint): Uint8Array {
  return Buffer.concat([bigintTo32(r), bigintTo32(s)])
}

export function es256Parts(token: string): { r: bigint; s: bigint } {
  const sig = signatureBytes(token)
  return { r: bytesToBigint(sig.subarray(0, 32)), s: bytesToBigint(sig.subarray(32)) }
}
