/**
 * What a `CaracalAuth` and the verifiers derived from it with `withPolicy` share (README "Per-route
 * policies"): the backends, the key sets — one per JWKS source, so verifiers of one zone share one
 * fetch and one import per key — and the verified-token caches, one per set of claim rules (a
 * cached mandate was checked against the claim rules of whoever verified it; policy runs on every
 * hit, so verifiers that differ only in policy share one cache).
 */
import { selectBackends, type BackendSelection } from './backends/index.js'
import type { BackendForAlgorithm, BackendName } from './backends/types.js'
import { VerifiedTokenCache } from './cache/verified-token-cache.js'
import { ColdBatch } from './cold-batch.js'
import type { Algorithm } from './jws/algorithms.js'
import { JwksSource } from './jwks/remote-jwks.js'
import type { ResolvedOptions } from './options.js'
import { createVerifierPool } from '#verifier-pool'
import type { VerifierPool } from './pool/types.js'

export class VerifierEngine {
  readonly backendFor: BackendForAlgorithm
  /** With the `workers` option: the threads cold tokens are verified on (README "Several cores in one process"). */
  readonly pool: VerifierPool | undefined
  /** Cold tokens of one turn, checked back to back (src/cold-batch.ts); not with a pool, which batches its own. */
  readonly coldBatch = new ColdBatch()
  readonly #backends: BackendSelection
  readonly #sources = new Map<string, JwksSource>()
  readonly #caches = new Map<string, VerifiedTokenCache>()
  /** Set once nothing is left to wait for (at once on Node), so `whenReady` costs one read. */
  #ready = false
  #closed = false

  constructor(o: ResolvedOptions) {
    this.#backends = selectBackends(o.backend)
    // Known now (a broken wasm build, on Node): an error at construction, never a quiet fall back.
    const failure = this.#backends.failure()
    if (failure !== undefined) throw failure
    // The claim rules are the first verifier's: withPolicy cannot change them.
    this.pool =
      o.workers === 'auto' || o.workers > 0
        ? createVerifierPool({ workers: o.workers, backend: o.backend, claimRules: o.claimRules })
        : undefined
    this.backendFor = this.pool?.track(this.#backends.backendFor) ?? this.#backends.backendFor
  }

  /** The backend serving each algorithm (`loading` while the choice waits for the wasm module). */
  get backendNames(): Readonly<Record<Algorithm, BackendName | 'loading' | 'unavailable'>> {
    return this.#backends.names()
  }

  /**
   * Undefined once the backends are chosen and every static key set is imported — at once on
   * Node; otherwise what to wait for first (README "Runtimes": the wasm module loading).
   */
  whenReady(): Promise<void> | undefined {
    if (this.#ready) return undefined
    const backends = this.#backends.pending()
    if (backends !== undefined) return backends.then(() => this.whenReady())
    const keys = [...this.#sources.values()].flatMap((source) => source.loading ?? [])
    if (keys.length === 0) {
      // Sources made from now on import their keys at once: nothing to wait for again.
      this.#ready = true
      return undefined
    }
    return Promise.all(keys).then(() => this.whenReady())
  }

  /** Why the backends cannot serve (a forced backend that did not load), once that is known. */
  get failure(): Error | undefined {
    return this.#backends.failure()
  }

  get closed(): boolean {
    return this.#closed
  }

  /** The key set of these options' JWKS (its URL, or the static keys of the first verifier). */
  jwksFor(o: ResolvedOptions): JwksSource {
    const id = o.jwks.url ?? 'static'
    let source = this.#sources.get(id)
    if (source === undefined) {
      source = new JwksSource({
        ...o.jwks,
        now: o.now,
        backendFor: this.backendFor,
        backendsReady: this.#backends.pending(),
      })
      this.#sources.set(id, source)
    }
    return source
  }

  /** The cache for these options' claim rules, or undefined when they turn caching off. */
  cacheFor(o: ResolvedOptions): VerifiedTokenCache | undefined {
    if (o.cacheMax === undefined) return undefined
    const r = o.claimRules
    const id = `${r.requiredUse}|${r.expLeewaySec}|${r.futureLeewaySec}`
    let cache = this.#caches.get(id)
    if (cache === undefined) {
      cache = new VerifiedTokenCache(o.cacheMax)
      this.#caches.set(id, cache)
    }
    return cache
  }

  async close(): Promise<void> {
    this.#closed = true
    for (const source of this.#sources.values()) source.close()
    for (const cache of this.#caches.values()) cache.clear()
    await this.pool?.close()
  }
}
