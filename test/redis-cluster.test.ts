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
  DEFAULT_DELEGATION_GROUP,
  DELEGATION_INVALIDATION_STREAM,
  PEER_STREAM,
  REPLAY_KEY_PREFIX,
  REVOCATION_KEY_PREFIX,
  REVOCATION_STREAM,
  RedisDelegationInvalidationConsumer,
  RedisReplayStore,
  signRevocationEvent,
} from '../src/redis.js'
import { AUDIENCE, ISSUER, NOW_MS, NOW_SEC, mint, staticJwks } from './support/mandates.js'
import {
  describeWithRedisTopology,
  nodeClient,
  startRedisCluster,
  type TestRedisCluster,
} from './support/redis-topologies.js'

const HMAC_KEY = 'stream-secret'
const EPOCH_KEY_PREFIX = `${REVOCATION_KEY_PREFIX}delegation-epoch:`

function signedFields(stream: string, fields: Record<string, string>): string[] {
  return Object.entries({ ...fields, _sig: signRevocationEvent(Buffer.from(HMAC_KEY), stream, fields) }).flat()
}

function authWith(options: { replay?: RedisReplayStore }): CaracalAuth {
  return new CaracalAuth({
    issuer: ISSUER,
    audience: AUDIENCE,
    revocations: new InMemoryRevocationStore({ now: () => NOW_MS }),
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

/**
 * The classes' option types name `Redis` only, though a `Cluster` has the same command surface
 * (RedisReplayStore's documentation says "or Cluster"): a user on a cluster needs this cast.
 */
const asClient = (cluster: Cluster): Redis => cluster as unknown as Redis

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
      expect(pttl).toBeGreaterThan(110_000)
      expect(pttl).toBeLessThanOrEqual(120_000)
    }
  })
})
