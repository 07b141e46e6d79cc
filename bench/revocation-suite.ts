/**
 * Revocation at gateway scale: what a check costs on the Redis mirror (against the in-memory
 * store and against asking Redis per check), and how fast a revocation reaches three instances.
 * Runs against REDIS_URL or 127.0.0.1:6379; without Redis it returns one row saying so.
 */
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { InMemoryRevocationStore } from '../src/index.js'
import { FAIL_FAST_REDIS_OPTIONS, RedisRevocationStore, signRevocationEvent } from '../src/redis.js'
import type { BenchRow } from './rows.js'

const SUITE = 'revocation'
const EVENTS = 200
const INSTANCES = 3
const ANCHORS = 1024
const HMAC_KEY = Buffer.from('bench-stream-key')

interface RevocationCheck {
  isRevoked(anchor: string): boolean | Promise<boolean>
}

/** Mean ns per synchronous check, over batches until `timeMs` has passed. */
function nsPerCheck(store: RevocationCheck, anchors: readonly string[], timeMs: number): number {
  let calls = 0
  let revoked = 0
  const deadline = performance.now() + timeMs
  const start = process.hrtime.bigint()
  do {
    for (let i = 0; i < 100_000; i++) if (store.isRevoked(anchors[i & (ANCHORS - 1)]!) === true) revoked++
    calls += 100_000
  } while (performance.now() < deadline)
  const ns = Number(process.hrtime.bigint() - start) / calls
  // Keeps the loop's result alive; a mirror that answers otherwise is not measuring what it claims.
  if (revoked !== 0 && revoked !== calls) throw new Error('mixed answers in a hit-only or miss-only run')
  return ns
}

async function nsPerRoundTrip(redis: Redis, keys: readonly string[], timeMs: number): Promise<number> {
  let calls = 0
  const deadline = performance.now() + Math.min(timeMs, 1_000)
  const start = process.hrtime.bigint()
  while (performance.now() < deadline) {
    await redis.exists(keys[calls & (ANCHORS - 1)]!)
    calls++
  }
  return Number(process.hrtime.bigint() - start) / calls
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN
}

function waitUntil(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs
  return new Promise((resolve) => {
    const poll = () => {
      if (check()) resolve(true)
      else if (performance.now() > deadline) resolve(false)
      else setImmediate(poll)
    }
    poll()
  })
}

async function reachable(url: string): Promise<boolean> {
  const probe = new Redis(url, { ...FAIL_FAST_REDIS_OPTIONS, lazyConnect: true, retryStrategy: () => null })
  probe.on('error', () => undefined)
  try {
    await probe.connect()
    return (await probe.ping()) === 'PONG'
  } catch {
    return false
  } finally {
    probe.disconnect()
  }
}

export async function revocationSuite(options: { timeMs: number }): Promise<BenchRow[]> {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
  const rows: BenchRow[] = []
  const hits = Array.from({ length: ANCHORS }, (_, i) => `agent-hit-${i}`)
  const misses = Array.from({ length: ANCHORS }, (_, i) => `agent-miss-${i}`)

  const memory = new InMemoryRevocationStore()
  for (const anchor of hits) memory.markRevoked(anchor)
  rows.push({ suite: SUITE, group: 'isRevoked', name: 'InMemoryRevocationStore (hit)', value: nsPerCheck(memory, hits, options.timeMs), unit: 'ns/op' })

  if (!(await reachable(url))) {
    rows.push({ suite: SUITE, group: 'redis', name: `not measured: Redis not reachable at ${url.replace(/\/\/[^@]*@/, '//')}`, value: 0, unit: 'skipped' })
    return rows
  }

  const namespace = `bench:${randomBytes(6).toString('hex')}`
  const names = { stream: `${namespace}:caracal.sessions.revoke`, keyPrefix: `${namespace}:revoked:` }
  const clients: Redis[] = []
  const client = () => {
    const c = new Redis(url, FAIL_FAST_REDIS_OPTIONS)
    c.on('error', () => undefined)
    clients.push(c)
    return c
  }
  const stores = Array.from({ length: INSTANCES }, () => new RedisRevocationStore({ redis: client(), streamHmacKey: HMAC_KEY, ...names }))
  const admin = client()
  try {
    await Promise.all(stores.map((s) => s.ready({ timeoutMs: 10_000 })))
    const mirror = stores[0]!
    for (const anchor of hits) mirror.applyRevocation(anchor, 3_600_000)
    rows.push({ suite: SUITE, group: 'isRevoked', name: 'RedisRevocationStore mirror (hit)', value: nsPerCheck(mirror, hits, options.timeMs), unit: 'ns/op' })
    rows.push({ suite: SUITE, group: 'isRevoked', name: 'RedisRevocationStore mirror (miss)', value: nsPerCheck(mirror, misses, options.timeMs), unit: 'ns/op' })
    rows.push({
      suite: SUITE, group: 'isRevoked', name: 'Redis EXISTS per check (no mirror)',
      value: await nsPerRoundTrip(admin, misses.map((a) => names.keyPrefix + a), options.timeMs), unit: 'ns/op',
    })

    const latencies: number[] = []
    for (let i = 0; i < EVENTS; i++) {
      const anchor = `agent-propagation-${i}`
      const fields = { zone_id: 'bench', session_id: `sess-propagation-${i}`, agent_session_id: anchor, reason: 'bench' }
      const signed = { ...fields, _sig: signRevocationEvent(HMAC_KEY, names.stream, fields) }
      const t0 = performance.now()
      await admin.xadd(names.stream, '*', ...Object.entries(signed).flat())
      if (!(await waitUntil(() => stores.every((s) => s.isRevoked(anchor)), 5_000))) throw new Error(`revocation ${i} did not reach every instance within 5 s`)
      latencies.push(performance.now() - t0)
    }
    latencies.sort((a, b) => a - b)
    rows.push({ suite: SUITE, group: 'propagation', name: `to ${INSTANCES} instances, p50 of ${EVENTS}`, value: percentile(latencies, 50), unit: 'ms' })
    rows.push({ suite: SUITE, group: 'propagation', name: `to ${INSTANCES} instances, p99 of ${EVENTS}`, value: percentile(latencies, 99), unit: 'ms' })
  } finally {
    await Promise.all(stores.map((s) => s.close()))
    if (admin.status === 'ready') {
      await admin.del(names.stream)
      let cursor = '0'
      do {
        const [next, keys] = await admin.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000)
        cursor = next
        if (keys.length > 0) await admin.del(...keys)
      } while (cursor !== '0')
    }
    for (const c of clients) c.disconnect()
  }
  return rows
}
