/**
 * The revocation store and consumer on Redis Sentinel, through a failover forced while Caracal
 * publishes (README "Several gateway instances, one Redis"; docs/architecture.md "Revocation"):
 * both are given a Sentinel-aware ioredis client (`sentinels` and `name`, the fail-fast options),
 * and must end up on the new master without losing a revocation Redis kept.
 *
 * One master, its replica and one sentinel, the file's own (about 0.2 s to start); each forced
 * failover takes about a second, and the sentinel demotes the old master about a second later.
 * The data is flushed after each test, once the nodes agree again.
 */
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import {
  DEFAULT_CONSUMER_GROUP,
  FAIL_FAST_REDIS_OPTIONS,
  REVOCATION_KEY_PREFIX,
  REVOCATION_STREAM,
  RedisRevocationConsumer,
  RedisRevocationStore,
  signRevocationEvent,
} from '../src/redis.js'
import { CaracalAuth } from '../src/index.js'
import { eventually, fieldsOf } from './support/redis.js'
import { AUDIENCE, ISSUER, NOW_MS, mint, staticJwks } from './support/mandates.js'
import {
  LOOPBACK,
  describeWithRedisTopology,
  nodeClient,
  startRedisSentinel,
  waitFor,
  type TestRedisSentinel,
} from './support/redis-topologies.js'

const HMAC_KEY = 'stream-secret'
/** The bound a user can rely on: within it, after the nodes agree again, the store and the consumer are on the new master. */
const RECOVERY_MS = 10_000
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function signedFields(fields: Record<string, string>): string[] {
  return Object.entries({
    ...fields,
    _sig: signRevocationEvent(Buffer.from(HMAC_KEY), REVOCATION_STREAM, fields),
  }).flat()
}

/** Runs `use` on a plain connection to one node. */
async function onNode<T>(port: number, use: (node: Redis) => Promise<T>): Promise<T> {
  const node = nodeClient(port)
  try {
    return await use(node)
  } finally {
    node.disconnect()
  }
}

describeWithRedisTopology('the revocation store and consumer on Redis Sentinel, through a forced failover', () => {
  let sentinel: TestRedisSentinel
  const clients: Redis[] = []
  const stores: RedisRevocationStore[] = []
  const consumers: RedisRevocationConsumer[] = []
  const runs: Promise<void>[] = []

  /** A client as a user on Sentinel makes one: it asks the sentinel for the master, and fails fast. */
  function sentinelClient(): Redis {
    const client = new Redis({
      sentinels: [...sentinel.sentinels],
      name: sentinel.masterName,
      ...FAIL_FAST_REDIS_OPTIONS,
    })
    client.on('error', () => undefined)
    clients.push(client)
    return client
  }

  /** A store and a running consumer applying to it, each on a Sentinel client of its own. */
  async function storeAndConsumer(): Promise<{ store: RedisRevocationStore; consumer: RedisRevocationConsumer }> {
    const store = new RedisRevocationStore(sentinelClient(), { streamHmacKey: HMAC_KEY })
    stores.push(store)
    const consumer = new RedisRevocationConsumer(sentinelClient(), store, {
      consumer: 'c1',
      streamHmacKey: HMAC_KEY,
      blockMs: 100,
    })
    consumers.push(consumer)
    await store.ready({ timeoutMs: 5_000 })
    await consumer.ensureGroup()
    runs.push(consumer.run())
    return { store, consumer }
  }

  /**
   * Caracal's publisher: each event is appended on the master the sentinel names at that moment,
   * so it never goes on writing to a demoted master (whose writes Redis drops when it resyncs).
   */
  async function publish(anchor: string): Promise<{ readonly port: number; readonly id: string }> {
    const port = await sentinel.currentMaster()
    const id = await onNode(port, (node) =>
      node.xadd(REVOCATION_STREAM, '*', ...signedFields({ zone_id: 'z', session_id: anchor, reason: 'r' })),
    )
    if (id === null) throw new Error('XADD returned no id')
    return { port, id }
  }

  /** The anchors of every event the stream on `port` holds: what Redis kept. */
  async function keptAnchors(port: number): Promise<string[]> {
    const entries = await onNode(port, (node) => node.xrange(REVOCATION_STREAM, '-', '+'))
    return entries.map(([, flat]) => fieldsOf(flat).session_id ?? '')
  }

  /** Waits until the consumer made every anchor durable on `port` and left nothing pending there. */
  async function consumedOn(port: number, anchors: readonly string[], timeoutMs: number): Promise<void> {
    let missing: string[] = anchors.slice()
    let pending = -1
    await waitFor(
      async () => {
        const found = await onNode(port, async (node) => {
          const pipeline = node.pipeline()
          for (const anchor of anchors) pipeline.exists(REVOCATION_KEY_PREFIX + anchor)
          return (await pipeline.exec()) ?? []
        })
        missing = anchors.filter((_, i) => found[i]?.[1] !== 1)
        pending = (
          (await onNode(port, (node) => node.xpending(REVOCATION_STREAM, DEFAULT_CONSUMER_GROUP))) as [number]
        )[0]
        return missing.length === 0 && pending === 0
      },
      timeoutMs,
      'the consumer to make every event durable on the master and acknowledge it',
    ).catch((error: Error) => {
      throw new Error(
        `${error.message}: ${missing.length} of ${anchors.length} not durable on ${port} ` +
          `(${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}), ${pending} pending`,
      )
    })
  }

  /** Waits until the store holds every anchor and vouches for its copy. */
  async function storeHas(store: RedisRevocationStore, anchors: readonly string[], timeoutMs: number): Promise<void> {
    const missing = () => anchors.filter((a) => store.isRevoked(a) !== true)
    await eventually(
      () => missing().length === 0 && store.unavailableReason() === undefined,
      timeoutMs,
      'the store to hold every revocation and vouch for it',
    ).catch((error: Error) => {
      const m = missing()
      throw new Error(
        `${error.message}: missing ${m.length} of ${anchors.length} (${m.slice(0, 5).join(', ')}${m.length > 5 ? ', …' : ''}); ` +
          `state ${JSON.stringify(store.state())}`,
      )
    })
  }

  beforeAll(async () => {
    sentinel = await startRedisSentinel()
  })

  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((c) => c.close()))
    await Promise.all(runs.splice(0))
    await Promise.all(stores.splice(0).map((s) => s.close()))
    for (const client of clients.splice(0)) client.disconnect()
    await sentinel.settled()
    await onNode(await sentinel.currentMaster(), (node) => node.flushall())
  })

  afterAll(async () => {
    await sentinel?.stop()
  })

  it('a failover forced while Caracal publishes: within 10 s the store holds every revocation Redis kept and is available, and the consumer has made each durable on the new master', async () => {
    const { store } = await storeAndConsumer()
    const before = Array.from({ length: 10 }, (_, i) => `before-${i}`)
    for (const anchor of before) await publish(anchor)
    const first = await sentinel.currentMaster()
    await storeHas(store, before, 2_000)
    await consumedOn(first, before, 2_000)
    // On the replica too before the failover starts: these must survive it whatever happens.
    await sentinel.replicated()

    // Mandates of the sessions revoked before the failover are presented all through it: never
    // accepted (refused as revoked, or as unavailable while the mirror cannot vouch).
    const auth = new CaracalAuth({
      issuer: ISSUER,
      audience: AUDIENCE,
      revocations: store,
      jwks: { keys: staticJwks },
      now: () => NOW_MS,
    })
    const presented = { accepted: 0, refused: 0 }
    let verifying = true
    const verifier = (async () => {
      while (verifying) {
        for (const anchor of before) {
          const accepted = await auth.verify(mint({ jti: `during-failover-${anchor}`, sid: anchor })).then(
            () => true,
            () => false,
          )
          if (accepted) presented.accepted++
          else presented.refused++
        }
        await sleep(20)
      }
    })()

    // Publishing goes on, every 20 ms, through the failover and until the nodes agree again.
    const during: { anchor: string; port: number }[] = []
    let publishing = true
    const publisher = (async () => {
      for (let i = 0; publishing; i++) {
        const anchor = `during-${i}`
        try {
          during.push({ anchor, ...(await publish(anchor)) })
        } catch {
          // The master refused or dropped it mid-switch: not published, so nothing is owed.
        }
        await sleep(20)
      }
    })()
    const { from, to } = await sentinel.failover()
    expect(from).toBe(first)
    await sentinel.settled()
    await sleep(300)
    publishing = false
    await publisher
    verifying = false
    await verifier
    expect(presented.accepted).toBe(0)
    expect(presented.refused).toBeGreaterThan(0)

    const kept = await keptAnchors(to)
    // Redis kept what was on both nodes before the switch, and what went to the new master.
    expect(before.filter((a) => !kept.includes(a))).toEqual([])
    const onNewMaster = during.filter((p) => p.port === to).map((p) => p.anchor)
    expect(onNewMaster.length).toBeGreaterThan(0)
    expect(onNewMaster.filter((a) => !kept.includes(a))).toEqual([])
    // An event appended on the old master in the instant between its replica's promotion and the
    // publisher's next question to the sentinel is dropped by Redis (asynchronous replication),
    // not by the library: what the store owes is what Redis kept.
    await storeHas(store, kept, RECOVERY_MS)
    await consumedOn(to, kept, RECOVERY_MS)

    // And it goes on: events published now reach the store and are made durable on the new master.
    const after = Array.from({ length: 5 }, (_, i) => `after-${i}`)
    for (const anchor of after) expect((await publish(anchor)).port).toBe(to)
    await storeHas(store, after, 2_000)
    await consumedOn(to, [...kept, ...after], 2_000)
  })

  /**
   * A forced failover, then the old master demoted at once by REPLICAOF, as an operator or an
   * orchestrator does it: unlike the sentinel's own demotion, that leaves the clients connected to
   * what is now a replica, where every write fails with READONLY.
   */
  async function failoverKeepingClients(): Promise<{ readonly from: number; readonly to: number }> {
    const { from, to } = await sentinel.failover()
    await onNode(from, (node) => node.call('REPLICAOF', LOOPBACK, String(to)))
    await waitFor(
      async () => (await onNode(from, (node) => node.info('replication'))).includes('master_link_status:up'),
      5_000,
      `the old master on ${from} to replicate from ${to}`,
    )
    return { from, to }
  }

  it('markRevoked on a client left on the old master, now a replica, rejects naming READONLY (not passing for done, not hiding why), and the revocation holds on this instance', async () => {
    const { store } = await storeAndConsumer()
    await failoverKeepingClients()
    const marked = await store.markRevoked('marked-after-demotion').then(
      () => 'resolved',
      (error: unknown) => (error as Error).message,
    )
    // The operator must learn that the write hit a replica, not only that a transaction failed.
    expect(marked).toMatch(/READONLY/)
    expect(store.isRevoked('marked-after-demotion')).toBe(true)
  })

  it('a consumer left on the old master, now a replica, does not retry its READONLY group reads there forever: within 10 s it consumes on the new master', async () => {
    // Driven by pollOnce, demoted between two polls: its connection is idle then, so Redis keeps
    // it (a demotion closes only the connections blocked in a read), as it does for a consumer
    // caught between its reads and its writes.
    const store = new RedisRevocationStore(sentinelClient(), { streamHmacKey: HMAC_KEY })
    stores.push(store)
    const consumer = new RedisRevocationConsumer(sentinelClient(), store, {
      consumer: 'c1',
      streamHmacKey: HMAC_KEY,
      blockMs: 100,
    })
    consumers.push(consumer)
    await store.ready({ timeoutMs: 5_000 })
    await consumer.ensureGroup()
    await publish('before-demotion')
    expect(await consumer.pollOnce()).toBe(1)
    await sentinel.replicated()
    const { to } = await failoverKeepingClients()
    const after = Array.from({ length: 5 }, (_, i) => `after-demotion-${i}`)
    for (const anchor of after) expect((await publish(anchor)).port).toBe(to)
    const errors = new Set<string>()
    let polling = true
    const driver = (async () => {
      while (polling) await consumer.pollOnce().catch((error: unknown) => errors.add((error as Error).message))
    })()
    try {
      await consumedOn(to, ['before-demotion', ...after], RECOVERY_MS).catch((error: Error) => {
        throw new Error(`${error.message}; pollOnce rejected with: ${[...errors].join(' | ') || 'nothing'}`)
      })
    } finally {
      polling = false
      await driver
    }
  })

  it('a store that read entries the old master took after the promotion (which Redis then drops) still gets, within 10 s, the entries the new master took meanwhile', async () => {
    const store = new RedisRevocationStore(sentinelClient(), { streamHmacKey: HMAC_KEY })
    stores.push(store)
    await store.ready({ timeoutMs: 5_000 })
    await publish('before-split')
    await storeHas(store, ['before-split'], 2_000)
    await sentinel.replicated()
    const { from, to } = await sentinel.failover()
    // For a moment both nodes take writes: a publisher already on the new master, and one still
    // on the old master (where the store's reader is too), interleaved in time.
    const lost: string[] = []
    const taken: string[] = []
    for (let i = 0; i < 5; i++) {
      await onNode(to, (node) =>
        node.xadd(REVOCATION_STREAM, '*', ...signedFields({ zone_id: 'z', session_id: `new-${i}`, reason: 'r' })),
      )
      taken.push(`new-${i}`)
      await sleep(3)
      await onNode(from, (node) =>
        node.xadd(REVOCATION_STREAM, '*', ...signedFields({ zone_id: 'z', session_id: `lost-${i}`, reason: 'r' })),
      )
      lost.push(`lost-${i}`)
      await sleep(3)
    }
    await storeHas(store, lost, 2_000)
    // And the new master takes one more, after all of those: its stream now ends past the store's last ID.
    await onNode(to, (node) =>
      node.xadd(REVOCATION_STREAM, '*', ...signedFields({ zone_id: 'z', session_id: 'new-last', reason: 'r' })),
    )
    taken.push('new-last')
    // The demotion closes the store's blocked read; it reconnects through the sentinel.
    await onNode(from, (node) => node.call('REPLICAOF', LOOPBACK, String(to)))
    const kept = await keptAnchors(to)
    expect(kept).toEqual(['before-split', ...taken])
    await storeHas(store, kept, RECOVERY_MS)
  })
})
