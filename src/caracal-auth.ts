/**
 * `CaracalAuth`: verifies a Caracal mandate and returns its claims, or throws `CaracalAuthError`
 * (docs/architecture.md). The order of work is fixed: length cap, strict parse, key, signature, claims,
 * policy — memoized for the token once all passed — then, on every call, expiry, the key still
 * published, policy and revocation.
 */
import type { BackendStatus } from './backends/index.js'
import { backendStatuses } from './backends/index.js'
import type { BackendName, MandateRules } from './backends/types.js'
import type { VerifiedTokenCache } from './cache/verified-token-cache.js'
import { CaracalAuthError, invalidToken, isCaracalAuthError, type CaracalErrorCode } from './errors.js'
import type { Algorithm } from './jws/algorithms.js'
import { splitCompact, type SplitJws } from './jws/compact.js'
import { verifySignedMandate } from './signed-mandate.js'
import type { JwksSource, JwksStats } from './jwks/remote-jwks.js'
import type { VerifyingKey } from './backends/types.js'
import { checkTimes, type Claims, type VerifiedMandate } from './policy/claims.js'
import { checkPolicy } from './policy/mandate-policy.js'
import { resolveOptions, type CaracalAuthOptions, type ResolvedOptions } from './options.js'
import type { IncomingMessage } from 'node:http'
import { authenticateRequest, type CaracalSession } from './adapters/fastmcp.js'
import { VerifierEngine } from './verifier-engine.js'
import { verifyInline } from './verify-inline.js'
import { verifierPool, type VerifierPool } from './pool/types.js'

export interface CaracalAuthStats {
  /**
   * The backend serving each algorithm; `loading` until the wasm module's load settles, `unavailable`
   * when a forced backend did not load (README "Runtimes"; `backends` says why).
   */
  readonly backend: Readonly<Record<Algorithm, BackendName | 'loading' | 'unavailable'>>
  /** Every backend of this runtime: ready, loading or unavailable (and why), and what `auto` refused (README "Backends"). */
  readonly backends: Readonly<Record<BackendName, BackendStatus>>
  readonly cache: {
    readonly enabled: boolean
    readonly hits: number
    readonly misses: number
    readonly size: number
    /**
     * When a verified token is stored: `first` verification, or `second` while the traffic brings
     * almost no token back (tokens minted per request; README "The verified-token cache").
     */
    readonly admission: 'first' | 'second'
  }
  readonly verifications: {
    readonly accepted: number
    readonly rejected: Readonly<Partial<Record<CaracalErrorCode, number>>>
  }
  readonly jwks: JwksStats
  /**
   * Cold tokens checked back to back at the end of a turn of the event loop (README "Cold tokens
   * under load"): whether that is on now, and the turns and tokens so far (shared by `withPolicy`).
   */
  readonly coldBatches: { readonly gathering: boolean; readonly turns: number; readonly tokens: number }
}

/**
 * The options `withPolicy` may change: the policy (and the zone, which selects the zone's keys).
 * Everything else — issuer, audience, revocation and replay stores, keys, backends, the cache and
 * the claim rules — is the parent's, shared.
 */
export type PolicyOverrides = Pick<
  CaracalAuthOptions,
  | 'requiredScopes'
  | 'expectedZoneId'
  | 'zoneId'
  | 'requireAgent'
  | 'requireSession'
  | 'requireDelegation'
  | 'requireChainContains'
  | 'maxHopCount'
  | 'requiredTargets'
>

const POLICY_OVERRIDES: readonly (keyof PolicyOverrides)[] = [
  'requiredScopes',
  'expectedZoneId',
  'zoneId',
  'requireAgent',
  'requireSession',
  'requireDelegation',
  'requireChainContains',
  'maxHopCount',
  'requiredTargets',
]

/** Set by `withPolicy` for the constructor call it makes: the engine the new verifier shares. */
let inheritedEngine: VerifierEngine | undefined

export class CaracalAuth {
  readonly #o: ResolvedOptions
  /** The options as given, so that `withPolicy` can validate the merged set like any other. */
  readonly #input: CaracalAuthOptions
  readonly #engine: VerifierEngine
  /** Made by `withPolicy`: closing it leaves the engine to its first verifier. */
  readonly #derived: boolean
  readonly #jwks: JwksSource
  readonly #cache: VerifiedTokenCache | undefined
  /** Claim rules and policy together, for keys that check a whole mandate in one call (wasm). */
  readonly #rules: MandateRules
  #hits = 0
  #misses = 0
  #accepted = 0
  readonly #rejected: Partial<Record<CaracalErrorCode, number>> = {}
  #closed = false

  constructor(options: CaracalAuthOptions) {
    const inherited = inheritedEngine
    inheritedEngine = undefined
    this.#o = resolveOptions(options)
    this.#input = options
    this.#engine = inherited ?? new VerifierEngine(this.#o)
    this.#derived = inherited !== undefined
    this.#jwks = this.#engine.jwksFor(this.#o)
    this.#cache = this.#engine.cacheFor(this.#o)
    this.#rules = { claimRules: this.#o.claimRules, policy: this.#o.policy }
    this.verify = this.verify.bind(this)
    this.authenticate = this.authenticate.bind(this)
  }

  /**
   * A verifier with another policy on the same engine: it shares this one's keys (one JWKS fetch
   * and one import per key; a zone of its own gets its zone's keys, fetched once for all verifiers
   * of that zone), backends, verified-token cache, revocation and replay stores. The cache stays
   * correct across policies because policy runs on every hit. For per-route or per-tool
   * policies: derive once per route, not per request. Closing the parent closes them all.
   */
  withPolicy(overrides: PolicyOverrides): CaracalAuth {
    if (typeof overrides !== 'object' || overrides === null || Array.isArray(overrides))
      throw new TypeError('CaracalAuth.withPolicy needs an options object')
    for (const name of Object.keys(overrides)) {
      if (!(POLICY_OVERRIDES as readonly string[]).includes(name))
        throw new TypeError(
          `CaracalAuth.withPolicy option "${name}" cannot differ from the parent's (only ${POLICY_OVERRIDES.join(', ')})`,
        )
    }
    const merged: Record<string, unknown> = { ...this.#input }
    // An alias given as an override replaces both spellings of the parent's.
    if ('zoneId' in overrides || 'expectedZoneId' in overrides) {
      delete merged.zoneId
      delete merged.expectedZoneId
    }
    if ('requireSession' in overrides || 'requireAgent' in overrides) {
      delete merged.requireSession
      delete merged.requireAgent
    }
    inheritedEngine = this.#engine
    try {
      return new CaracalAuth({ ...merged, ...overrides } as CaracalAuthOptions)
    } finally {
      inheritedEngine = undefined
    }
  }

  /** The verification pool (the `workers` option), shared with the verifiers of `withPolicy`; for the tests. */
  get [verifierPool](): VerifierPool | undefined {
    return this.#engine.pool
  }

  /** Options as resolved (defaults filled in); adapters read the policy and metadata URL here. */
  get options(): ResolvedOptions {
    return this.#o
  }

  /**
   * The validated claims of `token`, or a `CaracalAuthError`; never anything else. Written without
   * `async`: when every step answers synchronously (a cache hit, a known key, a synchronous
   * revocation store) the promise is created already settled, with no extra microtask hops.
   */
  verify(token: string): Promise<Claims> {
    let claims: Claims | Promise<Claims>
    try {
      claims = this[verifyInline](token)
    } catch (error) {
      return Promise.reject(error)
    }
    return claims instanceof Promise ? claims : Promise.resolve(claims)
  }

  /** `verify` without its promise, for the drop-in entry points (src/verify-inline.ts). */
  [verifyInline](token: string): Claims | Promise<Claims> {
    let claims: Claims | Promise<Claims>
    try {
      claims = this.#claimsOf(token)
    } catch (error) {
      throw this.#rejection(error)
    }
    if (!(claims instanceof Promise)) {
      this.#accepted++
      return claims
    }
    return claims.then(
      (c) => {
        this.#accepted++
        return c
      },
      (error: unknown) => {
        throw this.#rejection(error)
      },
    )
  }

  /**
   * fastmcp's `authenticate` (bound): reads `Authorization: Bearer …`, returns the session tools
   * get as `context.session`, or throws a `Response` (401/403, or 503 with Retry-After).
   */
  authenticate(req: IncomingMessage | undefined): Promise<CaracalSession> {
    return authenticateRequest(this, req)
  }

  /**
   * Revocation, the delegation epoch, then single use, on every call (README "The verified-token
   * cache": hits included). Synchronous answers stay synchronous.
   */
  #lastChecks(m: VerifiedMandate): Claims | Promise<Claims> {
    const pending = this.#checkRevocation(m)
    if (pending === undefined) {
      const epoch = this.#checkEpoch(m)
      return epoch === undefined ? this.#checkReplay(m) : epoch.then(() => this.#checkReplay(m))
    }
    return pending.then(() => this.#checkEpoch(m)).then(() => this.#checkReplay(m))
  }

  /**
   * With a replay store, a resource mandate that passed every other check is recorded by its
   * `jti` for as long as it could still be accepted; a later presentation, here or on any instance
   * sharing the store, is `token_replayed`. Session mandates are reusable by design (Caracal's
   * gateway exempts them too). A store that fails cannot vouch for first use: fail closed.
   */
  #checkReplay(m: VerifiedMandate): Claims | Promise<Claims> {
    const store = this.#o.replay
    if (store === undefined || m.claims.use !== 'resource') return m.claims
    // As long as any instance could still accept it: its exp and leeway, plus the leeway a clock
    // running behind ours is allowed (futureLeewaySec), since the record is shared. Longer costs nothing.
    const r = this.#o.claimRules
    const ttlMs = Math.max(1, (m.claims.expiresAt + r.expLeewaySec + r.futureLeewaySec) * 1000 - this.#o.now())
    let answer: boolean | Promise<boolean>
    try {
      answer = store.firstUse(m.claims.jti, ttlMs)
    } catch (cause) {
      throw replayUnavailable(cause)
    }
    if (answer === true) return m.claims
    if (answer === false) throw replayed()
    return Promise.resolve(answer).then(
      (first: unknown) => {
        if (first === true) return m.claims
        if (first === false) throw replayed()
        throw replayUnavailable(new TypeError('firstUse did not answer a boolean'))
      },
      (cause: unknown) => {
        throw replayUnavailable(cause)
      },
    )
  }

  /**
   * `delegation_stale` when the mandate was issued against an older delegation graph than its
   * zone's current one (an equal epoch is current). Undefined when the store answered at once.
   */
  #checkEpoch(m: VerifiedMandate): Promise<void> | undefined {
    const { graphEpoch, zoneId } = m.claims
    const store = this.#o.revocations
    if (graphEpoch === undefined || store.currentDelegationEpoch === undefined) return undefined
    // Epochs are per zone: an epoch without a zone cannot be checked against any, so it is not
    // taken on trust (a Caracal STS always writes zone_id; the plain verifier requires it).
    if (zoneId === undefined) throw invalidToken('delegation_graph_epoch without zone_id cannot be checked')
    let answer: number | Promise<number>
    try {
      answer = store.currentDelegationEpoch(zoneId)
    } catch (cause) {
      throw this.#storeFailure(cause)
    }
    if (typeof answer === 'number') return this.#compareEpoch(answer, graphEpoch)
    return Promise.resolve(answer).then(
      (current: unknown) => this.#compareEpoch(current, graphEpoch),
      (cause: unknown) => {
        throw this.#storeFailure(cause)
      },
    )
  }

  #compareEpoch(current: unknown, graphEpoch: number): undefined {
    // Anything but an epoch (NaN, undefined from a buggy store) cannot vouch for the graph: fail closed.
    if (typeof current !== 'number' || Number.isNaN(current))
      throw this.#storeFailure(new TypeError('currentDelegationEpoch did not answer a number'))
    if (current > graphEpoch)
      throw new CaracalAuthError('delegation_stale', 'the delegation graph changed after this mandate was issued')
    return undefined
  }

  /** Counts the rejection and guarantees that only CaracalAuthError leaves `verify`. */
  #rejection(error: unknown): CaracalAuthError {
    const e = isCaracalAuthError(error) ? error : invalidToken('token could not be verified')
    this.#rejected[e.code] = (this.#rejected[e.code] ?? 0) + 1
    return e
  }

  /** Fetches the JWKS (when remote) and prepares its keys, so the first request pays nothing. */
  async warmup(): Promise<void> {
    await this.#engine.whenReady()
    const failure = this.#engine.failure
    if (failure !== undefined) throw failure
    await this.#jwks.refresh()
  }

  stats(): CaracalAuthStats {
    return {
      backend: { ...this.#engine.backendNames },
      backends: backendStatuses(),
      cache: {
        enabled: this.#cache !== undefined,
        hits: this.#hits,
        misses: this.#misses,
        size: this.#cache?.size ?? 0,
        admission: this.#cache?.secondSight === true ? 'second' : 'first',
      },
      verifications: { accepted: this.#accepted, rejected: { ...this.#rejected } },
      jwks: this.#jwks.stats(),
      coldBatches: this.#engine.coldBatch.stats,
    }
  }

  /**
   * Stops fetching, releases the keys and drops the cache; later calls fail with invalid_token.
   * On a verifier made by `withPolicy` it closes that verifier only; on the first one, all of them.
   */
  async close(): Promise<void> {
    this.#closed = true
    if (!this.#derived) await this.#engine.close()
  }

  /**
   * The claims of `token` once every check passed. A cache hit re-checks the times, the key and
   * the policy; a miss verifies the token and caches it only once its verdict is settled, so a
   * refusal is never cached (README "The verified-token cache").
   */
  #claimsOf(token: unknown, inline = false): Claims | Promise<Claims> {
    if (token === undefined || token === null || token === '') throw new CaracalAuthError('missing_token', 'no token')
    if (typeof token !== 'string') throw invalidToken('token must be a string')
    if (this.#closed || this.#engine.closed) throw invalidToken('verifier is closed')
    // Where the wasm module loads asynchronously (README "Runtimes"), the first calls wait for it.
    const ready = this.#engine.whenReady()
    if (ready !== undefined) return ready.then(() => this.#claimsOf(token))
    const failure = this.#engine.failure
    if (failure !== undefined)
      throw new CaracalAuthError('invalid_token', 'the signature backend is not available', {
        unavailable: true,
        cause: failure,
      })
    const nowMs = this.#o.now()
    const cached = this.#cache?.get(token)
    // A hit counts only while the token would get the very key that verified it: a key removed
    // from the JWKS (rotated out, pulled after a compromise), a kid that became ambiguous, keys
    // not trusted any more (stale past jwks.maxStaleMs) — in every such case the entry goes and the
    // token takes the full path, so a cached token gets exactly the answer a fresh one gets.
    if (cached !== undefined && cached.source === this.#jwks) {
      if (this.#jwks.lookup(cached.alg, cached.kid).key === cached.key) {
        const m = cached.mandate
        try {
          checkTimes(m.claims.expiresAt, m.claims.issuedAt, m.notBefore, nowMs / 1000, this.#o.claimRules)
        } catch (error) {
          this.#cache!.delete(token)
          throw error
        }
        // A token coming back (from the pool, or from a cold batch that found it cached) was counted as a miss.
        if (!inline) this.#hits++
        checkPolicy(m, this.#o.policy)
        return this.#lastChecks(m)
      }
      this.#cache!.delete(token)
    }
    // A token sent back by the pool (inline) was counted when it first came in.
    if (this.#cache !== undefined && !inline) this.#misses++
    const jws = splitCompact(token, this.#o.maxTokenLength)
    const { alg, kid } = jws.header
    if (!this.#o.algorithms.has(alg)) throw invalidToken('alg not allowed')
    const found = this.#jwks.lookup(alg, kid)
    if (found.key !== undefined) return this.#verified(token, jws, found.key, nowMs, inline)
    return this.#jwks.resolve(alg, kid).then((late) => {
      if (late.key === undefined) {
        throw new CaracalAuthError('invalid_token', `no usable key: ${late.reason}`, { unavailable: late.unavailable })
      }
      return this.#verified(token, jws, late.key, this.#o.now(), inline)
    })
  }

  /**
   * Signature, claim rules and policy here, or (with the `workers` option) signature and claim
   * rules in a worker and the policy here; then the last checks, here in either case.
   */
  #verified(token: string, jws: SplitJws, key: VerifyingKey, nowMs: number, inline: boolean): Claims | Promise<Claims> {
    const pool = this.#engine.pool
    if (inline) return this.#lastChecks(this.#verifyAndRemember(token, jws, key, nowMs))
    if (pool === undefined) {
      return this.#engine.coldBatch.run((waited) => {
        // Closed, or the key left its set, or the same token verified earlier in this batch, while it
        // waited for its turn: the answer a request now gets (a hit gives that token's one claims object).
        if (!waited) return this.#lastChecks(this.#verifyAndRemember(token, jws, key, nowMs))
        if (
          this.#closed ||
          this.#engine.closed ||
          this.#jwks.lookup(jws.header.alg, jws.header.kid).key !== key ||
          this.#cache?.get(token) !== undefined
        )
          return this.#claimsOf(token, true)
        // The clock of the moment it is checked: a token must not outlive its exp by a wait.
        return this.#lastChecks(this.#verifyAndRemember(token, jws, key, this.#o.now()))
      })
    }
    return pool.verify(token, jws, key, nowMs / 1000).then((m) => {
      // The worker lacks the key, or it was released meanwhile: answered here, as a request now would be.
      if (m === undefined) return this.#claimsOf(token, true)
      checkPolicy(m, this.#o.policy)
      this.#remember(token, jws, key, m)
      return this.#lastChecks(m)
    })
  }

  /** Signature, claim rules and policy; the mandate is cached only when all three passed. */
  #verifyAndRemember(token: string, jws: SplitJws, key: VerifyingKey, nowMs: number): VerifiedMandate {
    const mandate = verifySignedMandate(token, jws, key, this.#rules, nowMs / 1000)
    this.#remember(token, jws, key, mandate)
    return mandate
  }

  #remember(token: string, jws: SplitJws, key: VerifyingKey, mandate: VerifiedMandate): void {
    this.#cache?.set(token, { mandate, key, alg: jws.header.alg, kid: jws.header.kid, source: this.#jwks })
  }

  /** Undefined when every anchor answered synchronously and none is revoked. */
  #checkRevocation(m: VerifiedMandate): Promise<void> | undefined {
    const store = this.#o.revocations
    for (let i = 0; i < m.anchors.length; i++) {
      let answer: boolean | Promise<boolean>
      try {
        answer = store.isRevoked(m.anchors[i]!)
      } catch (cause) {
        throw this.#storeFailure(cause)
      }
      if (answer === true) throw this.#revoked()
      if (answer !== false) return this.#checkRevocationAsync(m, i, answer)
    }
    return undefined
  }

  async #checkRevocationAsync(m: VerifiedMandate, from: number, first: Promise<boolean> | boolean): Promise<void> {
    const store = this.#o.revocations
    for (let i = from; i < m.anchors.length; i++) {
      let answer: unknown
      try {
        answer = await (i === from ? first : store.isRevoked(m.anchors[i]!))
      } catch (cause) {
        throw this.#storeFailure(cause)
      }
      if (answer === true) throw this.#revoked()
      // Anything but a boolean (undefined from a buggy store) cannot vouch for the session: fail closed.
      if (answer !== false) throw this.#storeFailure(new TypeError('isRevoked did not answer a boolean'))
    }
  }

  #revoked(): CaracalAuthError {
    const reason = this.#o.revocations.unavailableReason?.()
    if (reason !== undefined)
      return new CaracalAuthError('session_revoked', `revocation state unavailable: ${reason}`, { unavailable: true })
    return new CaracalAuthError('session_revoked', 'session has been revoked')
  }

  /** A store that throws cannot vouch for the session: fail closed, and say it is temporary. */
  #storeFailure(cause: unknown): CaracalAuthError {
    return new CaracalAuthError('session_revoked', 'revocation state unavailable: the store failed', {
      unavailable: true,
      cause,
    })
  }
}

function replayed(): CaracalAuthError {
  return new CaracalAuthError('token_replayed', 'mandate was already used')
}

function replayUnavailable(cause: unknown): CaracalAuthError {
  return new CaracalAuthError('token_replayed', 'replay state unavailable: the store failed', {
    unavailable: true,
    cause,
  })
}
