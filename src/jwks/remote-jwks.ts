/**
 * Keys from the STS's JWKS endpoint (README "Keys (JWKS)"). Lookups are synchronous against the current set;
 * the network is touched only on first use, on an unknown kid (at most once per cooldown, one
 * flight however many requests wait), and in the background once the set is older than the TTL.
 * A failed refresh keeps the keys we have: the STS being down must not take the gateway down.
 */
import type { Algorithm } from '../jws/algorithms.js'
import type { BackendForAlgorithm, VerifyingKey } from '../backends/types.js'
import { fetchJwks, JwksFetchError } from './fetch-jwks.js'
import { KeySet, type IgnoredKey, type KeyLookup } from './key-set.js'

/** Least time between two attempts while no JWKS was ever loaded. */
const FIRST_LOAD_RETRY_MS = 1_000

export interface JwksSourceOptions {
  readonly url?: string
  readonly keys?: unknown
  readonly ttlMs: number
  readonly cooldownMs: number
  readonly timeoutMs: number
  readonly maxBytes: number
  readonly fetch: typeof globalThis.fetch
  readonly now: () => number
  readonly backendFor: BackendForAlgorithm
}

export interface JwksStats {
  readonly keys: number
  readonly fetches: number
  readonly fetchFailures: number
  readonly lastFetchAt: number | undefined
  readonly lastError: string | undefined
  /** The keys of the current JWKS that are not used, and why (weak, private, wrong type, …). */
  readonly ignoredKeys: readonly IgnoredKey[]
}

export class JwksSource {
  readonly #keys: KeySet
  readonly #options: JwksSourceOptions
  readonly #abort = new AbortController()
  #loadedAt: number | undefined
  #lastAttemptAt = Number.NEGATIVE_INFINITY
  #inflight: Promise<void> | undefined
  #fetches = 0
  #failures = 0
  #lastError: string | undefined

  constructor(options: JwksSourceOptions) {
    this.#options = options
    this.#keys = new KeySet(options.backendFor)
    if (options.keys !== undefined) {
      this.#keys.replace(options.keys)
      this.#loadedAt = options.now()
    }
  }

  get isStatic(): boolean {
    return this.#options.url === undefined
  }

  /** Synchronous lookup; starts a background refresh when the set is older than the TTL. */
  lookup(alg: Algorithm, kid: string | undefined): KeyLookup {
    const found = this.#keys.find(alg, kid)
    if (!this.isStatic && this.#loadedAt !== undefined) {
      const now = this.#options.now()
      if (now - this.#loadedAt >= this.#options.ttlMs && now - this.#lastAttemptAt >= this.#options.cooldownMs) {
        void this.refresh().catch(() => {})
      }
    }
    return found
  }

  /**
   * Lookup that may wait for the network: on first use, or when the key is unknown and the
   * cooldown allows a refetch (or a fetch is already in flight, which is joined).
   */
  async resolve(alg: Algorithm, kid: string | undefined): Promise<KeyLookup> {
    const first = this.lookup(alg, kid)
    if (first.key !== undefined || this.isStatic) return first
    const now = this.#options.now()
    // Before the first load there are no keys at all, so retries come sooner than the cooldown —
    // but not on every request: a fast-failing STS would otherwise get one fetch per request.
    const wait =
      this.#loadedAt === undefined ? Math.min(this.#options.cooldownMs, FIRST_LOAD_RETRY_MS) : this.#options.cooldownMs
    const mayFetch = this.#inflight !== undefined || now - this.#lastAttemptAt >= wait
    if (!mayFetch)
      return this.#loadedAt === undefined
        ? { reason: `signing keys unavailable (${this.#lastError ?? 'not loaded'})` }
        : first
    try {
      await this.refresh()
    } catch (error) {
      if (this.#loadedAt === undefined) return { reason: `signing keys unavailable (${describe(error)})` }
    }
    return this.#keys.find(alg, kid)
  }

  /** Fetches the JWKS now, joining a fetch already in flight. Rejects when the fetch fails. */
  refresh(): Promise<void> {
    if (this.isStatic) return Promise.resolve()
    if (this.#inflight !== undefined) return this.#inflight
    this.#lastAttemptAt = this.#options.now()
    this.#fetches++
    const flight = fetchJwks(this.#options.url!, {
      timeoutMs: this.#options.timeoutMs,
      maxBytes: this.#options.maxBytes,
      fetch: this.#options.fetch,
      signal: this.#abort.signal,
    })
      .then(
        (jwks) => {
          if (this.#abort.signal.aborted) return
          this.#keys.replace(jwks)
          this.#loadedAt = this.#options.now()
          this.#lastError = undefined
        },
        (error: unknown) => {
          this.#failures++
          this.#lastError = describe(error)
          throw error
        },
      )
      .finally(() => {
        this.#inflight = undefined
      })
    this.#inflight = flight
    return flight
  }

  /** Whether `key` is still in the key set: a key that left the JWKS vouches for nothing, cached or not. */
  isCurrent(key: VerifyingKey): boolean {
    return this.#keys.has(key)
  }

  stats(): JwksStats {
    return {
      keys: this.#keys.size,
      fetches: this.#fetches,
      fetchFailures: this.#failures,
      lastFetchAt: this.#loadedAt,
      lastError: this.#lastError,
      ignoredKeys: this.#keys.ignored,
    }
  }

  close(): void {
    this.#abort.abort()
    this.#keys.clear()
  }
}

function describe(error: unknown): string {
  return error instanceof JwksFetchError ? error.message : 'JWKS fetch failed'
}
