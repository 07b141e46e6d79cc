/**
 * Verified tokens, memoized until `exp` (SPEC §2). The key is the whole token text, so a hit is
 * byte-identical to what was verified by construction: a forged token that reuses a cached `jti`
 * is a different key and goes through the full check. One entry per `jti`: a newer token with the
 * same `jti` replaces the older one. `exp` is re-checked by the caller on every hit; policy and
 * revocation run on every hit too — only the signature and claim parsing are skipped.
 */
import { LRUCache } from 'lru-cache'
import type { VerifiedMandate } from '../policy/claims.js'

export class VerifiedTokenCache {
  readonly #entries: LRUCache<string, VerifiedMandate>
  /** jti → the token cached under it. */
  readonly #tokenByJti = new Map<string, string>()

  constructor(max: number) {
    this.#entries = new LRUCache<string, VerifiedMandate>({
      max,
      dispose: (mandate, token, reason) => {
        // 'set' replaces the value under the same token (two concurrent misses): the token stays.
        if (reason === 'set') return
        if (this.#tokenByJti.get(mandate.claims.jti) === token) this.#tokenByJti.delete(mandate.claims.jti)
      },
    })
  }

  get size(): number {
    return this.#entries.size
  }

  get(token: string): VerifiedMandate | undefined {
    return this.#entries.get(token)
  }

  set(token: string, mandate: VerifiedMandate): void {
    const previous = this.#tokenByJti.get(mandate.claims.jti)
    if (previous !== undefined && previous !== token) this.#entries.delete(previous)
    this.#tokenByJti.set(mandate.claims.jti, token)
    this.#entries.set(token, mandate)
  }

  delete(token: string): void {
    this.#entries.delete(token)
  }

  clear(): void {
    this.#entries.clear()
    this.#tokenByJti.clear()
  }
}
