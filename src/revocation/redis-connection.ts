/**
 * How the Redis revocation classes use ioredis connections. Everything here fails fast: a
 * revocation check must never wait on a queue that drains only when Redis comes back.
 */
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis'

/**
 * Recommended options for the client you hand to `RedisRevocationStore`/`RedisRevocationConsumer`:
 * commands fail at once while disconnected instead of queueing, and no command waits longer than
 * two seconds. Reconnection keeps trying, at most once a second.
 */
export const FAIL_FAST_REDIS_OPTIONS: Readonly<RedisOptions> = Object.freeze({
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  commandTimeout: 2_000,
  connectTimeout: 2_000,
  retryStrategy: (attempt: number) => Math.min(50 * attempt, 1_000),
})

/**
 * Overrides for a connection of our own that runs blocking reads (XREAD/XREADGROUP BLOCK): it
 * must not carry other traffic, and a read interrupted by a disconnect must fail at once (not be
 * replayed after reconnecting) so the follower can check what it missed first.
 */
export function blockingReaderOptions(blockMs: number): Partial<RedisOptions> {
  return {
    // ioredis 6 speaks RESP3 by default, where XREAD and XREADGROUP answer a map (flattened to
    // [name, entries, …] or made an object, by its replyMapping); ioredis 5 speaks RESP2 only.
    // Our own connections ask for RESP2 on both, the reply shapes the stream parsers read.
    ...({ protocol: 2 } as Partial<RedisOptions>),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    // The block itself plus a margin: a read that outlives it means the link is dead.
    commandTimeout: blockMs + 2_000,
    blockingTimeout: undefined,
    lazyConnect: false,
    // After a Sentinel failover a connection left on the demoted master answers READONLY to every
    // write (Redis closes only connections blocked in a read): reconnect, which asks the sentinels
    // for the new master. The failed command is not resent; its caller retries.
    reconnectOnError: (error: Error) => (/^READONLY/.test(error.message) ? 1 : false),
  }
}

/** A client the Redis classes accept: one Redis (standalone or behind Sentinel), or a Cluster. */
export type RedisClient = Redis | Cluster

export function isCluster(client: RedisClient): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true
}

/**
 * A connection of the library's own to the same Redis, with `overrides`. `Redis.duplicate` takes
 * options and `Cluster.duplicate` takes start-up nodes first: on a Cluster the overrides go to
 * every node's connection (`redisOptions`), and the cluster itself fails fast too. Typed as
 * `Redis`: every command the library sends exists on both, and a Cluster routes it by key.
 */
export function ownConnection(client: RedisClient, overrides: Partial<RedisOptions>): Redis {
  if (!isCluster(client)) return client.duplicate(overrides)
  const options = client.options as ClusterOptions
  return client.duplicate([], {
    ...options,
    enableOfflineQueue: overrides.enableOfflineQueue ?? options.enableOfflineQueue,
    lazyConnect: false,
    redisOptions: { ...options.redisOptions, ...overrides },
  }) as unknown as Redis
}

/**
 * The master nodes of a Cluster (each holds its own slots' keys), or the one Redis. A Cluster's
 * node whose link dropped leaves its pool until the slot map is refreshed, and nothing a scan sends
 * would make ioredis refresh it: so the map is refreshed first, and a master of the map missing from
 * the pool is an error (the scan is tried again) — never a scan that skips a master and counts as done.
 */
export async function scanTargets(client: Redis): Promise<Redis[]> {
  const cluster = client as unknown as RedisClient
  if (!isCluster(cluster)) return [client]
  await new Promise<void>((resolve, reject) =>
    cluster.refreshSlotsCache((error?: Error | null) => (error ? reject(error) : resolve())),
  )
  const masters = cluster.nodes('master')
  const present = new Set(masters.map((n) => `${n.options.host}:${n.options.port}`))
  const owners = new Set(
    (cluster.slots as unknown as (string[] | undefined)[]).map((slot) => slot?.[0]).filter((k) => k !== undefined),
  )
  for (const owner of owners) {
    if (!present.has(owner)) throw new Error(`cluster master ${owner} is not connected: the key scan is retried`)
  }
  return masters
}

/**
 * Resolves with true once `client` can take commands, connecting it if it was created lazily;
 * with false if `stop` fires first or the client ends. A connection of our own that ended
 * (its retry strategy gave up) is started again when `restartEnded` is set; a caller's is not.
 */
export function whenReady(client: Redis, stop: AbortSignal, restartEnded = false): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true)
  if (stop.aborted || (client.status === 'end' && !restartEnded)) return Promise.resolve(false)
  if (client.status === 'wait' || client.status === 'end') client.connect().catch(() => undefined)
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      client.off('ready', onReady)
      client.off('end', onEnd)
      stop.removeEventListener('abort', onAbort)
      resolve(ok)
    }
    const onReady = () => done(true)
    const onEnd = () => done(false)
    const onAbort = () => done(false)
    client.on('ready', onReady)
    client.on('end', onEnd)
    stop.addEventListener('abort', onAbort, { once: true })
  })
}

/** Waits `ms`, or less if `stop` fires. */
export function pause(ms: number, stop: AbortSignal): Promise<void> {
  if (stop.aborted) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(finish, ms)
    function finish() {
      clearTimeout(timer)
      stop.removeEventListener('abort', finish)
      resolve()
    }
    stop.addEventListener('abort', finish, { once: true })
  })
}

/** Throws the first error of a MULTI/pipeline reply; ioredis reports them per command. */
export function checkExecReply(reply: [Error | null, unknown][] | null, what: string): void {
  if (reply === null) throw new Error(`${what}: transaction aborted`)
  for (const [error] of reply) if (error !== null) throw withCause(error)
}

/**
 * EXECABORT says only that a transaction was discarded; the reason (READONLY on a demoted
 * master, OOM, …) is in ioredis's `previousErrors`. Say it.
 */
export function withCause(error: Error): Error {
  const previous = (error as { previousErrors?: unknown[] }).previousErrors?.[0]
  if (!/^EXECABORT/.test(error.message) || !(previous instanceof Error)) return error
  return new Error(`${error.message}: ${previous.message}`, { cause: error })
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
