/**
 * Single-use mandates across gateway instances, as Caracal's own gateway records them: one key
 * `seen:jti:<jti>` per presented resource mandate, `SET … NX PX <ms until exp>` — the first SET
 * wins, every later presentation on any instance sharing the Redis finds the key. Calls made in the
 * same turn of the event loop go out together, so a gateway at full load pays no extra round trip.
 * The batch closes in `setImmediate`, not a microtask: node:http runs each socket's request in a
 * callback of its own and drains the microtasks after each, so a microtask batch held one command.
 *
 * On one Redis (not a Cluster) the batch is one EVALSHA of a script doing those SETs, not a
 * pipeline of one SET per mandate: the keys, values and expiries are the same, and the client's
 * work per mandate (a command object, its promise, its reply) is paid once per batch — measured
 * with ioredis, ~14–18 µs of client CPU per mandate in a pipeline of 12 against ~7–10 µs in the
 * script (bench/README.md "Single use with Redis"). A Redis that refuses scripts (an ACL without
 * EVALSHA/EVAL, a proxy without scripting) gets the pipeline from then on. A Cluster gets one SET
 * per key: its pipeline must keep to one slot.
 */
import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import { errorMessage, whenReady, type RedisClient } from '../revocation/redis-connection.js'
import { RedisOptionReader, argumentsOf } from '../revocation/redis-options.js'
import { pxTtl } from '../revocation/redis-wire.js'
import type { ReplayStore } from './types.js'

export const REPLAY_KEY_PREFIX = 'seen:jti:'

export interface RedisReplayStoreOptions {
  /** An ioredis client (or Cluster); stays yours. May also be given as the first argument. */
  readonly redis: RedisClient
  /**
   * When Redis cannot answer: false (the default, as Caracal's gateway) refuses the mandate with
   * `token_replayed` marked `unavailable` (HTTP 503); true lets it through with a coded warning
   * (`CARACAL_REPLAY_UNAVAILABLE`), trading replay protection for availability.
   */
  readonly failOpen?: boolean
  /** Default `seen:jti:` (Caracal's gateway's). */
  readonly keyPrefix?: string
  /** Longest wait for Redis's answer before it counts as a failure. Default 1000 ms. */
  readonly timeoutMs?: number
}

export type RedisReplayStoreSettings = Omit<RedisReplayStoreOptions, 'redis'>

const OPTIONS = ['redis', 'failOpen', 'keyPrefix', 'timeoutMs'] as const

/** `SET key 1 PX ttl NX` for every key (ttl in ARGV, same order); 1 where it was set (first use), 0 where the key was there. */
const FIRST_USES_SCRIPT =
  "local out = {} for i = 1, #KEYS do out[i] = redis.call('SET', KEYS[i], '1', 'PX', ARGV[i], 'NX') and 1 or 0 end return out"
const FIRST_USES_SHA = createHash('sha1').update(FIRST_USES_SCRIPT).digest('hex')

/** Errors that say this Redis takes no script (as opposed to a failure of this one call). */
const NO_SCRIPTING = /NOPERM|unknown command|unsupported|scripting is disabled/i

interface Pending {
  readonly key: string
  readonly ttlMs: number
  readonly resolve: (first: boolean) => void
  readonly reject: (error: Error) => void
}

export class RedisReplayStore implements ReplayStore {
  readonly #redis: Redis
  readonly #failOpen: boolean
  readonly #keyPrefix: string
  readonly #timeoutMs: number
  #queue: Pending[] = []
  #warned = false
  /** False once this Redis refused the script: pipelines from then on. */
  #scripts = true

  /** The Caracal-style wiring: the client first, then the options. */
  constructor(redis: RedisClient, options?: RedisReplayStoreSettings)
  /** One options object, the client in `redis`. */
  constructor(options: RedisReplayStoreOptions)
  constructor(...args: unknown[]) {
    const o = new RedisOptionReader('RedisReplayStore', argumentsOf('RedisReplayStore', args, ['redis']), OPTIONS)
    this.#redis = o.redis()
    this.#failOpen = o.boolean('failOpen', false)
    this.#keyPrefix = o.string('keyPrefix', REPLAY_KEY_PREFIX, true)
    this.#timeoutMs = o.integer('timeoutMs', 1_000, 1)
  }

  firstUse(jti: string, ttlMs: number): Promise<boolean> {
    if (typeof jti !== 'string' || jti === '') return Promise.reject(new TypeError('jti must be a non-empty string'))
    if (!(Number.isFinite(ttlMs) && ttlMs > 0)) return Promise.reject(new TypeError('ttlMs must be a positive number'))
    const answer = new Promise<boolean>((resolve, reject) => {
      if (this.#queue.length === 0) setImmediate(() => this.#flush())
      this.#queue.push({ key: this.#keyPrefix + jti, ttlMs, resolve, reject })
    })
    return this.#failOpen ? answer.catch((error: unknown) => this.#openOnFailure(error)) : answer
  }

  /**
   * Sends what this turn queued: one pipeline on one Redis; one command per key on a Cluster. A
   * client still connecting is waited for (up to `timeoutMs`): a fail-fast client would refuse the
   * commands, and a queueing one would hold them without a deadline.
   */
  #flush(): void {
    const batch = this.#queue
    this.#queue = []
    if (this.#redis.status === 'ready') {
      this.#send(batch, this.#timeoutMs)
      return
    }
    const started = performance.now()
    void whenReady(this.#redis, AbortSignal.timeout(this.#timeoutMs)).then((ready) => {
      if (ready) this.#send(batch, this.#timeoutMs - (performance.now() - started))
      else for (const p of batch) p.reject(new Error(`Redis is not connected (waited ${this.#timeoutMs} ms)`))
    })
  }

  #send(batch: readonly Pending[], timeoutMs: number): void {
    // A Cluster pipeline must keep to one slot; its own auto-pipelining batches per node instead.
    if ((this.#redis as { isCluster?: boolean }).isCluster === true) {
      for (const p of batch) {
        const reply = this.#redis.set(p.key, '1', 'PX', pxTtl(p.ttlMs), 'NX')
        this.#settle(
          [p],
          reply.then((r) => [r]),
          timeoutMs,
        )
      }
      return
    }
    this.#settle(batch, this.#scripts ? this.#viaScript(batch) : this.#viaPipeline(batch), timeoutMs)
  }

  #viaPipeline(batch: readonly Pending[]): Promise<unknown[]> {
    const pipeline = this.#redis.pipeline()
    for (const p of batch) pipeline.set(p.key, '1', 'PX', pxTtl(p.ttlMs), 'NX')
    return pipeline.exec().then((all) => {
      if (all === null) throw new Error('pipeline aborted')
      return all.map(([error, reply]) => (error === null ? reply : error))
    })
  }

  /** The batch in one script call, its replies as a pipeline's (`OK` or null per key). */
  async #viaScript(batch: readonly Pending[]): Promise<unknown[]> {
    const args = [...batch.map((p) => p.key), ...batch.map((p) => pxTtl(p.ttlMs))]
    let reply: unknown
    try {
      try {
        reply = await this.#redis.evalsha(FIRST_USES_SHA, batch.length, ...args)
      } catch (error) {
        // The script is not in this Redis's cache yet (or any more: a restart, SCRIPT FLUSH).
        if (!errorMessage(error).startsWith('NOSCRIPT')) throw error
        reply = await this.#redis.eval(FIRST_USES_SCRIPT, batch.length, ...args)
      }
    } catch (error) {
      if (!NO_SCRIPTING.test(errorMessage(error))) throw error
      this.#scripts = false
      return this.#viaPipeline(batch)
    }
    if (!Array.isArray(reply) || reply.length !== batch.length) throw new Error('unexpected script reply')
    return reply.map((r) => (r === 1 ? 'OK' : r === 0 ? null : new Error('unexpected script reply')))
  }

  /** `OK`: first use; null: the key was there. Anything else, an error or no answer in time: a failure. */
  #settle(batch: readonly Pending[], replies: Promise<unknown[]>, timeoutMs: number): void {
    // The late answer of a command that lost the race must not become an unhandled rejection.
    replies.catch(() => undefined)
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_, reject) => {
      const message = `Redis did not answer within ${this.#timeoutMs} ms`
      timer = setTimeout(() => reject(new Error(message)), Math.max(0, timeoutMs))
    })
    Promise.race([replies, deadline])
      .then(
        (answers) =>
          batch.forEach((p, i) => {
            const reply = answers[i]
            if (reply === 'OK') p.resolve(true)
            else if (reply === null) p.resolve(false)
            else p.reject(reply instanceof Error ? reply : new Error('unexpected SET reply'))
          }),
        (error: unknown) => {
          const failure = error instanceof Error ? error : new Error(errorMessage(error))
          for (const p of batch) p.reject(failure)
        },
      )
      .finally(() => clearTimeout(timer))
  }

  #openOnFailure(error: unknown): boolean {
    if (!this.#warned) {
      this.#warned = true
      process.emitWarning(
        `RedisReplayStore: ${errorMessage(error)}; letting mandates through unchecked for replay (failOpen: true)`,
        { code: 'CARACAL_REPLAY_UNAVAILABLE' },
      )
    }
    return true
  }
}
