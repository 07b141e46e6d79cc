/**
 * `#bytes` (README "Runtimes"): the portable module (workerd, browsers) and the Buffer one (Node,
 * Bun, Deno) give the same answer on every input, so a token verifies the same everywhere. The
 * rest of the suite runs the Node module; this file is where the portable one is held to it.
 */
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import * as portable from '../src/platform/bytes.js'
import * as node from '../src/platform/bytes.node.js'

// Both modules have the same shape (a type error here if one drifts).
const _sameShape: [typeof portable, typeof node] = [node, portable]
void _sameShape

const plain = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : [...bytes])

/** Text drawn from the base64url alphabet, with a chance of one character from outside it. */
const base64urlish = fc
  .tuple(
    fc.string({
      unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'),
      maxLength: 40,
    }),
    fc.option(fc.tuple(fc.nat(40), fc.constantFrom('+', '/', '=', ' ', '\n', '.', '\u0141', '\u00ff', '\0', '~'))),
  )
  .map(([s, stray]) => (stray === null ? s : s.slice(0, stray[0]) + stray[1] + s.slice(stray[0])))

describe('#bytes: the portable module answers as the Buffer one', () => {
  it('base64url decoding: the same bytes, and the same refusals (outside the alphabet, padding, one left over)', () => {
    fc.assert(
      fc.property(base64urlish, (s) => {
        const decoded = plain(portable.base64urlDecode(s))
        expect(decoded).toEqual(plain(node.base64urlDecode(s)))
        // The segment decoder may skip the scans splitCompact made: on what passed them, the same answer.
        if (!/[+/=]/.test(s) && node.isAscii(s)) {
          expect(plain(node.base64urlDecodeSegment(s))).toEqual(decoded)
          expect(plain(portable.base64urlDecodeSegment(s))).toEqual(decoded)
        }
      }),
      { numRuns: 5000 },
    )
    for (const s of ['', 'A', 'AA', 'AAA', 'AA==', 'A===', '+/+/', '-_-_', 'YWJj', 'YWI', 'YQ'])
      expect(plain(portable.base64urlDecode(s)), s).toEqual(plain(node.base64urlDecode(s)))
    expect(portable.base64urlDecode('AA==')).toBeUndefined()
    expect(portable.base64urlDecode('A')).toBeUndefined()
    expect(plain(portable.base64urlDecode('_-8'))).toEqual([0xff, 0xef])
  })

  it('base64url encoding round-trips and matches Buffer', () => {
    for (let n = 0; n < 70; n++) {
      const bytes = randomBytes(n)
      const text = portable.base64urlEncode(bytes)
      expect(text).toBe(node.base64urlEncode(bytes))
      expect(plain(portable.base64urlDecode(text))).toEqual([...bytes])
    }
  })

  it('UTF-8: the same text for valid bytes, undefined for invalid ones, a leading BOM kept', () => {
    const cases: number[][] = [
      [],
      [0x7b, 0x7d],
      [0xef, 0xbb, 0xbf, 0x7b, 0x7d], // BOM: kept, so JSON.parse refuses it on both
      [0xc3, 0xa9],
      [0xf0, 0x9f, 0x98, 0x80],
      [0xc0, 0x80], // overlong
      [0xed, 0xa0, 0x80], // a surrogate
      [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
      [0xe2, 0x82], // truncated
      [0x80],
      [0xff],
    ]
    for (const c of cases) {
      const bytes = Uint8Array.from(c)
      expect(portable.utf8Text(bytes), c.join(',')).toBe(node.utf8Text(bytes))
    }
    expect(portable.utf8Text(Uint8Array.from([0xef, 0xbb, 0xbf, 0x31]))).toBe('\ufeff1')
    expect(portable.utf8Text(Uint8Array.from([0xc0, 0x80]))).toBeUndefined()
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 24 }), fc.nat(24), fc.nat(24), (bytes, a, b) => {
        const [start, end] = [Math.min(a, b, bytes.length), Math.min(Math.max(a, b), bytes.length)]
        expect(portable.utf8Text(bytes, start, end)).toBe(node.utf8Text(bytes, start, end))
      }),
      { numRuns: 5000 },
    )
  })

  it('ASCII: the same verdict on any string; bytes written and read back alike', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 30 }), (s) => {
        expect(portable.isAscii(s)).toBe(node.isAscii(s))
      }),
      { numRuns: 5000 },
    )
    const token = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln'
    expect([...portable.asciiBytes(token)]).toEqual([...node.asciiBytes(token)])
    const a = portable.byteView(new ArrayBuffer(64))
    const b = node.byteView(new ArrayBuffer(64))
    portable.writeAscii(a, token, 3)
    node.writeAscii(b, token, 3)
    expect([...a]).toEqual([...b])
    expect(portable.asciiText(a, 3, 3 + token.length)).toBe(token)
    expect(node.asciiText(b, 3, 3 + token.length)).toBe(token)
  })
})
