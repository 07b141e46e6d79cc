/**
 * Verified tokens, memoized until `exp` (SPEC §2). A hit requires the presented token to equal the
 * verified one byte for byte: a forged token that reuses a cached `jti` (or anything else of a
 * cached token) is not a hit and goes through the full check. One entry per `jti`: a newer token
 * with the same `jti` replaces the older one. `exp` is re-checked by the caller on every hit;
 * policy and revocation run on every hit too — only the signature and claim parsing are skipped.
 *
 * The map is keyed by the token's last characters (the end of its signature), not the whole
 * token: every request brings a new string, and hashing a whole 400–700 character token costs
 * V8 ~1 ns per character on each lookup. The full comparison on a hit keeps the byte-identity
 * rule; a key collision (two tokens sharing 192 bits of signature tail) can only cost a miss.
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
  /** jti → the key of the entry cached for it. */
  readonly #keyByJti = new Map<string, string>()

  constructor(max: number) {
    this.#entries = new LRUCache<string, Entry>({
      max,
      dispose: (entry, key, reason) => {
        // 'set' replaces the value under the same key (two concurrent misses): the key stays.
        if (reason === 'set') return
        const jti = entry.mandate.claims.jti
        if (this.#keyByJti.get(jti) === key) this.#keyByJti.delete(jti)
      },
    })
  }

  get size(): number {
    return this.#entries.size
  }

  get(token: string): VerifiedMandate | undefined {
    const entry = this.#entries.get(keyOf(token))
    return entry !== undefined && entry.token === token ? entry.mandate : undefined
  }

  set(token: string, mandate: VerifiedMandate): void {
    const key = keyOf(token)
    const jti = mandate.claims.jti
    const previous = this.#keyByJti.get(jti)
    if (previous !== undefined && previous !== key) this.#entries.delete(previous)
    this.#keyByJti.set(jti, key)
    this.#entries.set(key, { token, mandate })
  }

  delete(token: string): void {
    const key = keyOf(token)
    if (this.#entries.peek(key)?.token === token) this.#entries.delete(key)
  }

  clear(): void {
    this.#entries.clear()
    this.#keyByJti.clear()
  }
}
