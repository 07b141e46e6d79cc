/**
 * Verified tokens, memoized until `exp` (README "What is checked"). A hit requires the presented token to equal the
 * verified one byte for byte: a forged token that reuses a cached `jti` (or anything else of a
 * cached token) is not a hit and goes through the full check. `exp` is re-checked by the caller on
 * every hit, and so is the key that verified the token: once it has left the JWKS, the entry is
 * dropped and the token refused, as a fresh one signed by that key would be. Policy and
 * revocation run on every hit too — only the signature and claim parsing are skipped. Only
 * mandates this verifier accepted up to revocation are stored: a refusal is never cached.
 *
 * The map is keyed by the token's last characters (the end of its signature), not the whole
 * token: every request brings a new string, and hashing a whole 400–700 character token costs
 * V8 ~1 ns per character on each lookup. The full comparison on a hit keeps the byte-identity
 * rule; a key collision (two tokens sharing 192 bits of signature tail) can only cost a miss.
 * Two genuine tokens with one `jti` are two entries: indexing by `jti` as well cost ~0.25 µs per
 * insert (measured) and protects nothing, since a hit needs the identical token anyway.
 *
 * Admission adapts to the traffic. Where tokens come back, each is stored when first verified.
 * Where they do not — Caracal mints a mandate per request, and its replay rule refuses a second
 * presentation of a resource mandate — storing each one only churns the heap: every entry lives
 * long enough to be promoted out of V8's young generation and then dies there, which cost a cold
 * verification 15–20% of its time (bench/README.md "Cold traffic and the cache"). So every
 * WINDOW stores the cache looks at how many verifications found their token again (hits, and
 * tokens verified a second time): fewer than COMEBACKS and, until a window shows them coming back,
 * a token is stored on its second verification. A token presented again then costs one more
 * signature check; the answer is the same either way.
 */
import { LRUCache } from 'lru-cache'
import type { VerifyingKey } from '../backends/types.js'
import type { Algorithm } from '../jws/algorithms.js'
import type { VerifiedMandate } from '../policy/claims.js'

/** 32 base64url characters: 192 bits of the signature. */
const KEY_CHARS = 32

export interface CachedMandate {
  readonly token: string
  readonly mandate: VerifiedMandate
  /** The key that verified it: a hit counts only while that key is still published. */
  readonly key: VerifyingKey
  /** The key set it came from: verifiers of another zone (another key set) do not take it as a hit. */
  readonly source: object
  /** The header's alg and kid: on a hit the token must still get `key` from its key set. */
  readonly alg: Algorithm
  readonly kid: string | undefined
}

const keyOf = (token: string): string => token.slice(-KEY_CHARS)

/**
 * The first capacity, and the factor it grows by once full. lru-cache allocates its whole capacity
 * up front, and at the default 10 000 that costs a fresh isolate ~2–3 ms of CPU in the
 * constructor (bench/README.md "Cold start in the runtimes"); 256 entries cost ~0.1 ms.
 */
const FIRST_CAPACITY = 256
const GROWTH = 8

/** Stores between two looks at the traffic. */
const WINDOW = 1024
/** Fewer tokens found again than this in a window (under 1 in 64): traffic of tokens presented once. */
const COMEBACKS = 16

/** The signature's last characters folded to a small integer: a Set of them holds no heap objects. */
function tailOf(token: string): number {
  let h = 0
  for (let i = Math.max(0, token.length - 6); i < token.length; i++) h = (h * 61 + token.charCodeAt(i)) & 0x3fffffff
  return h
}

export class VerifiedTokenCache {
  readonly #max: number
  #entries: LRUCache<string, CachedMandate>
  /** Storing on the second verification only (the window before found almost no token again). */
  #secondSight = false
  /** In second-sight mode: tails of tokens verified once and not stored. A collision only stores a token early. */
  readonly #once = new Set<number>()
  #stores = 0
  #comebacks = 0

  constructor(max: number) {
    this.#max = max
    this.#entries = new LRUCache<string, CachedMandate>({ max: Math.min(max, FIRST_CAPACITY) })
  }

  /** A larger map holding the same entries in the same recency order, when a new key would evict one before `max`. */
  #growFor(key: string): void {
    const full = this.#entries
    if (full.size < full.max || full.max >= this.#max || full.has(key)) return
    const larger = new LRUCache<string, CachedMandate>({ max: Math.min(this.#max, full.max * GROWTH) })
    // rforEach: least recently used first, so the last one set is the most recent, as before.
    full.rforEach((value, key) => larger.set(key, value))
    this.#entries = larger
  }

  get size(): number {
    return this.#entries.size
  }

  get(token: string): CachedMandate | undefined {
    const entry = this.#entries.get(keyOf(token))
    if (entry === undefined || entry.token !== token) return undefined
    this.#comebacks++
    return entry
  }

  /** Whether stores go on the second verification; for stats(). */
  get secondSight(): boolean {
    return this.#secondSight
  }

  set(token: string, entry: Omit<CachedMandate, 'token'>): void {
    if (++this.#stores >= WINDOW) this.#review()
    if (this.#secondSight) {
      const tail = tailOf(token)
      if (this.#once.delete(tail)) this.#comebacks++
      else {
        if (this.#once.size >= this.#max) this.#once.clear()
        this.#once.add(tail)
        return
      }
    }
    const key = keyOf(token)
    this.#growFor(key)
    this.#entries.set(key, { token, ...entry })
  }

  delete(token: string): void {
    const key = keyOf(token)
    if (this.#entries.peek(key)?.token === token) this.#entries.delete(key)
  }

  #review(): void {
    const secondSight = this.#comebacks < COMEBACKS
    if (secondSight !== this.#secondSight) {
      this.#secondSight = secondSight
      this.#once.clear()
    }
    this.#stores = 0
    this.#comebacks = 0
  }

  clear(): void {
    this.#entries.clear()
    this.#once.clear()
    this.#secondSight = false
    this.#stores = 0
    this.#comebacks = 0
  }
}
