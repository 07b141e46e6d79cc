/**
 * The consumer groups that make Caracal's events durable (docs/architecture.md "Revocation"):
 * `RedisRevocationConsumer` on `caracal.sessions.revoke` (group `resource-revocation`) and
 * `RedisDelegationInvalidationConsumer` on `caracal.delegations.invalidate` (group
 * `resource-delegation-invalidation`). One base does the group work — read in the group, verify
 * `_sig` when a key is configured (and then require it), acknowledge, dead-letter what cannot be
 * used, reclaim entries left pending by a consumer that died — and one message handler per stream
 * says what an event means: anchors to revoke, or a zone's epoch to raise (max semantics). What a
 * consumer accepts it applies to its store's local copy directly and never publishes again:
 * publishing would loop, and Caracal's streams are Caracal's.
 *
 * Blocking reads run on a connection of the consumer's own (`redis.duplicate()`, fail-fast), so
 * they never hold up the client you pass; `close()` releases it.
 */
import type { Redis } from 'ioredis'
import { DEFAULT_REVOCATION_TTL_MS } from './in-memory-store.js'
import {
  blockingReaderOptions,
  checkExecReply,
  errorMessage,
  isCluster,
  ownConnection,
  pause,
  whenReady,
  type RedisClient,
} from './redis-connection.js'
import { RedisOptionReader, argumentsOf } from './redis-options.js'
import { shareStreamKey } from './redis-store.js'
import {
  DEAD_LETTER_MAX_LENGTH,
  DEFAULT_CONSUMER_GROUP,
  DEFAULT_DELEGATION_GROUP,
  DELEGATION_INVALIDATION_STREAM,
  DURABLE_KEY_SCRIPT,
  MAX_EPOCH_SCRIPT,
  REVOCATION_KEY_PREFIX,
  REVOCATION_STREAM,
  checkDelegationEvent,
  checkRevocationEvent,
  deadLetterPayload,
  deadLetterStream,
  delegationEpochKey,
  parseStreamEntry,
  parseStreamReply,
  pxTtl,
  type RejectionReason,
  type RevocationFields,
  type StreamEntry,
} from './redis-wire.js'

/** What the revocation consumer needs of a store: a local apply that does not publish (RedisRevocationStore has it). */
export interface RevocationMirror {
  applyRevocation(anchor: string, ttlMs: number): void
}

/** What the delegation consumer needs of a store: a local, max-semantics raise (RedisRevocationStore has it). */
export interface DelegationEpochMirror {
  applyDelegationEpoch(zoneId: string, epoch: number, ttlMs: number): void
}

export interface RedisRevocationConsumerOptions<Store = RevocationMirror> {
  /**
   * An ioredis client; stays yours. The consumer only calls `redis.duplicate()` on it, for a
   * connection of its own. May also be given as the first constructor argument instead.
   */
  readonly redis: RedisClient
  /** Where accepted events are applied at once (a RedisRevocationStore). Optional; the second argument in the Caracal wiring. */
  readonly store?: Store
  /** This consumer's name in the group; unique per process. */
  readonly consumer: string
  /** Default `resource-revocation` / `resource-delegation-invalidation`. */
  readonly group?: string
  /** Default `caracal.sessions.revoke` / `caracal.delegations.invalidate`. */
  readonly stream?: string
  /** Default `caracal:revoked:sessions:` (epochs: `<keyPrefix>delegation-epoch:<zone>`). */
  readonly keyPrefix?: string
  /**
   * HMAC key of the stream (Caracal's `STREAMS_HMAC_KEY` is hex: pass `Buffer.from(hex, 'hex')`; a
   * string is used as its UTF-8 bytes, and one of 64 or more hex digits only gets a
   * `CARACAL_STREAM_KEY_HEX_TEXT` warning, once per key and process). When set, every event must
   * carry a valid `_sig`; the others are dead-lettered as `invalid_signature`. It must be the key
   * of its `store` when that is a RedisRevocationStore with one (else a TypeError); a store without
   * a key adopts the consumer's and from then on requires signatures too.
   */
  readonly streamHmacKey?: string | Uint8Array
  /** Default: true when `streamHmacKey` is set. True without a key is an error (as in Caracal). */
  readonly requireSignature?: boolean
  /**
   * TTL of the durable keys it writes (and of what it applies to its store). Default 24 h. Caracal's
   * events carry none, and a `ttl_ms` field on its streams is ignored: an event cannot choose how
   * long its key lives.
   */
  readonly defaultTtlMs?: number
  /** Entries per read. Default 50. */
  readonly batchSize?: number
  /**
   * How long one read blocks waiting for events (`pollOnce` returns after at most about this long).
   * Default 5000. Caracal's 0 (block forever) is refused: a poll must return.
   */
  readonly blockMs?: number
  /** How long an entry must sit unacknowledged before another consumer takes it. Default 30 s. */
  readonly pendingIdleMs?: number
  /** Approximate cap (`MAXLEN ~`) of `<stream>.dead`. Default 10 000. */
  readonly deadLetterMaxLength?: number
  /**
   * How many times an entry may be delivered (Redis counts each read of a pending entry) before it
   * is dead-lettered as `delivery_limit` instead of tried again: an entry that fails every time
   * (a key of the wrong type, a store that throws) must not be reclaimed forever. Default 10.
   */
  readonly maxDeliveries?: number
}

/** The options after the client and the store, in the Caracal wiring `new RedisRevocationConsumer(redis, store, options)`. */
export type RedisRevocationConsumerSettings = Omit<RedisRevocationConsumerOptions, 'redis' | 'store'>
export type RedisDelegationInvalidationConsumerOptions = RedisRevocationConsumerOptions<DelegationEpochMirror>
export type RedisDelegationInvalidationConsumerSettings = RedisRevocationConsumerSettings

export interface RedisRevocationConsumerStats {
  /** Events accepted (applied and made durable). */
  readonly applied: number
  readonly deadLettered: Readonly<Partial<Record<DeadLetterReason, number>>>
  /** Entries taken over from idle consumers (this one's own included, after a restart). */
  readonly reclaimed: number
}

export interface RunOptions {
  /** Stops the loop; an aborted signal ends `run` promptly, even while a read is blocked. */
  readonly signal?: AbortSignal
}

/** Why an entry went to `<stream>.dead`: the event's own fault, or that it failed `maxDeliveries` times. */
export type DeadLetterReason = RejectionReason | 'delivery_limit'

const CONSUMER_OPTIONS = [
  'redis',
  'store',
  'consumer',
  'group',
  'stream',
  'keyPrefix',
  'streamHmacKey',
  'requireSignature',
  'defaultTtlMs',
  'batchSize',
  'blockMs',
  'pendingIdleMs',
  'deadLetterMaxLength',
  'maxDeliveries',
] as const

const RETRY_PAUSE_MS = 200
/** The most a failed `pollOnce` waits before it rejects (at most `blockMs`). */
const FAILED_POLL_PAUSE_MS = 1_000
/** Bounds one reclaim pass, so a huge backlog cannot starve new events. */
const MAX_RECLAIM_PAGES = 20
/** How long `ensureGroup` waits for the consumer's connection. */
const CONNECT_WAIT_MS = 2_000

/**
 * Errors of Redis or of the link rather than of the entry: trying again later can succeed, so they
 * never count against an entry's delivery cap.
 */
function isTransient(error: unknown): boolean {
  const message = errorMessage(error)
  return (
    /^(OOM|READONLY|LOADING|BUSY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|NOREPLICAS|EXECABORT)\b/.test(message) ||
    /connection|not connected|timed out|ECONNRESET|ECONNREFUSED|EPIPE|socket/i.test(message)
  )
}

/** What one stream's events mean: how to check one, apply it locally and make it durable. */
interface MessageHandler<Store, Accepted> {
  readonly storeMethod: keyof Store & string
  check(
    fields: RevocationFields | undefined,
    stream: string,
    hmacKey: Buffer | undefined,
  ): { ok: true; value: Accepted; ttlMs: number | undefined } | { ok: false; reason: RejectionReason }
  apply(store: Store, value: Accepted, ttlMs: number): void
  /** The commands that make it durable, one key each (on a Cluster they may go to different masters). */
  durable(keyPrefix: string, value: Accepted, ttlMs: number): [string, ...(string | number)[]][]
}

const REVOCATIONS: MessageHandler<RevocationMirror, readonly string[]> = {
  storeMethod: 'applyRevocation',
  check(fields, stream, hmacKey) {
    const check = checkRevocationEvent(fields, stream, hmacKey)
    return check.ok ? { ok: true, value: check.anchors, ttlMs: check.ttlMs } : check
  },
  apply(store, anchors, ttlMs) {
    for (const anchor of anchors) store.applyRevocation(anchor, ttlMs)
  },
  durable(keyPrefix, anchors, ttlMs) {
    return anchors.map((anchor) => ['EVAL', DURABLE_KEY_SCRIPT, 1, keyPrefix + anchor, pxTtl(ttlMs)])
  },
}

const DELEGATION_EPOCHS: MessageHandler<DelegationEpochMirror, { readonly zoneId: string; readonly epoch: number }> = {
  storeMethod: 'applyDelegationEpoch',
  check(fields, stream, hmacKey) {
    const check = checkDelegationEvent(fields, stream, hmacKey)
    return check.ok ? { ok: true, value: { zoneId: check.zoneId, epoch: check.epoch }, ttlMs: check.ttlMs } : check
  },
  apply(store, { zoneId, epoch }, ttlMs) {
    store.applyDelegationEpoch(zoneId, epoch, ttlMs)
  },
  durable(keyPrefix, { zoneId, epoch }, ttlMs) {
    return [['EVAL', MAX_EPOCH_SCRIPT, 1, delegationEpochKey(keyPrefix, zoneId), String(epoch), String(pxTtl(ttlMs))]]
  },
}

/**
 * The group work shared by both consumers; `RedisRevocationConsumer` and
 * `RedisDelegationInvalidationConsumer` are this with their stream's handler.
 */
export abstract class RedisStreamGroupConsumer<Store extends object, Accepted> {
  readonly #name: string
  readonly #handler: MessageHandler<Store, Accepted>
  readonly #redis: Redis
  readonly #store: Store | undefined
  readonly #consumer: string
  readonly #group: string
  readonly #stream: string
  readonly #keyPrefix: string
  readonly #hmacKey: Buffer | undefined
  readonly #defaultTtlMs: number
  readonly #batchSize: number
  readonly #blockMs: number
  readonly #pendingIdleMs: number
  readonly #deadLetterMaxLength: number
  readonly #maxDeliveries: number
  #conn: Redis | undefined
  #ownPendingRead = false
  #closed = false
  /** Aborted by `close()`: ends a failed `pollOnce`'s wait. */
  readonly #closing = new AbortController()
  /** Stops the current `run`, if any. */
  #stopRun: (() => void) | undefined
  #running: Promise<void> | undefined
  #applied = 0
  #reclaimed = 0
  readonly #deadLettered: Partial<Record<DeadLetterReason, number>> = {}

  protected constructor(
    name: string,
    handler: MessageHandler<Store, Accepted>,
    defaults: { readonly stream: string; readonly group: string },
    args: readonly unknown[],
  ) {
    const o = new RedisOptionReader(name, argumentsOf(name, args, ['redis', 'store']), CONSUMER_OPTIONS)
    this.#name = name
    this.#handler = handler
    this.#redis = o.redis()
    const store = o.raw('store')
    if (store !== undefined && typeof (store as Record<string, unknown> | null)?.[handler.storeMethod] !== 'function') {
      o.fail('store', `must have ${handler.storeMethod}() (a RedisRevocationStore)`)
    }
    this.#store = store as Store | undefined
    this.#consumer = o.requiredString('consumer')
    this.#group = o.string('group', defaults.group)
    this.#stream = o.string('stream', defaults.stream)
    this.#keyPrefix = o.string('keyPrefix', REVOCATION_KEY_PREFIX)
    this.#hmacKey = o.signing()
    this.#defaultTtlMs = o.positiveMs('defaultTtlMs', DEFAULT_REVOCATION_TTL_MS)
    this.#batchSize = o.integer('batchSize', 50, 1)
    if (o.raw('blockMs') === 0)
      o.fail('blockMs', 'must be a positive integer (0, "block forever", would never let pollOnce return)')
    this.#blockMs = o.integer('blockMs', 5_000, 1)
    this.#pendingIdleMs = o.integer('pendingIdleMs', 30_000, 0)
    this.#deadLetterMaxLength = o.integer('deadLetterMaxLength', DEAD_LETTER_MAX_LENGTH, 1)
    this.#maxDeliveries = o.integer('maxDeliveries', 10, 1)
    // Last, once every other option is good (a consumer that fails to construct changes no store).
    // What it accepts goes straight into the store, past the store's own checks: both must hold the
    // same key. A store without one takes the consumer's (the safe direction).
    const agreement = shareStreamKey(store, this.#hmacKey)
    if (agreement === 'differs')
      o.fail('streamHmacKey', "differs from its store's streamHmacKey: give the store and its consumers the same key")
    if (agreement === 'consumer-has-none') {
      o.fail(
        'streamHmacKey',
        "is missing, but its store has one: give the consumer the store's key (without it the consumer would apply unsigned events to a store that requires signatures)",
      )
    }
  }

  /** Creates the group at id 0 (and the stream, MKSTREAM) if missing; a group that exists is left as it is. */
  async ensureGroup(): Promise<void> {
    const conn = await this.#connected(CONNECT_WAIT_MS)
    await this.#ensureGroupOn(conn)
  }

  /**
   * One pass: on the first, this consumer's own entries left pending by an earlier process; then
   * entries of any consumer idle longer than `pendingIdleMs` (XAUTOCLAIM); then new events,
   * blocking up to `blockMs` for them. Returns how many entries were handled, refused ones
   * included. An idle `while (running) await consumer.pollOnce()` costs one blocked read per
   * `blockMs`. Rejects when Redis fails, and never at once, so that a retrying
   * `while (running) await consumer.pollOnce().catch(…)` loop stays idle: while disconnected after
   * waiting up to `blockMs` for a connection, and after an error from Redis (e.g. WRONGTYPE) after
   * waiting min(`blockMs`, 1 s); `close()` cuts the wait short. A group that vanished (Redis
   * restarted empty) is created again.
   * Drive a consumer with either a `pollOnce` loop or `run`, not both at once: they share its connection.
   */
  async pollOnce(): Promise<number> {
    const conn = await this.#connected(this.#blockMs)
    try {
      try {
        return await this.#pass(conn, true)
      } catch (error) {
        if (!/NOGROUP/.test(errorMessage(error))) throw error
        await this.#ensureGroupOn(conn)
        return await this.#pass(conn, true)
      }
    } catch (error) {
      await pause(Math.min(this.#blockMs, FAILED_POLL_PAUSE_MS), this.#closing.signal)
      throw error
    }
  }

  /**
   * Consumes until `signal` aborts (or `close()`): the same passes as `pollOnce`, reclaiming idle
   * entries every `pendingIdleMs` at most. Aborting disconnects the blocked read, so it ends at
   * once. Redis errors do not end the loop; the first of a streak is reported with a coded
   * process warning.
   */
  async run(options: RunOptions = {}): Promise<void> {
    if (typeof options !== 'object' || options === null)
      throw new TypeError(`${this.#name}.run options must be an object`)
    for (const key of Object.keys(options)) {
      if (key === 'signal') continue
      throw new TypeError(
        `${this.#name}.run option "${key}" is not an option of run${key === 'blockMs' ? ' (blockMs is a constructor option)' : ''}`,
      )
    }
    const { signal } = options
    if (this.#closed) throw new Error(`${this.#name} is closed`)
    if (this.#running !== undefined) throw new Error(`${this.#name} is already running`)
    const stop = new AbortController()
    const conn = this.#connection()
    const onAbort = () => {
      stop.abort()
      conn.disconnect()
    }
    this.#stopRun = onAbort
    if (signal?.aborted === true) onAbort()
    signal?.addEventListener('abort', onAbort, { once: true })
    const loop = this.#runLoop(conn, stop.signal)
    this.#running = loop
    try {
      await loop
    } finally {
      signal?.removeEventListener('abort', onAbort)
      this.#stopRun = undefined
      this.#running = undefined
      conn.disconnect()
    }
  }

  /** Stops `run`, if any, and closes the consumer's own connection (not the client you passed). */
  async close(): Promise<void> {
    this.#closed = true
    this.#closing.abort()
    this.#stopRun?.()
    this.#conn?.disconnect()
    await this.#running
  }

  stats(): RedisRevocationConsumerStats {
    return { applied: this.#applied, deadLettered: { ...this.#deadLettered }, reclaimed: this.#reclaimed }
  }

  async #runLoop(conn: Redis, stop: AbortSignal): Promise<void> {
    let groupReady = false
    let lastReclaim = Number.NEGATIVE_INFINITY
    let failing = false
    while (!stop.aborted) {
      try {
        if (!(await whenReady(conn, stop, true))) {
          await pause(RETRY_PAUSE_MS * 5, stop)
          continue
        }
        if (!groupReady) {
          await this.#ensureGroupOn(conn)
          groupReady = true
        }
        const reclaim = performance.now() - lastReclaim >= this.#pendingIdleMs
        if (reclaim) lastReclaim = performance.now()
        await this.#pass(conn, reclaim)
        failing = false
      } catch (error) {
        if (stop.aborted) break
        const message = errorMessage(error)
        // The stream or group vanished (e.g. Redis restarted empty): create them again.
        if (/NOGROUP/.test(message)) groupReady = false
        if (!failing) {
          failing = true
          process.emitWarning(`${this.#name} ${this.#consumer}: ${message}; retrying`, {
            code: 'CARACAL_REVOCATION_CONSUMER_ERROR',
          })
        }
        await pause(RETRY_PAUSE_MS, stop)
      }
    }
  }

  /** The consumer's own connection, made on first use; blocking reads never hold up the caller's client. */
  #connection(): Redis {
    if (this.#conn === undefined) {
      this.#conn = ownConnection(this.#redis, {
        ...blockingReaderOptions(this.#blockMs),
        // CLIENT SETNAME takes no spaces or newlines: the name is for operators, so any other character goes.
        connectionName: `caracal-fastmcp:consumer:${this.#consumer.replace(/[^\w.:-]/g, '_')}`,
      })
      this.#conn.on('error', () => undefined)
    }
    return this.#conn
  }

  async #connected(waitMs: number): Promise<Redis> {
    if (this.#closed) throw new Error(`${this.#name} is closed`)
    const conn = this.#connection()
    if (conn.status !== 'ready' && !(await whenReady(conn, AbortSignal.timeout(waitMs), true))) {
      throw new Error(`${this.#name}: Redis is not connected`)
    }
    return conn
  }

  async #pass(conn: Redis, reclaim: boolean): Promise<number> {
    let handled = 0
    if (!this.#ownPendingRead) {
      handled += await this.#readOwnPending(conn)
      this.#ownPendingRead = true
    }
    if (reclaim) handled += await this.#reclaim(conn)
    return handled + (await this.#readNew(conn))
  }

  async #ensureGroupOn(conn: Redis): Promise<void> {
    try {
      // From the stream's start: a new group makes every retained event durable.
      await conn.call('XGROUP', 'CREATE', this.#stream, this.#group, '0', 'MKSTREAM')
    } catch (error) {
      if (!/BUSYGROUP/.test(errorMessage(error))) throw error
    }
  }

  /** One XREADGROUP page after `id` (`>`: entries never delivered), blocking only when asked to. */
  async #readGroup(conn: Redis, id: string, block: boolean): Promise<StreamEntry[]> {
    const wait = block ? ['BLOCK', this.#blockMs] : []
    const reply = await conn.call(
      'XREADGROUP',
      'GROUP',
      this.#group,
      this.#consumer,
      'COUNT',
      this.#batchSize,
      ...wait,
      'STREAMS',
      this.#stream,
      id,
    )
    const entries = parseStreamReply(reply)
    // New entries are on their first delivery; pending ones may have failed before.
    const deliveries = id === '>' ? undefined : await this.#deliveries(conn, entries)
    for (const entry of entries) await this.#handleCounted(conn, entry, deliveries)
    return entries
  }

  /** How often each of these pending entries (ours) has been delivered, from XPENDING's extended form. */
  async #deliveries(conn: Redis, entries: readonly StreamEntry[]): Promise<Map<string, number>> {
    const counts = new Map<string, number>()
    if (entries.length === 0) return counts
    const reply = await conn.call(
      'XPENDING',
      this.#stream,
      this.#group,
      entries[0]!.id,
      entries[entries.length - 1]!.id,
      entries.length,
      this.#consumer,
    )
    if (!Array.isArray(reply)) throw new Error('unexpected XPENDING reply')
    for (const row of reply as unknown[]) {
      if (Array.isArray(row) && typeof row[0] === 'string' && typeof row[3] === 'number') counts.set(row[0], row[3])
    }
    return counts
  }

  /**
   * Past `maxDeliveries` an entry gets one more try, and is dead-lettered only if that fails too,
   * and not because Redis itself is failing (out of memory, read-only, loading, disconnected):
   * an outage must not turn every revocation published during it into a dead letter.
   */
  async #handleCounted(conn: Redis, entry: StreamEntry, deliveries: Map<string, number> | undefined): Promise<void> {
    const count = deliveries?.get(entry.id) ?? 1
    if (count <= this.#maxDeliveries || entry.deleted) {
      await this.#handle(conn, entry)
      return
    }
    try {
      await this.#handle(conn, entry)
    } catch (error) {
      if (isTransient(error)) throw error
      const reason = errorMessage(error).slice(0, 200)
      await this.#deadLetter(conn, entry, 'delivery_limit', ['deliveries', String(count), 'error', reason])
    }
  }

  async #readNew(conn: Redis): Promise<number> {
    return (await this.#readGroup(conn, '>', true)).length
  }

  /** This consumer's own unacknowledged entries, e.g. from a run that crashed mid-batch. */
  async #readOwnPending(conn: Redis): Promise<number> {
    let after = '0-0'
    let handled = 0
    for (;;) {
      const entries = await this.#readGroup(conn, after, false)
      handled += entries.length
      const last = entries[entries.length - 1]
      if (last === undefined) return handled
      after = last.id
    }
  }

  /** XAUTOCLAIM: entries idle past `pendingIdleMs`, whoever held them, become ours and are handled. */
  async #reclaim(conn: Redis): Promise<number> {
    let start = '0-0'
    let handled = 0
    for (let page = 0; page < MAX_RECLAIM_PAGES; page++) {
      const reply = await conn.call(
        'XAUTOCLAIM',
        this.#stream,
        this.#group,
        this.#consumer,
        this.#pendingIdleMs,
        start,
        'COUNT',
        this.#batchSize,
      )
      if (!Array.isArray(reply) || typeof reply[0] !== 'string' || !Array.isArray(reply[1]))
        throw new Error('unexpected XAUTOCLAIM reply')
      const entries = (reply[1] as unknown[])
        .map((item) => parseStreamEntry(item))
        .filter((e): e is StreamEntry => e !== undefined)
      const deliveries = await this.#deliveries(conn, entries)
      for (const entry of entries) {
        await this.#handleCounted(conn, entry, deliveries)
        this.#reclaimed++
        handled++
      }
      start = reply[0]
      if (start === '0-0') break
    }
    return handled
  }

  /**
   * Accepted: applied locally first (soonest), then the durable writes, and only once Redis has
   * answered every one of them without an error, the ack. Not one MULTI: Redis runs the rest of a
   * transaction when one command fails at run time (a key of the wrong type), so the ack would go
   * through without the write. A failure leaves the entry pending for a reclaim; doing it twice
   * only rewrites the same keys (never shortening or lowering them).
   */
  async #handle(conn: Redis, entry: StreamEntry): Promise<void> {
    if (entry.deleted) {
      await conn.call('XACK', this.#stream, this.#group, entry.id)
      return
    }
    const check = this.#handler.check(entry.fields, this.#stream, this.#hmacKey)
    if (!check.ok) {
      await this.#deadLetter(conn, entry, check.reason)
      return
    }
    const ttlMs = check.ttlMs ?? this.#defaultTtlMs
    if (this.#store !== undefined) this.#handler.apply(this.#store, check.value, ttlMs)
    const commands = this.#handler.durable(this.#keyPrefix, check.value, ttlMs)
    if (isCluster(conn as unknown as RedisClient)) {
      // A Cluster pipeline must keep to one slot; each key goes to its own master.
      await Promise.all(commands.map(([command, ...args]) => conn.call(command, ...args)))
    } else {
      const writes = conn.pipeline()
      for (const [command, ...args] of commands) writes.call(command, ...args)
      checkExecReply(await writes.exec(), 'durable keys')
    }
    await conn.xack(this.#stream, this.#group, entry.id)
    this.#applied++
  }

  /** To `<stream>.dead` with its reason, then acknowledged — only once the dead letter is written (see `#handle`). */
  async #deadLetter(
    conn: Redis,
    entry: StreamEntry,
    reason: DeadLetterReason,
    extra: readonly string[] = [],
  ): Promise<void> {
    await conn.xadd(
      deadLetterStream(this.#stream),
      'MAXLEN',
      '~',
      this.#deadLetterMaxLength,
      '*',
      'source_id',
      entry.id,
      'reason',
      reason,
      ...extra,
      'payload',
      deadLetterPayload(entry),
    )
    await conn.xack(this.#stream, this.#group, entry.id)
    this.#deadLettered[reason] = (this.#deadLettered[reason] ?? 0) + 1
  }
}

/**
 * Group `resource-revocation` on `caracal.sessions.revoke`: each accepted event's anchors
 * (`session_id`, `sid`, `root_sid`, `agent_session_id`, `delegation_edge_id`) get a durable key
 * `<keyPrefix><anchor>` and are applied to the store. Dead-letter reasons: `invalid_signature`,
 * `missing_revocation_anchor`, `invalid_anchor` (an anchor starting with `delegation-epoch:`, whose
 * key would be a zone's epoch key), `malformed_event`.
 */
export class RedisRevocationConsumer extends RedisStreamGroupConsumer<RevocationMirror, readonly string[]> {
  /** The Caracal wiring: `new RedisRevocationConsumer(redis, store, { consumer: 'fastmcp-server-1' })`. */
  constructor(redis: RedisClient, store: RevocationMirror | undefined, options: RedisRevocationConsumerSettings)
  /** One options object: `{ redis, store, consumer, … }`. */
  constructor(options: RedisRevocationConsumerOptions)
  constructor(...args: unknown[]) {
    super('RedisRevocationConsumer', REVOCATIONS, { stream: REVOCATION_STREAM, group: DEFAULT_CONSUMER_GROUP }, args)
  }
}

/**
 * Group `resource-delegation-invalidation` on `caracal.delegations.invalidate`: each accepted
 * event (`zone_id`, decimal `epoch`; `event` and the rest ignored) raises the durable key
 * `<keyPrefix>delegation-epoch:<zone>` (atomic max, PX ttl) and the store's copy. Dead-letter
 * reasons: `invalid_signature`, `invalid_delegation_epoch`, `malformed_event`.
 */
export class RedisDelegationInvalidationConsumer extends RedisStreamGroupConsumer<
  DelegationEpochMirror,
  { readonly zoneId: string; readonly epoch: number }
> {
  /** The Caracal wiring: `new RedisDelegationInvalidationConsumer(redis, store, { consumer: 'fastmcp-server-1' })`. */
  constructor(
    redis: RedisClient,
    store: DelegationEpochMirror | undefined,
    options: RedisDelegationInvalidationConsumerSettings,
  )
  /** One options object: `{ redis, store, consumer, … }`. */
  constructor(options: RedisDelegationInvalidationConsumerOptions)
  constructor(...args: unknown[]) {
    super(
      'RedisDelegationInvalidationConsumer',
      DELEGATION_EPOCHS,
      { stream: DELEGATION_INVALIDATION_STREAM, group: DEFAULT_DELEGATION_GROUP },
      args,
    )
  }
}
