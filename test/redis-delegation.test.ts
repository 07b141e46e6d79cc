/**
 * Delegation epochs on Redis, as a Caracal deployment produces them: a stand-in coordinator
 * publishes on `caracal.delegations.invalidate`, `RedisDelegationInvalidationConsumer` makes the
 * epochs durable, and every `RedisRevocationStore` answers `currentDelegationEpoch` from its copy.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import type { Redis } from 'ioredis'
import { CaracalAuth } from '../src/index.js'
import {
  RedisDelegationInvalidationConsumer,
  RedisRevocationConsumer,
  RedisRevocationStore,
  type RedisRevocationStoreSettings,
} from '../src/redis.js'
import { CaracalCoordinator } from './support/caracal-coordinator.js'
import { AUDIENCE, ISSUER, NOW_MS, mint, staticJwks } from './support/mandates.js'
import {
  closeClients,
  connectedClient,
  describeWithRedis,
  dropNamespace,
  eventually,
  fieldsOf,
  redisClient,
  uniqueNames,
  type UniqueNames,
} from './support/redis.js'

/** STREAMS_HMAC_KEY is hex, at least 32 bytes; the coordinator and the gateway use its bytes. */
const STREAMS_HMAC_KEY = Buffer.from('5f'.repeat(32), 'hex')
const WRONG_KEY = Buffer.from('a0'.repeat(32), 'hex')
const ZONE = 'zone-1'
/** The bound the tests hold an event to; the bench measures how fast it really is. */
const EVENT_BOUND_MS = 1_000

describeWithRedis('delegation epochs against Redis', () => {
  let admin: Redis
  const namespaces: string[] = []
  const stores: RedisRevocationStore[] = []
  const consumers: (RedisDelegationInvalidationConsumer | RedisRevocationConsumer)[] = []

  function names(label: string): UniqueNames {
    const n = uniqueNames(label)
    namespaces.push(n.namespace)
    return n
  }

  function store(n: UniqueNames, options: RedisRevocationStoreSettings = {}): RedisRevocationStore {
    const s = new RedisRevocationStore(redisClient(), { failClosed: true, ...n.store, ...options })
    stores.push(s)
    return s
  }

  function consumer(
    n: UniqueNames,
    target: RedisRevocationStore | undefined,
    options: {
      streamHmacKey?: Buffer
      blockMs?: number
      defaultTtlMs?: number
      maxDeliveries?: number
      pendingIdleMs?: number
    } = {},
  ) {
    const c = new RedisDelegationInvalidationConsumer(admin, target, {
      consumer: 'fastmcp-server-1',
      blockMs: 50,
      ...n.delegations,
      ...options,
    })
    consumers.push(c)
    return c
  }

  function coordinator(n: UniqueNames, hmacKey?: Buffer): CaracalCoordinator {
    return new CaracalCoordinator(admin, { hmacKey, revokeStream: n.stream, delegationStream: n.delegationStream })
  }

  async function deadLetters(stream: string): Promise<Record<string, string>[]> {
    return (await admin.xrange(`${stream}.dead`, '-', '+')).map(([, flat]) => fieldsOf(flat))
  }

  beforeAll(async () => {
    admin = await connectedClient()
  })

  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((c) => c.close()))
    await Promise.all(stores.splice(0).map((s) => s.close()))
    for (const ns of namespaces.splice(0)) await dropNamespace(admin, ns)
  })

  afterAll(() => closeClients())

  it('loads zone epochs from the durable epoch keys at start, and never takes them for revoked anchors', async () => {
    const n = names('epoch-load')
    await admin.set(`${n.keyPrefix}delegation-epoch:${ZONE}`, '7', 'PX', 60_000)
    await admin.set(`${n.keyPrefix}delegation-epoch:zone-forever`, '3')
    await admin.set(`${n.keyPrefix}delegation-epoch:zone-garbled`, 'seven', 'PX', 60_000)
    await admin.set(`${n.keyPrefix}sess-1`, '1', 'PX', 60_000)
    const s = store(n)
    await s.ready()
    const answer = s.currentDelegationEpoch(ZONE)
    // Synchronous once loaded: no round trip per check.
    expect(answer).toBe(7)
    expect([
      s.currentDelegationEpoch('zone-forever'),
      s.currentDelegationEpoch('zone-garbled'),
      s.currentDelegationEpoch('zone-none'),
    ]).toEqual([3, 0, 0])
    expect(s.isRevoked('sess-1')).toBe(true)
    expect(s.isRevoked(`delegation-epoch:${ZONE}`)).toBe(false)
    expect(s.isRevoked('delegation-epoch:zone-forever')).toBe(false)
    expect(s.state().size).toBe(1)
  })

  it('raises the epoch within 1 s of each unsigned coordinator event (no key configured)', async () => {
    const n = names('epoch-unsigned')
    const s = store(n)
    await s.ready()
    const sts = coordinator(n)
    const created = await sts.createEdge({
      zoneId: ZONE,
      edgeId: 'edge-1',
      sourceSessionId: 'agent-a',
      targetSessionId: 'agent-b',
    })
    expect(created.fields).not.toHaveProperty('_sig')
    await eventually(() => s.currentDelegationEpoch(ZONE) === 1, EVENT_BOUND_MS, 'epoch 1')
    await sts.revokeEdge({ zoneId: ZONE, edgeId: 'edge-1', affectedEdges: 2 })
    await eventually(() => s.currentDelegationEpoch(ZONE) === 2, EVENT_BOUND_MS, 'epoch 2')
    await sts.expireEdges({ zoneId: ZONE, edgeIds: ['edge-2', 'edge-3'] })
    await eventually(() => s.currentDelegationEpoch(ZONE) === 3, EVENT_BOUND_MS, 'epoch 3')
    expect(s.currentDelegationEpoch('zone-other')).toBe(0)
  })

  it('with STREAMS_HMAC_KEY: signed events raise it; badly signed and unsigned ones are ignored by the mirror and dead-lettered by the consumer', async () => {
    const n = names('epoch-signed')
    const s = store(n, { streamHmacKey: STREAMS_HMAC_KEY })
    await s.ready()
    const c = consumer(n, undefined, { streamHmacKey: STREAMS_HMAC_KEY })
    await c.ensureGroup()
    const sts = coordinator(n, STREAMS_HMAC_KEY)
    const good1 = await sts.createEdge({
      zoneId: ZONE,
      edgeId: 'edge-1',
      sourceSessionId: 'agent-a',
      targetSessionId: 'agent-b',
    })
    expect(good1.fields._sig).toMatch(/^[0-9a-f]{64}$/)
    const forged = await sts.publish(
      n.delegationStream,
      'edge_revoke:edge-x',
      { event: 'edge_revoke', zone_id: ZONE, edge_id: 'edge-x', affected_edges: 1, epoch: 50 },
      { signWith: WRONG_KEY },
    )
    const unsigned = await sts.publish(
      n.delegationStream,
      'edge_revoke:edge-y',
      { event: 'edge_revoke', zone_id: ZONE, edge_id: 'edge-y', affected_edges: 1, epoch: 60 },
      { unsigned: true },
    )
    // An older coordinator's edge_create, without an epoch.
    const noEpoch = await sts.publish(n.delegationStream, 'edge_create:edge-z', {
      event: 'edge_create',
      zone_id: ZONE,
      edge_id: 'edge-z',
      source_session_id: 'a',
      target_session_id: 'b',
    })
    await sts.revokeEdge({ zoneId: ZONE, edgeId: 'edge-1' })
    await eventually(() => s.currentDelegationEpoch(ZONE) === 2, EVENT_BOUND_MS, 'the second signed epoch')
    // The mirror read all five in order: the three in between changed nothing.
    await eventually(() => s.state().applied + s.state().refused === 5, EVENT_BOUND_MS, 'all five events')
    expect(s.state()).toMatchObject({ applied: 2, refused: 3 })
    expect(s.currentDelegationEpoch(ZONE)).toBe(2)

    expect(await c.pollOnce()).toBe(5)
    expect(c.stats()).toMatchObject({ applied: 2, deadLettered: { invalid_signature: 2, invalid_delegation_epoch: 1 } })
    const dead = await deadLetters(n.delegationStream)
    expect(dead.map((d) => [d.source_id, d.reason])).toEqual([
      [forged.id, 'invalid_signature'],
      [unsigned.id, 'invalid_signature'],
      [noEpoch.id, 'invalid_delegation_epoch'],
    ])
    expect(JSON.parse(dead[0]!.payload!)).toMatchObject({ event: 'edge_revoke', epoch: '50', _sig: forged.fields._sig })
    expect(await admin.get(`${n.keyPrefix}delegation-epoch:${ZONE}`)).toBe('2')
    expect(await admin.pttl(`${n.keyPrefix}delegation-epoch:${ZONE}`)).toBeGreaterThan(86_000_000)
    const [pending] = (await admin.xpending(n.delegationStream, 'resource-delegation-invalidation')) as [number]
    expect(pending).toBe(0)
  })

  it('max semantics: a lower epoch never lowers it — in the mirror, the durable key, and markDelegationEpoch — and other instances learn a raise', async () => {
    const n = names('epoch-max')
    const a = store(n)
    const b = store(n)
    await Promise.all([a.ready(), b.ready()])
    const c = consumer(n, a)
    await c.ensureGroup()
    const sts = coordinator(n)
    const publish = (epoch: number) =>
      sts.publish(n.delegationStream, `edge_revoke:e${epoch}`, {
        event: 'edge_revoke',
        zone_id: ZONE,
        edge_id: `e${epoch}`,
        affected_edges: 1,
        epoch,
      })
    await publish(9)
    await publish(4)
    expect(await c.pollOnce()).toBe(2)
    expect(a.currentDelegationEpoch(ZONE)).toBe(9)
    expect(await admin.get(`${n.keyPrefix}delegation-epoch:${ZONE}`)).toBe('9')
    await eventually(() => b.state().applied === 2, EVENT_BOUND_MS, 'b to read both events')
    expect(b.currentDelegationEpoch(ZONE)).toBe(9)

    await a.markDelegationEpoch(ZONE, 3)
    expect(a.currentDelegationEpoch(ZONE)).toBe(9)
    expect(await admin.get(`${n.keyPrefix}delegation-epoch:${ZONE}`)).toBe('9')

    const raising = a.markDelegationEpoch(ZONE, 12, 60_000)
    // Applied here before any round trip.
    expect(a.currentDelegationEpoch(ZONE)).toBe(12)
    await raising
    expect(await admin.get(`${n.keyPrefix}delegation-epoch:${ZONE}`)).toBe('12')
    const ttl = await admin.pttl(`${n.keyPrefix}delegation-epoch:${ZONE}`)
    expect(ttl).toBeGreaterThan(50_000)
    expect(ttl).toBeLessThanOrEqual(60_000)
    await eventually(() => b.currentDelegationEpoch(ZONE) === 12, 2_000, 'the other instance to learn 12')
    // Through this library's own stream: Caracal's delegation stream holds only the coordinator's two.
    expect(await admin.xlen(n.delegationStream)).toBe(2)
    expect(await admin.xlen(n.peerStream)).toBe(2)
    expect(await admin.exists(n.stream)).toBe(0)
    await expect(a.markDelegationEpoch('', 1)).rejects.toThrow(TypeError)
    await expect(a.markDelegationEpoch(ZONE, 1.5)).rejects.toThrow(TypeError)
  })

  it('ensureGroup creates resource-delegation-invalidation at 0: a new group replays what the stream retains; a fractional TTL is rounded, not retried forever', async () => {
    const n = names('epoch-group')
    const sts = coordinator(n)
    await sts.createEdge({ zoneId: ZONE, edgeId: 'edge-1', sourceSessionId: 'a', targetSessionId: 'b' })
    await sts.createEdge({ zoneId: 'zone-2', edgeId: 'edge-2', sourceSessionId: 'a', targetSessionId: 'b' })
    const c = consumer(n, undefined, { defaultTtlMs: 90_000.4 })
    await c.ensureGroup()
    await c.ensureGroup()
    const groups = (await admin.xinfo('GROUPS', n.delegationStream)) as unknown[][]
    expect(groups).toHaveLength(1)
    expect(groups[0]).toContain('resource-delegation-invalidation')
    expect(await c.pollOnce()).toBe(2)
    expect(c.stats()).toMatchObject({ applied: 2, deadLettered: {} })
    expect(await admin.mget(`${n.keyPrefix}delegation-epoch:${ZONE}`, `${n.keyPrefix}delegation-epoch:zone-2`)).toEqual(
      ['1', '1'],
    )
    const ttl = await admin.pttl(`${n.keyPrefix}delegation-epoch:${ZONE}`)
    expect(ttl).toBeGreaterThan(80_000)
    expect(ttl).toBeLessThanOrEqual(90_001)
  })

  it('an event whose epoch key Redis refuses on every delivery (WRONGTYPE) is dead-lettered as delivery_limit after maxDeliveries, not reclaimed forever', async () => {
    const n = names('epoch-limit')
    await admin.hset(`${n.keyPrefix}delegation-epoch:${ZONE}`, 'not', 'a string') // GET answers WRONGTYPE
    const sts = coordinator(n)
    await sts.createEdge({ zoneId: ZONE, edgeId: 'edge-1', sourceSessionId: 'a', targetSessionId: 'b' })
    const c = consumer(n, undefined, { maxDeliveries: 2, pendingIdleMs: 0 })
    await c.ensureGroup()
    for (let delivery = 1; delivery <= 2; delivery++) await expect(c.pollOnce()).rejects.toThrow(/WRONGTYPE/)
    await c.pollOnce()
    expect(c.stats().deadLettered).toEqual({ delivery_limit: 1 })
    const [count] = (await admin.xpending(n.delegationStream, 'resource-delegation-invalidation')) as [number]
    expect(count).toBe(0)
    const dead = (await admin.xrange(`${n.delegationStream}.dead`, '-', '+')) as [string, string[]][]
    expect(dead.map(([, f]) => f[f.indexOf('reason') + 1])).toEqual(['delivery_limit'])
  })

  it("ttl_ms on Caracal's streams is ignored (the default TTL applies), in the consumers' durable keys and in the mirror; on the peer stream it counts", async () => {
    const n = names('epoch-ttl')
    const DEFAULT_TTL_MS = 400
    const a = store(n, { defaultTtlMs: DEFAULT_TTL_MS })
    const b = store(n, { defaultTtlMs: DEFAULT_TTL_MS })
    await Promise.all([a.ready(), b.ready()])
    const epochs = consumer(n, undefined, { defaultTtlMs: 60_000 })
    const revocations = new RedisRevocationConsumer(admin, undefined, {
      consumer: 'fastmcp-server-1',
      blockMs: 50,
      defaultTtlMs: 60_000,
      ...n.revocations,
    })
    consumers.push(revocations)
    await Promise.all([epochs.ensureGroup(), revocations.ensureGroup()])
    // Unsigned (no key configured anywhere), as anyone who can XADD may write them.
    await admin.xadd(
      n.delegationStream,
      '*',
      ...['zone_id', ZONE, 'epoch', String(Number.MAX_SAFE_INTEGER), 'ttl_ms', '9000000000000000'],
    )
    await admin.xadd(n.stream, '*', 'zone_id', ZONE, 'session_id', 'sess-eternal', 'ttl_ms', '9000000000000000')
    expect(await epochs.pollOnce()).toBe(1)
    expect(await revocations.pollOnce()).toBe(1)
    for (const key of [`${n.keyPrefix}delegation-epoch:${ZONE}`, `${n.keyPrefix}sess-eternal`]) {
      const ttl = await admin.pttl(key)
      expect(ttl).toBeGreaterThan(50_000)
      expect(ttl).toBeLessThanOrEqual(60_000)
    }
    await eventually(
      () => a.currentDelegationEpoch(ZONE) === Number.MAX_SAFE_INTEGER && a.isRevoked('sess-eternal') === true,
      EVENT_BOUND_MS,
      'the mirror to read both events',
    )
    // The mirror gave them its default TTL too.
    await eventually(
      () => a.currentDelegationEpoch(ZONE) === 0 && a.isRevoked('sess-eternal') === false,
      DEFAULT_TTL_MS + 1_000,
      'both to expire after the default TTL',
    )
    // This library's own announcements keep their ttl_ms.
    await a.markRevoked('sess-announced', 60_000)
    await eventually(() => b.isRevoked('sess-announced') === true, EVENT_BOUND_MS, 'b to learn the announcement')
    await new Promise((r) => setTimeout(r, DEFAULT_TTL_MS + 100))
    expect(b.isRevoked('sess-announced')).toBe(true)
  })

  it("end to end: a mandate issued at an epoch below its zone's current one is delegation_stale", async () => {
    const n = names('epoch-e2e')
    const s = store(n)
    const auth = new CaracalAuth({
      issuer: ISSUER,
      audience: AUDIENCE,
      revocations: s,
      jwks: { keys: staticJwks },
      now: () => NOW_MS,
    })
    const atEpoch = (epoch: number) => mint({ zone_id: ZONE, delegation_graph_epoch: epoch })
    const before = atEpoch(1)
    await expect(auth.verify(before)).resolves.toMatchObject({ zoneId: ZONE })
    const sts = coordinator(n)
    await sts.createEdge({ zoneId: ZONE, edgeId: 'edge-1', sourceSessionId: 'a', targetSessionId: 'b' })
    await sts.revokeEdge({ zoneId: ZONE, edgeId: 'edge-1' })
    await eventually(() => s.currentDelegationEpoch(ZONE) === 2, EVENT_BOUND_MS, 'epoch 2')
    // The same token again (a cache hit) is refused now; one issued at the current epoch passes.
    await expect(auth.verify(before)).rejects.toMatchObject({ code: 'delegation_stale', status: 401 })
    await expect(auth.verify(atEpoch(2))).resolves.toMatchObject({ zoneId: ZONE })
    // A mandate without the claim, or of another zone, is not affected.
    await expect(auth.verify(mint({ zone_id: ZONE }))).resolves.toBeDefined()
    await expect(auth.verify(mint({ zone_id: 'zone-other', delegation_graph_epoch: 0 }))).resolves.toBeDefined()
    await auth.close()
  })
})
