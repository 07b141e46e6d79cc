/**
 * Keys from the STS's JWKS endpoint (README "Keys (JWKS)"). Lookups are synchronous against the current set;
 * the network is touched only on first use, on an unknown kid (at most once per cooldown, one
 * flight however many requests wait), and in the background once the set is older than the TTL.
 * A failed refresh keeps the keys we have: the STS being down must not take the gateway down — but
 * not forever: keys not refreshed for `maxStaleMs` are no longer trusted, and every lookup fails
 * as `unavailable` (a temporary failure of ours, not a bad token) until a fetch succeeds.
 */
import type { Algorithm } from '../jws/algorithms.js'
import type { BackendForAlgorithm } from '../backends/types.js'
import { fetchJwks, JwksFetchError } from './fetch-jwks.js'
import { KeySet, type IgnoredKey, type KeyLookup } from './key-set.js'

/** Least time between two attempts while no trusted JWKS is held (none loaded yet, or stale). */
const FIRST_LOAD_RETRY_MS = 1_000

export interface JwksSourceOptions {
  readonly url?: string
  readonly keys?: unknown
  readonly ttlMs: number
  readonly cooldownMs: number
  readonly timeoutMs: number
  readonly maxBytes: number
  /** Age after which keys that could not be refreshed are no longer trusted (README "Keys (JWKS)"). */
  readonly maxStaleMs: number
  readonly fetch: typeof globalThis.fetch
  readonly now: () => number
  readonly backendFor: BackendForAlgorithm
  /** Settles once `backendFor` may be called (README "Runtimes": the wasm module loading); static keys wait for it. */
  readonly backendsReady?: Promise<void> | undefined
}

/**
 * A `KeyLookup` that may say the failure is ours and temporary (`unavailable`): no trusted keys
 * (none loaded yet, or stale), or an unknown kid while the JWKS cannot be refetched — the kid may
 * be one the STS has just rotated in. Callers turn it into `CaracalAuthError`'s `unavailable`
 * (HTTP 503 with Retry-After, README "HTTP answers").
 */
export type JwksLookup = KeyLookup & { readonly unavailable?: boolean }

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

  /** Static keys waiting for the backends to be chosen (README "Runtimes"); undefined once imported. */
  #loading: Promise<void> | undefined

  constructor(options: JwksSourceOptions) {
    this.#options = options
    this.#keys = new KeySet(options.backendFor)
    const keys = options.keys
    if (keys === undefined) return
    const importKeys = () => {
      this.#keys.replace(keys)
      this.#loadedAt = options.now()
      this.#loading = undefined
    }
    if (options.backendsReady === undefined) importKeys()
    else this.#loading = options.backendsReady.then(importKeys, importKeys)
  }

  /** Undefined once the static keys (if any) are imported. */
  get loading(): Promise<void> | undefined {
    return this.#loading
  }

  get isStatic(): boolean {
    return this.#options.url === undefined
  }

  /**
   * Synchronous lookup; starts a background refresh when the set is older than the TTL. Fails as
   * `unavailable` while no trusted keys are held (see `unavailableReason`).
   */
  lookup(alg: Algorithm, kid: string | undefined): JwksLookup {
    const untrusted = this.unavailableReason()
    if (untrusted !== undefined) return { reason: untrusted, unavailable: true }
    return this.#keys.find(alg, kid)
  }

  /**
   * Lookup that may wait for the network — for one fetch at most, so never longer than `timeoutMs`:
   * on first use, when the keys are stale, or when the key is unknown and the cooldown allows a
   * refetch (or a fetch is already in flight, which is joined).
   */
  async resolve(alg: Algorithm, kid: string | undefined): Promise<JwksLookup> {
    const first = this.lookup(alg, kid)
    if (first.key !== undefined || this.isStatic) return first
    const now = this.#options.now()
    // Without trusted keys every request fails, so retries come sooner than the cooldown — but not
    // on every request: a fast-failing STS would otherwise get one fetch per request.
    const wait =
      first.unavailable === true ? Math.min(this.#options.cooldownMs, FIRST_LOAD_RETRY_MS) : this.#options.cooldownMs
    if (this.#inflight !== undefined || now - this.#lastAttemptAt >= wait) await this.refresh().catch(() => {})
    const untrusted = this.#untrustedReason(this.#options.now())
    if (untrusted !== undefined) return { reason: untrusted, unavailable: true }
    const found = this.#keys.find(alg, kid)
    if (found.key !== undefined || this.#lastError === undefined) return found
    return { reason: `${found.reason}; the JWKS could not be refreshed (${this.#lastError})`, unavailable: true }
  }

  /**
   * Why the keys held cannot be trusted now, or undefined when they can (always, for a static
   * JWKS): none loaded yet, or none refreshed for longer than `maxStaleMs`. For callers that reuse
   * a key without looking it up (the verified-token cache, README "The verified-token cache"). Like
   * `lookup`, starts a background refresh when one is due, so traffic alone brings recovery.
   */
  unavailableReason(): string | undefined {
    if (this.isStatic) return undefined
    const now = this.#options.now()
    if (
      this.#loadedAt !== undefined &&
      now - this.#loadedAt >= this.#options.ttlMs &&
      now - this.#lastAttemptAt >= this.#options.cooldownMs
    ) {
      void this.refresh().catch(() => {})
    }
    return this.#untrustedReason(now)
  }

  #untrustedReason(now: number): string | undefined {
    if (this.isStatic) return undefined
    if (this.#loadedAt === undefined) return `signing keys unavailable (${this.#lastError ?? 'not loaded'})`
    // Not `>=`: with ttlMs = maxStaleMs = 0 a set fetched this very millisecond must still count.
    if (now - this.#loadedAt <= this.#options.maxStaleMs) return undefined
    return `signing keys are stale (not refreshed for more than ${this.#options.maxStaleMs} ms: ${this.#lastError ?? 'not refreshed yet'})`
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
          const ready = this.#options.backendsReady
          // A fetch that started before the backends were chosen imports only once they are.
          return ready === undefined ? this.#accept(jwks) : ready.then(() => this.#accept(jwks))
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

  #accept(jwks: unknown): void {
    if (this.#abort.signal.aborted) return
    this.#keys.replace(jwks)
    this.#loadedAt = this.#options.now()
    this.#lastError = undefined
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
