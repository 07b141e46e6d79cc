/**
 * Revocations held in this process: a TTL per entry (a revocation only needs to outlive the
 * mandates it kills), a bound on size, synchronous answers.
 */
import { OptionReader } from '../option-reader.js'
import type { RevocationStore } from './types.js'

export interface InMemoryRevocationStoreOptions {
  /** Default TTL of an entry; 24 h like the Caracal backend's durable keys. */
  readonly defaultTtlMs?: number
  /** Most entries kept; when full, expired entries are swept, then the oldest is dropped. */
  readonly maxEntries?: number
  readonly now?: () => number
}

export const DEFAULT_REVOCATION_TTL_MS = 24 * 60 * 60 * 1000

const STORE_OPTIONS: readonly (keyof InMemoryRevocationStoreOptions)[] = ['defaultTtlMs', 'maxEntries', 'now']

export class InMemoryRevocationStore implements RevocationStore {
  /** anchor → expiry (ms), in insertion order, which the eviction below relies on. */
  readonly #expiries = new Map<string, number>()
  /** zone → its delegation graph epoch and when that entry expires (ms). */
  readonly #epochs = new Map<string, { readonly epoch: number; readonly expiry: number }>()
  readonly #defaultTtlMs: number
  readonly #maxEntries: number
  readonly #now: () => number
  #warned = false

  constructor(options: InMemoryRevocationStoreOptions = {}) {
    const o = new OptionReader('InMemoryRevocationStore', options, STORE_OPTIONS)
    this.#defaultTtlMs = o.positiveMs('defaultTtlMs', DEFAULT_REVOCATION_TTL_MS)
    this.#maxEntries = o.integer('maxEntries', 1_000_000, 1)
    this.#now = o.fn('now', Date.now)
  }

  get size(): number {
    return this.#expiries.size
  }

  isRevoked(anchor: string): boolean {
    const expiry = this.#expiries.get(anchor)
    if (expiry === undefined) return false
    if (expiry > this.#now()) return true
    this.#expiries.delete(anchor)
    return false
  }

  markRevoked(anchor: string, ttlMs: number = this.#defaultTtlMs): void {
    if (typeof anchor !== 'string' || anchor === '') throw new TypeError('anchor must be a non-empty string')
    if (!(Number.isFinite(ttlMs) && ttlMs > 0)) throw new TypeError('ttlMs must be a positive number')
    const expiry = this.#now() + ttlMs
    const current = this.#expiries.get(anchor)
    // A revocation never gets shorter: the later expiry wins.
    if (current !== undefined && current >= expiry) return
    this.#expiries.delete(anchor)
    if (this.#expiries.size >= this.#maxEntries) this.#evict()
    this.#expiries.set(anchor, expiry)
  }

  currentDelegationEpoch(zoneId: string): number {
    const entry = this.#epochs.get(zoneId)
    if (entry === undefined) return 0
    if (entry.expiry > this.#now()) return entry.epoch
    this.#epochs.delete(zoneId)
    return 0
  }

  /**
   * Raises the zone's epoch; a lower or equal one changes nothing (events may arrive out of order,
   * and an epoch only ever grows). An expired entry counts as 0. The TTL runs from the last raise.
   */
  markDelegationEpoch(zoneId: string, epoch: number, ttlMs: number = this.#defaultTtlMs): void {
    if (typeof zoneId !== 'string' || zoneId === '') throw new TypeError('zoneId must be a non-empty string')
    if (!(Number.isSafeInteger(epoch) && epoch >= 0)) throw new TypeError('epoch must be a non-negative integer')
    if (!(Number.isFinite(ttlMs) && ttlMs > 0)) throw new TypeError('ttlMs must be a positive number')
    if (epoch <= this.currentDelegationEpoch(zoneId)) return
    this.#epochs.set(zoneId, { epoch, expiry: this.#now() + ttlMs })
  }

  /** Forgets an anchor (for tests and for mirrors that learn a revocation was withdrawn). */
  delete(anchor: string): boolean {
    return this.#expiries.delete(anchor)
  }

  clear(): void {
    this.#expiries.clear()
    this.#epochs.clear()
  }

  /**
   * Drops expired entries; if the store is still full, the oldest entry goes (with the default TTL
   * that is also the one expiring soonest) and a coded warning says a revocation was lost.
   */
  #evict(): void {
    const now = this.#now()
    for (const [anchor, expiry] of this.#expiries) if (expiry <= now) this.#expiries.delete(anchor)
    if (this.#expiries.size < this.#maxEntries) return
    const oldest = this.#expiries.keys().next()
    if (oldest.done !== true) this.#expiries.delete(oldest.value)
    if (!this.#warned) {
      this.#warned = true
      process.emitWarning(
        `InMemoryRevocationStore is full (${this.#maxEntries} entries): the oldest revocations are being dropped`,
        {
          code: 'CARACAL_REVOCATIONS_FULL',
        },
      )
    }
  }
}
