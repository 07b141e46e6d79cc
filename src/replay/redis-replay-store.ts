/**
 * Single-use mandates across gateway instances, as Caracal's own gateway records them: one key
 * `seen:jti:<jti>` per presented resource mandate, `SET … NX PX <ms until exp>` — the first SET
 * wins, every later presentation on any instance sharing the Redis finds the key. Calls made in the
 * same turn of the event loop go out together: a burst from one callback at its end, a lone call
 * at the end of the turn (`setImmediate`), since node:http runs each socket's request in a callback
 * of its own and drains the microtasks after each. Together means a pipeline of SETs, each key routed on its own;
 * with `scriptBatches` (the user's word that the client reaches one Redis), one script call doing
 * each key's SET NX PX on a connection that also passed `#probe`: ioredis spends several µs of CPU
 * on each command, the script's keys cost it a fraction of that. Measured in bench/README.md,
 * section "Single use with Redis".
 */
import { createHash, randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { endOfTurn } from '#end-of-turn'
import { errorMessage, whenReady, type RedisClient } from '../revocation/redis-connection.js'
import { RedisOptionReader, argumentsOf } from '../revocation/redis-options.js'
import { pxTtl } from '../revocation/redis-wire.js'
import type { ReplayStore } from './types.js'

export const REPLAY_KEY_PREFIX = 'seen:jti:'

/** The end of the turn as cold batches take it (src/platform/end-of-turn.node.ts): fake timers do not hold it. */
const atEndOfTurn: (callback: () => void) => unknown = endOfTurn ?? setImmediate

/**
 * SET NX PX per key, for a batch in one call: 1 first use, 0 the key was there, or that key's
 * error. KEYS are the keys, ARGV[i] the PX of KEYS[i]. A key's failure (OOM, say) leaves the others
 * answered, as in a pipeline.
 */
const FIRST_USE_SCRIPT = `local answers = {}
for i, key in ipairs(KEYS) do
  local reply = redis.pcall('SET', key, '1', 'PX', ARGV[i], 'NX')
  if reply == false then answers[i] = 0
  elseif type(reply) == 'table' and reply.ok then answers[i] = 1
  elseif type(reply) == 'table' and reply.err then answers[i] = reply.err
  else answers[i] = 'unexpected SET reply' end
end
return answers`
const FIRST_USE_SHA1 = createHash('sha1').update(FIRST_USE_SCRIPT).digest('hex')

const PROBE_KEYS = 32
const PROBE_TTL_MS = 10_000

/** A key's answer: `OK` (first use), null (seen before), or its error. */
type Answer = 'OK' | null | Error

function setReplies(reply: unknown): Answer[] {
  return [reply === 'OK' || reply === null ? reply : new Error('unexpected SET reply')]
}

function pipelineReplies(all: [Error | null, unknown][] | null): Answer[] {
  if (all === null) throw new Error('pipeline aborted')
  return all.map(
    ([error, reply]) => error ?? (reply === 'OK' || reply === null ? reply : new Error('unexpected SET reply')),
  )
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT')
}

function scriptReplies(all: unknown): Answer[] {
  if (!Array.isArray(all)) throw new Error('unexpected script reply')
  return all.map((a: unknown) =>
    a === 1 ? 'OK' : a === 0 ? null : new Error(typeof a === 'string' ? a : 'unexpected SET reply'),
  )
}

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
  /**
   * Default false: each turn's keys go as one pipeline of `SET`s, each key routed on its own. True
   * declares that the client reaches one Redis server (directly or through Sentinel; never a
   * sharding proxy such as twemproxy or Envoy's): each turn's keys then go as one script call,
   * which costs ioredis a fraction of the CPU per key, on every connection that also passes the
   * probe (README "Single-use mandates"). Ignored on an ioredis `Cluster` (one command per key).
   */
  readonly scriptBatches?: boolean
}

export type RedisReplayStoreSettings = Omit<RedisReplayStoreOptions, 'redis'>

const OPTIONS = ['redis', 'failOpen', 'keyPrefix', 'timeoutMs', 'scriptBatches'] as const

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
  /** The connection (ioredis's socket) the probe last ran on, and the one it passed on. */
  #probed: object | null = null
  #scripted: object | null = null
  readonly #scriptBatches: boolean
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
    this.#scriptBatches = o.boolean('scriptBatches', false)
  }

  firstUse(jti: string, ttlMs: number): Promise<boolean> {
    if (typeof jti !== 'string' || jti === '') return Promise.reject(new TypeError('jti must be a non-empty string'))
    if (!(Number.isFinite(ttlMs) && ttlMs > 0)) return Promise.reject(new TypeError('ttlMs must be a positive number'))
    const answer = new Promise<boolean>((resolve, reject) => {
      if (this.#queue.length === 0) queueMicrotask(this.#afterCallback)
      this.#queue.push({ key: this.#keyPrefix + jti, ttlMs, resolve, reject })
    })
    return this.#failOpen ? answer.catch((error: unknown) => this.#openOnFailure(error)) : answer
  }

  readonly #flushTurn = (): void => this.#flush()

  /**
   * A burst of calls from one callback (CaracalAuth's cold batch checks its tokens back to back)
   * goes out at once; a lone call waits for the end of the turn, gathering the calls of the other
   * callbacks (node:http gives each request its own).
   */
  readonly #afterCallback = (): void => {
    if (this.#queue.length > 1) this.#flush()
    else atEndOfTurn(this.#flushTurn)
  }

  /**
   * Sends what this turn queued. A client still connecting is waited for (up to `timeoutMs`): a
   * fail-fast client would refuse the commands, and a queueing one would hold them without a deadline.
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

  /**
   * One command per key on a Cluster (a pipeline must keep to one slot; its own auto-pipelining
   * batches per node). With `scriptBatches`, one script call for the batch once the connection has shown
   * that a script sees every key (#probe); a pipeline until then, and for good where it has not.
   */
  #send(batch: readonly Pending[], timeoutMs: number): void {
    if ((this.#redis as { isCluster?: boolean }).isCluster === true) {
      for (const p of batch) {
        const reply = this.#redis.set(p.key, '1', 'PX', pxTtl(p.ttlMs), 'NX')
        this.#settle([p], reply.then(setReplies), timeoutMs)
      }
      return
    }
    const stream = this.#stream()
    if (this.#scriptBatches && stream !== null) {
      if (batch.length > 1 && this.#scripted === stream) {
        const keys = batch.map((p) => p.key)
        this.#settle(
          batch,
          this.#runScript(
            keys,
            batch.map((p) => pxTtl(p.ttlMs)),
            stream,
          ),
          timeoutMs,
        )
        return
      }
      if (this.#probed !== stream) void this.#probe(stream)
    }
    this.#settle(batch, this.#pipeline(batch), timeoutMs)
  }

  /** ioredis's socket: a new one for every connection (a reconnect, a failover). */
  #stream(): object | null {
    const stream: unknown = (this.#redis as { stream?: unknown }).stream
    return typeof stream === 'object' && stream !== null ? stream : null
  }

  #pipeline(batch: readonly Pending[]): Promise<Answer[]> {
    const pipeline = this.#redis.pipeline()
    for (const p of batch) pipeline.set(p.key, '1', 'PX', pxTtl(p.ttlMs), 'NX')
    return pipeline.exec().then(pipelineReplies)
  }

  /**
   * The script over `keys` (PX `ttls`), meant for connection `stream`: when ioredis has moved to
   * another by the time EVALSHA failed, it fails (it may have run before the connection dropped;
   * sent again, its first uses would read as replays), as a timeout does.
   */
  #runScript(keys: readonly string[], ttls: readonly number[], stream: object): Promise<Answer[]> {
    const args = [...keys, ...ttls]
    return this.#redis.evalsha(FIRST_USE_SHA1, keys.length, ...args).then(scriptReplies, (error: unknown) => {
      if (this.#stream() !== stream) throw error
      // The script cache is per server and may be flushed (SCRIPT FLUSH, a failover): send it whole.
      if (isNoScript(error)) return this.#redis.eval(FIRST_USE_SCRIPT, keys.length, ...args).then(scriptReplies)
      // Scripts refused since the probe (an ACL, say): this connection keeps to pipelines.
      if (this.#scripted === stream) this.#scripted = null
      throw error
    })
  }

  /**
   * Whether one script call sees every key it names on this connection: true of a Redis, false
   * behind a proxy that shards keys and routes a script by its first key (twemproxy, Envoy's) —
   * there a script would record most jtis on the wrong shard, where no other presentation looks.
   * So the user's word is tested too: PROBE_KEYS keys set one command each (routed as any key is), then
   * the script over all of them must find every one already there. On a sharded proxy the chance
   * that all land on the first key's shard is at most 2^-(PROBE_KEYS-1). Done again on every new
   * connection (a reconnect, a failover may reach another server); anything unexpected, an error
   * or a timeout, and this connection keeps to pipelines. What it cannot see is a proxy's shards
   * changing under a connection that passed (an ejected twemproxy host coming back): hence the
   * script only on the user's word.
   */
  async #probe(stream: object): Promise<void> {
    this.#probed = stream
    // Shaped as jti keys are (the prefix, then a UUID): a proxy's hash tag that would gather these
    // on one shard gathers real keys too.
    const keys = Array.from({ length: PROBE_KEYS }, () => this.#keyPrefix + randomUUID())
    try {
      const set = this.#redis.pipeline()
      for (const key of keys) set.set(key, '1', 'PX', PROBE_TTL_MS)
      const written = pipelineReplies(await set.exec())
      if (!written.every((a) => a === 'OK')) return
      const seen = await this.#runScript(
        keys,
        keys.map(() => PROBE_TTL_MS),
        stream,
      )
      if (seen.length === keys.length && seen.every((a) => a === null) && this.#stream() === stream)
        this.#scripted = stream
    } catch {
      // Scripts refused (EVALSHA disabled, unknown to a proxy, CROSSSLOT) or Redis failing: pipelines.
    } finally {
      const del = this.#redis.pipeline()
      for (const key of keys) del.del(key)
      del.exec().catch(() => undefined)
    }
  }

  /**
   * Each answer: `OK` first use; null the key was there; an Error for that key. A failure of the
   * whole, or no answer in time, fails every call of the batch.
   */
  #settle(batch: readonly Pending[], replies: Promise<Answer[]>, timeoutMs: number): void {
    let done = false
    const fail = (error: unknown): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      const failure = error instanceof Error ? error : new Error(errorMessage(error))
      for (const p of batch) p.reject(failure)
    }
    const message = `Redis did not answer within ${this.#timeoutMs} ms`
    const timer = setTimeout(() => fail(new Error(message)), Math.max(0, timeoutMs))
    replies.then((answers) => {
      if (done) return
      done = true
      clearTimeout(timer)
      for (let i = 0; i < batch.length; i++) {
        const p = batch[i]!
        const answer = answers[i]
        if (answer === 'OK') p.resolve(true)
        else if (answer === null) p.resolve(false)
        else p.reject(answer instanceof Error ? answer : new Error('unexpected SET reply'))
      }
    }, fail)
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
