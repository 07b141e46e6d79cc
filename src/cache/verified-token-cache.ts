/**
 * Verified tokens, memoized until `exp` (README "What is checked"). A hit requires the presented token to equal the
 * verified one byte for byte: a forged token that reuses a cached `jti` (or anything else of a
 * cached token) is not a hit and goes through the full check. `exp` is re-checked by the caller on
 * every hit; policy and revocation run on every hit too — only the signature and claim parsing
 * are skipped.
 *
 * The map is keyed by the token's last characters (the end of its signature), not the whole
 * token: every request brings a new string, and hashing a whole 400–700 character token costs
 * V8 ~1 ns per character on each lookup. The full comparison on a hit keeps the byte-identity
 * rule; a key collision (two tokens sharing 192 bits of signature tail) can only cost a miss.
 * Two genuine tokens with one `jti` are two entries: indexing by `jti` as well cost ~0.25 µs per
 * insert (measured) and protects nothing, since a hit needs the identical token anyway.
 */
import { LRUCache } from 'lru-cache'
import type { VerifiedMandate } from '../policy/claims.js'

/** 32 base64url characters: 192 bits of the signature. */
const KEY_CHARS = 32

interface Entry {
  readonly token: string
  readonly mandate: VerifiedMandate
}

const keyOf = (token: string): string => token.slice(-KEY_CHARS)

export class VerifiedTokenCache {
  readonly #entries: LRUCache<string, Entry>

  constructor(max: number) {
    this.#entries = new LRUCache<string, Entry>({ max })
  }

  get size(): number {
    return this.#entries.size
  }

  get(token: string): VerifiedMandate | undefined {
    const entry = this.#entries.get(keyOf(token))
    return entry !== undefined && entry.token === token ? entry.mandate : undefined
  }

  set(token: string, mandate: VerifiedMandate): void {
    this.#entries.set(keyOf(token), { token, mandate })
  }

  delete(token: string): void {
    const key = keyOf(token)
    if (this.#entries.peek(key)?.token === token) this.#entries.delete(key)
  }

  clear(): void {
    this.#entries.clear()
  }
}
