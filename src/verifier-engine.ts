/**
 * What a `CaracalAuth` and the verifiers derived from it with `withPolicy` share (README "Per-route
 * policies"): the backends, the key sets — one per JWKS source, so verifiers of one zone share one
 * fetch and one import per key — and the verified-token caches, one per set of claim rules (a
 * cached mandate was checked against the claim rules of whoever verified it; policy runs on every
 * hit, so verifiers that differ only in policy share one cache).
 */
import { resolveBackends } from './backends/index.js'
import type { BackendForAlgorithm, BackendName } from './backends/types.js'
import { VerifiedTokenCache } from './cache/verified-token-cache.js'
import { ALL_ALGORITHMS, type Algorithm } from './jws/algorithms.js'
import { JwksSource } from './jwks/remote-jwks.js'
import type { ResolvedOptions } from './options.js'
import { createVerifierPool } from './pool/index.js'
import type { VerifierPool } from './pool/types.js'

export class VerifierEngine {
  readonly backendFor: BackendForAlgorithm
  readonly backendNames: Readonly<Record<Algorithm, BackendName>>
  /** With the `workers` option: the threads cold tokens are verified on (README "Several cores in one process"). */
  readonly pool: VerifierPool | undefined
  readonly #sources = new Map<string, JwksSource>()
  readonly #caches = new Map<string, VerifiedTokenCache>()
  #closed = false

  constructor(o: ResolvedOptions) {
    const backends = resolveBackends(o.backend)
    // The claim rules are the first verifier's: withPolicy cannot change them.
    this.pool =
      o.workers > 0
        ? createVerifierPool({ workers: o.workers, backend: o.backend, claimRules: o.claimRules })
        : undefined
    this.backendFor = this.pool?.track(backends) ?? backends
    this.backendNames = Object.freeze(
      Object.fromEntries(ALL_ALGORITHMS.map((a) => [a, this.backendFor(a).name])) as Record<Algorithm, BackendName>,
    )
  }

  get closed(): boolean {
    return this.#closed
  }

  /** The key set of these options' JWKS (its URL, or the static keys of the first verifier). */
  jwksFor(o: ResolvedOptions): JwksSource {
    const id = o.jwks.url ?? 'static'
    let source = this.#sources.get(id)
    if (source === undefined) {
      source = new JwksSource({ ...o.jwks, now: o.now, backendFor: this.backendFor })
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
