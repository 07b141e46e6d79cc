/**
 * `caracal-fastmcp/compat/revocation`: the surface of `@caracalai/revocation` (the revocation store
 * contract and its in-memory default) over this library's `InMemoryRevocationStore` (README
 * "Revocation"). Change the import specifier; the rest of the code stays as it is.
 *
 * Exported as Caracal exports them: the `RevocationStore` type and `InMemoryRevocationStore`
 * (`new InMemoryRevocationStore({ defaultTtlMs?, maxEntries? })`, `isRevoked`, `markRevoked`,
 * `currentDelegationEpoch`, `markDelegationEpoch`, and `size()` as a method). Entries expire on a
 * monotonic clock (`performance.now()`), as the newest Caracal store does, so a wall-clock step
 * neither revives nor drops a revocation.
 *
 * Where it differs from Caracal's store, on purpose (this library's stricter store underneath):
 * - `markRevoked` never shortens a revocation already held: the later expiry wins (Caracal's
 *   overwrites it, so a second, shorter TTL could end a revocation early).
 * - `markRevoked` of an empty anchor, and a TTL that is not a positive number, throw a
 *   `TypeError` (Caracal's records `''`, which no mandate can carry: empty claims are absent, README
 *   "Moving from the Caracal TypeScript verifier"; a TTL of 0 or less recorded an already-expired entry).
 * - `markDelegationEpoch` throws a `TypeError` for an empty zone or an epoch that is not a
 *   non-negative integer (Caracal's stored any number, `NaN` included, which no mandate compares against).
 * - The full store throws `RevocationStoreFullError` (code `CARACAL_REVOCATIONS_FULL`, with one
 *   process warning), whose message starts with Caracal's "Revocation store capacity exceeded".
 *   Marking an anchor that is already held never fails for capacity (Caracal's refused it when
 *   full), and expired entries leave a few per insert instead of in a sweep of the whole map.
 * - An unknown or malformed option is a `TypeError` naming it (Caracal's ignored it).
 * Same as Caracal: `defaultTtlMs` 24 h, `maxEntries` 100 000, an entry expired once its expiry is
 * reached, epochs only ever raised (a lower or equal one changes nothing) and 0 for an unknown zone.
 */
import {
  InMemoryRevocationStore as EngineInMemoryRevocationStore,
  RevocationStoreFullError,
} from '../revocation/in-memory-store.js'
import type { RevocationStore } from '../revocation/types.js'

export type { RevocationStore } from '../revocation/types.js'

/** Caracal's default capacity (this library's own store defaults to 10⁶). */
const CARACAL_MAX_ENTRIES = 100_000
const CARACAL_OPTIONS: readonly string[] = ['defaultTtlMs', 'maxEntries']

/** This library's full-store error, worded as Caracal's so code that matches its message still does. */
class CapacityExceededError extends RevocationStoreFullError {
  constructor(maxEntries: number) {
    super(maxEntries)
    this.message = `Revocation store capacity exceeded: ${maxEntries} unexpired revocations (maxEntries); the revocation was not recorded`
  }
}

export class InMemoryRevocationStore implements RevocationStore {
  readonly #store: EngineInMemoryRevocationStore
  readonly #maxEntries: number

  constructor(opts: { defaultTtlMs?: number; maxEntries?: number } = {}) {
    if (typeof opts !== 'object' || opts === null)
      throw new TypeError('InMemoryRevocationStore needs an options object')
    for (const key of Object.keys(opts)) {
      if (!CARACAL_OPTIONS.includes(key))
        throw new TypeError(`InMemoryRevocationStore option "${key}" is not an option of InMemoryRevocationStore`)
    }
    this.#store = new EngineInMemoryRevocationStore({
      defaultTtlMs: opts.defaultTtlMs,
      maxEntries: opts.maxEntries ?? CARACAL_MAX_ENTRIES,
      // Read on every call (not bound once), so a clock faked after construction is the one used.
      now: () => performance.now(),
    })
    this.#maxEntries = this.#store.maxEntries
  }

  isRevoked(sid: string): boolean {
    return this.#store.isRevoked(sid)
  }

  markRevoked(sid: string, ttlMs?: number): void {
    try {
      this.#store.markRevoked(sid, ttlMs)
    } catch (error) {
      if (error instanceof RevocationStoreFullError) throw new CapacityExceededError(this.#maxEntries)
      throw error
    }
  }

  currentDelegationEpoch(zoneId: string): number {
    return this.#store.currentDelegationEpoch(zoneId)
  }

  markDelegationEpoch(zoneId: string, epoch: number, ttlMs?: number): void {
    this.#store.markDelegationEpoch(zoneId, epoch, ttlMs)
  }

  /** Revocations held, expired ones not yet removed included (as Caracal counts them). */
  size(): number {
    return this.#store.size
  }
}
