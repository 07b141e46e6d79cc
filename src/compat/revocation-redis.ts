/**
 * `caracal-fastmcp/compat/revocation-redis`: the surface of `@caracalai/revocation-redis` (Caracal's
 * Redis revocation store and its two stream consumers) over this library's Redis classes (README
 * "Several gateway instances, one Redis"). Change the import specifier; the wiring stays as it is:
 *
 *   const revocations = new RedisRevocationStore(redis, { failClosed: true })
 *   const consumer = new RedisRevocationConsumer(redis, revocations, { consumer: 'api-1', streamHmacKey })
 *   const epochs = new RedisDelegationInvalidationConsumer(redis, revocations, { consumer: 'api-1', streamHmacKey })
 *   await consumer.ensureGroup(); await epochs.ensureGroup()
 *   while (running) { await consumer.pollOnce(); await epochs.pollOnce() }
 *
 * Exported as Caracal exports them: `REVOCATION_STREAM`, `DELEGATION_INVALIDATION_STREAM`,
 * `DEFAULT_REVOCATION_TTL_MS`, `DEFAULT_DEAD_LETTER_MAX_LENGTH`, the types `RedisRevocationClient`,
 * `RedisStreamResult`, `RedisAutoClaimResult`, `RedisRevocationStoreOptions`,
 * `RedisRevocationConsumerOptions`, and the classes `RedisRevocationStore` (`(redis, options)`),
 * `RedisRevocationConsumer` and `RedisDelegationInvalidationConsumer` (`(redis, store, options)`,
 * with `ensureGroup()` and `pollOnce()`). Beyond Caracal's surface: `unavailableReason()` (for
 * `CaracalAuth`'s 503) and `close()` on the store, `close()` on the consumers. The same keys
 * (`caracal:revoked:sessions:<anchor>`, `…delegation-epoch:<zone>` raised with max semantics),
 * groups (`resource-revocation`, `resource-delegation-invalidation`), `_sig` check and dead letters
 * (`<stream>.dead` with `source_id`, `reason`, `payload`).
 *
 * Which engine serves a client. Caracal's classes take any object with `get`/`set`/`eval` (and
 * `xgroup`, `xreadgroup`, `xautoclaim`, `xack`, `xadd` for the consumers). This library's store is a
 * local mirror that follows the streams on connections of its own, opened with `duplicate()`, so:
 * - an ioredis client (`Redis` or `Cluster`: `duplicate`, `call`, `pipeline`, `multi`) gets the
 *   mirror (`RedisRevocationStore` of `caracal-fastmcp/redis`): a check is a memory lookup, never a
 *   round trip; the consumers block on a connection of their own, never on yours. With such a
 *   client the store also takes any option of this library's `RedisRevocationStore`.
 * - any other object (a test double, a wrapper) gets Caracal's design: a GET per check, a SET per
 *   revocation, the epoch script per raise, and consumers that call the client's own stream
 *   methods (a blocking `xreadgroup` on it) and apply events through the store's `markRevoked` /
 *   `markDelegationEpoch`, as Caracal's do. Only Caracal's three store options are taken then.
 *
 * Where it differs from Caracal's, on purpose (this library's stricter engine underneath):
 * - Mirror, not a GET per check: once loaded, `isRevoked` and `currentDelegationEpoch` answer
 *   synchronously (a boolean / a number; `await` works as before, `.then` on the answer does not).
 *   Checks made before the first load wait for it (up to 5 s) and answer with a promise.
 * - Fail closed on staleness, not per failed GET: while Redis cannot be heard the mirror answers
 *   from its copy for up to `maxStalenessMs` (5 s), then every anchor is revoked and every zone is
 *   at `Number.MAX_SAFE_INTEGER` (Caracal's fail-closed answers), and `unavailableReason()` says why
 *   (`CaracalAuth` then answers 503 `session_revoked` with `unavailable: true`, not 401). With
 *   `failClosed: false` it keeps serving the last known set with a warning, where Caracal's store
 *   rejected with the Redis error. The GET store fails closed per check, as Caracal's, and reports
 *   `unavailableReason()` while its last lookup failed (best effort: a lookup that succeeds
 *   meanwhile clears it, and that answer is then a plain 401).
 * - The mirror's `markRevoked` never shortens a revocation (the durable key's TTL only grows; the
 *   GET store writes with `SET … PX`, as Caracal's) and also announces it on
 *   `caracal-fastmcp.revocations`, so other instances learn it within milliseconds. Both refuse
 *   (reject with a `TypeError`) an anchor starting with `delegation-epoch:`, whose key would be a
 *   zone's epoch key, and a TTL that is not a positive number; the mirror also refuses an anchor
 *   with a newline (its signed announcement would be ambiguous).
 *   `markRevoked('')` and `markDelegationEpoch` with an empty zone or an epoch that is not a
 *   non-negative safe integer do nothing, as Caracal's.
 * - An epoch is read as decimal digits only (`"1e3"`, `" 7"`, `"0x10"` count as no epoch, 0; Caracal's
 *   `Number()` read them as 1000, 7, 16): the coordinator and both consumers only ever write digits.
 * - Consumers: `blockMs` defaults to 5000 and `0` (Caracal's default, "block forever") is refused
 *   with a `TypeError`, since `pollOnce()` must return; it returns 0 after `blockMs` without events.
 *   Events are checked by this library's rules: besides Caracal's dead-letter reasons
 *   (`invalid_signature`, `missing_revocation_anchor`, `invalid_delegation_epoch`) an anchor starting
 *   with `delegation-epoch:` is `invalid_anchor`, an entry with a field named twice, `=` or a newline
 *   in a field name or a newline in a value is `malformed_event`, an epoch event with an empty zone or
 *   a non-digit epoch is `invalid_delegation_epoch` (Caracal's acknowledged an empty zone and read an
 *   empty epoch as 0), and a `ttl_ms` field is ignored. On an ioredis client an event that fails on
 *   `maxDeliveries` (10) deliveries is dead-lettered as `delivery_limit`, a `pollOnce` that fails
 *   waits min(`blockMs`, 1 s) before it rejects, the consumer's own pending entries are read first
 *   on its first poll, and a poll that finds no group creates it (Caracal's rejected with
 *   `NOGROUP`). A consumer writes under its store's `keyPrefix` and `defaultTtlMs`, as
 *   Caracal's does through its store.
 * - A store given no key adopts the `streamHmacKey` of a consumer built on it and from then on
 *   ignores unsigned events on the streams it follows; a consumer whose key differs is a `TypeError`.
 * - Options are checked in the constructors: an unknown or malformed one is a `TypeError` naming it
 *   (Caracal's ignored it); `consumerName` and `hmacSecret` name the option meant (`consumer`,
 *   `streamHmacKey`).
 * - The store's and consumers' own connections close when your client ends (ioredis `end`, after
 *   `quit()` or `disconnect()`), so a process that quits its client exits; `close()` closes them
 *   earlier. Make new ones for a new client.
 */
import { DEFAULT_REVOCATION_TTL_MS as ENGINE_DEFAULT_TTL_MS } from '../revocation/in-memory-store.js'
import { errorMessage, type RedisClient } from '../revocation/redis-connection.js'
import {
  RedisDelegationInvalidationConsumer as EngineDelegationConsumer,
  RedisRevocationConsumer as EngineRevocationConsumer,
  type DelegationEpochMirror,
  type RevocationMirror,
} from '../revocation/redis-consumer.js'
import { RedisOptionReader } from '../revocation/redis-options.js'
import { RedisRevocationStore as MirrorStore, type RedisRevocationStoreSettings } from '../revocation/redis-store.js'
import {
  DEAD_LETTER_MAX_LENGTH,
  DEFAULT_CONSUMER_GROUP,
  DEFAULT_DELEGATION_GROUP,
  DELEGATION_INVALIDATION_STREAM as ENGINE_DELEGATION_STREAM,
  FAIL_CLOSED_EPOCH,
  MAX_EPOCH_SCRIPT,
  REVOCATION_KEY_PREFIX,
  REVOCATION_STREAM as ENGINE_REVOCATION_STREAM,
  checkDelegationEvent,
  checkRevocationEvent,
  deadLetterPayload,
  deadLetterStream,
  delegationEpochKey,
  isReservedAnchor,
  parseEpoch,
  parseStreamEntry,
  parseStreamReply,
  pxTtl,
  type StreamEntry,
} from '../revocation/redis-wire.js'
import type { RevocationStore } from '../revocation/types.js'

export const REVOCATION_STREAM: string = ENGINE_REVOCATION_STREAM
export const DELEGATION_INVALIDATION_STREAM: string = ENGINE_DELEGATION_STREAM
export const DEFAULT_REVOCATION_TTL_MS: number = ENGINE_DEFAULT_TTL_MS
export const DEFAULT_DEAD_LETTER_MAX_LENGTH: number = DEAD_LETTER_MAX_LENGTH

/** Caracal's structural client: what its store and consumers call. An ioredis client is one too. */
export interface RedisRevocationClient {
  get: (key: string) => Promise<string | null>
  set: (key: string, value: string, mode: 'PX', ttlMs: number) => Promise<unknown>
  eval: (script: string, keyCount: number, ...args: string[]) => Promise<unknown>
  xgroup?: (...args: string[]) => Promise<unknown>
  xreadgroup?: (...args: (string | number)[]) => Promise<RedisStreamResult | null>
  xautoclaim?: (...args: (string | number)[]) => Promise<RedisAutoClaimResult>
  xack?: (stream: string, group: string, id: string) => Promise<unknown>
  xadd?: (...args: (string | number)[]) => Promise<unknown>
}

export type RedisStreamResult = Array<[string, Array<[string, string[]]>]>
export type RedisAutoClaimResult = [string, Array<[string, string[]]>]

/**
 * Caracal's `keyPrefix` (`caracal:revoked:sessions:`), `defaultTtlMs` (24 h) and `failClosed`
 * (true); with an ioredis client, any option of this library's `RedisRevocationStore` as well.
 */
export type RedisRevocationStoreOptions = RedisRevocationStoreSettings

export interface RedisRevocationConsumerOptions {
  /** Default `caracal.sessions.revoke` / `caracal.delegations.invalidate`. */
  stream?: string
  /** Default `resource-revocation` / `resource-delegation-invalidation`. */
  group?: string
  /** This consumer's name in the group; unique per instance. */
  consumer: string
  /** Entries per read. Default 50. */
  batchSize?: number
  /** How long `pollOnce` blocks for new events. Default 5000; 0 is refused (see the module comment). */
  blockMs?: number
  /** How long an entry stays unacknowledged before this consumer takes it over. Default 30 000. */
  pendingIdleMs?: number
  /** Caracal's `STREAMS_HMAC_KEY` bytes (`Buffer.from(hex, 'hex')`); a string is taken as its UTF-8 bytes. */
  streamHmacKey?: Buffer | Uint8Array | string
  /** Default: true when `streamHmacKey` is set; true without a key is an error. */
  requireSignature?: boolean
  /** Approximate cap (`MAXLEN ~`) of `<stream>.dead`. Default 10 000. */
  deadLetterMaxLength?: number
  /** This library's: deliveries before an entry that keeps failing is dead-lettered (`delivery_limit`). Default 10; ioredis clients only. */
  maxDeliveries?: number
}

/** What a consumer needs to know of the store it was given. */
interface StoreInternals {
  readonly mirror: MirrorStore | undefined
  readonly keyPrefix: string
  readonly defaultTtlMs: number
}

const internals = new WeakMap<object, StoreInternals>()

/** The stores' common inside: this library's mirror, or the per-check store below. */
interface Backing {
  isRevoked(anchor: string): boolean | Promise<boolean>
  markRevoked(anchor: string, ttlMs?: number): Promise<void>
  currentDelegationEpoch(zoneId: string): number | Promise<number>
  markDelegationEpoch(zoneId: string, epoch: number, ttlMs?: number): Promise<void>
  unavailableReason(): string | undefined
  close(): Promise<void>
}

const CARACAL_STORE_OPTIONS = ['keyPrefix', 'defaultTtlMs', 'failClosed'] as const
const CONSUMER_OPTIONS = [
  'stream',
  'group',
  'consumer',
  'batchSize',
  'blockMs',
  'pendingIdleMs',
  'streamHmacKey',
  'requireSignature',
  'deadLetterMaxLength',
  'maxDeliveries',
] as const
/** Names from Caracal's Redis page that its package never read, with the option meant. */
const MISNAMED_OPTIONS: Readonly<Record<string, string>> = { consumerName: 'consumer', hmacSecret: 'streamHmacKey' }
/** Bounds one pass over the pending entries (as this library's consumers do), so new events are not starved. */
const MAX_PENDING_PAGES = 20

/** An ioredis `Redis` or `Cluster`: what this library's mirror and consumers need, `duplicate()` first. */
function isIoredis(value: unknown): value is RedisClient {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return (
    typeof v.duplicate === 'function' &&
    typeof v.call === 'function' &&
    typeof v.pipeline === 'function' &&
    typeof v.multi === 'function'
  )
}

function isStructuralClient(value: unknown): value is RedisRevocationClient {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return typeof v.get === 'function' && typeof v.set === 'function'
}

/** Stops `close` when the client ends (ioredis `end`): our connections must not outlive yours. */
function closeWithClient(redis: RedisClient, close: () => Promise<void>): () => void {
  const onEnd = () => {
    close().catch(() => undefined)
  }
  redis.once('end', onEnd)
  return () => {
    redis.off('end', onEnd)
  }
}

export class RedisRevocationStore implements RevocationStore {
  readonly #backing: Backing
  #detach: () => void = () => undefined

  constructor(redis: RedisRevocationClient | RedisClient, opts: RedisRevocationStoreOptions = {}) {
    if (typeof opts !== 'object' || opts === null || Array.isArray(opts))
      throw new TypeError('RedisRevocationStore: its last argument must be an options object')
    let keyPrefix: string
    let defaultTtlMs: number
    let mirror: MirrorStore | undefined
    if (isIoredis(redis)) {
      // The mirror itself, not a wrapper around it: a check costs one call more than the engine's.
      const store = new MirrorStore(redis, opts)
      mirror = store
      this.#backing = store
      this.#detach = closeWithClient(redis, () => store.close())
      // Read back after the mirror validated them: the consumers write under the same ones.
      keyPrefix = opts.keyPrefix ?? REVOCATION_KEY_PREFIX
      defaultTtlMs = opts.defaultTtlMs ?? DEFAULT_REVOCATION_TTL_MS
    } else if (isStructuralClient(redis)) {
      const o = new RedisOptionReader('RedisRevocationStore', opts, CARACAL_STORE_OPTIONS, {
        unknown:
          'an option of RedisRevocationStore on a client without duplicate() (the options of the mirror need an ioredis client)',
      })
      keyPrefix = o.string('keyPrefix', REVOCATION_KEY_PREFIX)
      defaultTtlMs = o.positiveMs('defaultTtlMs', DEFAULT_REVOCATION_TTL_MS)
      this.#backing = new PerCheckStore(redis, keyPrefix, defaultTtlMs, o.boolean('failClosed', true))
    } else {
      throw new TypeError(
        'RedisRevocationStore needs a Redis client: an ioredis Redis or Cluster, or an object with get() and set()',
      )
    }
    internals.set(this, { mirror, keyPrefix, defaultTtlMs })
  }

  isRevoked(anchorId: string): boolean | Promise<boolean> {
    if (anchorId === '') return false
    return this.#backing.isRevoked(anchorId)
  }

  async markRevoked(anchorId: string, ttlMs?: number): Promise<void> {
    if (anchorId === '') return
    await this.#backing.markRevoked(anchorId, ttlMs)
  }

  currentDelegationEpoch(zoneId: string): number | Promise<number> {
    return this.#backing.currentDelegationEpoch(zoneId)
  }

  async markDelegationEpoch(zoneId: string, epoch: number, ttlMs?: number): Promise<void> {
    if (zoneId === '' || !Number.isSafeInteger(epoch) || epoch < 0) return
    await this.#backing.markDelegationEpoch(zoneId, epoch, ttlMs)
  }

  /** Why the answers cannot be trusted right now (they fail closed meanwhile), or undefined. `CaracalAuth` turns it into a 503. */
  unavailableReason(): string | undefined {
    return this.#backing.unavailableReason()
  }

  /** Closes the store's own connections (not your client). Also done when your client ends. */
  close(): Promise<void> {
    this.#detach()
    return this.#backing.close()
  }
}

/**
 * Caracal's design for clients that cannot lend a connection of their own: one GET per check,
 * failing closed per failed lookup (unless `failClosed: false`, then the error is thrown).
 */
class PerCheckStore implements Backing {
  readonly #redis: RedisRevocationClient
  readonly #keyPrefix: string
  readonly #defaultTtlMs: number
  readonly #failClosed: boolean
  /** Set while the last lookup failed: the fail-closed answers are then an outage, not a revocation. */
  #failure: string | undefined

  constructor(redis: RedisRevocationClient, keyPrefix: string, defaultTtlMs: number, failClosed: boolean) {
    this.#redis = redis
    this.#keyPrefix = keyPrefix
    this.#defaultTtlMs = defaultTtlMs
    this.#failClosed = failClosed
  }

  async isRevoked(anchor: string): Promise<boolean> {
    try {
      const value = await this.#redis.get(this.#keyPrefix + anchor)
      this.#failure = undefined
      return value !== null
    } catch (error) {
      this.#failure = `revocation lookup failed: ${errorMessage(error)}`
      if (this.#failClosed) return true
      throw error
    }
  }

  async markRevoked(anchor: string, ttlMs: number = this.#defaultTtlMs): Promise<void> {
    if (typeof anchor !== 'string') throw new TypeError('anchor must be a non-empty string')
    if (isReservedAnchor(anchor))
      throw new TypeError(
        `anchor must not start with "delegation-epoch:": its key would be a zone's delegation epoch key`,
      )
    if (!(Number.isFinite(ttlMs) && ttlMs > 0)) throw new TypeError('ttlMs must be a positive number')
    await this.#redis.set(this.#keyPrefix + anchor, '1', 'PX', pxTtl(ttlMs))
  }

  async currentDelegationEpoch(zoneId: string): Promise<number> {
    try {
      const value = await this.#redis.get(delegationEpochKey(this.#keyPrefix, zoneId))
      this.#failure = undefined
      return parseEpoch(value) ?? 0
    } catch (error) {
      this.#failure = `delegation epoch lookup failed: ${errorMessage(error)}`
      if (this.#failClosed) return FAIL_CLOSED_EPOCH
      throw error
    }
  }

  async markDelegationEpoch(zoneId: string, epoch: number, ttlMs: number = this.#defaultTtlMs): Promise<void> {
    if (!(Number.isFinite(ttlMs) && ttlMs > 0)) throw new TypeError('ttlMs must be a positive number')
    await this.#redis.eval(
      MAX_EPOCH_SCRIPT,
      1,
      delegationEpochKey(this.#keyPrefix, zoneId),
      String(epoch),
      String(pxTtl(ttlMs)),
    )
  }

  unavailableReason(): string | undefined {
    return this.#failClosed ? this.#failure : undefined
  }

  close(): Promise<void> {
    return Promise.resolve()
  }
}

type Kind = 'revocations' | 'delegations'

/** What both consumers are, whichever engine serves them. */
interface ConsumerBacking {
  ensureGroup(): Promise<void>
  pollOnce(): Promise<number>
  close(): Promise<void>
}

interface ConsumerSettings {
  readonly stream: string
  readonly group: string
  readonly consumer: string
  readonly batchSize: number
  readonly blockMs: number
  readonly pendingIdleMs: number
  readonly hmacKey: Buffer | undefined
  readonly deadLetterMaxLength: number
}

/** A store Caracal's consumers can apply to: theirs calls `markRevoked` / `markDelegationEpoch`. */
type ApplyTarget = Pick<RevocationStore, 'markRevoked' | 'markDelegationEpoch'>

/** A promise of a store that is not ours is only ever settled, never left to reject unhandled. */
function settle(result: unknown): void {
  if (typeof (result as Promise<unknown> | undefined)?.then === 'function')
    (result as Promise<unknown>).then(undefined, () => undefined)
}

function consumerFor(owner: string, kind: Kind, redis: unknown, store: unknown, opts: unknown): ConsumerBacking {
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts))
    throw new TypeError(`${owner} needs an options object`)
  for (const [name, meant] of Object.entries(MISNAMED_OPTIONS)) {
    if (Object.hasOwn(opts, name))
      throw new TypeError(`${owner} option "${name}" is not an option of ${owner}: the option is "${meant}"`)
  }
  for (const name of ['keyPrefix', 'defaultTtlMs']) {
    if (Object.hasOwn(opts, name)) {
      throw new TypeError(
        `${owner} option "${name}" is not an option of ${owner}: the consumer writes under its store's ${name}, as Caracal's does`,
      )
    }
  }
  const o = new RedisOptionReader(owner, opts, CONSUMER_OPTIONS)
  const method = kind === 'revocations' ? 'markRevoked' : 'markDelegationEpoch'
  if (typeof (store as Record<string, unknown> | null)?.[method] !== 'function')
    o.fail('store', `must have ${method}() (a RedisRevocationStore)`)
  const target = store as ApplyTarget
  const hmacKey = o.signing()
  const settings: ConsumerSettings = {
    stream: o.string('stream', kind === 'revocations' ? REVOCATION_STREAM : DELEGATION_INVALIDATION_STREAM),
    group: o.string('group', kind === 'revocations' ? DEFAULT_CONSUMER_GROUP : DEFAULT_DELEGATION_GROUP),
    consumer: o.requiredString('consumer'),
    batchSize: o.integer('batchSize', 50, 1),
    blockMs: o.raw('blockMs') === 0 ? o.fail('blockMs', blockForeverRefused) : o.integer('blockMs', 5_000, 1),
    pendingIdleMs: o.integer('pendingIdleMs', 30_000, 0),
    hmacKey,
    deadLetterMaxLength: o.integer('deadLetterMaxLength', DEFAULT_DEAD_LETTER_MAX_LENGTH, 1),
  }
  const maxDeliveries = o.integer('maxDeliveries', 10, 1)
  if (isIoredis(redis)) return engineConsumer(kind, redis, target, settings, maxDeliveries)
  if (!isStructuralClient(redis)) {
    throw new TypeError(`${owner} needs a Redis client: an ioredis Redis or Cluster, or an object with get() and set()`)
  }
  if (o.raw('maxDeliveries') !== undefined)
    o.fail(
      'maxDeliveries',
      'needs an ioredis client (a client without duplicate() has no XPENDING to count deliveries)',
    )
  return new StructuralConsumer(kind, redis, target, settings)
}

const blockForeverRefused = 'must be a positive integer (0, "block forever", would never let pollOnce return)'

/** This library's consumer, on a connection of its own, applying to the store's mirror (or through its methods). */
function engineConsumer(
  kind: Kind,
  redis: RedisClient,
  store: ApplyTarget,
  s: ConsumerSettings,
  maxDeliveries: number,
): ConsumerBacking {
  const known = internals.get(store)
  // A store that is not a mirror learns each event through its own methods, without a TTL, as
  // Caracal's consumers call it.
  const mirror: RevocationMirror & DelegationEpochMirror = known?.mirror ?? {
    applyRevocation: (anchor) => settle(store.markRevoked(anchor)),
    applyDelegationEpoch: (zoneId, epoch) => settle(store.markDelegationEpoch?.(zoneId, epoch)),
  }
  const options = {
    consumer: s.consumer,
    group: s.group,
    stream: s.stream,
    batchSize: s.batchSize,
    blockMs: s.blockMs,
    pendingIdleMs: s.pendingIdleMs,
    streamHmacKey: s.hmacKey,
    deadLetterMaxLength: s.deadLetterMaxLength,
    maxDeliveries,
    keyPrefix: known?.keyPrefix ?? REVOCATION_KEY_PREFIX,
    defaultTtlMs: known?.defaultTtlMs ?? DEFAULT_REVOCATION_TTL_MS,
  }
  // The engine's classes have the compat classes' names, so its messages name the right one.
  const consumer =
    kind === 'revocations'
      ? new EngineRevocationConsumer(redis, mirror, options)
      : new EngineDelegationConsumer(redis, mirror, options)
  const detach = closeWithClient(redis, () => consumer.close())
  return {
    ensureGroup: () => consumer.ensureGroup(),
    pollOnce: () => consumer.pollOnce(),
    close: () => {
      detach()
      return consumer.close()
    },
  }
}

/**
 * Caracal's consumer design on a structural client: its stream methods, the events checked by this
 * library's rules (`checkRevocationEvent` / `checkDelegationEvent`), accepted ones applied through
 * the store, refused ones dead-lettered, each acknowledged only once that succeeded.
 */
class StructuralConsumer implements ConsumerBacking {
  readonly #kind: Kind
  readonly #redis: RedisRevocationClient
  readonly #store: ApplyTarget
  readonly #s: ConsumerSettings

  constructor(kind: Kind, redis: RedisRevocationClient, store: ApplyTarget, settings: ConsumerSettings) {
    this.#kind = kind
    this.#redis = redis
    this.#store = store
    this.#s = settings
  }

  async ensureGroup(): Promise<void> {
    const redis = this.#redis
    if (redis.xgroup === undefined) throw new Error('redis client does not support xgroup')
    try {
      // From the stream's start: a new group makes every retained event durable.
      await redis.xgroup('CREATE', this.#s.stream, this.#s.group, '0', 'MKSTREAM')
    } catch (error) {
      if (!errorMessage(error).includes('BUSYGROUP')) throw error
    }
  }

  async pollOnce(): Promise<number> {
    const redis = this.#redis
    if (redis.xreadgroup === undefined) throw new Error('redis client does not support xreadgroup')
    if (redis.xautoclaim === undefined) throw new Error('redis client does not support xautoclaim')
    let handled = await this.#replayPending()
    const s = this.#s
    const rows = await redis.xreadgroup(
      'GROUP',
      s.group,
      s.consumer,
      'COUNT',
      s.batchSize,
      'BLOCK',
      s.blockMs,
      'STREAMS',
      s.stream,
      '>',
    )
    for (const entry of parseStreamReply(rows)) {
      await this.#handle(entry)
      handled++
    }
    return handled
  }

  close(): Promise<void> {
    return Promise.resolve()
  }

  /** XAUTOCLAIM pages of entries idle past `pendingIdleMs`, until the terminal cursor or an empty page. */
  async #replayPending(): Promise<number> {
    const redis = this.#redis
    const s = this.#s
    let handled = 0
    let start = '0-0'
    for (let page = 0; page < MAX_PENDING_PAGES; page++) {
      const reply: unknown = await redis.xautoclaim?.(
        s.stream,
        s.group,
        s.consumer,
        s.pendingIdleMs,
        start,
        'COUNT',
        s.batchSize,
      )
      if (!Array.isArray(reply) || !Array.isArray(reply[1])) throw new Error('unexpected XAUTOCLAIM reply')
      const entries = (reply[1] as unknown[])
        .map((item) => parseStreamEntry(item))
        .filter((e): e is StreamEntry => e !== undefined)
      for (const entry of entries) {
        await this.#handle(entry)
        handled++
      }
      const next: unknown = reply[0]
      if (entries.length === 0 || typeof next !== 'string' || next === '' || next === '0-0') break
      start = next
    }
    return handled
  }

  async #handle(entry: StreamEntry): Promise<void> {
    if (entry.deleted) {
      await this.#ack(entry.id)
      return
    }
    const s = this.#s
    if (this.#kind === 'revocations') {
      const check = checkRevocationEvent(entry.fields, s.stream, s.hmacKey)
      if (!check.ok) return this.#deadLetter(entry, check.reason)
      for (const anchor of check.anchors) await this.#store.markRevoked(anchor)
    } else {
      const check = checkDelegationEvent(entry.fields, s.stream, s.hmacKey)
      if (!check.ok) return this.#deadLetter(entry, check.reason)
      await this.#store.markDelegationEpoch?.(check.zoneId, check.epoch)
    }
    await this.#ack(entry.id)
  }

  /** To `<stream>.dead`, then acknowledged: an entry whose dead letter failed stays pending. */
  async #deadLetter(entry: StreamEntry, reason: string): Promise<void> {
    const redis = this.#redis
    if (redis.xadd === undefined) throw new Error('redis client does not support xadd')
    await redis.xadd(
      deadLetterStream(this.#s.stream),
      'MAXLEN',
      '~',
      this.#s.deadLetterMaxLength,
      '*',
      'source_id',
      entry.id,
      'reason',
      reason,
      'payload',
      deadLetterPayload(entry),
    )
    await this.#ack(entry.id)
  }

  async #ack(id: string): Promise<void> {
    const redis = this.#redis
    if (redis.xack === undefined) throw new Error('redis client does not support xack')
    await redis.xack(this.#s.stream, this.#s.group, id)
  }
}

/** What both consumers are: one backing (ours on ioredis, Caracal's design on a structural client). */
abstract class CompatConsumer {
  readonly #backing: ConsumerBacking

  protected constructor(
    name: string,
    role: 'revocations' | 'delegations',
    redis: RedisRevocationClient | RedisClient,
    store: RedisRevocationStore | ApplyTarget,
    opts: RedisRevocationConsumerOptions,
  ) {
    this.#backing = consumerFor(name, role, redis, store, opts)
  }

  /** Creates the group at id 0 (and the stream, MKSTREAM) if missing; an existing group is left as it is. */
  ensureGroup(): Promise<void> {
    return this.#backing.ensureGroup()
  }

  /** Entries idle past `pendingIdleMs` first, then new ones, waiting up to `blockMs`; how many were handled. */
  pollOnce(): Promise<number> {
    return this.#backing.pollOnce()
  }

  /** Closes the consumer's own connection (not your client); a blocked `pollOnce` ends. Also done when your client ends. */
  close(): Promise<void> {
    return this.#backing.close()
  }
}

export class RedisRevocationConsumer extends CompatConsumer {
  constructor(
    redis: RedisRevocationClient | RedisClient,
    store: RedisRevocationStore | ApplyTarget,
    opts: RedisRevocationConsumerOptions,
  ) {
    super('RedisRevocationConsumer', 'revocations', redis, store, opts)
  }
}

export class RedisDelegationInvalidationConsumer extends CompatConsumer {
  constructor(
    redis: RedisRevocationClient | RedisClient,
    store: RedisRevocationStore | ApplyTarget,
    opts: RedisRevocationConsumerOptions,
  ) {
    super('RedisDelegationInvalidationConsumer', 'delegations', redis, store, opts)
  }
}
