/**
 * How the Redis revocation classes use ioredis connections. Everything here fails fast: a
 * revocation check must never wait on a queue that drains only when Redis comes back.
 */
import type { Redis, RedisOptions } from 'ioredis'

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
  }
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
  for (const [error] of reply) if (error !== null) throw error
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
