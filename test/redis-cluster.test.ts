/**
 * The Redis classes on a real Redis Cluster of three masters, driven through an ioredis `Cluster`
 * client as a user on a cluster wires them (README "Several gateway instances, one Redis", docs/architecture.md
 * "Revocation"). The streams and key prefix are Caracal's defaults: Caracal's stream names are
 * fixed, carry no hash tag, and do not share a slot (see the first test), so a store on a cluster
 * must read streams that live on different masters, and find durable keys on every master.
 *
 * The cluster is the file's own (started in beforeAll, about 2 s), flushed after each test.
 */
import { Cluster, type Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import { CaracalAuth, type CaracalAuthError, InMemoryRevocationStore } from '../src/index.js'
import {
  DEFAULT_CONSUMER_GROUP,
  DEFAULT_DELEGATION_GROUP,
  DELEGATION_INVALIDATION_STREAM,
  PEER_STREAM,
  REPLAY_KEY_PREFIX,
  REVOCATION_KEY_PREFIX,
  REVOCATION_STREAM,
  RedisDelegationInvalidationConsumer,
  RedisReplayStore,
  RedisRevocationConsumer,
  RedisRevocationStore,
  signRevocationEvent,
  type RedisClient,
} from '../src/redis.js'
import { AUDIENCE, ISSUER, NOW_MS, NOW_SEC, mint, staticJwks } from './support/mandates.js'
import { eventually } from './support/redis.js'
import {
  describeWithRedisTopology,
  nodeClient,
  startRedisCluster,
  type TestRedisCluster,
} from './support/redis-topologies.js'

const HMAC_KEY = 'stream-secret'
const EPOCH_KEY_PREFIX = `${REVOCATION_KEY_PREFIX}delegation-epoch:`
/** How long a store on the cluster gets for its first load: a load on three empty masters takes milliseconds. */
const LOAD_MS = 3_000

function signedFields(stream: string, fields: Record<string, string>): string[] {
  return Object.entries({ ...fields, _sig: signRevocationEvent(Buffer.from(HMAC_KEY), stream, fields) }).flat()
}

function authWith(options: { revocations?: RedisRevocationStore; replay?: RedisReplayStore }): CaracalAuth {
  return new CaracalAuth({
    issuer: ISSUER,
    audience: AUDIENCE,
    revocations: options.revocations ?? new InMemoryRevocationStore({ now: () => NOW_MS }),
    jwks: { keys: staticJwks },
    now: () => NOW_MS,
    ...(options.replay === undefined ? {} : { replay: options.replay }),
  })
}

const refusal = (p: Promise<unknown>): Promise<CaracalAuthError | undefined> =>
  p.then(
    () => undefined,
    (e: unknown) => e as CaracalAuthError,
  )

/** The classes take a `Cluster` as it is (their option types say `RedisClient`): no cast. */
const asClient = (cluster: Cluster): RedisClient => cluster

/** A store stand-in that records what the consumers apply. */
class RecordingMirror {
  readonly revoked: string[] = []
  readonly epochs: [string, number][] = []
  applyRevocation(anchor: string): void {
    this.revoked.push(anchor)
  }
  applyDelegationEpoch(zoneId: string, epoch: number): void {
    this.epochs.push([zoneId, epoch])
  }
}

describeWithRedisTopology('the Redis classes on a Redis Cluster of three masters', () => {
  let cluster: TestRedisCluster
  const clients: Cluster[] = []
  const stores: RedisRevocationStore[] = []
  const consumers: { close(): Promise<void> }[] = []

  /** A Cluster client as a user makes one: bounded waits on each node, the cluster's own defaults otherwise. */
  async function clusterClient(): Promise<Cluster> {
    const client = new Cluster([...cluster.startupNodes], {
      redisOptions: { connectTimeout: 2_000, commandTimeout: 2_000, maxRetriesPerRequest: 1 },
      clusterRetryStrategy: (attempt) => Math.min(50 * attempt, 1_000),
    })
    client.on('error', () => undefined)
    clients.push(client)
    if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve))
    return client
  }

  function store(client: Cluster, options: { batchSize?: number } = {}): RedisRevocationStore {
    const s = new RedisRevocationStore(asClient(client), { streamHmacKey: HMAC_KEY, ...options })
    stores.push(s)
    return s
  }

  /** `ready()`, or a failure that says why the store could not load (its last Redis error). */
  async function loaded(s: RedisRevocationStore): Promise<void> {
    try {
      await s.ready({ timeoutMs: LOAD_MS })
    } catch (error) {
      const { lastError, unavailable } = s.state()
      throw new Error(
        `store on the cluster not loaded within ${LOAD_MS} ms (${(error as Error).message}); ` +
          `unavailable: ${unavailable}; last Redis error: ${lastError ?? 'none'}`,
      )
    }
  }

  /** Runs `use` on a plain connection to the master that serves `key`: what is really stored there. */
  async function onOwner<T>(key: string, use: (node: Redis) => Promise<T>): Promise<T> {
    const node = nodeClient(await cluster.masterOf(key))
    try {
      return await use(node)
    } finally {
      node.disconnect()
    }
  }

  /** One pass, or why it failed (the Redis error), so a failure says what Redis refused. */
  const polled = (consumer: { pollOnce(): Promise<number> }): Promise<number | string> =>
    consumer.pollOnce().catch((error: unknown) => `pollOnce rejected: ${(error as Error).message}`)

  /** Entries delivered to `group` and not acknowledged, on the master that owns `stream`. */
  const pending = async (stream: string, group: string): Promise<number> =>
    ((await onOwner(stream, (node) => node.xpending(stream, group))) as [number])[0]

  beforeAll(async () => {
    cluster = await startRedisCluster(3)
  })

  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((c) => c.close()))
    await Promise.all(stores.splice(0).map((s) => s.close()))
    for (const port of cluster.ports) {
      const node = nodeClient(port)
      await node.flushall()
      node.disconnect()
    }
  })

  afterAll(async () => {
    for (const client of clients.splice(0)) client.disconnect()
    await cluster?.stop()
  })

  it("Caracal's default streams live on different masters (what every test below relies on)", async () => {
    const owners = await Promise.all(
      [REVOCATION_STREAM, DELEGATION_INVALIDATION_STREAM, PEER_STREAM].map((s) => cluster.masterOf(s)),
    )
    expect(new Set(owners).size).toBeGreaterThan(1)
  })

  it('a store on a Cluster client loads the durable revocations and epochs written on every master', async () => {
    const anchors = await cluster.spread(
      6,
      (i) => `sess-spread-${i}`,
      (a) => REVOCATION_KEY_PREFIX + a,
    )
    const zones = await cluster.spread(
      3,
      (i) => `zone-spread-${i}`,
      (z) => EPOCH_KEY_PREFIX + z,
    )
    const owners = new Set(await Promise.all(anchors.map((a) => cluster.masterOf(REVOCATION_KEY_PREFIX + a))))
    expect(owners.size).toBe(3)
    const writer = await clusterClient()
    for (const a of anchors) await writer.set(REVOCATION_KEY_PREFIX + a, '1', 'PX', 60_000)
    for (const [i, z] of zones.entries()) await writer.set(EPOCH_KEY_PREFIX + z, String(10 + i), 'PX', 60_000)
    const s = store(await clusterClient(), { batchSize: 2 })
    await loaded(s)
    expect(anchors.filter((a) => s.isRevoked(a) !== true)).toEqual([])
    expect(zones.map((z) => s.currentDelegationEpoch(z))).toEqual([10, 11, 12])
    expect(s.isRevoked('never-revoked')).toBe(false)
    expect(s.state()).toMatchObject({ loaded: true, unavailable: undefined })
  })

  it("a store on a Cluster client follows signed events appended to Caracal's two streams, and ignores unsigned ones", async () => {
    const s = store(await clusterClient())
    await loaded(s)
    const publisher = await clusterClient()
    await publisher.xadd(
      REVOCATION_STREAM,
      '*',
      ...signedFields(REVOCATION_STREAM, { zone_id: 'z', session_id: 'followed', agent_session_id: 'followed-agent' }),
    )
    await publisher.xadd(REVOCATION_STREAM, '*', 'zone_id', 'z', 'session_id', 'unsigned', 'reason', 'r')
    await publisher.xadd(
      DELEGATION_INVALIDATION_STREAM,
      '*',
      ...signedFields(DELEGATION_INVALIDATION_STREAM, { zone_id: 'zone-9', epoch: '4' }),
    )
    await eventually(
      // Each stream has its own reader on a Cluster: the unsigned entry, read after `followed` on its
      // stream, may come after the epoch on the other — so its refusal is waited for too.
      () =>
        s.isRevoked('followed-agent') === true && s.currentDelegationEpoch('zone-9') === 4 && s.state().refused >= 1,
      2_000,
      `the store to follow both streams (state: ${JSON.stringify(s.state())})`,
    )
    expect(s.isRevoked('followed')).toBe(true)
    expect(s.isRevoked('unsigned')).toBe(false)
    expect(s.state()).toMatchObject({ refused: 1, unavailable: undefined })
  })

  it('markRevoked on a store reaches a second store on another Cluster client, and its durable key is on the master that owns it', async () => {
    const a = store(await clusterClient())
    const b = store(await clusterClient())
    await Promise.all([loaded(a), loaded(b)])
    const anchors = await cluster.spread(
      3,
      (i) => `marked-${i}`,
      (x) => REVOCATION_KEY_PREFIX + x,
    )
    for (const anchor of anchors) await a.markRevoked(anchor, 120_000)
    await eventually(
      () => anchors.every((anchor) => b.isRevoked(anchor) === true),
      2_000,
      `the second store to learn every revocation (state: ${JSON.stringify(b.state())})`,
    )
    for (const anchor of anchors) {
      const ttl = await onOwner(REVOCATION_KEY_PREFIX + anchor, (node) => node.pttl(REVOCATION_KEY_PREFIX + anchor))
      expect(ttl).toBeGreaterThan(110_000)
    }
    // Caracal's stream is Caracal's: announcements go to the peer stream only.
    expect(await onOwner(REVOCATION_STREAM, (node) => node.exists(REVOCATION_STREAM))).toBe(0)
  })

  it('the revocation consumer on a Cluster client makes an event durable on the masters that own its anchors, applies it to its store, and acks it', async () => {
    // A recording store: what the consumer does does not depend on a RedisRevocationStore loading.
    const mirror = new RecordingMirror()
    const consumer = new RedisRevocationConsumer(asClient(await clusterClient()), mirror, {
      consumer: 'c1',
      streamHmacKey: HMAC_KEY,
      blockMs: 50,
    })
    consumers.push(consumer)
    await consumer.ensureGroup()
    // One event whose anchors' durable keys live on three different masters.
    const anchors = await cluster.spread(
      3,
      (i) => `consumed-${i}`,
      (x) => REVOCATION_KEY_PREFIX + x,
    )
    const [session, agent, edge] = anchors as [string, string, string]
    const publisher = await clusterClient()
    await publisher.xadd(
      REVOCATION_STREAM,
      '*',
      ...signedFields(REVOCATION_STREAM, {
        zone_id: 'z',
        session_id: session,
        agent_session_id: agent,
        delegation_edge_id: edge,
        reason: 'r',
      }),
    )
    expect(await polled(consumer)).toBe(1)
    expect(consumer.stats()).toMatchObject({ applied: 1, deadLettered: {} })
    expect(mirror.revoked.sort()).toEqual([...anchors].sort())
    for (const anchor of anchors) {
      const key = REVOCATION_KEY_PREFIX + anchor
      expect(await onOwner(key, (node) => node.get(key))).toBe('1')
    }
    expect(await pending(REVOCATION_STREAM, DEFAULT_CONSUMER_GROUP)).toBe(0)
  })

  it('the delegation consumer on a Cluster client raises the durable epoch on the master that owns it, applies it to its store, and acks it', async () => {
    const mirror = new RecordingMirror()
    const consumer = new RedisDelegationInvalidationConsumer(asClient(await clusterClient()), mirror, {
      consumer: 'c1',
      streamHmacKey: HMAC_KEY,
      blockMs: 50,
    })
    consumers.push(consumer)
    await consumer.ensureGroup()
    const zones = await cluster.spread(
      3,
      (i) => `zone-consumed-${i}`,
      (z) => EPOCH_KEY_PREFIX + z,
    )
    const publisher = await clusterClient()
    for (const [i, zone] of zones.entries()) {
      await publisher.xadd(
        DELEGATION_INVALIDATION_STREAM,
        '*',
        ...signedFields(DELEGATION_INVALIDATION_STREAM, { zone_id: zone, epoch: String(6 + i) }),
      )
    }
    expect(await polled(consumer)).toBe(3)
    expect(consumer.stats()).toMatchObject({ applied: 3, deadLettered: {} })
    expect(mirror.epochs).toEqual(zones.map((zone, i) => [zone, 6 + i]))
    for (const [i, zone] of zones.entries()) {
      const key = EPOCH_KEY_PREFIX + zone
      expect(await onOwner(key, (node) => node.get(key))).toBe(String(6 + i))
    }
    expect(await pending(DELEGATION_INVALIDATION_STREAM, DEFAULT_DELEGATION_GROUP)).toBe(0)
  })

  it("the store's and the consumer's own connections on a Cluster are their own kind (named for operators in CLIENT LIST), not copies of the caller's", async () => {
    const client = await clusterClient()
    const s = store(client)
    const consumer = new RedisRevocationConsumer(asClient(client), new RecordingMirror(), {
      consumer: 'c1',
      streamHmacKey: HMAC_KEY,
      blockMs: 50,
    })
    consumers.push(consumer)
    await consumer.ensureGroup()
    await s.ready({ timeoutMs: 500 }).catch(() => undefined)
    const names = new Set<string>()
    for (const port of cluster.ports) {
      const node = nodeClient(port)
      const list = (await node.call('CLIENT', 'LIST')) as string
      node.disconnect()
      for (const match of list.matchAll(/ name=(\S+)/g)) names.add(match[1]!)
    }
    // Cluster.duplicate(startupNodes, options) is not Redis.duplicate(options): the overrides
    // (these names, and the blocking reader's fail-fast timeouts) must reach the connections.
    expect([...names].sort()).toEqual(
      expect.arrayContaining(['caracal-fastmcp:consumer:c1', 'caracal-fastmcp:mirror-reader']),
    )
  })

  it('RedisReplayStore on Cluster clients refuses the second use of a jti across two CaracalAuth instances, for jtis on every master', async () => {
    const jtis = await cluster.spread(
      6,
      (i) => `replay-spread-${i}`,
      (j) => REPLAY_KEY_PREFIX + j,
    )
    const tokens = jtis.map((jti) => mint({ jti, exp: NOW_SEC + 120 }))
    const gatewayA = authWith({ replay: new RedisReplayStore(asClient(await clusterClient())) })
    const gatewayB = authWith({ replay: new RedisReplayStore(asClient(await clusterClient())) })
    // Concurrent: one turn of the event loop, so one batch across slots on gateway A.
    const first = await Promise.all(tokens.map((t) => refusal(gatewayA.verify(t))))
    expect(first.map((e) => e?.code)).toEqual(tokens.map(() => undefined))
    const second = await Promise.all(tokens.map((t) => refusal(gatewayB.verify(t))))
    for (const e of second) {
      expect(e).toMatchObject({ code: 'token_replayed', description: 'mandate was already used', unavailable: false })
    }
    for (const jti of jtis) {
      const pttl = await onOwner(REPLAY_KEY_PREFIX + jti, (node) => node.pttl(REPLAY_KEY_PREFIX + jti))
      // Until exp, plus the 60 s another instance's clock may run behind (futureLeewaySec).
      expect(pttl).toBeGreaterThan(170_000)
      expect(pttl).toBeLessThanOrEqual(180_000)
    }
  })
})
