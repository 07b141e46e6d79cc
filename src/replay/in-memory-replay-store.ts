/**
 * The `jti`s seen by this process (one gateway instance; several instances need `RedisReplayStore`).
 * The set is the revocation set's structure — an entry per key until its TTL, a heap of expiries,
 * a bound that refuses rather than forgets — so it is one: a used `jti` is, in effect, revoked.
 */
import { OptionReader } from '../option-reader.js'
import { InMemoryRevocationStore } from '../revocation/in-memory-store.js'
import type { ReplayStore } from './types.js'

export interface InMemoryReplayStoreOptions {
  /**
   * Most `jti`s held at once. When that many unexpired ones are held, `firstUse` throws
   * (`RevocationStoreFullError`) and `CaracalAuth` answers 503: forgetting one would let it be
   * replayed. Default 1 000 000.
   */
  readonly maxEntries?: number
  readonly now?: () => number
}

const OPTIONS: readonly (keyof InMemoryReplayStoreOptions)[] = ['maxEntries', 'now']

export class InMemoryReplayStore implements ReplayStore {
  readonly #seen: InMemoryRevocationStore

  constructor(options: InMemoryReplayStoreOptions = {}) {
    const o = new OptionReader('InMemoryReplayStore', options, OPTIONS)
    this.#seen = new InMemoryRevocationStore({
      maxEntries: o.integer('maxEntries', 1_000_000, 1),
      now: o.fn('now', Date.now),
    })
  }

  get size(): number {
    return this.#seen.size
  }

  firstUse(jti: string, ttlMs: number): boolean {
    if (this.#seen.isRevoked(jti)) return false
    this.#seen.markRevoked(jti, ttlMs)
    return true
  }
}
