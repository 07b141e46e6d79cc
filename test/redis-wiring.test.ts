/**
 * The seed's wiring, as Caracal's TypeScript packages take it — `new RedisRevocationStore(redis,
 * { failClosed: true })`, `new RedisRevocationConsumer(redis, store, { consumer })` and the same for
 * the delegation consumer, driven by `while (running) await consumer.pollOnce()` — against Redis
 * and a stand-in Caracal coordinator.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { CaracalAuth } from '../src/index.js'
import {
  RedisDelegationInvalidationConsumer,
  RedisRevocationConsumer,
  RedisRevocationStore,
  verifyRevocationSignature,
} from '../src/redis.js'
import { CaracalCoordinator } from './support/caracal-coordinator.js'
import { AUDIENCE, ISSUER, NOW_MS, mint, staticJwks } from './support/mandates.js'
import {
  LOCAL_REDIS_PORT,
  closeClients,
  connectedClient,
  describeWithRedis,
  dropNamespace,
  eventually,
  fieldsOf,
  uniqueNames,
  type UniqueNames,
} from './support/redis.js'

const STREAMS_HMAC_KEY = Buffer.from('3c'.repeat(32), 'hex')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

type Consumer = RedisRevocationConsumer | RedisDelegationInvalidationConsumer

describeWithRedis("the seed's wiring against Redis", () => {
  let admin: Redis
  const namespaces: string[] = []
  const cleanups: (() => Promise<void> | void)[] = []

  function names(label: string): UniqueNames {
    const n = uniqueNames(label)
    namespaces.push(n.namespace)
    return n
  }

  /** A client as the seed makes one: plain ioredis defaults, not the fail-fast options. */
  function seedClient(): Redis {
    const redis = new Redis({ host: '127.0.0.1', port: LOCAL_REDIS_PORT })
    redis.on('error', () => undefined)
    cleanups.push(() => redis.disconnect())
    return redis
  }

  /** `while (running) await consumer.pollOnce()`, as the seed runs it. */
  function pollLoop(consumer: Consumer): { polls: () => number; handled: () => number; stop: () => Promise<void> } {
    let running = true
    let polls = 0
    let handled = 0
    const loop = (async () => {
      while (running) {
        handled += await consumer.pollOnce()
        polls++
      }
    })()
    const stop = async () => {
      running = false
      // close() cuts the blocked read short; the loop's last pollOnce then rejects.
      await consumer.close()
      await loop.catch(() => undefined)
    }
    cleanups.push(stop)
    return { polls: () => polls, handled: () => handled, stop }
  }

  beforeAll(async () => {
    admin = await connectedClient()
  })

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
    for (const ns of namespaces.splice(0)) await dropNamespace(admin, ns)
  })

  afterAll(() => closeClients())

  it('positional wiring: a valid mandate is accepted on the first request, before ready(); the consumers then keep it current', async () => {
    const n = names('seed')
    const redis = seedClient()
    const store = new RedisRevocationStore(redis, { failClosed: true, streamHmacKey: STREAMS_HMAC_KEY, ...n.store })
    cleanups.push(() => store.close())
    const revocations = new RedisRevocationConsumer(redis, store, {
      consumer: 'fastmcp-server-1',
      streamHmacKey: STREAMS_HMAC_KEY,
      blockMs: 200,
      ...n.revocations,
    })
    const delegations = new RedisDelegationInvalidationConsumer(redis, store, {
      consumer: 'fastmcp-server-1',
      streamHmacKey: STREAMS_HMAC_KEY,
      blockMs: 200,
      ...n.delegations,
    })
    const auth = new CaracalAuth({
      issuer: ISSUER,
      audience: AUDIENCE,
      revocations: store,
      jwks: { keys: staticJwks },
      now: () => NOW_MS,
    })
    cleanups.push(() => auth.close())

    // No ready(): the first check waits for the initial load instead of answering 503.
    await expect(auth.verify(mint({ zone_id: 'zone-1', delegation_graph_epoch: 0 }))).resolves.toMatchObject({
      sub: 'user-1',
    })

    await Promise.all([revocations.ensureGroup(), delegations.ensureGroup()])
    const loops = [pollLoop(revocations), pollLoop(delegations)]
    const sts = new CaracalCoordinator(admin, {
      hmacKey: STREAMS_HMAC_KEY,
      revokeStream: n.stream,
      delegationStream: n.delegationStream,
    })
    await sts.revokeSession({ zoneId: 'zone-1', sessionId: 'sess-gone', agentSessionId: 'agent-gone' })
    await sts.createEdge({ zoneId: 'zone-1', edgeId: 'edge-1', sourceSessionId: 'agent-a', targetSessionId: 'agent-b' })
    await eventually(() => loops.every((l) => l.handled() === 1), 2_000, 'both consumers to handle their event')
    await expect(auth.verify(mint({ agent_session_id: 'agent-gone' }))).rejects.toMatchObject({
      code: 'session_revoked',
      unavailable: false,
    })
    await expect(auth.verify(mint({ zone_id: 'zone-1', delegation_graph_epoch: 0 }))).rejects.toMatchObject({
      code: 'delegation_stale',
    })
    expect(await admin.exists(`${n.keyPrefix}agent-gone`, `${n.keyPrefix}delegation-epoch:zone-1`)).toBe(2)
    // The consumers applied what they accepted directly; nothing was published again anywhere.
    expect([
      await admin.xlen(n.stream),
      await admin.xlen(n.delegationStream),
      await admin.exists(n.peerStream),
    ]).toEqual([1, 1, 0])
    // The user's client was never used for a blocking read: it answers at once.
    const t0 = performance.now()
    await redis.ping()
    expect(performance.now() - t0).toBeLessThan(100)
  })

  it('two instances wired as the seed start on 20 revocations (and epochs) no consumer had taken: both stores have all 20, whichever consumer takes which', async () => {
    const n = names('backlog')
    const sts = new CaracalCoordinator(admin, {
      hmacKey: STREAMS_HMAC_KEY,
      revokeStream: n.stream,
      delegationStream: n.delegationStream,
    })
    for (let i = 0; i < 20; i++) await sts.revokeSession({ zoneId: 'zone-1', sessionId: `sess-${i}` })
    for (let i = 0; i < 4; i++)
      await sts.createEdge({ zoneId: 'zone-1', edgeId: `e${i}`, sourceSessionId: 'a', targetSessionId: 'b' })
    const instances = ['fastmcp-server-1', 'fastmcp-server-2'].map((consumer) => {
      const redis = seedClient()
      // Caracal's wiring: the key goes to the consumers only (the store adopts it).
      const store = new RedisRevocationStore(redis, { failClosed: true, ...n.store })
      cleanups.push(() => store.close())
      const options = { consumer, streamHmacKey: STREAMS_HMAC_KEY, blockMs: 200, batchSize: 3 }
      const revocations = new RedisRevocationConsumer(redis, store, { ...options, ...n.revocations })
      const delegations = new RedisDelegationInvalidationConsumer(redis, store, { ...options, ...n.delegations })
      return { store, consumers: [revocations, delegations] }
    })
    const revokedIn = (store: RedisRevocationStore) =>
      Array.from({ length: 20 }, (_, i) => store.isRevoked(`sess-${i}`)).filter((r) => r === true).length
    await Promise.all(instances.map((i) => i.store.ready()))
    // Loaded: before any consumer ran, from the streams themselves.
    for (const { store } of instances) {
      expect(revokedIn(store)).toBe(20)
      expect(store.currentDelegationEpoch('zone-1')).toBe(4)
    }
    for (const { consumers } of instances) await Promise.all(consumers.map((c) => c.ensureGroup()))
    const loops = instances.flatMap(({ consumers }) => consumers.map((c) => pollLoop(c)))
    await eventually(
      () => loops.reduce((sum, l) => sum + l.handled(), 0) === 24,
      5_000,
      'the consumers to share out the backlog',
    )
    for (const { store } of instances) {
      expect(revokedIn(store)).toBe(20)
      expect(store.currentDelegationEpoch('zone-1')).toBe(4)
    }
    const keys = Array.from({ length: 20 }, (_, i) => `${n.keyPrefix}sess-${i}`)
    expect(await admin.exists(...keys)).toBe(20)
    expect(await admin.get(`${n.keyPrefix}delegation-epoch:zone-1`)).toBe('4')
  })

  it("Caracal's wiring, the key given to the consumers only: the store adopts it, ignores unsigned (forged) events on Caracal's streams, and signs what it announces", async () => {
    const n = names('adopt')
    const redis = seedClient()
    const store = new RedisRevocationStore(redis, { failClosed: true, ...n.store })
    cleanups.push(() => store.close())
    const revocations = new RedisRevocationConsumer(redis, store, {
      consumer: 'fastmcp-server-1',
      streamHmacKey: STREAMS_HMAC_KEY,
      ...n.revocations,
    })
    const delegations = new RedisDelegationInvalidationConsumer(redis, store, {
      consumer: 'fastmcp-server-1',
      streamHmacKey: STREAMS_HMAC_KEY,
      ...n.delegations,
    })
    cleanups.push(
      () => revocations.close(),
      () => delegations.close(),
    )
    await store.ready()
    const sts = new CaracalCoordinator(admin, {
      hmacKey: STREAMS_HMAC_KEY,
      revokeStream: n.stream,
      delegationStream: n.delegationStream,
    })
    // Anyone who can XADD: unsigned events on both of Caracal's streams.
    await sts.revokeSession({ zoneId: 'zone-1', sessionId: 'sess-forged' }, { unsigned: true })
    await sts.createEdge(
      { zoneId: 'zone-1', edgeId: 'e1', sourceSessionId: 'a', targetSessionId: 'b' },
      { unsigned: true },
    )
    await sts.revokeSession({ zoneId: 'zone-1', sessionId: 'sess-real' })
    await eventually(() => store.isRevoked('sess-real') === true, 2_000, 'the signed revocation')
    expect(store.isRevoked('sess-forged')).toBe(false)
    expect(store.currentDelegationEpoch('zone-1')).toBe(0)
    expect(store.state()).toMatchObject({ applied: 1, refused: 2 })
    // Its announcements are signed with the adopted key.
    await store.markRevoked('sess-announced')
    const [[, flat]] = (await admin.xrange(n.peerStream, '-', '+')) as [[string, string[]]]
    expect(verifyRevocationSignature(STREAMS_HMAC_KEY, n.peerStream, fieldsOf(flat))).toBe(true)
  })

  it('pollOnce blocks up to blockMs on a connection of its own, returns early with what arrived, and an idle loop costs < 5% of a core', async () => {
    const n = names('poll')
    const redis = seedClient()
    const revocations = new RedisRevocationConsumer(redis, undefined, {
      consumer: 'c1',
      blockMs: 400,
      ...n.revocations,
    })
    const delegations = new RedisDelegationInvalidationConsumer(redis, undefined, {
      consumer: 'c1',
      blockMs: 400,
      ...n.delegations,
    })
    cleanups.push(
      () => revocations.close(),
      () => delegations.close(),
    )
    await Promise.all([revocations.ensureGroup(), delegations.ensureGroup()])

    let t0 = performance.now()
    const idle = revocations.pollOnce()
    // Meanwhile the user's client is free.
    const ping0 = performance.now()
    await redis.ping()
    expect(performance.now() - ping0).toBeLessThan(100)
    expect(await idle).toBe(0)
    expect(performance.now() - t0).toBeGreaterThanOrEqual(350)

    t0 = performance.now()
    const waiting = revocations.pollOnce()
    await sleep(50)
    await admin.xadd(n.stream, '*', 'zone_id', 'z', 'session_id', 's1')
    expect(await waiting).toBe(1)
    expect(performance.now() - t0).toBeLessThan(300)

    const loops = [pollLoop(revocations), pollLoop(delegations)]
    await sleep(100)
    const wall0 = performance.now()
    const cpu0 = process.cpuUsage()
    await sleep(2_000)
    const cpu = process.cpuUsage(cpu0)
    const wallMs = performance.now() - wall0
    const share = (cpu.user + cpu.system) / 1000 / wallMs
    expect(share).toBeLessThan(0.05)
    // One blocked read per blockMs and loop, give or take.
    for (const loop of loops) expect(loop.polls()).toBeLessThanOrEqual(8)
    for (const loop of loops) await loop.stop()
    await expect(revocations.pollOnce()).rejects.toThrow(/closed/)
  })

  it('a retrying pollOnce loop stays idle when Redis answers errors at once (WRONGTYPE): each failed poll waits min(blockMs, 1 s), and close() cuts the wait short', async () => {
    const n = names('wrongtype')
    await admin.set(n.stream, 'not a stream')
    const consumer = new RedisRevocationConsumer(seedClient(), undefined, { consumer: 'c1', ...n.revocations })
    const errors: string[] = []
    let running = true
    const loop = (async () => {
      while (running) await consumer.pollOnce().catch((error: Error) => errors.push(error.message))
    })()
    // Stopped before close(), even when an assertion fails: a closed consumer rejects at once.
    cleanups.push(async () => {
      running = false
      await consumer.close()
      await loop
    })
    await eventually(() => errors.length >= 1, 3_000, 'the first failed poll')
    const wall0 = performance.now()
    const cpu0 = process.cpuUsage()
    const before = errors.length
    await sleep(2_000)
    const cpu = process.cpuUsage(cpu0)
    const share = (cpu.user + cpu.system) / 1000 / (performance.now() - wall0)
    expect(share).toBeLessThan(0.05)
    // blockMs is 5 s by default: about one failed poll a second.
    expect(errors.length - before).toBeGreaterThanOrEqual(1)
    expect(errors.length - before).toBeLessThanOrEqual(3)
    expect(errors.every((m) => /WRONGTYPE/.test(m))).toBe(true)
    running = false
    const t0 = performance.now()
    await consumer.close()
    await loop
    expect(performance.now() - t0).toBeLessThan(200)
  })

  it('run({ signal }) stops within ~1 s of abort, even blocked in a 5 s read; close() ends a run too', async () => {
    const n = names('run')
    const redis = seedClient()
    for (const make of [
      () => new RedisRevocationConsumer(redis, undefined, { consumer: 'c1', ...n.revocations }),
      () => new RedisDelegationInvalidationConsumer(redis, undefined, { consumer: 'c1', ...n.delegations }),
    ]) {
      const consumer = make()
      cleanups.push(() => consumer.close())
      const stop = new AbortController()
      const running = consumer.run({ signal: stop.signal })
      // Let it reach the blocking read (the default blockMs is 5 s).
      await sleep(300)
      const t0 = performance.now()
      stop.abort()
      await running
      expect(performance.now() - t0).toBeLessThan(1_000)

      const again = consumer.run({})
      await sleep(200)
      const t1 = performance.now()
      await consumer.close()
      await again
      expect(performance.now() - t1).toBeLessThan(1_000)
    }
  })
})
