/**
 * `RedisRevocationStore`: a local copy of the revocations and delegation epochs in Redis
 * (docs/architecture.md "Revocation"), so that a check is a Map lookup and never a round trip. At
 * start it reads what Caracal's two streams retain from their oldest entry and loads the durable
 * keys (SCAN: `<prefix><anchor>` revocations and `<prefix>delegation-epoch:<zone>` epochs, told
 * apart by name; the order is explained at `#initialLoad`), then follows three streams in one XREAD
 * (no group: every instance sees every event) on a connection of its own:
 *
 * - `caracal.sessions.revoke`, Caracal's revocations;
 * - `caracal.delegations.invalidate`, Caracal's delegation epochs (`zone_id`, `epoch`);
 * - `caracal-fastmcp.revocations`, this library's own: what `markRevoked` and
 *   `markDelegationEpoch` on any instance announce. They write the durable key and append there in
 *   one MULTI, capped with `MAXLEN ~`, signed like Caracal's events when a key is set. Nothing this
 *   library does on its own initiative appends to Caracal's streams: their consumers (the STS's,
 *   the gateway's) see only what Caracal published. The other mirrors hear of it as fast as of a
 *   Caracal event (one XREAD wake-up), and a mirror that reconnects catches up from its last ID on
 *   every stream alike, or reloads the keys when a stream was trimmed past it.
 *
 * While it cannot vouch for its copy (not loaded yet, or cut off longer than `maxStalenessMs`) it
 * fails closed (every anchor revoked, every zone at `FAIL_CLOSED_EPOCH`), or, with
 * `failClosed: false`, serves what it has and warns. Checks made before the first load wait for it
 * (up to `initialLoadTimeoutMs`): those answers are promises; once loaded they are synchronous.
 */
import { timingSafeEqual } from 'node:crypto'
import type { Redis } from 'ioredis'
import { DEFAULT_REVOCATION_TTL_MS, InMemoryRevocationStore, RevocationStoreFullError } from './in-memory-store.js'
import type { RevocationStore } from './types.js'
import {
  blockingReaderOptions,
  checkExecReply,
  errorMessage,
  isCluster,
  ownConnection,
  pause,
  scanTargets,
  whenReady,
  withCause,
  type RedisClient,
} from './redis-connection.js'
import { RedisOptionReader, argumentsOf } from './redis-options.js'
import {
  DELEGATION_EPOCH_KEY_INFIX,
  DELEGATION_INVALIDATION_STREAM,
  DURABLE_KEY_SCRIPT,
  FAIL_CLOSED_EPOCH,
  MAX_EPOCH_SCRIPT,
  PEER_EPOCH_EVENT,
  PEER_STREAM,
  PEER_STREAM_MAX_LENGTH,
  REVOCATION_KEY_PREFIX,
  REVOCATION_STREAM,
  checkDelegationEvent,
  checkRevocationEvent,
  compareStreamIds,
  delegationEpochEventFields,
  delegationEpochKey,
  isReservedAnchor,
  parseEpoch,
  parseStreamReply,
  parseStreamsReply,
  pxTtl,
  revocationEventFields,
  scanPatternFor,
  type StreamEntry,
} from './redis-wire.js'

export interface RedisRevocationStoreOptions {
  /**
   * An ioredis client; it stays yours (`close()` does not quit it). The store sends its writes
   * (`markRevoked`, `markDelegationEpoch`) on it and opens one more connection with
   * `redis.duplicate()` for the stream reads and the key loading, configured to fail fast whatever
   * the client's own options. May also be given as the first constructor argument instead.
   */
  readonly redis: RedisClient
  /** Answer every check "revoked" (and every epoch `FAIL_CLOSED_EPOCH`) while the mirror cannot be trusted. Default true. */
  readonly failClosed?: boolean
  /**
   * HMAC key of the streams (Caracal's `STREAMS_HMAC_KEY` is hex: pass its bytes,
   * `Buffer.from(hex, 'hex')`; a string is used as its UTF-8 bytes, and one of 64 or more hex
   * digits only gets a `CARACAL_STREAM_KEY_HEX_TEXT` warning, once per key and process). When set,
   * events without a valid `_sig` are ignored, and ours are signed. Without it, the store adopts
   * the key of a consumer constructed on it with one (`new RedisRevocationConsumer(redis, store, {
   * streamHmacKey })`, Caracal's wiring, where the store takes no key) and from then on requires
   * signatures; a consumer with another key, or with none on a store that has one, is a TypeError.
   */
  readonly streamHmacKey?: string | Uint8Array
  /** Default: true when `streamHmacKey` is set. True without a key is an error (as in Caracal). */
  readonly requireSignature?: boolean
  /** How long the mirror may go without hearing from Redis before it stops vouching. Default 5000. */
  readonly maxStalenessMs?: number
  /**
   * How long checks made before the first load wait for it (from construction), answering with a
   * promise; then they answer as the mirror stands (failing closed unless `failClosed: false`).
   * 0: never wait. Default 5000.
   */
  readonly initialLoadTimeoutMs?: number
  /** Caracal's revocation stream. Default `caracal.sessions.revoke`. */
  readonly stream?: string
  /** Caracal's delegation stream. Default `caracal.delegations.invalidate`. */
  readonly delegationStream?: string
  /** This library's stream between instances. Default `caracal-fastmcp.revocations`. */
  readonly peerStream?: string
  /** Approximate cap (`MAXLEN ~`) of the peer stream. Default 10 000. */
  readonly peerStreamMaxLength?: number
  /** Default `caracal:revoked:sessions:`. */
  readonly keyPrefix?: string
  /** TTL of a revocation or epoch whose event carries none (and of `markRevoked` without one). Default 24 h. */
  readonly defaultTtlMs?: number
  /** `zone_id` of the revocations `markRevoked` announces. Default ''. */
  readonly zoneId?: string
  /** `reason` of the revocations `markRevoked` announces. Default 'revoked_by_resource_server'. */
  readonly reason?: string
  /**
   * Most anchors held locally (see InMemoryRevocationStore). Default 1 000 000. A revocation that
   * finds the set full of unexpired ones is not dropped silently: the mirror fails closed (every
   * check answers revoked, `unavailable`, whatever `failClosed` says) until entries have expired
   * and it has reloaded everything Redis holds.
   */
  readonly maxEntries?: number
  /** How long one XREAD blocks. Default maxStalenessMs / 5, between 10 ms and 1 s. */
  readonly blockMs?: number
  /** Entries per stream per XREAD and keys per SCAN step. Default 1000. */
  readonly batchSize?: number
  /**
   * How often the durable keys are scanned again while connected (in `batchSize` steps, on a
   * connection of its own, so the stream reads go on meanwhile). A key that reaches Redis by a way
   * the streams did not show this store — written by a consumer after the entry was trimmed, say —
   * is in the local set within this bound plus one scan. A gap seen in a stream starts a scan at
   * once. Default 60 000 (docs/architecture.md "Revocation": the bound).
   */
  readonly reconcileIntervalMs?: number
  /** Clock (ms) for entry expiry and staleness. */
  readonly now?: () => number
}

/**
 * How a consumer's `streamHmacKey` and its store's agree (`shareStreamKey`): the same key (or none
 * on either side), the store adopted the consumer's, the store is no RedisRevocationStore, or a
 * conflict the consumer refuses.
 */
export type StreamKeyAgreement = 'same' | 'adopted' | 'not-a-store' | 'differs' | 'consumer-has-none'

/**
 * Called by the consumers' constructors with their store and key. A RedisRevocationStore without
 * a key adopts the consumer's (from then on it requires and makes signatures, as if it had been
 * given the key: Caracal's own store takes no key, so its wiring gives it to the consumers only).
 */
export function shareStreamKey(store: unknown, key: Buffer | undefined): StreamKeyAgreement {
  return shareKey(store, key)
}
let shareKey: (store: unknown, key: Buffer | undefined) => StreamKeyAgreement

/** The options after the client, in the Caracal wiring `new RedisRevocationStore(redis, options)`. */
export type RedisRevocationStoreSettings = Omit<RedisRevocationStoreOptions, 'redis'>

/** What an operator's health check wants to know. */
export interface RedisRevocationStoreState {
  readonly loaded: boolean
  /** The stream reader's connection is up. */
  readonly connected: boolean
  /** Time since the mirror last knew it was current (Infinity before the first load). */
  readonly stalenessMs: number
  /** Why the mirror cannot vouch for its copy right now (with failClosed, every check answers revoked). */
  readonly unavailable: string | undefined
  /** The last ID read from Caracal's revocation stream. */
  readonly lastId: string
  /** The last ID read from each followed stream, by name. */
  readonly lastIds: Readonly<Record<string, string>>
  readonly size: number
  /** Events applied, events refused by the consumers' checks, key reloads after a gap. */
  readonly applied: number
  readonly refused: number
  readonly reloads: number
  /** Scans of the durable keys completed since the first load (periodic and after gaps), and when the last ended. */
  readonly reconciles: number
  readonly lastReconcileAt: number | undefined
  readonly lastError: string | undefined
}

const STORE_OPTIONS = [
  'redis',
  'failClosed',
  'streamHmacKey',
  'requireSignature',
  'maxStalenessMs',
  'initialLoadTimeoutMs',
  'stream',
  'delegationStream',
  'peerStream',
  'peerStreamMaxLength',
  'keyPrefix',
  'defaultTtlMs',
  'zoneId',
  'reason',
  'maxEntries',
  'blockMs',
  'batchSize',
  'reconcileIntervalMs',
  'now',
] as const

/** A followed stream: Caracal's revocations, Caracal's delegation epochs, or our instances' announcements. */
interface Followed {
  readonly name: string
  readonly role: 'revocations' | 'delegations' | 'peer'
  lastId: string
  /** When a read last found this stream read to its end. */
  syncedAt: number
  /** How far removals from this stream have already been handed to a key scan (`#checkGaps`). */
  gapSeen?: string
}

/**
 * A connection that follows some streams with one blocking XREAD. On one Redis (or behind
 * Sentinel) one reader follows all three; on a Cluster each stream has its own, since the streams
 * hash to different slots (Caracal's names are fixed) and one XREAD may name only one slot.
 */
interface Reader {
  readonly conn: Redis
  readonly streams: readonly Followed[]
}

interface StreamInfo {
  firstId?: string
  lastGeneratedId?: string
  maxDeletedId?: string
  length?: number
  entriesAdded?: number
}

const RETRY_PAUSE_MS = 100
/** A durable key without a TTL is revoked for good; held for a century. */
const NO_EXPIRY_TTL_MS = 100 * 365 * 24 * 60 * 60 * 1000
/** The wire's signed form ("<key>=<value>\n" per field, redis-wire.ts) cannot carry a newline in a value. */
const NEWLINE_REFUSED = (what: string): string =>
  `${what} must not contain a newline: a signed revocation event could not tell it from two fields`

/** How long `markRevoked` waits for a connection that is still being set up. */
const CONNECT_WAIT_MS = 1_000

export class RedisRevocationStore implements RevocationStore {
  readonly #redis: Redis
  readonly #cluster: boolean
  readonly #readers: readonly Reader[]
  readonly #local: InMemoryRevocationStore
  readonly #failClosed: boolean
  /** Set by the constructor, or adopted once from a consumer (`shareStreamKey`). */
  #hmacKey: Buffer | undefined
  readonly #maxStalenessMs: number
  readonly #streams: readonly Followed[]
  readonly #revocations: Followed
  readonly #peer: Followed
  readonly #peerStream: string
  readonly #peerStreamMaxLength: number
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
  /** Set while checks made before the first load should wait for it; resolves (never rejects) when they stop waiting. */
  #loadWait: Promise<void> | undefined
  #loaded = false
  /** When the mirror last knew it held everything Redis had; -Infinity until the first load. */
  #syncedAt = Number.NEGATIVE_INFINITY
  #warned = false
  #applied = 0
  #refused = 0
  #reloads = 0
  #lastError: string | undefined
  readonly #reconcileIntervalMs: number
  /** The scans' own connection, made once the first load is done. */
  #scanner: Redis | undefined
  #reconcileLoop: Promise<void> | undefined
  /** Ends the reconciler's wait early: a gap was seen. */
  #wakeReconciler: (() => void) | undefined
  #reconcileRequested = false
  #reconciles = 0
  #lastReconcileAt: number | undefined
  /** Set when a revocation did not fit in the local set: the copy is incomplete until a reload. */
  #overflowed = false
  /** Set by an overflow during the reload that is meant to end one: that reload does not count. */
  #overflowedAgain = false
  #reloadingOverflow = false

  static {
    shareKey = (store, key) => {
      if (typeof store !== 'object' || store === null || !(#hmacKey in store)) return 'not-a-store'
      const held = store.#hmacKey
      if (held === undefined) {
        if (key !== undefined) store.#hmacKey = key
        return key === undefined ? 'same' : 'adopted'
      }
      if (key === undefined) return 'consumer-has-none'
      return key.length === held.length && timingSafeEqual(key, held) ? 'same' : 'differs'
    }
  }

  /** The Caracal wiring: the client first, then the options. */
  constructor(redis: RedisClient, options?: RedisRevocationStoreSettings)
  /** One options object, the client in `redis`. */
  constructor(options: RedisRevocationStoreOptions)
  constructor(...args: unknown[]) {
    const o = new RedisOptionReader(
      'RedisRevocationStore',
      argumentsOf('RedisRevocationStore', args, ['redis']),
      STORE_OPTIONS,
    )
    const redis = o.redis()
    this.#failClosed = o.boolean('failClosed', true)
    this.#hmacKey = o.signing()
    this.#maxStalenessMs = o.positiveMs('maxStalenessMs', 5_000)
    const initialLoadTimeoutMs = o.integer('initialLoadTimeoutMs', 5_000, 0)
    const blockMs = o.integer('blockMs', Math.min(1_000, Math.max(10, Math.floor(this.#maxStalenessMs / 5))), 1)
    if (blockMs >= this.#maxStalenessMs) o.fail('blockMs', 'must be a positive integer below maxStalenessMs')
    const stream = o.string('stream', REVOCATION_STREAM)
    const delegationStream = o.string('delegationStream', DELEGATION_INVALIDATION_STREAM)
    this.#peerStream = o.string('peerStream', PEER_STREAM)
    if (this.#peerStream === stream || this.#peerStream === delegationStream)
      o.fail('peerStream', 'must differ from stream and delegationStream')
    if (delegationStream === stream) o.fail('delegationStream', 'must differ from stream')
    this.#peerStreamMaxLength = o.integer('peerStreamMaxLength', PEER_STREAM_MAX_LENGTH, 1)
    this.#keyPrefix = o.string('keyPrefix', REVOCATION_KEY_PREFIX)
    this.#defaultTtlMs = o.positiveMs('defaultTtlMs', DEFAULT_REVOCATION_TTL_MS)
    this.#zoneId = o.string('zoneId', '', true)
    this.#reason = o.string('reason', 'revoked_by_resource_server', true)
    if (this.#zoneId.includes('\n')) o.fail('zoneId', 'must not contain a newline')
    if (this.#reason.includes('\n')) o.fail('reason', 'must not contain a newline')
    const maxEntries = o.integer('maxEntries', 1_000_000, 1)
    this.#batchSize = o.integer('batchSize', 1_000, 1)
    this.#reconcileIntervalMs = o.integer('reconcileIntervalMs', 60_000, 100)
    this.#now = o.fn('now', Date.now)
    this.#redis = redis
    this.#blockMs = blockMs
    const unread = { lastId: '0-0', syncedAt: Number.NEGATIVE_INFINITY }
    this.#revocations = { name: stream, role: 'revocations', ...unread }
    this.#peer = { name: this.#peerStream, role: 'peer', ...unread }
    this.#streams = [this.#revocations, { name: delegationStream, role: 'delegations', ...unread }, this.#peer]
    this.#local = new InMemoryRevocationStore({ defaultTtlMs: this.#defaultTtlMs, maxEntries, now: this.#now })
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#resolveReady = resolve
      this.#rejectReady = reject
    })
    // Nobody may be waiting on ready(); a close before the first load must not be an unhandled rejection.
    this.#ready.catch(() => undefined)
    if (initialLoadTimeoutMs > 0) this.#loadWait = this.#waitForLoad(initialLoadTimeoutMs)
    this.#cluster = isCluster(redis as RedisClient)
    const reader = (): Redis => {
      const conn = ownConnection(redis, {
        ...blockingReaderOptions(blockMs),
        connectionName: 'caracal-fastmcp:mirror-reader',
      })
      conn.on('error', (error: unknown) => {
        this.#lastError = errorMessage(error)
      })
      return conn
    }
    this.#readers = this.#cluster
      ? this.#streams.map((followed) => ({ conn: reader(), streams: [followed] }))
      : [{ conn: reader(), streams: this.#streams }]
    this.#loop = this.#follow()
  }

  /**
   * A lookup in the local set, plus the staleness check: synchronous once loaded. Before the first
   * load (and within `initialLoadTimeoutMs` of construction) a promise that answers once it is loaded.
   */
  isRevoked(anchor: string): boolean | Promise<boolean> {
    const waiting = this.#loadWait
    if (waiting !== undefined && !this.#loaded) return waiting.then(() => this.#isRevokedNow(anchor))
    return this.#isRevokedNow(anchor)
  }

  /**
   * The zone's delegation epoch from the local copy (0 when none is known), synchronous once loaded
   * (a promise before, as `isRevoked`). While the mirror cannot vouch for its copy and fails
   * closed, `FAIL_CLOSED_EPOCH` (Number.MAX_SAFE_INTEGER), as Caracal's store answers on an error:
   * every mandate that carries an epoch is then stale. `CaracalAuth` asks the anchors first, so it
   * refuses such a mandate as `session_revoked` with `unavailable: true` before it gets here.
   */
  currentDelegationEpoch(zoneId: string): number | Promise<number> {
    const waiting = this.#loadWait
    if (waiting !== undefined && !this.#loaded) return waiting.then(() => this.#epochNow(zoneId))
    return this.#epochNow(zoneId)
  }

  unavailableReason(): string | undefined {
    if (this.#overflowed) return this.#overflowReason()
    if (!this.#failClosed) return undefined
    return this.#staleReason()
  }

  /**
   * Applies at once on this instance, then, in one MULTI, writes the durable key (never
   * shortening it) and announces it on the peer stream (signed when a key is configured), where
   * every other instance's mirror reads it. Caracal's stream is not written. Rejects when Redis
   * cannot take the write; the local entry stays.
   */
  async markRevoked(anchor: string, ttlMs: number = this.#defaultTtlMs): Promise<void> {
    this.applyRevocation(anchor, ttlMs)
    await this.#writable('the revocation')
    const fields = revocationEventFields(
      { zoneId: this.#zoneId, anchor, reason: this.#reason, ttlMs },
      this.#peerStream,
      this.#hmacKey,
    )
    await this.#keyThenAnnouncement(
      ['EVAL', DURABLE_KEY_SCRIPT, 1, this.#keyPrefix + anchor, pxTtl(ttlMs)],
      fields,
      'markRevoked',
    )
  }

  /**
   * Raises the zone's epoch (never lowers it) at once on this instance, then, in one MULTI, on the
   * durable key `<prefix>delegation-epoch:<zone>` (a Lua script: set only if greater, PX ttl) and
   * on the peer stream, so the other instances raise theirs too. Rejects when Redis cannot take
   * the write; the local epoch stays.
   */
  async markDelegationEpoch(zoneId: string, epoch: number, ttlMs: number = this.#defaultTtlMs): Promise<void> {
    this.applyDelegationEpoch(zoneId, epoch, ttlMs)
    await this.#writable('the epoch')
    const fields = delegationEpochEventFields({ zoneId, epoch, ttlMs }, this.#peerStream, this.#hmacKey)
    await this.#keyThenAnnouncement(
      ['EVAL', MAX_EPOCH_SCRIPT, 1, delegationEpochKey(this.#keyPrefix, zoneId), String(epoch), String(pxTtl(ttlMs))],
      fields,
      'markDelegationEpoch',
    )
  }

  /**
   * The durable write and the peer announcement: one MULTI on one Redis. On a Cluster the key and
   * the stream live in different slots, which no transaction spans: the key first, then the
   * announcement — a mirror that scans between the two finds the key, one that reads the stream
   * after finds both, and the reconciler's scans close whatever else (docs/architecture.md "Revocation").
   */
  async #keyThenAnnouncement(script: (string | number)[], fields: string[], what: string): Promise<void> {
    const [command, ...args] = script as [string, ...(string | number)[]]
    const announce = [this.#peerStream, 'MAXLEN', '~', this.#peerStreamMaxLength, '*', ...fields]
    try {
      if (this.#cluster) {
        await this.#redis.call(command, ...args)
        await this.#redis.call('XADD', ...announce)
        return
      }
      const reply = await this.#redis
        .multi()
        .call(command, ...args)
        .call('XADD', ...announce)
        .exec()
      checkExecReply(reply, what)
    } catch (error) {
      throw error instanceof Error ? withCause(error) : error
    }
  }

  /**
   * Adds a revocation to this instance's set only, without writing or announcing it: what the
   * consumer calls for the events it accepts (announcing them again would loop). An anchor that
   * starts with `delegation-epoch:` is a TypeError (here and in `markRevoked`): its durable key
   * would be a zone's epoch key.
   */
  applyRevocation(anchor: string, ttlMs: number = this.#defaultTtlMs): void {
    if (typeof anchor !== 'string' || anchor === '') throw new TypeError('anchor must be a non-empty string')
    if (isReservedAnchor(anchor)) {
      throw new TypeError(
        `anchor must not start with "${DELEGATION_EPOCH_KEY_INFIX}": its durable key would be a zone's delegation epoch key`,
      )
    }
    if (anchor.includes('\n')) throw new TypeError(NEWLINE_REFUSED('anchor'))
    if (!(Number.isFinite(ttlMs) && ttlMs > 0)) throw new TypeError('ttlMs must be a positive number')
    // Never throws for a full set: the caller (markRevoked, a consumer) must still make it durable.
    this.#holdLocally(anchor, ttlMs)
  }

  /** Raises the zone's epoch in this instance's copy only (max semantics): what the delegation consumer calls. */
  applyDelegationEpoch(zoneId: string, epoch: number, ttlMs: number = this.#defaultTtlMs): void {
    if (typeof zoneId === 'string' && zoneId.includes('\n')) throw new TypeError(NEWLINE_REFUSED('zoneId'))
    this.#local.markDelegationEpoch(zoneId, epoch, ttlMs)
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
      connected: this.#readers.every((r) => r.conn.status === 'ready'),
      stalenessMs: Math.max(0, this.#now() - this.#syncedAt),
      unavailable: this.#overflowed ? this.#overflowReason() : this.#staleReason(),
      lastId: this.#revocations.lastId,
      lastIds: Object.fromEntries(this.#streams.map((s) => [s.name, s.lastId])),
      size: this.#local.size,
      applied: this.#applied,
      refused: this.#refused,
      reloads: this.#reloads,
      reconciles: this.#reconciles,
      lastReconcileAt: this.#lastReconcileAt,
      lastError: this.#lastError,
    }
  }

  /** Stops following and closes the store's own connection (not the client you passed). */
  async close(): Promise<void> {
    if (this.#stop.signal.aborted) return this.#loop
    this.#stop.abort()
    this.#rejectReady(new Error('RedisRevocationStore closed before its first load'))
    for (const r of this.#readers) r.conn.disconnect()
    this.#wakeReconciler?.()
    this.#scanner?.disconnect()
    await this.#loop
    await this.#reconcileLoop
  }

  #isRevokedNow(anchor: string): boolean {
    if (this.#overflowed || (this.#untrusted() && this.#failClosed)) return true
    return this.#local.isRevoked(anchor)
  }

  #epochNow(zoneId: string): number {
    if (this.#overflowed || (this.#untrusted() && this.#failClosed)) return FAIL_CLOSED_EPOCH
    return this.#local.currentDelegationEpoch(zoneId)
  }

  /** True while the copy cannot be vouched for (warning once per episode). */
  #untrusted(): boolean {
    if (this.#now() - this.#syncedAt <= this.#maxStalenessMs) return false
    if (!this.#warned) this.#warnStale()
    return true
  }

  /** Ends when the first load completes, the store closes, or `timeoutMs` of real time pass. */
  #waitForLoad(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs)
      // A store nobody closes must not keep the process alive for this.
      timer.unref?.()
      const done = () => {
        clearTimeout(timer)
        resolve()
      }
      this.#ready.then(done, done)
    }).then(() => {
      this.#loadWait = undefined
    })
  }

  async #writable(what: string): Promise<void> {
    if (this.#stop.signal.aborted) throw new Error('RedisRevocationStore is closed')
    if (this.#redis.status !== 'ready' && !(await whenReady(this.#redis, AbortSignal.timeout(CONNECT_WAIT_MS)))) {
      throw new Error(`Redis is not connected: ${what} holds on this instance only`)
    }
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
    process.emitWarning(message, {
      code: this.#failClosed ? 'CARACAL_REVOCATIONS_UNAVAILABLE' : 'CARACAL_REVOCATIONS_STALE',
    })
  }

  /**
   * Adds a revocation to the local set. When the set is full of unexpired revocations it is not
   * held, so the copy no longer has everything Redis has: fail closed until a reload.
   */
  #holdLocally(anchor: string, ttlMs: number): void {
    try {
      this.#local.markRevoked(anchor, ttlMs)
    } catch (error) {
      if (!(error instanceof RevocationStoreFullError)) throw error
      this.#overflowedAgain = true
      if (this.#overflowed) return
      this.#overflowed = true
      process.emitWarning(`RedisRevocationStore: ${this.#overflowReason()}; every check answers revoked`, {
        code: 'CARACAL_REVOCATIONS_UNAVAILABLE',
      })
    }
  }

  #overflowReason(): string {
    return `revocation set full (maxEntries ${this.#local.maxEntries} unexpired revocations)`
  }

  /**
   * After an overflow, once entries have expired: everything again — Caracal's retained streams
   * from their start, then the durable keys — as the first load does, since the revocation that did
   * not fit may have come from any of them. The peer stream reads on from where it is: its entries
   * have durable keys. The mirror fails closed until this completes without overflowing.
   */
  async #reloadAfterOverflow(): Promise<void> {
    if (this.#reloadingOverflow) return
    this.#reloadingOverflow = true
    try {
      this.#overflowedAgain = false
      // Copies from 0-0: the followed positions stay where their readers are (on a Cluster a reader
      // may be blocked on its stream meanwhile, and must not have its position moved under it).
      const replay = this.#streams.filter((s) => s.role !== 'peer').map((s) => ({ ...s, lastId: '0-0' }))
      await this.#catchUp(replay)
      await this.#loadKeys()
      this.#reloads++
      if (this.#overflowedAgain) return
      this.#overflowed = false
    } finally {
      this.#reloadingOverflow = false
    }
  }

  /** These streams were read to their end as of `at`; the mirror is as current as its least current stream. */
  #markSynced(streams: readonly Followed[], at: number): void {
    for (const s of streams) if (at > s.syncedAt) s.syncedAt = at
    const synced = Math.min(...this.#streams.map((s) => s.syncedAt))
    if (synced > this.#syncedAt) {
      this.#syncedAt = synced
      this.#warned = false
    }
  }

  /** The follower: the first load (retried until it succeeds), then each reader blocks on its streams. */
  async #follow(): Promise<void> {
    const stop = this.#stop.signal
    while (!stop.aborted && !this.#loaded) {
      try {
        if (!(await this.#allReady(stop))) {
          await pause(RETRY_PAUSE_MS * 10, stop)
          continue
        }
        await this.#initialLoad()
      } catch (error) {
        if (stop.aborted) return
        this.#lastError = errorMessage(error)
        await pause(RETRY_PAUSE_MS, stop)
      }
    }
    if (stop.aborted) return
    await Promise.all(this.#readers.map((r) => this.#followWith(r)))
  }

  async #allReady(stop: AbortSignal): Promise<boolean> {
    for (const r of this.#readers) if (!(await whenReady(r.conn, stop, true))) return false
    return true
  }

  /** One reader's loop: a blocking XREAD of its streams from their last IDs, a gap check after each. */
  async #followWith(r: Reader): Promise<void> {
    const stop = this.#stop.signal
    let reconnected = false
    while (!stop.aborted) {
      try {
        if (!(await whenReady(r.conn, stop, true))) {
          await pause(RETRY_PAUSE_MS * 10, stop)
          continue
        }
        if (reconnected) await this.#afterReconnect(r)
        reconnected = false
        if (this.#overflowed && this.#local.hasRoom()) await this.#reloadAfterOverflow()
        const readFrom = r.streams.map((s) => s.lastId)
        const reply = await r.conn.call(
          'XREAD',
          'COUNT',
          this.#batchSize,
          'BLOCK',
          this.#blockMs,
          'STREAMS',
          ...r.streams.map((s) => s.name),
          ...r.streams.map((s) => s.lastId),
        )
        const readAt = this.#now()
        // A full batch means more may be waiting: current only once every stream comes back short.
        const full = this.#applyReply(r.streams, reply)
        // Every read, not only after a reconnect: entries trimmed while we were connected but
        // behind leave no trace in what XREAD returns.
        await this.#checkGaps(r, readFrom)
        if (!full) this.#markSynced(r.streams, readAt)
      } catch (error) {
        if (stop.aborted) return
        this.#lastError = errorMessage(error)
        reconnected = true
        // A read that outlived its block: the link is dead even if the socket does not know yet.
        if (/timed out/i.test(this.#lastError) && r.conn.status === 'ready') r.conn.disconnect(true)
        await pause(RETRY_PAUSE_MS, stop)
      }
    }
  }

  /**
   * After an error, before reading on: is the entry we read last still there? If not, and the
   * stream was not simply trimmed past it (the gap check sees that), the history we read is not the
   * server's — entries a demoted master took after a failover are dropped, and the new master's,
   * taken meanwhile, may sort below our position — so the stream is read again from its start and
   * the keys are scanned. Re-reading only adds revocations.
   */
  async #afterReconnect(r: Reader): Promise<void> {
    let diverged = false
    for (const followed of r.streams) {
      if (followed.lastId === '0-0') continue
      const still = await r.conn.call('XRANGE', followed.name, followed.lastId, followed.lastId)
      if (Array.isArray(still) && still.length > 0) continue
      followed.lastId = '0-0'
      followed.gapSeen = undefined
      diverged = true
    }
    if (diverged) {
      this.#reloads++
      this.#requestReconcile()
    }
    await this.#checkGaps(r)
  }

  /** Applies an XREAD reply over `streams` and moves their last IDs; true when a stream's batch came back full. */
  #applyReply(streams: readonly Followed[], reply: unknown): boolean {
    const byStream = parseStreamsReply(reply)
    let full = false
    for (const followed of streams) {
      const entries = byStream.get(followed.name)
      if (entries === undefined) continue
      for (const entry of entries) this.#applyEntry(followed, entry)
      const last = entries[entries.length - 1]
      if (last !== undefined && compareStreamIds(last.id, followed.lastId) > 0) followed.lastId = last.id
      if (entries.length >= this.#batchSize) full = true
    }
    return full
  }

  /**
   * Reads `streams` on from their last IDs without blocking, `batchSize` entries per stream at a
   * time and yielding to the event loop between batches (Caracal caps its streams at ~100 000
   * entries), until every one comes back short. Returns when the last, short, read was sent.
   */
  async #catchUp(streams: readonly Followed[]): Promise<number> {
    let earliest = Number.POSITIVE_INFINITY
    for (const r of this.#readers) {
      const names = new Set(r.streams.map((s) => s.name))
      const mine = streams.filter((s) => names.has(s.name))
      if (mine.length > 0) earliest = Math.min(earliest, await this.#catchUpOn(r.conn, mine))
    }
    return earliest
  }

  async #catchUpOn(conn: Redis, streams: readonly Followed[]): Promise<number> {
    for (;;) {
      const at = this.#now()
      const reply = await conn.call(
        'XREAD',
        'COUNT',
        this.#batchSize,
        'STREAMS',
        ...streams.map((s) => s.name),
        ...streams.map((s) => s.lastId),
      )
      if (!this.#applyReply(streams, reply)) return at
      if (this.#stop.signal.aborted) throw new Error('RedisRevocationStore closed while loading')
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
  }

  /**
   * The first load: everything Caracal's streams retain, the durable keys, and what the peer
   * stream gets from then on, in an order that lets nothing fall between them.
   *
   * 1. Caracal's streams are read from their oldest entry (`0-0`) to their end. Nobody may have
   *    consumed their events yet (then there is no durable key to find): a consumer group applies
   *    an event to one instance's store only, so without reading the streams themselves a store
   *    that starts on a backlog would never learn the events another instance's consumer took.
   *    An entry still in its stream when this read passes its place is read whatever the order;
   *    the order only matters for entries that leave the stream first (trimmed at its head by
   *    `MAXLEN ~`). Those are known only by their durable keys, so the SCAN comes after this read:
   *    every key a consumer wrote before the SCAN is found, and the later the SCAN the more of
   *    them there are. SCAN first and streams second would miss an entry made durable after the
   *    SCAN passed its key's slot and trimmed before the read reached it.
   * 2. The peer stream's newest ID is taken, then the keys are scanned. `markRevoked` and
   *    `markDelegationEpoch` write their key and append their entry in one MULTI, so every entry up
   *    to that ID has a key the SCAN finds (unless it expired), and every later one is read from
   *    the stream: the peer stream is not replayed, as before.
   * 3. All three streams are read on from where 1 and 2 left them, until each comes back short:
   *    what was published during the SCAN is in the copy before the store counts as loaded.
   *
   * Checks wait (up to `initialLoadTimeoutMs`) until then. Replayed Caracal events carry no TTL and
   * get `defaultTtlMs`: a revocation that outlasts its key errs on the safe side. Each attempt
   * starts over (a failed one keeps what it applied: revocations and epochs only accumulate).
   */
  async #initialLoad(): Promise<void> {
    const caracal = this.#streams.filter((s) => s.role !== 'peer')
    for (const followed of caracal) {
      followed.lastId = '0-0'
      followed.gapSeen = undefined
    }
    await this.#catchUp(caracal)
    const newest = await this.#readerOf(this.#peer).xrevrange(this.#peer.name, '+', '-', 'COUNT', 1)
    this.#peer.lastId = parseStreamReply([[this.#peer.name, newest]])[0]?.id ?? '0-0'
    await this.#loadKeys()
    const at = await this.#catchUp(this.#streams)
    this.#loaded = true
    this.#markSynced(this.#streams, at)
    this.#resolveReady()
    this.#reconcileLoop = this.#reconcile()
  }

  /**
   * Per stream, after every read and after a reconnect: reading on from the last ID catches up,
   * unless entries after it were trimmed or deleted (then the durable keys fill the gap: a scan
   * is started at once, on the reconciler's connection, while the reads go on) or the stream was
   * recreated (then it is read again from its start, and the keys scanned too).
   */
  async #checkGaps(r: Reader, readFrom?: readonly string[]): Promise<void> {
    const infos = await this.#streamInfos(r)
    let gap = false
    for (const [i, followed] of r.streams.entries()) {
      const info = infos[i]
      // Where the read started: an entry trimmed before the read leaves no trace in what it
      // returned, and the read then ends at or past the stream's first entry — so the head is
      // compared with where the read began, not with where it ended. Removals up to a gap already
      // handed to a scan (`gapSeen`) are not a new gap: an idle store on an emptied stream would
      // otherwise scan the keys after every read.
      const read = readFrom?.[i] ?? followed.lastId
      const from =
        followed.gapSeen !== undefined && compareStreamIds(followed.gapSeen, read) > 0 ? followed.gapSeen : read
      if (info === undefined) {
        // Gone (Redis restarted empty, or someone deleted it): read a new one from its start.
        if (followed.lastId !== '0-0') {
          followed.lastId = '0-0'
          followed.gapSeen = undefined
          gap = true
        }
        continue
      }
      const generated = info.lastGeneratedId === undefined ? 1 : compareStreamIds(info.lastGeneratedId, followed.lastId)
      if (generated < 0) {
        // Recreated behind our position: its IDs start again below ours.
        followed.lastId = '0-0'
        followed.gapSeen = undefined
        gap = true
        continue
      }
      // Nothing was added after where we read from, so nothing after it can be missing.
      if (info.lastGeneratedId !== undefined && compareStreamIds(info.lastGeneratedId, from) === 0) continue
      // Nothing was ever removed from the stream (Redis 7.0: as many entries as were ever added).
      if (info.entriesAdded !== undefined && info.entriesAdded === info.length) continue
      // Trimming removes from the head and leaves max-deleted-entry-id alone (Redis 7.0), so a first
      // entry past ours, or none at all, may hide a gap; XDEL after ours shows in max-deleted-entry-id.
      // When only entries we had read were trimmed this scans for nothing: a SCAN, and only when the
      // stream retains less than one read's worth behind its end.
      const head = info.firstId ?? info.lastGeneratedId
      const headMoved = head !== undefined && compareStreamIds(head, from) > 0
      const deletedPast = info.maxDeletedId !== undefined && compareStreamIds(info.maxDeletedId, from) > 0
      if (headMoved || deletedPast) {
        gap = true
        // Everything removed up to here is the scan's to find; later checks look past it.
        let seen = head ?? from
        if (info.maxDeletedId !== undefined && compareStreamIds(info.maxDeletedId, seen) > 0) seen = info.maxDeletedId
        followed.gapSeen = seen
      }
    }
    if (gap) {
      this.#reloads++
      this.#requestReconcile()
    }
  }

  /** `XINFO STREAM` of every followed stream in one round trip; undefined for a stream that does not exist. */
  async #streamInfos(r: Reader): Promise<(StreamInfo | undefined)[]> {
    const pipeline = r.conn.pipeline()
    for (const followed of r.streams) pipeline.call('XINFO', 'STREAM', followed.name)
    const replies = await pipeline.exec()
    if (replies === null) throw new Error('XINFO pipeline aborted')
    return replies.map(([error, reply]) => {
      if (error !== null) {
        if (/no such key/i.test(errorMessage(error))) return undefined
        throw error
      }
      return parseStreamInfo(reply)
    })
  }

  #readerOf(followed: Followed): Redis {
    return (this.#readers.find((r) => r.streams.includes(followed)) ?? this.#readers[0]!).conn
  }

  /** Starts the periodic scans once the first load is done; a gap asks for one at once. */
  #requestReconcile(): void {
    this.#reconcileRequested = true
    this.#wakeReconciler?.()
  }

  /**
   * Scans the durable keys every `reconcileIntervalMs`, and at once when a gap was seen, on a
   * connection of its own: a scan of a million keys takes seconds, and the stream reads must not
   * wait for it. What it finds only adds revocations (and never shortens one), so it needs no
   * ordering with the reads.
   */
  async #reconcile(): Promise<void> {
    const stop = this.#stop.signal
    const scanner = ownConnection(this.#redis, {
      ...blockingReaderOptions(this.#blockMs),
      connectionName: 'caracal-fastmcp:mirror-reconciler',
    })
    scanner.on('error', (error: unknown) => {
      this.#lastError = errorMessage(error)
    })
    this.#scanner = scanner
    while (!stop.aborted) {
      if (!this.#reconcileRequested) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.#reconcileIntervalMs)
          timer.unref?.()
          this.#wakeReconciler = () => {
            clearTimeout(timer)
            resolve()
          }
        })
        this.#wakeReconciler = undefined
      }
      if (stop.aborted) break
      this.#reconcileRequested = false
      try {
        if (!(await whenReady(scanner, stop, true))) continue
        await this.#loadKeys(scanner)
        this.#reconciles++
        this.#lastReconcileAt = this.#now()
      } catch (error) {
        if (stop.aborted) break
        this.#lastError = errorMessage(error)
        // Not done: try again soon rather than after a whole interval.
        this.#reconcileRequested = true
        await pause(RETRY_PAUSE_MS * 5, stop)
      }
    }
    scanner.disconnect()
  }

  /**
   * SCAN (never KEYS) the durable keys; each local entry expires with its key. Keys under
   * `<prefix>delegation-epoch:` are zones' epochs (GET and PTTL), never revoked anchors.
   */
  async #loadKeys(conn: Redis = this.#readers[0]!.conn): Promise<void> {
    // A Cluster's keys are spread over its masters: each is scanned on its own.
    for (const node of await scanTargets(conn)) await this.#loadKeysOf(node)
  }

  async #loadKeysOf(conn: Redis): Promise<void> {
    const pattern = scanPatternFor(this.#keyPrefix)
    const epochPrefix = this.#keyPrefix + DELEGATION_EPOCH_KEY_INFIX
    let cursor = '0'
    do {
      const reply = await conn.call('SCAN', cursor, 'MATCH', pattern, 'COUNT', this.#batchSize)
      if (!Array.isArray(reply) || typeof reply[0] !== 'string' || !Array.isArray(reply[1]))
        throw new Error('unexpected SCAN reply')
      cursor = reply[0]
      const keys = (reply[1] as unknown[]).filter(
        (k): k is string => typeof k === 'string' && k.length > this.#keyPrefix.length,
      )
      if (keys.length === 0) continue
      const pipeline = conn.pipeline()
      for (const key of keys) {
        if (key.startsWith(epochPrefix)) pipeline.get(key)
        pipeline.pttl(key)
      }
      const replies = await pipeline.exec()
      if (replies === null) throw new Error('key loading pipeline aborted')
      let at = 0
      const next = (): unknown => {
        const [error, value] = replies[at++] ?? [null, null]
        if (error !== null) throw error
        return value
      }
      for (const key of keys) {
        const value = key.startsWith(epochPrefix) ? next() : undefined
        const ttl = next()
        // -2: the key expired since SCAN saw it; -1: no TTL.
        if (typeof ttl !== 'number' || ttl === -2 || ttl === 0) continue
        const ttlMs = ttl === -1 ? NO_EXPIRY_TTL_MS : ttl
        if (key.startsWith(epochPrefix)) {
          const zoneId = key.slice(epochPrefix.length)
          const epoch = parseEpoch(value as string | null)
          if (zoneId !== '' && epoch !== undefined) this.#local.markDelegationEpoch(zoneId, epoch, ttlMs)
        } else {
          this.#holdLocally(key.slice(this.#keyPrefix.length), ttlMs)
        }
      }
    } while (cursor !== '0' && !this.#stop.signal.aborted)
  }

  /**
   * One entry through the consumers' checks. `ttl_ms` counts only on the peer stream, where this
   * library's instances put it: Caracal never sends it, so on Caracal's streams an event cannot
   * choose how long it lasts (the default TTL applies).
   */
  #applyEntry(followed: Followed, entry: StreamEntry): void {
    const peer = followed.role === 'peer'
    const epochEvent = followed.role === 'delegations' || (peer && entry.fields?.event === PEER_EPOCH_EVENT)
    if (epochEvent) {
      const check = checkDelegationEvent(entry.fields, followed.name, this.#hmacKey, peer)
      if (!check.ok) {
        this.#refused++
        return
      }
      this.#local.markDelegationEpoch(check.zoneId, check.epoch, check.ttlMs ?? this.#defaultTtlMs)
    } else {
      const check = checkRevocationEvent(entry.fields, followed.name, this.#hmacKey, peer)
      if (!check.ok) {
        this.#refused++
        return
      }
      const ttlMs = check.ttlMs ?? this.#defaultTtlMs
      for (const anchor of check.anchors) this.#holdLocally(anchor, ttlMs)
    }
    this.#applied++
  }
}

/** The fields of an `XINFO STREAM` reply the gap check reads (RESP2: a flat name/value list). */
function parseStreamInfo(reply: unknown): StreamInfo {
  const info: StreamInfo = {}
  if (!Array.isArray(reply)) return info
  for (let i = 0; i + 1 < reply.length; i += 2) {
    const name: unknown = reply[i]
    const value: unknown = reply[i + 1]
    if (name === 'last-generated-id' && typeof value === 'string') info.lastGeneratedId = value
    else if (name === 'max-deleted-entry-id' && typeof value === 'string') info.maxDeletedId = value
    else if (name === 'first-entry' && Array.isArray(value) && typeof value[0] === 'string') info.firstId = value[0]
    else if (name === 'length' && typeof value === 'number') info.length = value
    else if (name === 'entries-added' && typeof value === 'number') info.entriesAdded = value
  }
  return info
}
