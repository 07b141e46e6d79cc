/**
 * Single-use mandates across gateway instances, as Caracal's own gateway records them: one key
 * `seen:jti:<jti>` per presented resource mandate, `SET … NX PX <ms until exp>` — the first SET
 * wins, every later presentation on any instance sharing the Redis finds the key. Calls made in the
 * same turn of the event loop go out in one pipeline (one write, one read), so a gateway at full
 * load pays the one command per request and no extra round trip. The batch closes in `setImmediate`,
 * not a microtask: node:http runs each socket's request in a callback of its own and drains the
 * microtasks after each, so a microtask batch held one command. Measured (bench/README.md, the
 * section "Single use with Redis"): single use cost ~11–14% of the cold gateway's req/s, against ~42% before.
 */
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
    const pipeline = this.#redis.pipeline()
    for (const p of batch) pipeline.set(p.key, '1', 'PX', pxTtl(p.ttlMs), 'NX')
    const replies = pipeline.exec().then((all) => {
      if (all === null) throw new Error('pipeline aborted')
      return all.map(([error, reply]) => (error === null ? reply : error))
    })
    this.#settle(batch, replies, timeoutMs)
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
