/**
 * `RedisRevocationConsumer`: the one reader per consumer group that makes revocations durable
 * (docs/architecture.md "Revocation"). It reads the stream in a group, verifies `_sig` when a key is configured (and then
 * requires it), writes the durable keys, acknowledges, dead-letters what it cannot use, and
 * reclaims entries left pending by a consumer that died. What it accepts it applies to its
 * store's local set directly and never publishes again: publishing would loop.
 */
import type { Redis } from 'ioredis'
import { DEFAULT_REVOCATION_TTL_MS } from './in-memory-store.js'
import { blockingReaderOptions, checkExecReply, errorMessage, pause, whenReady } from './redis-connection.js'
import {
  DEAD_LETTER_MAX_LENGTH, DEFAULT_CONSUMER_GROUP, DURABLE_KEY_SCRIPT, REVOCATION_KEY_PREFIX, REVOCATION_STREAM,
  checkRevocationEvent, deadLetterPayload, deadLetterStream, hmacKeyBytes, parseStreamEntry, parseStreamReply,
  type RejectionReason, type StreamEntry,
} from './redis-wire.js'

/** What the consumer needs of a store: a local apply that does not publish. */
export interface RevocationMirror {
  applyRevocation(anchor: string, ttlMs: number): void
}

export interface RedisRevocationConsumerOptions {
  /** An ioredis client; stays yours. `pollOnce` runs on it; `run` opens its own with `duplicate()`. */
  readonly redis: Redis
  /** Where accepted revocations are applied at once (e.g. a RedisRevocationStore). Optional. */
  readonly store?: RevocationMirror
  /** This consumer's name in the group; unique per process. */
  readonly consumer: string
  /** Default `resource-revocation`. */
  readonly group?: string
  readonly stream?: string
  readonly keyPrefix?: string
  /** When set, every event must carry a valid `_sig`; the others are dead-lettered. */
  readonly streamHmacKey?: string | Uint8Array
  /** TTL of durable keys written for events that carry none. Default 24 h. */
  readonly defaultTtlMs?: number
  /** Entries per read. Default 50. */
  readonly batchSize?: number
  /** How long an entry must sit unacknowledged before another consumer takes it. Default 30 s. */
  readonly pendingIdleMs?: number
  /** Approximate cap of `<stream>.dead`. Default 10 000. */
  readonly deadLetterMaxLength?: number
}

export interface RedisRevocationConsumerStats {
  readonly applied: number
  readonly deadLettered: Readonly<Partial<Record<RejectionReason, number>>>
  /** Entries taken over from idle consumers (this one's own included, after a restart). */
  readonly reclaimed: number
}

export interface RunOptions {
  /** Stops the loop; an aborted signal ends `run` promptly, even while a read is blocked. */
  readonly signal?: AbortSignal
  /** How long one read blocks. Default 1000. */
  readonly blockMs?: number
}

const RETRY_PAUSE_MS = 200
/** Bounds one reclaim pass, so a huge backlog cannot starve new events. */
const MAX_RECLAIM_PAGES = 20

export class RedisRevocationConsumer {
  readonly #redis: Redis
  readonly #store: RevocationMirror | undefined
  readonly #consumer: string
  readonly #group: string
  readonly #stream: string
  readonly #keyPrefix: string
  readonly #hmacKey: Buffer | undefined
  readonly #defaultTtlMs: number
  readonly #batchSize: number
  readonly #pendingIdleMs: number
  readonly #deadLetterMaxLength: number
  #applied = 0
  #reclaimed = 0
  readonly #deadLettered: Partial<Record<RejectionReason, number>> = {}

  constructor(options: RedisRevocationConsumerOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
    const {
      redis, store, consumer, group = DEFAULT_CONSUMER_GROUP, stream = REVOCATION_STREAM, keyPrefix = REVOCATION_KEY_PREFIX,
      streamHmacKey, defaultTtlMs = DEFAULT_REVOCATION_TTL_MS, batchSize = 50, pendingIdleMs = 30_000,
      deadLetterMaxLength = DEAD_LETTER_MAX_LENGTH,
    } = options
    if (typeof redis !== 'object' || redis === null || typeof redis.duplicate !== 'function') throw new TypeError('redis must be an ioredis client')
    if (store !== undefined && typeof store?.applyRevocation !== 'function') throw new TypeError('store must have applyRevocation(anchor, ttlMs)')
    if (typeof consumer !== 'string' || consumer === '') throw new TypeError('consumer must be a non-empty string')
    if (typeof group !== 'string' || group === '') throw new TypeError('group must be a non-empty string')
    if (typeof stream !== 'string' || stream === '') throw new TypeError('stream must be a non-empty string')
    if (typeof keyPrefix !== 'string' || keyPrefix === '') throw new TypeError('keyPrefix must be a non-empty string')
    if (!(Number.isFinite(defaultTtlMs) && defaultTtlMs > 0)) throw new TypeError('defaultTtlMs must be a positive number')
    if (!(Number.isSafeInteger(batchSize) && batchSize > 0)) throw new TypeError('batchSize must be a positive integer')
    if (!(Number.isSafeInteger(pendingIdleMs) && pendingIdleMs >= 0)) throw new TypeError('pendingIdleMs must be a non-negative integer')
    if (!(Number.isSafeInteger(deadLetterMaxLength) && deadLetterMaxLength > 0)) throw new TypeError('deadLetterMaxLength must be a positive integer')
    this.#redis = redis
    this.#store = store
    this.#consumer = consumer
    this.#group = group
    this.#stream = stream
    this.#keyPrefix = keyPrefix
    this.#hmacKey = hmacKeyBytes(streamHmacKey)
    this.#defaultTtlMs = defaultTtlMs
    this.#batchSize = batchSize
    this.#pendingIdleMs = pendingIdleMs
    this.#deadLetterMaxLength = deadLetterMaxLength
  }

  /** Creates the group (and the stream) if missing; a group that exists is left as it is. */
  async ensureGroup(): Promise<void> {
    await this.#ensureGroupOn(this.#redis)
  }

  /**
   * One pass on the caller's client: take over entries idle longer than `pendingIdleMs`, then read
   * what is new (without blocking unless `blockMs` is given — blocking holds the client's
   * connection). Returns how many entries were handled.
   */
  async pollOnce(options: { readonly blockMs?: number } = {}): Promise<number> {
    const reclaimed = await this.#reclaim(this.#redis)
    return reclaimed + (await this.#readNew(this.#redis, options.blockMs))
  }

  /**
   * Consumes until `signal` aborts, on a connection of its own: first its own entries left
   * pending by an earlier run, then new ones, reclaiming idle entries of other consumers every
   * `pendingIdleMs` at most. Redis errors do not end the loop; the first of a streak is reported
   * with a coded process warning.
   */
  async run(options: RunOptions = {}): Promise<void> {
    const { signal, blockMs = 1_000 } = options
    if (!(Number.isSafeInteger(blockMs) && blockMs > 0)) throw new TypeError('blockMs must be a positive integer')
    const stop = new AbortController()
    const onAbort = () => {
      stop.abort()
      conn.disconnect()
    }
    const conn = this.#redis.duplicate(blockingReaderOptions(blockMs))
    conn.on('error', () => undefined)
    if (signal?.aborted === true) onAbort()
    signal?.addEventListener('abort', onAbort, { once: true })
    let groupReady = false
    let ownPendingRead = false
    let lastReclaim = Number.NEGATIVE_INFINITY
    let failing = false
    try {
      while (!stop.signal.aborted) {
        try {
          if (!(await whenReady(conn, stop.signal, true))) {
            await pause(RETRY_PAUSE_MS * 5, stop.signal)
            continue
          }
          if (!groupReady) {
            await this.#ensureGroupOn(conn)
            groupReady = true
          }
          if (!ownPendingRead) {
            await this.#readOwnPending(conn)
            ownPendingRead = true
          }
          if (performance.now() - lastReclaim >= this.#pendingIdleMs) {
            await this.#reclaim(conn)
            lastReclaim = performance.now()
          }
          await this.#readNew(conn, blockMs)
          failing = false
        } catch (error) {
          if (stop.signal.aborted) break
          const message = errorMessage(error)
          // The stream or group vanished (e.g. Redis restarted empty): create them again.
          if (/NOGROUP/.test(message)) groupReady = false
          if (!failing) {
            failing = true
            process.emitWarning(`RedisRevocationConsumer ${this.#consumer}: ${message}; retrying`, { code: 'CARACAL_REVOCATION_CONSUMER_ERROR' })
          }
          await pause(RETRY_PAUSE_MS, stop.signal)
        }
      }
    } finally {
      signal?.removeEventListener('abort', onAbort)
      conn.disconnect()
    }
  }

  stats(): RedisRevocationConsumerStats {
    return { applied: this.#applied, deadLettered: { ...this.#deadLettered }, reclaimed: this.#reclaimed }
  }

  async #ensureGroupOn(conn: Redis): Promise<void> {
    try {
      // From the stream's start: a new group makes every retained event durable.
      await conn.call('XGROUP', 'CREATE', this.#stream, this.#group, '0', 'MKSTREAM')
    } catch (error) {
      if (!/BUSYGROUP/.test(errorMessage(error))) throw error
    }
  }

  async #readNew(conn: Redis, blockMs: number | undefined): Promise<number> {
    const block = blockMs === undefined ? [] : ['BLOCK', blockMs]
    const reply = await conn.call('XREADGROUP', 'GROUP', this.#group, this.#consumer, 'COUNT', this.#batchSize, ...block, 'STREAMS', this.#stream, '>')
    const entries = parseStreamReply(reply)
    for (const entry of entries) await this.#handle(conn, entry)
    return entries.length
  }

  /** This consumer's own unacknowledged entries, e.g. from a run that crashed mid-batch. */
  async #readOwnPending(conn: Redis): Promise<void> {
    let after = '0-0'
    for (;;) {
      const reply = await conn.call('XREADGROUP', 'GROUP', this.#group, this.#consumer, 'COUNT', this.#batchSize, 'STREAMS', this.#stream, after)
      const entries = parseStreamReply(reply)
      for (const entry of entries) await this.#handle(conn, entry)
      const last = entries[entries.length - 1]
      if (last === undefined) return
      after = last.id
    }
  }

  /** XAUTOCLAIM: entries idle past `pendingIdleMs`, whoever held them, become ours and are handled. */
  async #reclaim(conn: Redis): Promise<number> {
    let start = '0-0'
    let handled = 0
    for (let page = 0; page < MAX_RECLAIM_PAGES; page++) {
      const reply = await conn.call('XAUTOCLAIM', this.#stream, this.#group, this.#consumer, this.#pendingIdleMs, start, 'COUNT', this.#batchSize)
      if (!Array.isArray(reply) || typeof reply[0] !== 'string' || !Array.isArray(reply[1])) throw new Error('unexpected XAUTOCLAIM reply')
      for (const item of reply[1] as unknown[]) {
        const entry = parseStreamEntry(item)
        if (entry === undefined) continue
        await this.#handle(conn, entry)
        this.#reclaimed++
        handled++
      }
      start = reply[0]
      if (start === '0-0') break
    }
    return handled
  }

  /**
   * Accepted: applied locally first (soonest), then the durable keys and the ack in one MULTI, so an
   * entry is never acknowledged without its keys. A failure leaves it pending for a reclaim; doing
   * it twice only rewrites the same keys.
   */
  async #handle(conn: Redis, entry: StreamEntry): Promise<void> {
    if (entry.deleted) {
      await conn.call('XACK', this.#stream, this.#group, entry.id)
      return
    }
    const check = checkRevocationEvent(entry.fields, this.#stream, this.#hmacKey)
    if (!check.ok) {
      const reply = await conn.multi()
        .xadd(deadLetterStream(this.#stream), 'MAXLEN', '~', this.#deadLetterMaxLength, '*',
          'source_id', entry.id, 'reason', check.reason, 'payload', deadLetterPayload(entry))
        .xack(this.#stream, this.#group, entry.id)
        .exec()
      checkExecReply(reply, 'dead letter')
      this.#deadLettered[check.reason] = (this.#deadLettered[check.reason] ?? 0) + 1
      return
    }
    const ttlMs = check.ttlMs ?? this.#defaultTtlMs
    for (const anchor of check.anchors) this.#store?.applyRevocation(anchor, ttlMs)
    const transaction = conn.multi()
    for (const anchor of check.anchors) transaction.eval(DURABLE_KEY_SCRIPT, 1, this.#keyPrefix + anchor, ttlMs)
    const reply = await transaction.xack(this.#stream, this.#group, entry.id).exec()
    checkExecReply(reply, 'durable keys')
    this.#applied++
  }
}
