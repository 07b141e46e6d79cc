/** Redis for the bench's suites: one connection that fails fast, and the deletion of a run's namespace. */
import { Redis } from 'ioredis'
import { FAIL_FAST_REDIS_OPTIONS } from '../src/redis.js'

export async function connectRedis(url: string): Promise<Redis> {
  const redis = new Redis(url, { connectTimeout: 2000, ...FAIL_FAST_REDIS_OPTIONS })
  let lastError = ''
  redis.on('error', (error: unknown) => {
    lastError = error instanceof Error ? error.message : String(error)
  })
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 3000)
    redis.once('ready', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
  if (!ready) {
    redis.disconnect()
    const safeUrl = url.replace(/\/\/[^@/]*@/, '//***@')
    throw new Error(`the bench needs Redis: none answers at ${safeUrl}${lastError === '' ? '' : ` (${lastError})`}`)
  }
  return redis
}

/** Deletes every key under `<namespace>:` (streams, groups, replay and revocation keys of one run). */
export async function deleteNamespace(redis: Redis, namespace: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) await redis.del(...keys)
  } while (cursor !== '0')
}
