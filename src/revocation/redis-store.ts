/**
 * `RedisRevocationStore`: a local revocation set that mirrors Redis (docs/architecture.md "Revocation"), so that a check is
 * a Map lookup and never a round trip. It loads the durable keys at start (SCAN), then follows the
 * revocation stream itself (XREAD, no group: every instance sees every event) on a connection of
 * its own. While it cannot vouch for its copy (not loaded yet, or cut off longer than
 * `maxStalenessMs`) it fails closed, or, with `failClosed: false`, serves what it has and warns.
 */
import type { Redis } from 'ioredis'
import { DEFAULT_REVOCATION_TTL_MS, InMemoryRevocationStore } from './in-memory-store.js'
import type { RevocationStore } from './types.js'
import { blockingReaderOptions, checkExecReply, errorMessage, pause, whenReady } from './redis-connection.js'
import {
  DURABLE_KEY_SCRIPT, REVOCATION_KEY_PREFIX, REVOCATION_STREAM, checkRevocationEvent, compareStreamIds, hmacKeyBytes, parseStreamReply,
  revocationEventFields, scanPatternFor, type StreamEntry,
} from './redis-wire.js'

export interface RedisRevocationStoreOptions {
  /**
   * An ioredis client; it stays yours (`close()` does not quit it). The store sends its writes
   * (`markRevoked`) on it and opens one more connection with `redis.duplicate()` for the stream
   * reads and the key loading, configured to fail fast whatever the client's own options.
   */
  readonly redis: Redis
  /** Answer every check "revoked" while the mirror cannot be trusted. Default true. */
  readonly failClosed?: boolean
  /** HMAC key of the stream. When set, events without a valid `_sig` are ignored, and ours are signed. */
  readonly streamHmacKey?: string | Uint8Array
  /** How long the mirror may go without hearing from Redis before it stops vouching. Default 5000. */
  readonly maxStalenessMs?: number
  /** Default `caracal.sessions.revoke`. */
  readonly stream?: string
  /** Default `caracal:revoked:sessions:`. */
  readonly keyPrefix?: string
  /** TTL of a revocation whose event carries none (and of `markRevoked` without one). Default 24 h. */
  readonly defaultTtlMs?: number
  /** `zone_id` of the events `markRevoked` publishes. Default ''. */
  readonly zoneId?: string
  /** `reason` of the events `markRevoked` publishes. Default 'revoked_by_resource_server'. */
  readonly reason?: string
  /** Most anchors held locally (see InMemoryRevocationStore). Default 1 000 000. */
  readonly maxEntries?: number
  /** How long one XREAD blocks. Default maxStalenessMs / 5, between 10 ms and 1 s. */
  readonly blockMs?: number
  /** Entries per XREAD and keys per SCAN step. Default 1000. */
  readonly batchSize?: number
  /** Clock (ms) for entry expiry and staleness. */
  readonly now?: () => number
}

/** What an operator's health check wants to know. */
export interface RedisRevocationStoreState {
  readonly loaded: boolean
  /** The stream reader's connection is up. */
  readonly connected: boolean
  /** Time since the mirror last knew it was current (Infinity before the first load). */
  readonly stalenessMs: number
  /** Why the mirror cannot vouch for its copy right now (with failClosed, every check answers revoked). */
  readonly unavailable: string | undefined
  readonly lastId: string
  readonly size: number
  /** Events applied, events refused by the consumer's checks, key reloads after a gap. */
  readonly applied: number
  readonly refused: number
  readonly reloads: number
  readonly lastError: string | undefined
}

const RETRY_PAUSE_MS = 100
/** A durable key without a TTL is revoked for good; held for a century. */
const NO_EXPIRY_TTL_MS = 100 * 365 * 24 * 60 * 60 * 1000
/** How long `markRevoked` waits for a connection that is still being set up. */
const CONNECT_WAIT_MS = 1_000

export class RedisRevocationStore implements RevocationStore {
  readonly #redis: Redis
  readonly #reader: Redis
  readonly #local: InMemoryRevocationStore
  readonly #failClosed: boolean
  readonly #hmacKey: Buffer | undefined
  readonly #maxStalenessMs: number
  readonly #stream: string
  readonly #keyPrefix: string
  readonly #defaultTtlMs: number
  readonly #zoneId: string
  readonly #reason: string
  readonly #blockMs: number
  readonly #batchSize: number
  readonly #now: () => number
  readonly #stop = new AbortController()
  readonly #loop: Promise<void>
  readonly #ready: Promise<void>
  #resolveReady!: () => void
  #rejectReady!: (error: Error) => void
  #loaded = false
  /** When the mirror last knew it held everything Redis had; -Infinity until the first load. */
  #syncedAt = Number.NEGATIVE_INFINITY
  #lastId = '0-0'
  #warned = false
  #applied = 0
  #refused = 0
  #reloads = 0
  #lastError: string | undefined

  constructor(options: RedisRevocationStoreOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
    const {
      redis, failClosed = true, streamHmacKey, maxStalenessMs = 5_000, stream = REVOCATION_STREAM,
      keyPrefix = REVOCATION_KEY_PREFIX, defaultTtlMs = DEFAULT_REVOCATION_TTL_MS, zoneId = '',
      reason = 'revoked_by_resource_server', maxEntries = 1_000_000, batchSize = 1_000, now = Date.now,
    } = options
    if (typeof redis !== 'object' || redis === null || typeof redis.duplicate !== 'function') throw new TypeError('redis must be an ioredis client')
    if (typeof failClosed !== 'boolean') throw new TypeError('failClosed must be a boolean')
    if (!(Number.isFinite(maxStalenessMs) && maxStalenessMs > 0)) throw new TypeError('maxStalenessMs must be a positive number')
    const blockMs = options.blockMs ?? Math.min(1_000, Math.max(10, Math.floor(maxStalenessMs / 5)))
    if (!(Number.isSafeInteger(blockMs) && blockMs > 0 && blockMs < maxStalenessMs)) throw new TypeError('blockMs must be a positive integer below maxStalenessMs')
    if (typeof stream !== 'string' || stream === '') throw new TypeError('stream must be a non-empty string')
    if (typeof keyPrefix !== 'string' || keyPrefix === '') throw new TypeError('keyPrefix must be a non-empty string')
    if (!(Number.isFinite(defaultTtlMs) && defaultTtlMs > 0)) throw new TypeError('defaultTtlMs must be a positive number')
    if (typeof zoneId !== 'string') throw new TypeError('zoneId must be a string')
    if (typeof reason !== 'string') throw new TypeError('reason must be a string')
    if (!(Number.isSafeInteger(batchSize) && batchSize > 0)) throw new TypeError('batchSize must be a positive integer')
    if (typeof now !== 'function') throw new TypeError('now must be a function')
    this.#redis = redis
    this.#failClosed = failClosed
    this.#hmacKey = hmacKeyBytes(streamHmacKey)
    this.#maxStalenessMs = maxStalenessMs
    this.#stream = stream
    this.#keyPrefix = keyPrefix
    this.#defaultTtlMs = defaultTtlMs
    this.#zoneId = zoneId
    this.#reason = reason
    this.#blockMs = blockMs
    this.#batchSize = batchSize
    this.#now = now
    this.#local = new InMemoryRevocationStore({ defaultTtlMs, maxEntries, now })
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve
      this.#rejectReady = reject
    })
    // Nobody may be waiting on ready(); a close before the first load must not be an unhandled rejection.
    this.#ready.catch(() => undefined)
    this.#reader = redis.duplicate(blockingReaderOptions(blockMs))
    this.#reader.on('error', (error: unknown) => {
      this.#lastError = errorMessage(error)
    })
    this.#loop = this.#follow()
  }

  /** Synchronous: a lookup in the local set, plus the staleness check. */
  isRevoked(anchor: string): boolean {
    if (this.#now() - this.#syncedAt > this.#maxStalenessMs) {
      if (!this.#warned) this.#warnStale()
      if (this.#failClosed) return true
    }
    return this.#local.isRevoked(anchor)
  }

  unavailableReason(): string | undefined {
    if (!this.#failClosed) return undefined
    return this.#staleReason()
  }

  /**
   * Applies at once on this instance, then writes the durable key and appends an event (signed
   * when a key is configured) so that every instance and consumer learns it. Rejects when Redis
   * cannot take the write; the local entry stays.
   */
  async markRevoked(anchor: string, ttlMs: number = this.#defaultTtlMs): Promise<void> {
    this.applyRevocation(anchor, ttlMs)
    if (this.#stop.signal.aborted) throw new Error('RedisRevocationStore is closed')
    if (this.#redis.status !== 'ready' && !(await whenReady(this.#redis, AbortSignal.timeout(CONNECT_WAIT_MS)))) {
      throw new Error('Redis is not connected: the revocation holds on this instance only')
    }
    const fields = revocationEventFields({ zoneId: this.#zoneId, anchor, reason: this.#reason, ttlMs }, this.#stream, this.#hmacKey)
    const reply = await this.#redis.multi()
      .eval(DURABLE_KEY_SCRIPT, 1, this.#keyPrefix + anchor, Math.ceil(ttlMs))
      .xadd(this.#stream, '*', ...fields)
      .exec()
    checkExecReply(reply, 'markRevoked')
  }

  /**
   * Adds a revocation to this instance's set only, without publishing it: what the consumer calls
   * for the events it accepts (re-publishing them would loop).
   */
  applyRevocation(anchor: string, ttlMs: number = this.#defaultTtlMs): void {
    if (typeof anchor !== 'string' || anchor === '') throw new TypeError('anchor must be a non-empty string')
    if (!(Number.isFinite(ttlMs) && ttlMs > 0)) throw new TypeError('ttlMs must be a positive number')
    this.#local.markRevoked(anchor, ttlMs)
  }

  /** Resolves when the first load completed; rejects if the store closes first or `timeoutMs` passes. */
  ready(options: { readonly timeoutMs?: number } = {}): Promise<void> {
    const { timeoutMs } = options
    if (timeoutMs === undefined || this.#loaded) return this.#ready
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`revocation mirror not loaded within ${timeoutMs} ms`)), timeoutMs)
    })
    return Promise.race([this.#ready, timeout]).finally(() => clearTimeout(timer))
  }

  state(): RedisRevocationStoreState {
    return {
      loaded: this.#loaded,
      connected: this.#reader.status === 'ready',
      stalenessMs: Math.max(0, this.#now() - this.#syncedAt),
      unavailable: this.#staleReason(),
      lastId: this.#lastId,
      size: this.#local.size,
      applied: this.#applied,
      refused: this.#refused,
      reloads: this.#reloads,
      lastError: this.#lastError,
    }
  }

  /** Stops following and closes the store's own connection (not the client you passed). */
  async close(): Promise<void> {
    if (this.#stop.signal.aborted) return this.#loop
    this.#stop.abort()
    this.#rejectReady(new Error('RedisRevocationStore closed before its first load'))
    this.#reader.disconnect()
    await this.#loop
  }

  #staleReason(): string | undefined {
    if (!this.#loaded) return 'revocation mirror not loaded yet'
    const age = this.#now() - this.#syncedAt
    if (age <= this.#maxStalenessMs) return undefined
    return `revocation mirror cut off from Redis for ${(age / 1000).toFixed(1)} s`
  }

  #warnStale(): void {
    // Failing closed before the first load is the expected start-up state, not news.
    if (this.#failClosed && !this.#loaded) return
    this.#warned = true
    const message = this.#failClosed
      ? `RedisRevocationStore: ${this.#staleReason() ?? 'mirror stale'}; every check answers revoked until it catches up`
      : `RedisRevocationStore: ${this.#staleReason() ?? 'mirror stale'}; serving the last known revocations (failClosed: false)`
    process.emitWarning(message, { code: this.#failClosed ? 'CARACAL_REVOCATIONS_UNAVAILABLE' : 'CARACAL_REVOCATIONS_STALE' })
  }

  #markSynced(at: number): void {
    if (at > this.#syncedAt) this.#syncedAt = at
    this.#warned = false
  }

  /** The follower: (re)load when needed, then block on the stream from the last ID seen. */
  async #follow(): Promise<void> {
    const stop = this.#stop.signal
    let resync = false
    while (!stop.aborted) {
      try {
        if (!(await whenReady(this.#reader, stop, true))) {
          await pause(RETRY_PAUSE_MS * 10, stop)
          continue
        }
        if (!this.#loaded) await this.#initialLoad()
        else if (resync) await this.#resync()
        resync = false
        const reply = await this.#reader.call('XREAD', 'COUNT', this.#batchSize, 'BLOCK', this.#blockMs, 'STREAMS', this.#stream, this.#lastId)
        const readAt = this.#now()
        const entries = parseStreamReply(reply)
        for (const entry of entries) this.#applyEntry(entry)
        const last = entries[entries.length - 1]
        if (last !== undefined) this.#lastId = last.id
        // A full batch means more may be waiting: current only once a read comes back short.
        if (entries.length < this.#batchSize) this.#markSynced(readAt)
      } catch (error) {
        if (stop.aborted) return
        this.#lastError = errorMessage(error)
        resync = true
        // A read that outlived its block: the link is dead even if the socket does not know yet.
        if (/timed out/i.test(this.#lastError) && this.#reader.status === 'ready') this.#reader.disconnect(true)
        await pause(RETRY_PAUSE_MS, stop)
      }
    }
  }

  /**
   * The stream position is taken before the keys are scanned: an event published during the
   * scan is then read from the stream even if its key was not written yet.
   */
  async #initialLoad(): Promise<void> {
    const at = this.#now()
    const newest = await this.#reader.call('XREVRANGE', this.#stream, '+', '-', 'COUNT', 1)
    const startId = parseStreamReply([[this.#stream, newest]])[0]?.id ?? '0-0'
    await this.#loadKeys()
    this.#lastId = startId
    this.#loaded = true
    this.#markSynced(at)
    this.#resolveReady()
  }

  /**
   * After a reconnect: reading on from the last ID catches up, unless entries after it were
   * trimmed (then the durable keys fill the gap) or the stream was recreated (then read it all).
   */
  async #resync(): Promise<void> {
    const info = await this.#streamInfo()
    if (info === undefined) {
      if (this.#lastId !== '0-0') await this.#reload('0-0')
      return
    }
    const generated = info.lastGeneratedId === undefined ? 1 : compareStreamIds(info.lastGeneratedId, this.#lastId)
    if (generated < 0) {
      await this.#reload('0-0')
      return
    }
    // Nothing was added after our last ID, so nothing after it can be missing.
    if (generated === 0) return
    // Trimming removes from the head and leaves max-deleted-entry-id alone (Redis 7.0), so a first
    // entry past ours, or none at all, may hide a gap; XDEL after ours shows in max-deleted-entry-id.
    // When only our own last entry was trimmed this reloads for nothing: rare, and only costs a SCAN.
    const gap = info.firstId === undefined
      || compareStreamIds(info.firstId, this.#lastId) > 0
      || (info.maxDeletedId !== undefined && compareStreamIds(info.maxDeletedId, this.#lastId) > 0)
    if (gap) await this.#reload(this.#lastId)
  }

  async #reload(readFrom: string): Promise<void> {
    await this.#loadKeys()
    this.#lastId = readFrom
    this.#reloads++
  }

  async #streamInfo(): Promise<{ firstId?: string; lastGeneratedId?: string; maxDeletedId?: string } | undefined> {
    let reply: unknown
    try {
      reply = await this.#reader.call('XINFO', 'STREAM', this.#stream)
    } catch (error) {
      if (/no such key/i.test(errorMessage(error))) return undefined
      throw error
    }
    if (!Array.isArray(reply)) return {}
    const info: { firstId?: string; lastGeneratedId?: string; maxDeletedId?: string } = {}
    for (let i = 0; i + 1 < reply.length; i += 2) {
      const name: unknown = reply[i]
      const value: unknown = reply[i + 1]
      if (name === 'last-generated-id' && typeof value === 'string') info.lastGeneratedId = value
      else if (name === 'max-deleted-entry-id' && typeof value === 'string') info.maxDeletedId = value
      else if (name === 'first-entry' && Array.isArray(value) && typeof value[0] === 'string') info.firstId = value[0]
    }
    return info
  }

  /** SCAN (never KEYS) the durable keys; each local entry expires with its key. */
  async #loadKeys(): Promise<void> {
    const pattern = scanPatternFor(this.#keyPrefix)
    let cursor = '0'
    do {
      const reply = await this.#reader.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', this.#batchSize)
      if (!Array.isArray(reply) || typeof reply[0] !== 'string' || !Array.isArray(reply[1])) throw new Error('unexpected SCAN reply')
      cursor = reply[0]
      const keys = (reply[1] as unknown[]).filter((k): k is string => typeof k === 'string' && k.length > this.#keyPrefix.length)
      if (keys.length === 0) continue
      const pipeline = this.#reader.pipeline()
      for (const key of keys) pipeline.pttl(key)
      const ttls = await pipeline.exec()
      if (ttls === null) throw new Error('PTTL pipeline aborted')
      keys.forEach((key, i) => {
        const [error, ttl] = ttls[i] ?? [null, -2]
        if (error !== null) throw error
        // -2: the key expired since SCAN saw it; -1: no TTL.
        if (typeof ttl !== 'number' || ttl === -2 || ttl === 0) return
        this.#local.markRevoked(key.slice(this.#keyPrefix.length), ttl === -1 ? NO_EXPIRY_TTL_MS : ttl)
      })
    } while (cursor !== '0' && !this.#stop.signal.aborted)
  }

  #applyEntry(entry: StreamEntry): void {
    const check = checkRevocationEvent(entry.fields, this.#stream, this.#hmacKey)
    if (!check.ok) {
      this.#refused++
      return
    }
    const ttlMs = check.ttlMs ?? this.#defaultTtlMs
    for (const anchor of check.anchors) this.#local.markRevoked(anchor, ttlMs)
    this.#applied++
  }
}
