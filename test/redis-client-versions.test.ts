/**
 * The peer range says ioredis 5 and 6: the seed's wiring runs on a client of each major — the
 * first request before `ready()`, both consumers driven by `pollOnce()`, a stand-in coordinator's
 * events, and one instance's `markRevoked` reaching another without touching Caracal's stream.
 */
import { Redis as Redis5 } from 'ioredis'
import { Redis as Redis6 } from 'ioredis-6'
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import { CaracalAuth } from '../src/index.js'
import { RedisDelegationInvalidationConsumer, RedisRevocationConsumer, RedisRevocationStore } from '../src/redis.js'
import { CaracalCoordinator } from './support/caracal-coordinator.js'
import { AUDIENCE, ISSUER, NOW_MS, mint, staticJwks } from './support/mandates.js'
import {
  LOCAL_REDIS_PORT,
  closeClients,
  connectedClient,
  describeWithRedis,
  dropNamespace,
  eventually,
  uniqueNames,
} from './support/redis.js'

const CLIENTS = [
  ['ioredis 5', Redis5],
  ['ioredis 6', Redis6],
] as const

describeWithRedis('ioredis 5 and 6', () => {
  let admin: Redis5
  const cleanups: (() => Promise<void> | void)[] = []
  const namespaces: string[] = []

  beforeAll(async () => {
    admin = await connectedClient()
  })
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
    for (const ns of namespaces.splice(0)) await dropNamespace(admin, ns)
  })
  afterAll(() => closeClients())

  it.each(CLIENTS)(
    '%s: the seed wiring accepts at once, follows Caracal events and other instances',
    async (name, RedisClass) => {
      const n = uniqueNames(name.replace(' ', '-'))
      namespaces.push(n.namespace)
      // The library's types name the ioredis it is built against (5); 6 has the same API.
      const Client = RedisClass as unknown as typeof Redis5
      const client = () => {
        const redis = new Client({ host: '127.0.0.1', port: LOCAL_REDIS_PORT })
        redis.on('error', () => undefined)
        cleanups.push(() => redis.disconnect())
        return redis
      }
      const redis = client()
      const store = new RedisRevocationStore(redis, { failClosed: true, ...n.store })
      const other = new RedisRevocationStore(client(), { failClosed: true, ...n.store })
      cleanups.push(
        () => store.close(),
        () => other.close(),
      )
      const auth = new CaracalAuth({
        issuer: ISSUER,
        audience: AUDIENCE,
        revocations: store,
        jwks: { keys: staticJwks },
        now: () => NOW_MS,
      })
      cleanups.push(() => auth.close())
      await expect(auth.verify(mint({ zone_id: 'zone-1', delegation_graph_epoch: 1 }))).resolves.toMatchObject({
        graphEpoch: 1,
      })

      const consumers = [
        new RedisRevocationConsumer(redis, store, { consumer: 'gw-1', blockMs: 200, ...n.revocations }),
        new RedisDelegationInvalidationConsumer(redis, store, { consumer: 'gw-1', blockMs: 200, ...n.delegations }),
      ]
      for (const consumer of consumers) {
        cleanups.push(() => consumer.close())
        await consumer.ensureGroup()
      }
      const coordinator = new CaracalCoordinator(admin, {
        revokeStream: n.stream,
        delegationStream: n.delegationStream,
      })
      await coordinator.revokeSession({ zoneId: 'zone-1', sessionId: 'sess-x', agentSessionId: 'agent-x' })
      await coordinator.createEdge({ zoneId: 'zone-1', edgeId: 'e1', sourceSessionId: 'a', targetSessionId: 'b' })
      await coordinator.createEdge({ zoneId: 'zone-1', edgeId: 'e2', sourceSessionId: 'a', targetSessionId: 'c' })
      // As the seed drives them: pollOnce() until the events are in (each waits up to blockMs).
      let handled = 0
      const deadline = performance.now() + 5_000
      while (handled < 3 && performance.now() < deadline) {
        for (const consumer of consumers) handled += await consumer.pollOnce()
      }
      expect(handled).toBe(3)
      expect(await admin.get(`${n.keyPrefix}agent-x`)).toBe('1')
      expect(await admin.get(`${n.keyPrefix}delegation-epoch:zone-1`)).toBe('2')
      await expect(auth.verify(mint({ agent_session_id: 'agent-x' }))).rejects.toMatchObject({
        code: 'session_revoked',
      })
      await expect(auth.verify(mint({ zone_id: 'zone-1', delegation_graph_epoch: 1 }))).rejects.toMatchObject({
        code: 'delegation_stale',
      })

      await other.ready({ timeoutMs: 5_000 })
      await store.markRevoked('agent-y')
      await eventually(() => other.isRevoked('agent-y') === true, 2_000, 'the other instance to learn the revocation')
      expect(await admin.xlen(n.stream)).toBe(1)
    },
  )
})
