/**
 * `caracal-fastmcp/compat/revocation-redis` as `@caracalai/revocation-redis` is used: the calls of
 * Caracal's own tests (a structural test double for a client) and of its docs (an ioredis client,
 * against Redis at 127.0.0.1:6379), with only the import specifier changed; every exported constant
 * and default against the values Caracal's source (`packages/backends/redis/ts/src/revocation.ts`)
 * defines, written out here; and the deployment rules through the entry point: delegation epochs,
 * TTLs, dead letters, fail-closed answers, and which engine serves which client.
 */
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { CaracalAuth } from '../src/index.js'
import { InMemoryRevocationStore } from '../src/compat/revocation.js'
import * as compat from '../src/compat/revocation-redis.js'
import {
  DEFAULT_DEAD_LETTER_MAX_LENGTH,
  DEFAULT_REVOCATION_TTL_MS,
  DELEGATION_INVALIDATION_STREAM,
  REVOCATION_STREAM,
  RedisDelegationInvalidationConsumer,
  RedisRevocationConsumer,
  RedisRevocationStore,
  type RedisRevocationClient,
  type RedisStreamResult,
} from '../src/compat/revocation-redis.js'
import { FAIL_FAST_REDIS_OPTIONS } from '../src/redis.js'
import { CaracalCoordinator, caracalSignature } from './support/caracal-coordinator.js'
import { startCaracalSts, type CaracalSts } from './support/caracal-sts.js'
import { AUDIENCE, ISSUER, NOW_MS, mint, staticJwks } from './support/mandates.js'
import {
  LOCAL_REDIS_PORT,
  closeClients,
  connectedClient,
  countCommands,
  describeWithRedis,
  dropNamespace,
  eventually,
  fieldsOf,
  freePort,
  uniqueNames,
  type UniqueNames,
} from './support/redis.js'
import { rejection } from './support/verifiers.js'

/** Caracal's `STREAM_SIG_FIELD` and `signStream` (@caracalai/core), from the test support's own signer. */
const STREAM_SIG_FIELD = '_sig'
const signStream = caracalSignature
const KEY = Buffer.alloc(32, 7)

/**
 * A client as Caracal's tests make one: an object with the methods its store and consumers call,
 * holding keys in a Map, handing out the stream rows it is given, and recording what it was asked.
 */
class StructuralRedis {
  readonly keys = new Map<string, string>()
  readonly calls: { readonly name: string; readonly args: readonly (string | number)[] }[] = []
  readonly acks: string[] = []
  readonly deadLetters: (string | number)[][] = []
  rows: RedisStreamResult | null = null
  /** XAUTOCLAIM answers, one page per call; then an empty terminal page. */
  claimPages: [string, [string, string[]][]][] = []
  lookupError: Error | undefined
  groupError: Error | undefined
  deadLetterError: Error | undefined

  async get(key: string): Promise<string | null> {
    this.calls.push({ name: 'get', args: [key] })
    if (this.lookupError !== undefined) throw this.lookupError
    return this.keys.get(key) ?? null
  }

  async set(key: string, value: string, mode: 'PX', ttlMs: number): Promise<string> {
    this.calls.push({ name: 'set', args: [key, value, mode, ttlMs] })
    this.keys.set(key, value)
    return 'OK'
  }

  /** The epoch script's effect: raise the key to the candidate when it is greater. */
  async eval(_script: string, _keyCount: number, key: string, candidate: string, ttl: string): Promise<number> {
    this.calls.push({ name: 'eval', args: [key, candidate, ttl] })
    if (Number(candidate) <= Number(this.keys.get(key) ?? 0)) return 0
    this.keys.set(key, candidate)
    return 1
  }

  async xgroup(...args: string[]): Promise<string> {
    this.calls.push({ name: 'xgroup', args })
    if (this.groupError !== undefined) throw this.groupError
    return 'OK'
  }

  async xreadgroup(...args: (string | number)[]): Promise<RedisStreamResult | null> {
    this.calls.push({ name: 'xreadgroup', args })
    const rows = this.rows
    this.rows = null
    return rows
  }

  async xautoclaim(...args: (string | number)[]): Promise<[string, [string, string[]][]]> {
    this.calls.push({ name: 'xautoclaim', args })
    return this.claimPages.shift() ?? ['0-0', []]
  }

  async xack(_stream: string, _group: string, id: string): Promise<number> {
    this.acks.push(id)
    return 1
  }

  async xadd(...args: (string | number)[]): Promise<string> {
    if (this.deadLetterError !== undefined) throw this.deadLetterError
    this.deadLetters.push(args)
    return '9-0'
  }

  argsOf(name: string): readonly (string | number)[] | undefined {
    return this.calls.find((c) => c.name === name)?.args
  }
}

/** A stream row's flat fields, signed over `stream` with `key`. */
function signedRow(id: string, stream: string, fields: Record<string, string>, key = KEY): [string, string[]] {
  return [id, [...Object.entries(fields).flat(), STREAM_SIG_FIELD, signStream(key, stream, fields)]]
}

describe('RedisRevocationStore on a structural client (a GET per check, as Caracal)', () => {
  it('records a revocation and finds it', async () => {
    const redis = new StructuralRedis()
    const store = new RedisRevocationStore(redis)
    expect(await store.isRevoked('sid-1')).toBe(false)
    await store.markRevoked('sid-1')
    expect(await store.isRevoked('sid-1')).toBe(true)
  })

  it('fails closed when the lookup fails (the default), and says why for a 503', async () => {
    const redis = new StructuralRedis()
    redis.lookupError = new Error('redis down')
    const store = new RedisRevocationStore(redis)
    expect(await store.isRevoked('sid-1')).toBe(true)
    expect(await store.currentDelegationEpoch('zone1')).toBe(Number.MAX_SAFE_INTEGER)
    expect(store.unavailableReason()).toBe('delegation epoch lookup failed: redis down')
    redis.lookupError = undefined
    expect(await store.isRevoked('sid-1')).toBe(false)
    expect(store.unavailableReason()).toBeUndefined()
  })

  it('ignores an empty session id; with failClosed false a failed lookup rejects with the error', async () => {
    const redis = new StructuralRedis()
    redis.lookupError = new Error('redis down')
    const store = new RedisRevocationStore(redis, { failClosed: false })
    expect(await store.isRevoked('')).toBe(false)
    await expect(store.isRevoked('sid-1')).rejects.toThrow('redis down')
    await expect(store.currentDelegationEpoch('zone1')).rejects.toThrow('redis down')
    expect(store.unavailableReason()).toBeUndefined()
    await store.markRevoked('')
    expect(redis.keys.size).toBe(0)
  })

  it('keeps the greatest delegation epoch, whatever order the writes arrive in', async () => {
    const redis = new StructuralRedis()
    const store = new RedisRevocationStore(redis)
    await store.markDelegationEpoch('zone1', 7)
    await store.markDelegationEpoch('zone1', 6)
    expect(await store.currentDelegationEpoch('zone1')).toBe(7)
    await Promise.all([store.markDelegationEpoch('zone1', 9), store.markDelegationEpoch('zone1', 4)])
    expect(await store.currentDelegationEpoch('zone1')).toBe(9)
  })

  it('reads an unreadable epoch as 0 (digits only: "1e3" and "0x10" too, where Caracal read 1000 and 16)', async () => {
    const redis = new StructuralRedis()
    const store = new RedisRevocationStore(redis, { keyPrefix: 'test:' })
    for (const [held, epoch] of [
      ['nan', 0],
      ['1e3', 0],
      ['0x10', 0],
      [' 7', 0],
      ['-3', 0],
      ['12', 12],
    ] as const) {
      redis.keys.set('test:delegation-epoch:zone1', held)
      expect(await store.currentDelegationEpoch('zone1')).toBe(epoch)
    }
  })

  it('does nothing for an empty zone or an epoch that is not a non-negative safe integer', async () => {
    const redis = new StructuralRedis()
    const store = new RedisRevocationStore(redis)
    await store.markDelegationEpoch('', 7)
    await store.markDelegationEpoch('zone1', -1)
    await store.markDelegationEpoch('zone1', Number.POSITIVE_INFINITY)
    await store.markDelegationEpoch('zone1', 1.5)
    expect(redis.keys.size).toBe(0)
  })

  it("refuses an anchor whose key would be a zone's epoch key, and a TTL that is not positive", async () => {
    const redis = new StructuralRedis()
    const store = new RedisRevocationStore(redis)
    await expect(store.markRevoked('delegation-epoch:zone1')).rejects.toThrow(TypeError)
    await expect(store.markRevoked('sid-1', 0)).rejects.toThrow(new TypeError('ttlMs must be a positive number'))
    expect(redis.keys.size).toBe(0)
  })

  it("takes Caracal's three options only: the mirror's options need an ioredis client", () => {
    expect(() => new RedisRevocationStore(new StructuralRedis(), { maxStalenessMs: 1_000 })).toThrow(
      new TypeError(
        'RedisRevocationStore option "maxStalenessMs" is not an option of RedisRevocationStore on a client without duplicate() (the options of the mirror need an ioredis client)',
      ),
    )
    expect(() => new RedisRevocationStore({} as RedisRevocationClient)).toThrow(TypeError)
  })
})

describe('RedisRevocationConsumer on a structural client', () => {
  it('requires a key when signatures are required, and the stream methods it calls', async () => {
    const redis = new StructuralRedis()
    const store = new RedisRevocationStore(redis)
    expect(() => new RedisRevocationConsumer(redis, store, { consumer: 'resource-1', requireSignature: true })).toThrow(
      'streamHmacKey is required when requireSignature is true',
    )
    const withoutRead: RedisRevocationClient = {
      get: redis.get.bind(redis),
      set: redis.set.bind(redis),
      eval: redis.eval.bind(redis),
      xautoclaim: redis.xautoclaim.bind(redis),
      xack: redis.xack.bind(redis),
    }
    await expect(
      new RedisRevocationConsumer(withoutRead, store, { consumer: 'resource-1' }).pollOnce(),
    ).rejects.toThrow('redis client does not support xreadgroup')
    const withoutClaim: RedisRevocationClient = {
      ...withoutRead,
      xautoclaim: undefined,
      xreadgroup: redis.xreadgroup.bind(redis),
    }
    await expect(
      new RedisRevocationConsumer(withoutClaim, store, { consumer: 'resource-1' }).pollOnce(),
    ).rejects.toThrow('redis client does not support xautoclaim')
    await expect(
      new RedisRevocationConsumer(withoutRead, store, { consumer: 'resource-1' }).ensureGroup(),
    ).rejects.toThrow('redis client does not support xgroup')
  })

  it('creates its group idempotently (BUSYGROUP is fine) and surfaces any other error', async () => {
    const redis = new StructuralRedis()
    const consumer = new RedisRevocationConsumer(redis, new RedisRevocationStore(redis), { consumer: 'resource-1' })
    await expect(consumer.ensureGroup()).resolves.toBeUndefined()
    expect(redis.argsOf('xgroup')).toEqual(['CREATE', REVOCATION_STREAM, 'resource-revocation', '0', 'MKSTREAM'])
    redis.groupError = new Error('BUSYGROUP Consumer Group name already exists')
    await expect(consumer.ensureGroup()).resolves.toBeUndefined()
    redis.groupError = new Error('NOAUTH Authentication required.')
    await expect(consumer.ensureGroup()).rejects.toThrow('NOAUTH')
  })

  it('revokes every anchor of a signed event, then acknowledges it', async () => {
    const redis = new StructuralRedis()
    const store = new RedisRevocationStore(redis)
    const fields = {
      zone_id: 'zone1',
      session_id: 'sid-1',
      root_sid: 'root-1',
      agent_session_id: 'agent-1',
      delegation_edge_id: 'edge-1',
      reason: 'grant_revoked',
    }
    redis.rows = [[REVOCATION_STREAM, [signedRow('1-0', REVOCATION_STREAM, fields)]]]
    const consumer = new RedisRevocationConsumer(redis, store, {
      consumer: 'resource-1',
      streamHmacKey: KEY,
      requireSignature: true,
    })
    expect(await consumer.pollOnce()).toBe(1)
    for (const anchor of ['sid-1', 'root-1', 'agent-1', 'edge-1']) expect(await store.isRevoked(anchor)).toBe(true)
    expect(redis.acks).toEqual(['1-0'])
  })

  it('dead-letters a bad signature before acknowledging it, and revokes nothing', async () => {
    const redis = new StructuralRedis()
    const store = new RedisRevocationStore(redis)
    redis.rows = [[REVOCATION_STREAM, [['1-1', ['session_id', 'sid-2', STREAM_SIG_FIELD, '00']]]]]
    const consumer = new RedisRevocationConsumer(redis, store, { consumer: 'resource-1', streamHmacKey: KEY })
    expect(await consumer.pollOnce()).toBe(1)
    expect(await store.isRevoked('sid-2')).toBe(false)
    expect(redis.deadLetters).toEqual([
      [
        `${REVOCATION_STREAM}.dead`,
        'MAXLEN',
        '~',
        10_000,
        '*',
        'source_id',
        '1-1',
        'reason',
        'invalid_signature',
        'payload',
        JSON.stringify({ session_id: 'sid-2', _sig: '00' }),
      ],
    ])
    expect(redis.acks).toEqual(['1-1'])
  })

  it('leaves an entry pending (unacknowledged) when its dead letter cannot be written', async () => {
    const redis = new StructuralRedis()
    redis.deadLetterError = new Error('dead letter unavailable')
    redis.rows = [[REVOCATION_STREAM, [['1-2', ['session_id', 'sid-2', STREAM_SIG_FIELD, '00']]]]]
    const consumer = new RedisRevocationConsumer(redis, new RedisRevocationStore(redis), {
      consumer: 'resource-1',
      streamHmacKey: KEY,
    })
    await expect(consumer.pollOnce()).rejects.toThrow('dead letter unavailable')
    expect(redis.acks).toEqual([])
  })

  it('handles entries left pending (XAUTOCLAIM pages until the terminal cursor) before new ones', async () => {
    const redis = new StructuralRedis()
    const store = new RedisRevocationStore(redis)
    redis.claimPages = [
      ['1-0', [['0-1', ['session_id', 'sid-a']]]],
      ['0-0', [['0-2', ['session_id', 'sid-b']]]],
    ]
    redis.rows = [[REVOCATION_STREAM, [['2-0', ['session_id', 'sid-c']]]]]
    const consumer = new RedisRevocationConsumer(redis, store, { consumer: 'resource-1' })
    expect(await consumer.pollOnce()).toBe(3)
    for (const anchor of ['sid-a', 'sid-b', 'sid-c']) expect(await store.isRevoked(anchor)).toBe(true)
    expect(redis.acks).toEqual(['0-1', '0-2', '2-0'])
  })

  it("checks events by this library's rules: no anchor, a reserved anchor, a field named twice", async () => {
    const redis = new StructuralRedis()
    const store = new RedisRevocationStore(redis)
    redis.rows = [
      [
        REVOCATION_STREAM,
        [
          ['3-0', ['zone_id', 'zone1', 'reason', 'none']],
          ['3-1', ['session_id', 'delegation-epoch:zone1']],
          ['3-2', ['session_id', 'sid-x', 'session_id', 'sid-y']],
        ],
      ],
    ]
    const consumer = new RedisRevocationConsumer(redis, store, { consumer: 'resource-1' })
    expect(await consumer.pollOnce()).toBe(3)
    expect(redis.deadLetters.map((d) => [d[6], d[8]])).toEqual([
      ['3-0', 'missing_revocation_anchor'],
      ['3-1', 'invalid_anchor'],
      ['3-2', 'malformed_event'],
    ])
    expect(redis.keys.size).toBe(0)
    expect(redis.acks).toEqual(['3-0', '3-1', '3-2'])
  })
})

describe('RedisDelegationInvalidationConsumer on a structural client', () => {
  it('requires a key when signatures are required, and creates its group', async () => {
    const redis = new StructuralRedis()
    const store = new RedisRevocationStore(redis)
    expect(
      () => new RedisDelegationInvalidationConsumer(redis, store, { consumer: 'resource-1', requireSignature: true }),
    ).toThrow('streamHmacKey is required when requireSignature is true')
    const consumer = new RedisDelegationInvalidationConsumer(redis, store, { consumer: 'resource-1' })
    await consumer.ensureGroup()
    expect(redis.argsOf('xgroup')).toEqual([
      'CREATE',
      DELEGATION_INVALIDATION_STREAM,
      'resource-delegation-invalidation',
      '0',
      'MKSTREAM',
    ])
    redis.groupError = new Error('NOAUTH Authentication required.')
    await expect(consumer.ensureGroup()).rejects.toThrow('NOAUTH')
  })

  it("raises the zone's epoch from a signed event", async () => {
    const redis = new StructuralRedis()
    const store = new RedisRevocationStore(redis)
    const fields = { event: 'edge_revoke', zone_id: 'zone1', edge_id: 'edge-1', epoch: '9' }
    redis.rows = [[DELEGATION_INVALIDATION_STREAM, [signedRow('1-0', DELEGATION_INVALIDATION_STREAM, fields)]]]
    const consumer = new RedisDelegationInvalidationConsumer(redis, store, {
      consumer: 'resource-1',
      streamHmacKey: KEY,
      requireSignature: true,
    })
    expect(await consumer.pollOnce()).toBe(1)
    expect(await store.currentDelegationEpoch('zone1')).toBe(9)
    expect(redis.acks).toEqual(['1-0'])
  })

  it('dead-letters bad signatures and unusable epochs, acknowledging each', async () => {
    const redis = new StructuralRedis()
    const store = new RedisRevocationStore(redis)
    redis.rows = [
      [
        DELEGATION_INVALIDATION_STREAM,
        [
          ['1-1', ['zone_id', 'zone1', 'epoch', '11', STREAM_SIG_FIELD, '00']],
          ['1-2', ['zone_id', 'zone1', 'epoch', 'not-a-number']],
        ],
      ],
    ]
    const signed = new RedisDelegationInvalidationConsumer(redis, store, { consumer: 'resource-1', streamHmacKey: KEY })
    expect(await signed.pollOnce()).toBe(2)
    expect(await store.currentDelegationEpoch('zone1')).toBe(0)
    expect(redis.deadLetters.map((d) => d[8])).toEqual(['invalid_signature', 'invalid_signature'])
    expect(redis.acks).toEqual(['1-1', '1-2'])
    // Unsigned, with no key: an empty zone and an empty epoch are unusable too (Caracal's acknowledged them).
    redis.rows = [
      [
        DELEGATION_INVALIDATION_STREAM,
        [
          ['2-1', ['zone_id', 'zone1', 'epoch', 'not-a-number']],
          ['2-2', ['zone_id', '', 'epoch', '4']],
          ['2-3', ['zone_id', 'zone1', 'epoch', '']],
        ],
      ],
    ]
    const unsigned = new RedisDelegationInvalidationConsumer(redis, store, { consumer: 'resource-1' })
    expect(await unsigned.pollOnce()).toBe(3)
    expect(redis.deadLetters.slice(2).map((d) => d[8])).toEqual([
      'invalid_delegation_epoch',
      'invalid_delegation_epoch',
      'invalid_delegation_epoch',
    ])
  })

  it('replays pending epoch events across pages', async () => {
    const redis = new StructuralRedis()
    const store = new RedisRevocationStore(redis)
    redis.claimPages = [
      ['1-0', [['0-1', ['zone_id', 'zone1', 'epoch', '3']]]],
      ['0-0', [['0-2', ['zone_id', 'zone1', 'epoch', '4']]]],
    ]
    const consumer = new RedisDelegationInvalidationConsumer(redis, store, { consumer: 'resource-1' })
    expect(await consumer.pollOnce()).toBe(2)
    expect(await store.currentDelegationEpoch('zone1')).toBe(4)
    expect(redis.acks).toEqual(['0-1', '0-2'])
  })
})

describe("exported names, constants and defaults, against Caracal's source", () => {
  it('exports what Caracal exports at run time, nothing more (the rest are types)', () => {
    expect(Object.keys(compat).sort()).toEqual([
      'DEFAULT_DEAD_LETTER_MAX_LENGTH',
      'DEFAULT_REVOCATION_TTL_MS',
      'DELEGATION_INVALIDATION_STREAM',
      'REVOCATION_STREAM',
      'RedisDelegationInvalidationConsumer',
      'RedisRevocationConsumer',
      'RedisRevocationStore',
    ])
  })

  it.each([
    ['REVOCATION_STREAM', REVOCATION_STREAM, 'caracal.sessions.revoke'],
    ['DELEGATION_INVALIDATION_STREAM', DELEGATION_INVALIDATION_STREAM, 'caracal.delegations.invalidate'],
    ['DEFAULT_REVOCATION_TTL_MS', DEFAULT_REVOCATION_TTL_MS, 24 * 60 * 60 * 1000],
    ['DEFAULT_DEAD_LETTER_MAX_LENGTH', DEFAULT_DEAD_LETTER_MAX_LENGTH, 10_000],
  ])('%s is %s, as in Caracal', (_name, ours, caracal) => {
    expect(ours).toBe(caracal)
  })

  /** One poll of each consumer with an event to dead-letter, and a store write, on a recording client. */
  async function recordDefaults(): Promise<{ revocations: StructuralRedis; delegations: StructuralRedis }> {
    const revocations = new StructuralRedis()
    const store = new RedisRevocationStore(revocations)
    await store.markRevoked('sid-1')
    await store.markDelegationEpoch('zone1', 3)
    revocations.rows = [[REVOCATION_STREAM, [['1-0', ['reason', 'none']]]]]
    const consumer = new RedisRevocationConsumer(revocations, store, { consumer: 'resource-1' })
    await consumer.ensureGroup()
    await consumer.pollOnce()
    const delegations = new StructuralRedis()
    const epochs = new RedisDelegationInvalidationConsumer(delegations, new RedisRevocationStore(delegations), {
      consumer: 'resource-1',
    })
    await epochs.ensureGroup()
    await epochs.pollOnce()
    return { revocations, delegations }
  }

  it.each([
    // [default, Caracal's value (revocation.ts), where it shows]
    ['revocation key', 'caracal:revoked:sessions:sid-1', (r: StructuralRedis) => r.argsOf('set')?.[0]],
    ['revocation TTL (PX)', 86_400_000, (r: StructuralRedis) => r.argsOf('set')?.[3]],
    ['epoch key', 'caracal:revoked:sessions:delegation-epoch:zone1', (r: StructuralRedis) => r.argsOf('eval')?.[0]],
    ['epoch TTL (PX)', '86400000', (r: StructuralRedis) => r.argsOf('eval')?.[2]],
    ['revocation group', 'resource-revocation', (r: StructuralRedis) => r.argsOf('xgroup')?.[2]],
    ['group start', '0', (r: StructuralRedis) => r.argsOf('xgroup')?.[3]],
    ['batch size (COUNT)', 50, (r: StructuralRedis) => r.argsOf('xreadgroup')?.[4]],
    ['pending idle (XAUTOCLAIM min-idle)', 30_000, (r: StructuralRedis) => r.argsOf('xautoclaim')?.[3]],
    ['dead-letter stream', 'caracal.sessions.revoke.dead', (r: StructuralRedis) => r.deadLetters[0]?.[0]],
    ['dead-letter cap (MAXLEN ~)', 10_000, (r: StructuralRedis) => r.deadLetters[0]?.[3]],
  ])('the default %s is %s', async (_what, caracal, read) => {
    const { revocations } = await recordDefaults()
    expect(read(revocations)).toBe(caracal)
  })

  it('the delegation consumer reads caracal.delegations.invalidate in group resource-delegation-invalidation', async () => {
    const { delegations } = await recordDefaults()
    expect(delegations.argsOf('xreadgroup')).toEqual([
      'GROUP',
      'resource-delegation-invalidation',
      'resource-1',
      'COUNT',
      50,
      'BLOCK',
      5_000,
      'STREAMS',
      'caracal.delegations.invalidate',
      '>',
    ])
  })

  it("differs in one default on purpose: blockMs is 5000 where Caracal's is 0 (block forever), and 0 is refused", async () => {
    const { revocations } = await recordDefaults()
    expect(revocations.argsOf('xreadgroup')?.slice(5, 7)).toEqual(['BLOCK', 5_000])
    const redis = new StructuralRedis()
    for (const Consumer of [RedisRevocationConsumer, RedisDelegationInvalidationConsumer]) {
      expect(() => new Consumer(redis, new RedisRevocationStore(redis), { consumer: 'c', blockMs: 0 })).toThrow(
        new TypeError(
          `${Consumer.name} option "blockMs" must be a positive integer (0, "block forever", would never let pollOnce return)`,
        ),
      )
    }
  })

  it("consumer options are checked: unknown ones, the names of Caracal's Redis page, and the store's own", () => {
    const redis = new StructuralRedis()
    const store = new RedisRevocationStore(redis)
    const make = (opts: Record<string, unknown>) =>
      new RedisRevocationConsumer(redis, store, opts as unknown as compat.RedisRevocationConsumerOptions)
    expect(() => make({ consumerName: 'api-1' })).toThrow(
      new TypeError(
        'RedisRevocationConsumer option "consumerName" is not an option of RedisRevocationConsumer: the option is "consumer"',
      ),
    )
    expect(() => make({ consumer: 'api-1', hmacSecret: 'x' })).toThrow(/the option is "streamHmacKey"$/)
    expect(() => make({ consumer: 'api-1', keyPrefix: 'x:' })).toThrow(/writes under its store's keyPrefix/)
    expect(() => make({ consumer: 'api-1', batchsize: 5 })).toThrow(
      new TypeError('RedisRevocationConsumer option "batchsize" is not an option of RedisRevocationConsumer'),
    )
    expect(() => make({})).toThrow(
      new TypeError('RedisRevocationConsumer option "consumer" must be a non-empty string'),
    )
    expect(() => new RedisRevocationConsumer(redis, {} as RedisRevocationStore, { consumer: 'c' })).toThrow(
      new TypeError('RedisRevocationConsumer option "store" must have markRevoked() (a RedisRevocationStore)'),
    )
  })
})

describe('failing closed through CaracalAuth (no Redis needed)', () => {
  function authWith(revocations: RedisRevocationStore): CaracalAuth {
    return new CaracalAuth({
      issuer: ISSUER,
      audience: AUDIENCE,
      revocations,
      jwks: { keys: staticJwks },
      now: () => NOW_MS,
    })
  }

  it('the mirror before its first load (Redis unreachable): every anchor revoked, 503-marked; failClosed false serves', async () => {
    const port = await freePort()
    const redis = new Redis({ host: '127.0.0.1', port, ...FAIL_FAST_REDIS_OPTIONS, lazyConnect: true })
    redis.on('error', () => undefined)
    const closed = new RedisRevocationStore(redis, { initialLoadTimeoutMs: 0 })
    const open = new RedisRevocationStore(redis, { failClosed: false, initialLoadTimeoutMs: 0 })
    try {
      expect(closed.isRevoked('sid-1')).toBe(true)
      expect(closed.currentDelegationEpoch('zone-1')).toBe(Number.MAX_SAFE_INTEGER)
      expect(closed.unavailableReason()).toBe('revocation mirror not loaded yet')
      const auth = authWith(closed)
      const error = await rejection(auth.verify(mint()))
      expect(error).toMatchObject({
        code: 'session_revoked',
        status: 401,
        unavailable: true,
        description: 'revocation state unavailable: revocation mirror not loaded yet',
      })
      await auth.close()
      expect([open.isRevoked('sid-1'), open.currentDelegationEpoch('zone-1'), open.unavailableReason()]).toEqual([
        false,
        0,
        undefined,
      ])
    } finally {
      await closed.close()
      await open.close()
      redis.disconnect()
    }
  })

  it('the per-check store whose lookup fails: session_revoked marked unavailable, naming the failure', async () => {
    const redis = new StructuralRedis()
    redis.lookupError = new Error('redis down')
    const auth = authWith(new RedisRevocationStore(redis))
    const error = await rejection(auth.verify(mint()))
    expect(error).toMatchObject({
      code: 'session_revoked',
      unavailable: true,
      description: 'revocation state unavailable: revocation lookup failed: redis down',
    })
    await auth.close()
  })
})

describeWithRedis('against Redis, wired as Caracal wires it', () => {
  let admin: Redis
  let sts: CaracalSts
  const namespaces: string[] = []
  const cleanups: (() => Promise<unknown> | unknown)[] = []

  function names(label: string): UniqueNames {
    const n = uniqueNames(`compat-${label}`)
    namespaces.push(n.namespace)
    return n
  }

  /** A client as Caracal's docs make one: plain ioredis defaults. */
  function client(): Redis {
    const redis = new Redis({ host: '127.0.0.1', port: LOCAL_REDIS_PORT })
    redis.on('error', () => undefined)
    cleanups.push(() => redis.disconnect())
    return redis
  }

  function track<T extends { close(): Promise<void> }>(closable: T): T {
    cleanups.push(() => closable.close())
    return closable
  }

  beforeAll(async () => {
    admin = await connectedClient()
    sts = await startCaracalSts('zone-prod')
  })

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
    for (const ns of namespaces.splice(0)) await dropNamespace(admin, ns)
  })

  afterAll(async () => {
    await sts.close()
    closeClients()
  })

  it("the docs' store: markRevoked then isRevoked; the durable key is Caracal's, with its TTL; checks are memory lookups", async () => {
    const anchor = `sess_${randomBytes(6).toString('hex')}`
    cleanups.push(() => admin.del(`caracal:revoked:sessions:${anchor}`))
    const redis = client()
    const commands = countCommands(redis)
    const revocations = track(new RedisRevocationStore(redis, { defaultTtlMs: 24 * 60 * 60 * 1000 }))
    await revocations.markRevoked(anchor)
    const blocked = await revocations.isRevoked(anchor)
    expect(blocked).toBe(true)
    expect(await admin.get(`caracal:revoked:sessions:${anchor}`)).toBe('1')
    const ttl = await admin.pttl(`caracal:revoked:sessions:${anchor}`)
    expect(ttl).toBeGreaterThan(24 * 60 * 60 * 1000 - 60_000)
    expect(ttl).toBeLessThanOrEqual(24 * 60 * 60 * 1000)
    // Loaded: the answers are plain values, and a thousand checks send nothing to Redis.
    const gets = () => commands.names.filter((n) => n === 'get' || n === 'exists').length
    const before = gets()
    for (let i = 0; i < 1_000; i++) expect(revocations.isRevoked(i % 2 === 0 ? anchor : `other-${i}`)).toBe(i % 2 === 0)
    expect(revocations.currentDelegationEpoch('zone-none')).toBe(0)
    expect(gets()).toBe(before)
  })

  it('another instance learns a markRevoked within milliseconds, without a consumer', async () => {
    const n = names('peer')
    const a = track(new RedisRevocationStore(client(), { ...n.store }))
    const b = track(new RedisRevocationStore(client(), { ...n.store }))
    await Promise.all([a.isRevoked('warm'), b.isRevoked('warm')])
    await a.markRevoked('agent-gone', 60_000)
    await eventually(() => b.isRevoked('agent-gone') === true, 2_000, 'the other instance to hold the revocation')
    const ttl = await admin.pttl(`${n.keyPrefix}agent-gone`)
    expect(ttl).toBeGreaterThan(50_000)
    // Never shortened: a second, shorter TTL keeps the first.
    await a.markRevoked('agent-gone', 1_000)
    expect(await admin.pttl(`${n.keyPrefix}agent-gone`)).toBeGreaterThan(50_000)
  })

  it("the consumers: Caracal's signed events revoke every anchor under the store's keyPrefix and defaultTtlMs; ttl_ms is not read", async () => {
    const n = names('consume')
    const redis = client()
    const store = track(new RedisRevocationStore(redis, { failClosed: true, defaultTtlMs: 3_600_000, ...n.store }))
    const consumer = track(
      new RedisRevocationConsumer(redis, store, {
        consumer: 'fastmcp-server-1',
        stream: n.stream,
        streamHmacKey: KEY,
        blockMs: 100,
      }),
    )
    await consumer.ensureGroup()
    const coordinator = new CaracalCoordinator(admin, { hmacKey: KEY, revokeStream: n.stream })
    await coordinator.revokeSession({
      zoneId: 'zone-prod',
      sessionId: 'sess-1',
      agentSessionId: 'agent-1',
      delegationEdgeId: 'edge-1',
    })
    await coordinator.publish(n.stream, 'ttl-probe', { zone_id: 'zone-prod', session_id: 'sess-ttl', ttl_ms: '5' })
    expect(await consumer.pollOnce()).toBe(2)
    for (const anchor of ['sess-1', 'agent-1', 'edge-1', 'sess-ttl']) {
      expect(store.isRevoked(anchor)).toBe(true)
      const ttl = await admin.pttl(`${n.keyPrefix}${anchor}`)
      expect(ttl).toBeGreaterThan(3_600_000 - 60_000)
      expect(ttl).toBeLessThanOrEqual(3_600_000)
    }
    const [pending] = (await admin.xpending(n.stream, 'resource-revocation')) as [number]
    expect(pending).toBe(0)
    // The store took the consumers' key: an unsigned event on the stream it follows is not believed.
    await coordinator.revokeSession({ zoneId: 'zone-prod', sessionId: 'forged' }, { unsigned: true })
    await new Promise((r) => setTimeout(r, 200))
    expect(store.isRevoked('forged')).toBe(false)
  })

  it("a second instance's store holds Caracal's events its own consumer never took (the mirror reads the stream)", async () => {
    const n = names('backlog')
    const coordinator = new CaracalCoordinator(admin, { hmacKey: KEY, revokeStream: n.stream })
    await coordinator.revokeSession({ zoneId: 'zone-prod', sessionId: 'sess-early' })
    const first = client()
    const store1 = track(new RedisRevocationStore(first, n.store))
    const consumer1 = track(
      new RedisRevocationConsumer(first, store1, {
        consumer: 'one',
        stream: n.stream,
        streamHmacKey: KEY,
        blockMs: 100,
      }),
    )
    const store2 = track(new RedisRevocationStore(client(), n.store))
    await consumer1.ensureGroup()
    expect(await consumer1.pollOnce()).toBe(1)
    await coordinator.revokeSession({ zoneId: 'zone-prod', sessionId: 'sess-late' })
    expect(await store2.isRevoked('sess-early')).toBe(true)
    await eventually(() => store2.isRevoked('sess-late') === true, 2_000, 'the second store to read the new event')
  })

  it("delegation epochs: raised by the consumer with max semantics, durable with the store's TTL, enforced by CaracalAuth", async () => {
    const n = names('epochs')
    const redis = client()
    const store = track(new RedisRevocationStore(redis, n.store))
    const epochs = track(
      new RedisDelegationInvalidationConsumer(redis, store, {
        consumer: 'fastmcp-server-1',
        stream: n.delegationStream,
        streamHmacKey: KEY,
        blockMs: 100,
      }),
    )
    await epochs.ensureGroup()
    const coordinator = new CaracalCoordinator(admin, { hmacKey: KEY, delegationStream: n.delegationStream })
    for (const edgeId of ['e1', 'e2', 'e3'])
      await coordinator.createEdge({ zoneId: 'zone-prod', edgeId, sourceSessionId: 'a', targetSessionId: 'b' })
    // Out of order: an older epoch arriving late lowers nothing.
    await coordinator.publish(n.delegationStream, 'late', { event: 'edge_create', zone_id: 'zone-prod', epoch: 1 })
    expect(await epochs.pollOnce()).toBe(4)
    expect(store.currentDelegationEpoch('zone-prod')).toBe(3)
    const key = `${n.keyPrefix}delegation-epoch:zone-prod`
    expect(await admin.get(key)).toBe('3')
    expect(await admin.pttl(key)).toBeGreaterThan(DEFAULT_REVOCATION_TTL_MS - 60_000)
    await store.markDelegationEpoch('zone-prod', 2)
    expect([store.currentDelegationEpoch('zone-prod'), await admin.get(key)]).toEqual([3, '3'])

    const auth = new CaracalAuth({
      issuer: sts.issuer,
      audience: sts.audience,
      revocations: store,
      expectedZoneId: 'zone-prod',
      requireSession: true,
    })
    cleanups.push(() => auth.close())
    const stale = await rejection(auth.verify(sts.mintDelegated({ epoch: 2 })))
    expect(stale).toMatchObject({
      code: 'delegation_stale',
      status: 401,
      description: 'the delegation graph changed after this mandate was issued',
      hint: 'Refresh the mandate: the delegation graph changed after it was issued.',
    })
    await expect(auth.verify(sts.mintDelegated({ epoch: 3 }))).resolves.toMatchObject({ graphEpoch: 3 })
    // An anchor revoked through the store is refused at once, on this zone's keys.
    const token = sts.mintDelegated({ epoch: 3, overrides: { agent_session_id: 'agent-cut' } })
    await auth.verify(token)
    await store.markRevoked('agent-cut')
    expect(await rejection(auth.verify(token))).toMatchObject({ code: 'session_revoked', unavailable: false })
  })

  it('dead letters: each unusable event goes to <stream>.dead with source_id, reason and payload, and is acknowledged', async () => {
    const n = names('dead')
    const redis = client()
    const store = track(new RedisRevocationStore(redis, n.store))
    const revocations = track(
      new RedisRevocationConsumer(redis, store, { consumer: 'c1', stream: n.stream, streamHmacKey: KEY, blockMs: 100 }),
    )
    const delegations = track(
      new RedisDelegationInvalidationConsumer(redis, store, {
        consumer: 'c1',
        stream: n.delegationStream,
        streamHmacKey: KEY,
        blockMs: 100,
      }),
    )
    await revocations.ensureGroup()
    await delegations.ensureGroup()
    const coordinator = new CaracalCoordinator(admin, {
      hmacKey: KEY,
      revokeStream: n.stream,
      delegationStream: n.delegationStream,
    })
    const published = [
      await coordinator.revokeSession({ zoneId: 'z', sessionId: 'forged-1' }, { signWith: Buffer.alloc(32, 1) }),
      await coordinator.revokeSession({ zoneId: 'z', sessionId: 'forged-2' }, { unsigned: true }),
      await coordinator.publish(n.stream, 'no-anchor', { zone_id: 'z', reason: 'none' }),
      await coordinator.publish(n.stream, 'reserved', { zone_id: 'z', session_id: 'delegation-epoch:z' }),
    ]
    const epochEvents = [
      await coordinator.publish(n.delegationStream, 'bad-epoch', { zone_id: 'z', epoch: 'soon' }),
      await coordinator.publish(n.delegationStream, 'no-zone', { zone_id: '', epoch: 4 }),
    ]
    expect(await revocations.pollOnce()).toBe(4)
    expect(await delegations.pollOnce()).toBe(2)
    const letters = async (stream: string) =>
      (await admin.xrange(`${stream}.dead`, '-', '+')).map(([, flat]) => fieldsOf(flat))
    expect(await letters(n.stream)).toEqual([
      { source_id: published[0]!.id, reason: 'invalid_signature', payload: JSON.stringify(published[0]!.fields) },
      { source_id: published[1]!.id, reason: 'invalid_signature', payload: JSON.stringify(published[1]!.fields) },
      {
        source_id: published[2]!.id,
        reason: 'missing_revocation_anchor',
        payload: JSON.stringify(published[2]!.fields),
      },
      { source_id: published[3]!.id, reason: 'invalid_anchor', payload: JSON.stringify(published[3]!.fields) },
    ])
    expect((await letters(n.delegationStream)).map((l) => [l.source_id, l.reason])).toEqual([
      [epochEvents[0]!.id, 'invalid_delegation_epoch'],
      [epochEvents[1]!.id, 'invalid_delegation_epoch'],
    ])
    expect((await admin.xpending(n.stream, 'resource-revocation'))[0]).toBe(0)
    expect((await admin.xpending(n.delegationStream, 'resource-delegation-invalidation'))[0]).toBe(0)
    expect([store.isRevoked('forged-1'), store.isRevoked('forged-2'), store.currentDelegationEpoch('z')]).toEqual([
      false,
      false,
      0,
    ])
    expect(await admin.exists(`${n.keyPrefix}forged-1`, `${n.keyPrefix}delegation-epoch:z`)).toBe(0)
  })

  it('deadLetterMaxLength caps <stream>.dead (MAXLEN ~): 300 refused events leave at most a node of 100', async () => {
    const n = names('dead-cap')
    const redis = client()
    const consumer = track(
      new RedisRevocationConsumer(redis, track(new RedisRevocationStore(redis, n.store)), {
        consumer: 'c1',
        stream: n.stream,
        batchSize: 300,
        blockMs: 100,
        deadLetterMaxLength: 1,
      }),
    )
    await consumer.ensureGroup()
    const pipeline = admin.pipeline()
    for (let i = 0; i < 300; i++) pipeline.xadd(n.stream, '*', 'reason', 'no anchor')
    await pipeline.exec()
    expect(await consumer.pollOnce()).toBe(300)
    const length = await admin.xlen(`${n.stream}.dead`)
    expect(length).toBeGreaterThan(0)
    expect(length).toBeLessThanOrEqual(100)
  })

  it('an event whose dead letter cannot be written stays pending, and is dead-lettered once that works again', async () => {
    const n = names('dead-fails')
    const redis = client()
    const consumer = track(
      new RedisRevocationConsumer(redis, track(new RedisRevocationStore(redis, n.store)), {
        consumer: 'c1',
        stream: n.stream,
        blockMs: 100,
        pendingIdleMs: 0,
      }),
    )
    await consumer.ensureGroup()
    await admin.set(`${n.stream}.dead`, 'not a stream')
    const id = await admin.xadd(n.stream, '*', 'reason', 'no anchor')
    await expect(consumer.pollOnce()).rejects.toThrow(/WRONGTYPE/)
    expect((await admin.xpending(n.stream, 'resource-revocation'))[0]).toBe(1)
    await admin.del(`${n.stream}.dead`)
    expect(await consumer.pollOnce()).toBeGreaterThanOrEqual(1)
    expect((await admin.xpending(n.stream, 'resource-revocation'))[0]).toBe(0)
    const [[, flat]] = (await admin.xrange(`${n.stream}.dead`, '-', '+')) as [[string, string[]]]
    expect(fieldsOf(flat)).toMatchObject({ source_id: id, reason: 'missing_revocation_anchor' })
  })

  it('ensureGroup creates the stream and the default group at 0, so retained events are taken; pollOnce waits blockMs', async () => {
    const n = names('group')
    const redis = client()
    const store = track(new RedisRevocationStore(redis, n.store))
    const revocations = track(
      new RedisRevocationConsumer(redis, store, { consumer: 'c1', stream: n.stream, blockMs: 100 }),
    )
    const delegations = track(
      new RedisDelegationInvalidationConsumer(redis, store, {
        consumer: 'c1',
        stream: n.delegationStream,
        blockMs: 100,
      }),
    )
    await revocations.ensureGroup()
    await revocations.ensureGroup()
    await delegations.ensureGroup()
    const groupOf = async (stream: string) => {
      const [group] = (await admin.xinfo('GROUPS', stream)) as unknown[][]
      const info = fieldsOf((group ?? []).map(String))
      return [info.name, info['last-delivered-id']]
    }
    expect(await groupOf(n.stream)).toEqual(['resource-revocation', '0-0'])
    expect(await groupOf(n.delegationStream)).toEqual(['resource-delegation-invalidation', '0-0'])
    const started = performance.now()
    expect(await revocations.pollOnce()).toBe(0)
    const waited = performance.now() - started
    expect(waited).toBeGreaterThanOrEqual(90)
    expect(waited).toBeLessThan(1_500)

    const late = names('group-late')
    await admin.xadd(late.stream, '*', 'zone_id', 'z', 'session_id', 'sess-before-group')
    const lateStore = track(new RedisRevocationStore(redis, late.store))
    const lateConsumer = track(
      new RedisRevocationConsumer(redis, lateStore, { consumer: 'c1', stream: late.stream, blockMs: 100 }),
    )
    await lateConsumer.ensureGroup()
    expect(await lateConsumer.pollOnce()).toBe(1)
    expect(await admin.exists(`${late.keyPrefix}sess-before-group`)).toBe(1)
  })

  it("a structural client over the same Redis gets Caracal's design: a GET per check, its own stream calls", async () => {
    const n = names('structural')
    const redis = await connectedClient()
    const wrapper: RedisRevocationClient = {
      get: (key) => redis.get(key),
      set: (key, value, mode, ttl) => redis.set(key, value, mode, ttl),
      eval: (script, keyCount, ...args) => redis.eval(script, keyCount, ...args),
      xgroup: (...args) => redis.call('XGROUP', ...args),
      xreadgroup: (...args) => redis.call('XREADGROUP', ...args) as Promise<RedisStreamResult | null>,
      xautoclaim: (...args) => redis.call('XAUTOCLAIM', ...args) as Promise<compat.RedisAutoClaimResult>,
      xack: (stream, group, id) => redis.xack(stream, group, id),
      xadd: (...args) => redis.call('XADD', ...args),
    }
    const commands = countCommands(redis)
    const store = new RedisRevocationStore(wrapper, { keyPrefix: n.keyPrefix, defaultTtlMs: 600_000 })
    const consumer = new RedisRevocationConsumer(wrapper, store, { consumer: 'c1', stream: n.stream, blockMs: 100 })
    const epochs = new RedisDelegationInvalidationConsumer(wrapper, store, {
      consumer: 'c1',
      stream: n.delegationStream,
      blockMs: 100,
    })
    await consumer.ensureGroup()
    await epochs.ensureGroup()
    const coordinator = new CaracalCoordinator(admin, { revokeStream: n.stream, delegationStream: n.delegationStream })
    await coordinator.revokeSession({ zoneId: 'z', sessionId: 'sess-s', agentSessionId: 'agent-s' })
    await coordinator.createEdge({ zoneId: 'z', edgeId: 'e1', sourceSessionId: 'a', targetSessionId: 'b' })
    await coordinator.publish(n.stream, 'bad', { zone_id: 'z' })
    expect(await consumer.pollOnce()).toBe(2)
    expect(await epochs.pollOnce()).toBe(1)
    expect(await store.isRevoked('agent-s')).toBe(true)
    expect(await store.isRevoked('sess-other')).toBe(false)
    expect(await store.currentDelegationEpoch('z')).toBe(1)
    const gets = commands.names.filter((name) => name === 'get').length
    await store.isRevoked('sess-s')
    expect(commands.names.filter((name) => name === 'get').length).toBe(gets + 1)
    expect(await admin.pttl(`${n.keyPrefix}sess-s`)).toBeGreaterThan(590_000)
    expect(fieldsOf((await admin.xrange(`${n.stream}.dead`, '-', '+'))[0]![1]).reason).toBe('missing_revocation_anchor')
  })

  it('a store that is not a mirror (the compat in-memory one) learns each event through its own methods', async () => {
    const n = names('foreign')
    const tag = randomBytes(6).toString('hex')
    const durable = [`caracal:revoked:sessions:agent-${tag}`, `caracal:revoked:sessions:delegation-epoch:zone-${tag}`]
    cleanups.push(() => admin.del(...durable))
    const redis = client()
    const memory = new InMemoryRevocationStore()
    const revocations = track(
      new RedisRevocationConsumer(redis, memory, {
        consumer: 'c1',
        stream: n.stream,
        streamHmacKey: KEY,
        blockMs: 100,
      }),
    )
    const epochs = track(
      new RedisDelegationInvalidationConsumer(redis, memory, {
        consumer: 'c1',
        stream: n.delegationStream,
        streamHmacKey: KEY,
        blockMs: 100,
      }),
    )
    await revocations.ensureGroup()
    await epochs.ensureGroup()
    const coordinator = new CaracalCoordinator(admin, {
      hmacKey: KEY,
      revokeStream: n.stream,
      delegationStream: n.delegationStream,
    })
    await coordinator.revokeSession({ zoneId: `zone-${tag}`, sessionId: `agent-${tag}` })
    await coordinator.createEdge({ zoneId: `zone-${tag}`, edgeId: 'e1', sourceSessionId: 'a', targetSessionId: 'b' })
    expect(await revocations.pollOnce()).toBe(1)
    expect(await epochs.pollOnce()).toBe(1)
    expect([memory.isRevoked(`agent-${tag}`), memory.currentDelegationEpoch(`zone-${tag}`)]).toEqual([true, 1])
    // The durable keys are written too, under Caracal's default prefix (the store has none of its own).
    expect(await admin.exists(...durable)).toBe(2)
  })

  it("a consumer whose key is not its store's is refused, naming streamHmacKey", () => {
    const n = names('keys')
    const redis = client()
    const store = track(new RedisRevocationStore(redis, { ...n.store, streamHmacKey: KEY }))
    expect(
      () =>
        new RedisRevocationConsumer(redis, store, {
          consumer: 'c1',
          stream: n.stream,
          streamHmacKey: Buffer.alloc(32, 9),
        }),
    ).toThrow(/^RedisRevocationConsumer option "streamHmacKey" differs from its store's streamHmacKey/)
    expect(() => new RedisRevocationConsumer(redis, store, { consumer: 'c1', stream: n.stream })).toThrow(
      /^RedisRevocationConsumer option "streamHmacKey" is missing, but its store has one/,
    )
  })

  it("the store's and consumers' own connections close when the client ends, so the process can exit", async () => {
    const n = names('end')
    const sockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length
    const before = sockets()
    const redis = new Redis({ host: '127.0.0.1', port: LOCAL_REDIS_PORT })
    redis.on('error', () => undefined)
    const store = new RedisRevocationStore(redis, n.store)
    const consumer = new RedisRevocationConsumer(redis, store, { consumer: 'c1', stream: n.stream, blockMs: 100 })
    await store.isRevoked('warm')
    await consumer.ensureGroup()
    expect(sockets()).toBeGreaterThanOrEqual(before + 3)
    await redis.quit()
    await eventually(() => sockets() === before, 2_000, "the store's and consumer's connections to close")
    await expect(consumer.pollOnce()).rejects.toThrow('RedisRevocationConsumer is closed')
  })
})
