import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import type { Redis } from 'ioredis'
import {
  RedisDelegationInvalidationConsumer,
  RedisRevocationConsumer,
  RedisRevocationStore,
  signRevocationEvent,
} from '../src/redis.js'
import {
  closeClients,
  connectedClient,
  describeWithRedis,
  dropNamespace,
  eventually,
  redisClient,
  uniqueNames,
} from './support/redis.js'

const HMAC_KEY = 'stream-secret'
/** pollOnce blocks this long when nothing is new. */
const POLL_BLOCK_MS = 50

function signedFields(stream: string, fields: Record<string, string>, key = HMAC_KEY): string[] {
  return Object.entries({ ...fields, _sig: signRevocationEvent(Buffer.from(key), stream, fields) }).flat()
}

/** A store stand-in that records what the consumer applies. */
class RecordingMirror {
  readonly applied: [string, number][] = []
  applyRevocation(anchor: string, ttlMs: number): void {
    this.applied.push([anchor, ttlMs])
  }
}

describeWithRedis('RedisRevocationConsumer against Redis', () => {
  let admin: Redis
  const namespaces: string[] = []
  const stores: RedisRevocationStore[] = []
  const consumers: RedisRevocationConsumer[] = []

  function track(consumer: RedisRevocationConsumer): RedisRevocationConsumer {
    consumers.push(consumer)
    return consumer
  }

  function names(label: string) {
    const n = uniqueNames(label)
    namespaces.push(n.namespace)
    return n
  }

  async function pendingCount(stream: string, group = 'resource-revocation'): Promise<number> {
    const [count] = (await admin.xpending(stream, group)) as [number]
    return count
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

  it('ensureGroup creates the stream and group once and leaves an existing group alone', async () => {
    const n = names('group')
    const consumer = track(
      new RedisRevocationConsumer({ redis: admin, blockMs: POLL_BLOCK_MS, consumer: 'c1', ...n.revocations }),
    )
    await consumer.ensureGroup()
    await consumer.ensureGroup()
    const groups = (await admin.xinfo('GROUPS', n.stream)) as unknown[][]
    expect(groups).toHaveLength(1)
    expect(groups[0]).toContain('resource-revocation')
  })

  it('applies a signed event: durable keys with the default TTL (ttl_ms ignored), applied to its store, acknowledged', async () => {
    const n = names('apply')
    const mirror = new RecordingMirror()
    const consumer = track(
      new RedisRevocationConsumer({
        redis: admin,
        blockMs: POLL_BLOCK_MS,
        store: mirror,
        consumer: 'c1',
        streamHmacKey: HMAC_KEY,
        ...n.revocations,
      }),
    )
    await consumer.ensureGroup()
    await admin.xadd(
      n.stream,
      '*',
      ...signedFields(n.stream, { zone_id: 'z', session_id: 's1', agent_session_id: 'a1', reason: 'r' }),
    )
    await admin.xadd(
      n.stream,
      '*',
      ...signedFields(n.stream, { zone_id: 'z', sid: 's2', reason: 'r', ttl_ms: '90000' }),
    )
    expect(await consumer.pollOnce()).toBe(2)
    // Caracal never sends ttl_ms: on its stream the field is ignored, whatever it says.
    expect(mirror.applied).toEqual([
      ['s1', 86_400_000],
      ['a1', 86_400_000],
      ['s2', 86_400_000],
    ])
    expect(await admin.get(`${n.keyPrefix}s1`)).toBe('1')
    expect(await admin.pttl(`${n.keyPrefix}a1`)).toBeGreaterThan(86_000_000)
    const ttl = await admin.pttl(`${n.keyPrefix}s2`)
    expect(ttl).toBeGreaterThan(86_000_000)
    expect(ttl).toBeLessThanOrEqual(86_400_000)
    expect(await pendingCount(n.stream)).toBe(0)
    expect(consumer.stats()).toMatchObject({ applied: 2, deadLettered: {} })
    expect(await consumer.pollOnce()).toBe(0)
  })

  it('dead-letters a bad signature, an unsigned event and an event with no anchor, changing nothing', async () => {
    const n = names('dead')
    const mirror = new RecordingMirror()
    const consumer = track(
      new RedisRevocationConsumer({
        redis: admin,
        blockMs: POLL_BLOCK_MS,
        store: mirror,
        consumer: 'c1',
        streamHmacKey: HMAC_KEY,
        ...n.revocations,
      }),
    )
    await consumer.ensureGroup()
    const badSig = await admin.xadd(
      n.stream,
      '*',
      ...signedFields(n.stream, { zone_id: 'z', session_id: 'victim', reason: 'r' }, 'wrong-key'),
    )
    const unsigned = await admin.xadd(n.stream, '*', 'zone_id', 'z', 'session_id', 'victim2', 'reason', 'r')
    const noAnchor = await admin.xadd(n.stream, '*', ...signedFields(n.stream, { zone_id: 'z', reason: 'r' }))
    const duplicated = await admin.xadd(n.stream, '*', 'session_id', 'victim3', 'session_id', 'victim4')
    expect(await consumer.pollOnce()).toBe(4)
    expect(mirror.applied).toEqual([])
    expect(
      await admin.exists(
        `${n.keyPrefix}victim`,
        `${n.keyPrefix}victim2`,
        `${n.keyPrefix}victim3`,
        `${n.keyPrefix}victim4`,
      ),
    ).toBe(0)
    expect(await pendingCount(n.stream)).toBe(0)
    const dead = (await admin.xrange(`${n.stream}.dead`, '-', '+')).map(([, flat]) =>
      Object.fromEntries(Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i]!, flat[2 * i + 1]!])),
    )
    expect(dead.map((d) => [d.source_id, d.reason])).toEqual([
      [badSig, 'invalid_signature'],
      [unsigned, 'invalid_signature'],
      [noAnchor, 'missing_revocation_anchor'],
      [duplicated, 'malformed_event'],
    ])
    expect(JSON.parse(dead[1]!.payload!)).toEqual({ zone_id: 'z', session_id: 'victim2', reason: 'r' })
    expect(consumer.stats().deadLettered).toEqual({
      invalid_signature: 2,
      missing_revocation_anchor: 1,
      malformed_event: 1,
    })
  })

  it("dead-letters an event naming an anchor that would be a zone's epoch key as invalid_anchor; the epoch key is untouched", async () => {
    const n = names('reserved')
    const mirror = new RecordingMirror()
    const epochKey = `${n.keyPrefix}delegation-epoch:zone-1`
    await admin.set(epochKey, '7', 'PX', 60_000)
    const consumer = track(
      new RedisRevocationConsumer(admin, mirror, { consumer: 'c1', blockMs: POLL_BLOCK_MS, ...n.revocations }),
    )
    await consumer.ensureGroup()
    const id = await admin.xadd(
      n.stream,
      '*',
      ...['zone_id', 'z', 'session_id', 'sess-1', 'agent_session_id', 'delegation-epoch:zone-1', 'reason', 'r'],
    )
    expect(await consumer.pollOnce()).toBe(1)
    expect(mirror.applied).toEqual([])
    expect(await admin.get(epochKey)).toBe('7')
    expect(await admin.pttl(epochKey)).toBeLessThanOrEqual(60_000)
    expect(await admin.exists(`${n.keyPrefix}sess-1`)).toBe(0)
    const dead = await admin.xrange(`${n.stream}.dead`, '-', '+')
    expect(dead.map(([, flat]) => [flat[1], flat[3]])).toEqual([[id, 'invalid_anchor']])
    expect(consumer.stats().deadLettered).toEqual({ invalid_anchor: 1 })
    expect(await pendingCount(n.stream)).toBe(0)
  })

  it('rounds a fractional TTL up for PX, as the store does, instead of failing the entry forever', async () => {
    const n = names('fraction')
    const mirror = new RecordingMirror()
    const consumer = track(
      new RedisRevocationConsumer(admin, mirror, {
        consumer: 'c1',
        defaultTtlMs: 60_000.5,
        blockMs: POLL_BLOCK_MS,
        ...n.revocations,
      }),
    )
    await consumer.ensureGroup()
    await admin.xadd(n.stream, '*', 'zone_id', 'z', 'session_id', 'fractional', 'reason', 'r')
    expect(await consumer.pollOnce()).toBe(1)
    expect(consumer.stats()).toMatchObject({ applied: 1, deadLettered: {} })
    const ttl = await admin.pttl(`${n.keyPrefix}fractional`)
    expect(ttl).toBeGreaterThan(59_000)
    expect(ttl).toBeLessThanOrEqual(60_001)
    expect(await pendingCount(n.stream)).toBe(0)
  })

  it('caps the dead-letter stream near its limit', async () => {
    const n = names('cap')
    const consumer = track(
      new RedisRevocationConsumer({
        redis: admin,
        blockMs: POLL_BLOCK_MS,
        consumer: 'c1',
        streamHmacKey: HMAC_KEY,
        deadLetterMaxLength: 10,
        batchSize: 500,
        ...n.revocations,
      }),
    )
    await consumer.ensureGroup()
    const pipeline = admin.pipeline()
    for (let i = 0; i < 400; i++) pipeline.xadd(n.stream, '*', 'session_id', `u${i}`)
    await pipeline.exec()
    await consumer.pollOnce()
    // MAXLEN ~ trims whole radix-tree nodes (100 entries by default): near the cap, far below 400.
    expect(await admin.xlen(`${n.stream}.dead`)).toBeLessThanOrEqual(110)
  })

  it('without a key, accepts unsigned events (the backend default)', async () => {
    const n = names('nokey')
    const mirror = new RecordingMirror()
    const consumer = track(
      new RedisRevocationConsumer({
        redis: admin,
        blockMs: POLL_BLOCK_MS,
        store: mirror,
        consumer: 'c1',
        ...n.revocations,
      }),
    )
    await consumer.ensureGroup()
    await admin.xadd(n.stream, '*', 'zone_id', 'z', 'session_id', 'plain', 'reason', 'r')
    await consumer.pollOnce()
    expect(mirror.applied.map(([a]) => a)).toEqual(['plain'])
  })

  it('a consumer killed mid-batch leaves pending entries that another reclaims; nothing lost, nothing doubled', async () => {
    const n = names('reclaim')
    const crashing = {
      calls: 0,
      applyRevocation() {
        if (++this.calls === 4) throw new Error('process died')
      },
    }
    const first = track(
      new RedisRevocationConsumer({
        redis: admin,
        blockMs: POLL_BLOCK_MS,
        store: crashing,
        consumer: 'dies',
        streamHmacKey: HMAC_KEY,
        batchSize: 10,
        ...n.revocations,
      }),
    )
    await first.ensureGroup()
    for (let i = 0; i < 10; i++)
      await admin.xadd(n.stream, '*', ...signedFields(n.stream, { zone_id: 'z', session_id: `r${i}`, reason: 'r' }))
    await expect(first.pollOnce()).rejects.toThrow('process died')
    // Three handled and acknowledged, seven delivered to the dead consumer and never acknowledged.
    expect(first.stats().applied).toBe(3)
    expect(await pendingCount(n.stream)).toBe(7)

    const mirror = new RecordingMirror()
    const second = track(
      new RedisRevocationConsumer({
        redis: admin,
        blockMs: POLL_BLOCK_MS,
        store: mirror,
        consumer: 'survivor',
        streamHmacKey: HMAC_KEY,
        pendingIdleMs: 400,
        ...n.revocations,
      }),
    )
    // Not yet idle long enough: a slow consumer is not robbed.
    expect(await second.pollOnce()).toBe(0)
    await new Promise((r) => setTimeout(r, 450))
    expect(await second.pollOnce()).toBe(7)
    expect(second.stats()).toMatchObject({ reclaimed: 7, applied: 7 })
    expect(mirror.applied.map(([a]) => a)).toEqual(['r3', 'r4', 'r5', 'r6', 'r7', 'r8', 'r9'])
    expect(await pendingCount(n.stream)).toBe(0)
    expect(await admin.exists(...Array.from({ length: 10 }, (_, i) => `${n.keyPrefix}r${i}`))).toBe(10)
    expect(await second.pollOnce()).toBe(0)
  })

  it('dead-letters an entry that fails on every delivery once it has been delivered maxDeliveries times (delivery_limit), and the next one goes through', async () => {
    const n = names('limit')
    let failing = true
    const store = {
      applied: [] as string[],
      applyRevocation(anchor: string): void {
        if (failing && anchor === 'poison') throw new Error('store broke')
        this.applied.push(anchor)
      },
    }
    const consumer = track(
      new RedisRevocationConsumer({
        redis: admin,
        store,
        blockMs: POLL_BLOCK_MS,
        consumer: 'c1',
        pendingIdleMs: 0,
        maxDeliveries: 3,
        ...n.revocations,
      }),
    )
    await consumer.ensureGroup()
    await admin.xadd(n.stream, '*', ...signedFields(n.stream, { zone_id: 'z', session_id: 'poison', reason: 'r' }))
    // Delivery 1 (new), then 2 and 3 (reclaimed): each fails and the entry stays pending.
    for (let delivery = 1; delivery <= 3; delivery++) await expect(consumer.pollOnce()).rejects.toThrow('store broke')
    expect(await pendingCount(n.stream)).toBe(1)
    // Delivery 4 is past the cap: dead-lettered with its reason and the count, and acknowledged.
    await consumer.pollOnce()
    expect(await pendingCount(n.stream)).toBe(0)
    const dead = (await admin.xrange(`${n.stream}.dead`, '-', '+')) as [string, string[]][]
    expect(dead).toHaveLength(1)
    const fields = Object.fromEntries(
      Array.from({ length: dead[0]![1].length / 2 }, (_, i) => [dead[0]![1][2 * i], dead[0]![1][2 * i + 1]]),
    )
    expect(fields).toMatchObject({ reason: 'delivery_limit', deliveries: '4' })
    expect(JSON.parse(fields.payload!)).toMatchObject({ session_id: 'poison' })
    expect(consumer.stats().deadLettered).toEqual({ delivery_limit: 1 })
    // The stream is not stuck behind it.
    failing = false
    await admin.xadd(n.stream, '*', ...signedFields(n.stream, { zone_id: 'z', session_id: 'next', reason: 'r' }))
    await consumer.pollOnce()
    expect(store.applied).toEqual(['next'])
  })

  it('run() picks up its own pending entries after a restart, follows new events, and stops on abort while blocked', async () => {
    const n = names('run')
    const store = new RedisRevocationStore({ redis: redisClient(), streamHmacKey: HMAC_KEY, ...n.store })
    stores.push(store)
    await store.ready()
    const consumer = track(
      new RedisRevocationConsumer({
        redis: admin,
        store,
        consumer: 'c1',
        streamHmacKey: HMAC_KEY,
        blockMs: 5_000,
        ...n.revocations,
      }),
    )
    await consumer.ensureGroup()
    // A previous run of 'c1' read this entry and died before acknowledging it.
    await admin.xadd(n.stream, '*', ...signedFields(n.stream, { zone_id: 'z', session_id: 'left-over', reason: 'r' }))
    await admin.xreadgroup('GROUP', 'resource-revocation', 'c1', 'COUNT', 10, 'STREAMS', n.stream, '>')
    expect(await pendingCount(n.stream)).toBe(1)

    const stop = new AbortController()
    const running = consumer.run({ signal: stop.signal })
    await eventually(() => consumer.stats().applied === 1, 3_000, 'the left-over entry')
    await admin.xadd(n.stream, '*', ...signedFields(n.stream, { zone_id: 'z', session_id: 'fresh', reason: 'r' }))
    await eventually(() => consumer.stats().applied === 2, 3_000, 'the new entry')
    expect(await admin.exists(`${n.keyPrefix}left-over`, `${n.keyPrefix}fresh`)).toBe(2)
    // Applying to the store never publishes: the stream still holds only the two events.
    expect(await admin.xlen(n.stream)).toBe(2)
    expect(store.isRevoked('fresh')).toBe(true)
    expect(await pendingCount(n.stream)).toBe(0)

    await new Promise((r) => setTimeout(r, 50))
    const t0 = performance.now()
    stop.abort()
    await running
    // The 5 s block did not hold it up.
    expect(performance.now() - t0).toBeLessThan(1_000)
  })

  it("its streamHmacKey must be its store's: a store without one adopts it, another key or none on a keyed store is a TypeError naming streamHmacKey", () => {
    const n = names('keys')
    const track = (s: RedisRevocationStore) => {
      stores.push(s)
      return s
    }
    // Adopted: the store now requires it, so a consumer with another key (or none) is refused.
    const keyless = track(new RedisRevocationStore(admin, { ...n.store }))
    expect(
      () => new RedisRevocationConsumer(admin, keyless, { consumer: 'c1', streamHmacKey: HMAC_KEY, ...n.revocations }),
    ).not.toThrow()
    for (const other of [{ streamHmacKey: 'another-key' }, {}]) {
      expect(() => new RedisRevocationConsumer(admin, keyless, { consumer: 'c2', ...other, ...n.revocations })).toThrow(
        TypeError,
      )
      expect(
        () => new RedisDelegationInvalidationConsumer(admin, keyless, { consumer: 'c2', ...other, ...n.delegations }),
      ).toThrow(/RedisDelegationInvalidationConsumer option "streamHmacKey"/)
    }
    // The same bytes, as a Buffer: the same key.
    expect(
      () =>
        new RedisDelegationInvalidationConsumer(admin, keyless, {
          consumer: 'c1',
          streamHmacKey: Buffer.from(HMAC_KEY),
          ...n.delegations,
        }),
    ).not.toThrow()

    const keyed = track(new RedisRevocationStore(admin, { streamHmacKey: HMAC_KEY, ...n.store }))
    expect(
      () =>
        new RedisRevocationConsumer(admin, keyed, { consumer: 'c1', streamHmacKey: 'another-key', ...n.revocations }),
    ).toThrow(`RedisRevocationConsumer option "streamHmacKey" differs from its store's streamHmacKey`)
    expect(() => new RedisRevocationConsumer(admin, keyed, { consumer: 'c1', ...n.revocations })).toThrow(
      `RedisRevocationConsumer option "streamHmacKey" is missing, but its store has one`,
    )
    // A consumer whose construction fails changes nothing: this store keeps no key.
    const untouched = track(new RedisRevocationStore(admin, { ...n.store }))
    expect(
      () => new RedisRevocationConsumer(admin, untouched, { consumer: 'c1', streamHmacKey: HMAC_KEY, blockMs: 0 }),
    ).toThrow(/blockMs/)
    expect(() => new RedisRevocationConsumer(admin, untouched, { consumer: 'c1', ...n.revocations })).not.toThrow()
    // Neither has a key, or the store is not a RedisRevocationStore: nothing to agree on.
    expect(
      () => new RedisRevocationConsumer(admin, new RecordingMirror(), { consumer: 'c1', streamHmacKey: 'k' }),
    ).not.toThrow()
  })

  it('validates its options with a TypeError that names the option', () => {
    expect(() => new RedisRevocationConsumer({ redis: admin, consumer: '' })).toThrow(/consumer/)
    expect(() => new RedisRevocationConsumer({ redis: admin, consumer: 'c', store: {} as RecordingMirror })).toThrow(
      /applyRevocation/,
    )
    expect(() => new RedisRevocationConsumer({ redis: admin, consumer: 'c', pendingIdleMs: -1 })).toThrow(
      /pendingIdleMs/,
    )
    expect(() => new RedisRevocationConsumer({ redis: admin, consumer: 'c', streamHmacKey: new Uint8Array() })).toThrow(
      /streamHmacKey/,
    )
    expect(() => new RedisRevocationConsumer({ redis: admin, consumer: 'c', blockMs: 0 })).toThrow(/blockMs/)
    expect(() => new RedisRevocationConsumer({ redis: admin, consumer: 'c', requireSignature: true })).toThrow(
      TypeError,
    )
    expect(() => new RedisRevocationConsumer({ redis: admin, consumer: 'c', requireSignature: true })).toThrow(
      'streamHmacKey is required when requireSignature is true',
    )
    expect(
      () => new RedisRevocationConsumer({ redis: admin, consumer: 'c', consumerName: 'docs-name' } as never),
    ).toThrow(/"consumerName" is not an option/)
    expect(() => new RedisRevocationConsumer(admin, undefined, { consumer: 'c', redis: admin } as never)).toThrow(
      /"redis" is given twice/,
    )
    expect(() => new RedisRevocationConsumer(admin, undefined, {} as never)).toThrow(/consumer/)
    // Caracal's key is a Buffer; a requireSignature: false next to a key does not switch the check off.
    expect(
      () =>
        new RedisRevocationConsumer(admin, undefined, {
          consumer: 'c',
          streamHmacKey: Buffer.from('k'),
          requireSignature: false,
        }),
    ).not.toThrow()
  })
})
