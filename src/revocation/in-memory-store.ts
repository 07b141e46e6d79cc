/**
 * Revocations held in this process: a TTL per entry (a revocation only needs to outlive the
 * mandates it kills), a bound on size, synchronous answers. Expired entries leave through a
 * min-heap of expiries, a few per insert, so no insert ever sweeps the whole map; and an
 * unexpired revocation is never dropped to make room: a full store refuses the new one instead
 * (`RevocationStoreFullError`), so whoever feeds it knows a revocation is not held.
 */
import { OptionReader } from '../option-reader.js'
import { emitWarning } from '../platform/warning.js'
import type { RevocationStore } from './types.js'

export interface InMemoryRevocationStoreOptions {
  /** Default TTL of an entry; 24 h like the Caracal backend's durable keys. */
  readonly defaultTtlMs?: number
  /** Most entries kept. When full and nothing has expired, `markRevoked` throws `RevocationStoreFullError`. */
  readonly maxEntries?: number
  readonly now?: () => number
}

export const DEFAULT_REVOCATION_TTL_MS = 24 * 60 * 60 * 1000

const STORE_OPTIONS: readonly (keyof InMemoryRevocationStoreOptions)[] = ['defaultTtlMs', 'maxEntries', 'now']

/** `markRevoked` on a store holding `maxEntries` unexpired revocations: the new one is not held. */
export class RevocationStoreFullError extends Error {
  override readonly name = 'RevocationStoreFullError'
  readonly code = 'CARACAL_REVOCATIONS_FULL'

  constructor(maxEntries: number) {
    super(
      `InMemoryRevocationStore is full: ${maxEntries} unexpired revocations (maxEntries); the revocation was not recorded`,
    )
  }
}

/** Expired entries removed per insert: more than one, so the heap drains faster than it fills. */
const EXPIRE_PER_INSERT = 4

export class InMemoryRevocationStore implements RevocationStore {
  /** anchor → expiry (ms). */
  readonly #expiries = new Map<string, number>()
  /**
   * A binary min-heap over expiry of (expiry, anchor) pairs, in two parallel arrays. An entry is
   * current while the map holds that same expiry for its anchor; a TTL that was extended, or an
   * anchor deleted, leaves a stale entry behind, dropped when it reaches the top or on a rebuild.
   */
  #heapExpiry: number[] = []
  #heapAnchor: string[] = []
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

  get maxEntries(): number {
    return this.#maxEntries
  }

  isRevoked(anchor: string): boolean {
    const expiry = this.#expiries.get(anchor)
    if (expiry === undefined) return false
    if (expiry > this.#now()) return true
    this.#expiries.delete(anchor)
    return false
  }

  /**
   * Revokes `anchor` for `ttlMs` (never shortening a revocation already held). Throws
   * `RevocationStoreFullError` when `maxEntries` unexpired revocations are held: nothing is
   * dropped to make room.
   */
  markRevoked(anchor: string, ttlMs: number = this.#defaultTtlMs): void {
    if (typeof anchor !== 'string' || anchor === '') throw new TypeError('anchor must be a non-empty string')
    if (!(Number.isFinite(ttlMs) && ttlMs > 0)) throw new TypeError('ttlMs must be a positive number')
    const now = this.#now()
    const expiry = now + ttlMs
    const current = this.#expiries.get(anchor)
    // A revocation never gets shorter: the later expiry wins.
    if (current !== undefined && current >= expiry) return
    this.#expire(now, EXPIRE_PER_INSERT)
    if (current === undefined && this.#expiries.size >= this.#maxEntries) {
      this.#expire(now, Number.POSITIVE_INFINITY)
      if (this.#expiries.size >= this.#maxEntries) throw this.#full()
    }
    this.#expiries.set(anchor, expiry)
    // An anchor already held keeps its heap entry, due no later than its new expiry: when it
    // surfaces it moves down to the new one (#expire), so a TTL extended a million times leaves no
    // stale entries behind.
    if (current === undefined) this.#push(expiry, anchor)
    // Stale entries now come only from delete(): a rebuild when they outnumber the live ones.
    if (this.#heapExpiry.length > 2 * this.#expiries.size + 1024) this.#rebuild()
  }

  /** True when a new revocation would fit (after removing what has expired). */
  hasRoom(): boolean {
    if (this.#expiries.size < this.#maxEntries) return true
    this.#expire(this.#now(), Number.POSITIVE_INFINITY)
    return this.#expiries.size < this.#maxEntries
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
    this.#heapExpiry = []
    this.#heapAnchor = []
    this.#epochs.clear()
  }

  #full(): RevocationStoreFullError {
    if (!this.#warned) {
      this.#warned = true
      emitWarning(
        `InMemoryRevocationStore is full (${this.#maxEntries} unexpired entries): new revocations are refused; raise maxEntries`,
        'CARACAL_REVOCATIONS_FULL',
      )
    }
    return new RevocationStoreFullError(this.#maxEntries)
  }

  /** Removes up to `limit` expired entries from the top of the heap (stale entries cost nothing). */
  #expire(now: number, limit: number): void {
    const ex = this.#heapExpiry
    const an = this.#heapAnchor
    let removed = 0
    while (ex.length > 0 && ex[0]! <= now && removed < limit) {
      const anchor = an[0]!
      const due = ex[0]!
      const held = this.#expiries.get(anchor)
      this.#pop()
      if (held === due) {
        this.#expiries.delete(anchor)
        removed++
      } else if (held !== undefined && held > due) {
        // Extended since it was pushed: due again at its new expiry (unless a later push already is).
        this.#push(held, anchor)
      }
    }
  }

  #push(expiry: number, anchor: string): void {
    const ex = this.#heapExpiry
    const an = this.#heapAnchor
    let i = ex.length
    ex.push(expiry)
    an.push(anchor)
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (ex[parent]! <= expiry) break
      ex[i] = ex[parent]!
      an[i] = an[parent]!
      i = parent
    }
    ex[i] = expiry
    an[i] = anchor
  }

  #pop(): void {
    const ex = this.#heapExpiry
    const an = this.#heapAnchor
    const lastExpiry = ex.pop()!
    const lastAnchor = an.pop()!
    const n = ex.length
    if (n === 0) return
    let i = 0
    for (;;) {
      let child = 2 * i + 1
      if (child >= n) break
      if (child + 1 < n && ex[child + 1]! < ex[child]!) child++
      if (ex[child]! >= lastExpiry) break
      ex[i] = ex[child]!
      an[i] = an[child]!
      i = child
    }
    ex[i] = lastExpiry
    an[i] = lastAnchor
  }

  /** The heap again from the map alone, dropping every stale entry. */
  #rebuild(): void {
    this.#heapExpiry = []
    this.#heapAnchor = []
    for (const [anchor, expiry] of this.#expiries) this.#push(expiry, anchor)
  }
}
