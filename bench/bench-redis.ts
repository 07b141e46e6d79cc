/** Redis for the bench's suites: one connection that fails fast, the deletion of a run's namespace, and a pinned redis-server of the bench's own. */
import { spawn, spawnSync } from 'node:child_process'
import { type AddressInfo, createServer } from 'node:net'
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

export interface BenchRedis {
  readonly url: string
  /** Where it runs, for the report. */
  readonly where: string
  stop(): void
}

/**
 * A redis-server of the bench's own on the load generator's core, for the single-use scenario:
 * in production Redis runs on another host, so here it must not take the server's core either
 * (the shared Redis of the machine floats over both, and its ~10–14 µs of work per mandate then
 * lands on the server's core now and then). Undefined where there is no redis-server or no
 * pinning; the suite then uses REDIS_URL or 127.0.0.1:6379 and says so.
 */
export async function startBenchRedis(cpu: number | undefined): Promise<BenchRedis | undefined> {
  if (cpu === undefined || spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0) return undefined
  const port = await new Promise<number>((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo
      probe.close(() => resolve(port))
    })
  })
  const child = spawn(
    'taskset',
    [
      '-c',
      String(cpu),
      'redis-server',
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
    ],
    { stdio: 'ignore' },
  )
  const url = `redis://127.0.0.1:${port}`
  const deadline = Date.now() + 5000
  for (;;) {
    try {
      const probe = await connectRedis(url)
      probe.disconnect()
      break
    } catch (error) {
      if (Date.now() > deadline || child.exitCode !== null) {
        child.kill('SIGKILL')
        throw error
      }
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  return {
    url,
    where: `a redis-server of its own on CPU ${cpu} (the load generator's)`,
    stop: () => child.kill('SIGKILL'),
  }
}
