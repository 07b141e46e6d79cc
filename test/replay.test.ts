/**
 * Single-use mandates (README "Single-use mandates"): with `replay`, a resource mandate that
 * passed every other check is recorded by its `jti` until it expires, and a second presentation —
 * cache hit or not, on any instance sharing the store — is `token_replayed`, as Caracal's own
 * gateway refuses it (`seen:jti:<jti>`, SET NX PX until exp). A store that fails is a 503 unless
 * built with `failOpen: true`.
 */
import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, it, vi } from 'vitest'
import type { Redis } from 'ioredis'
import {
  CaracalAuth,
  type CaracalAuthError,
  type CaracalAuthOptions,
  InMemoryReplayStore,
  InMemoryRevocationStore,
  type ReplayStore,
  renderAuthError,
} from '../src/index.js'
import { RedisReplayStore } from '../src/redis.js'
import { TEST_BACKENDS } from './support/backends.js'
import { AUDIENCE, ISSUER, NOW_MS, NOW_SEC, mint, staticJwks } from './support/mandates.js'
import {
  closeClients,
  connectedClient,
  countCommands,
  describeWithRedis,
  describeWithRedisServer,
  eventually,
  freePort,
  redisClient,
  startPrivateRedis,
} from './support/redis.js'
import { startShardingProxy } from './support/sharding-proxy.js'

/** The store's probe of a new connection is over (its clean-up, the last step, went out). */
const probed = (sent: { readonly names: readonly string[] }) =>
  eventually(() => sent.names.includes('del'), 5_000, 'the replay store to probe its connection')

function authWith(replay: ReplayStore, extra: Partial<CaracalAuthOptions> = {}, now = () => NOW_MS): CaracalAuth {
  return new CaracalAuth({
    issuer: ISSUER,
    audience: AUDIENCE,
    revocations: new InMemoryRevocationStore({ now }),
    jwks: { keys: staticJwks },
    now,
    replay,
    ...extra,
  })
}

const refusal = (p: Promise<unknown>): Promise<CaracalAuthError | undefined> =>
  p.then(
    () => undefined,
    (e: unknown) => e as CaracalAuthError,
  )

describe.each(TEST_BACKENDS)('single-use mandates in one process on %s', (backend) => {
  it('accepts the first presentation and refuses every later one, cached or not', async () => {
    for (const cache of [undefined, false] as const) {
      const auth = authWith(new InMemoryReplayStore({ now: () => NOW_MS }), { backend, cache })
      const token = mint({ jti: `once-${String(cache)}` })
      await expect(auth.verify(token)).resolves.toMatchObject({ jti: `once-${String(cache)}` })
      for (let i = 0; i < 2; i++) {
        const e = await refusal(auth.verify(token))
        expect(e).toMatchObject({ code: 'token_replayed', description: 'mandate was already used', status: 401 })
        expect(e?.unavailable).toBe(false)
        expect(e?.hint).toBe('Mint a new mandate: each resource mandate may be used once.')
      }
      // Another mandate of the same subject is its own first use.
      await expect(auth.verify(mint({ jti: `other-${String(cache)}` }))).resolves.toBeDefined()
    }
  })

  it('records only what passed every other check: a refused mandate does not use up its jti', async () => {
    const store = new InMemoryReplayStore({ now: () => NOW_MS })
    const strict = authWith(store, { backend, requiredScopes: ['admin'] })
    const lenient = authWith(store, { backend })
    const token = mint({ jti: 'refused-first', scope: 'tool:call' })
    expect((await refusal(strict.verify(token)))?.code).toBe('insufficient_scope')
    const revocations = new InMemoryRevocationStore({ now: () => NOW_MS })
    revocations.markRevoked('sid-1')
    const revoking = authWith(store, { backend, revocations })
    expect((await refusal(revoking.verify(mint({ jti: 'revoked-first', sid: 'sid-1' }))))?.code).toBe('session_revoked')
    expect(store.size).toBe(0)
    await expect(lenient.verify(token)).resolves.toBeDefined()
    expect((await refusal(lenient.verify(token)))?.code).toBe('token_replayed')
  })

  it('leaves session mandates reusable (they exist to be exchanged at the STS)', async () => {
    const auth = authWith(new InMemoryReplayStore({ now: () => NOW_MS }), { backend, requiredUse: 'session' })
    const token = mint({ use: 'session', jti: 'session-jti' })
    for (let i = 0; i < 3; i++) await expect(auth.verify(token)).resolves.toMatchObject({ use: 'session' })
  })

  it('remembers a jti until its mandate expires, and no longer', () => {
    let now = NOW_MS
    const store = new InMemoryReplayStore({ now: () => now })
    const ttl = 60_000
    expect(store.firstUse('j', ttl)).toBe(true)
    expect(store.firstUse('j', ttl)).toBe(false)
    now += ttl
    expect(store.firstUse('j', ttl)).toBe(true)
  })
})

describe('single-use mandates when the store fails', () => {
  it('a store that throws, rejects or answers nonsense is token_replayed with unavailable (HTTP 503)', async () => {
    const stores: ReplayStore[] = [
      {
        firstUse: () => {
          throw new Error('broken')
        },
      },
      { firstUse: () => Promise.reject(new Error('broken')) },
      { firstUse: () => 'yes' as unknown as boolean },
      { firstUse: () => Promise.resolve(undefined as unknown as boolean) },
    ]
    for (const store of stores) {
      const e = await refusal(authWith(store).verify(mint()))
      expect(e).toMatchObject({
        code: 'token_replayed',
        description: 'replay state unavailable: the store failed',
        unavailable: true,
      })
      expect(renderAuthError(e!).status).toBe(503)
    }
  })

  it('a full in-memory store refuses (503) rather than forget a jti', async () => {
    vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    const auth = authWith(new InMemoryReplayStore({ maxEntries: 1, now: () => NOW_MS }))
    await expect(auth.verify(mint({ jti: 'first' }))).resolves.toBeDefined()
    expect(await refusal(auth.verify(mint({ jti: 'second' })))).toMatchObject({
      code: 'token_replayed',
      unavailable: true,
    })
    vi.restoreAllMocks()
  })

  it('validates the option', () => {
    expect(() => authWith({} as ReplayStore)).toThrow(
      'CaracalAuth option "replay" must be a ReplayStore (firstUse), e.g. InMemoryReplayStore or RedisReplayStore',
    )
  })
})

describeWithRedis('single-use mandates on Redis', () => {
  afterAll(() => closeClients())
  const prefix = () => `test:replay:${randomBytes(6).toString('hex')}:seen:jti:`

  it('a mandate used twice across two CaracalAuth instances sharing one Redis is token_replayed the second time', async () => {
    const keyPrefix = prefix()
    const gatewayA = authWith(new RedisReplayStore(redisClient(), { keyPrefix }))
    const gatewayB = authWith(new RedisReplayStore({ redis: redisClient(), keyPrefix }))
    const token = mint({ jti: 'shared-jti', exp: NOW_SEC + 120 })
    await expect(gatewayA.verify(token)).resolves.toBeDefined()
    expect(await refusal(gatewayB.verify(token))).toMatchObject({ code: 'token_replayed' })
    expect(await refusal(gatewayA.verify(token))).toMatchObject({ code: 'token_replayed' })
    const admin = await connectedClient()
    expect(await admin.get(`${keyPrefix}shared-jti`)).toBe('1')
    // Kept as long as any instance could accept it: until exp on this verifier's clock, plus the
    // 60 s another instance's clock may run behind (futureLeewaySec).
    const pttl = await admin.pttl(`${keyPrefix}shared-jti`)
    expect(pttl).toBeGreaterThan(178_000)
    expect(pttl).toBeLessThanOrEqual(180_000)
    await admin.del(`${keyPrefix}shared-jti`)
  })

  it("uses Caracal's gateway key, seen:jti:<jti>, by default", async () => {
    const jti = `default-prefix-${randomBytes(6).toString('hex')}`
    await expect(authWith(new RedisReplayStore(redisClient())).verify(mint({ jti }))).resolves.toBeDefined()
    const admin = await connectedClient()
    expect(await admin.exists(`seen:jti:${jti}`)).toBe(1)
    await admin.del(`seen:jti:${jti}`)
  })

  it('sends the calls of one turn as one pipeline by default, and never a script', async () => {
    const client = redisClient()
    const sent = countCommands(client)
    const auth = authWith(new RedisReplayStore(client, { keyPrefix: prefix() }))
    const tokens = Array.from({ length: 30 }, (_, i) => mint({ jti: `piped-${i}` }))
    await auth.verify(tokens[0]!)
    for (let round = 0; round < 2; round++) {
      const before = sent.count
      const answers = await Promise.all(tokens.map((t) => refusal(auth.verify(t))))
      expect(answers.map((e) => e?.code)).toEqual(
        tokens.map((_, i) => (round === 0 && i > 0 ? undefined : 'token_replayed')),
      )
      expect(new Set(sent.names.slice(before))).toEqual(new Set(['set']))
    }
    expect(sent.names.filter((n) => n.startsWith('eval'))).toEqual([])
  })

  it('with scriptBatches, one script call per turn once the connection passed the probe (a pipeline until then)', async () => {
    const client = redisClient()
    const sent = countCommands(client)
    const auth = authWith(new RedisReplayStore(client, { keyPrefix: prefix(), scriptBatches: true }))
    const tokens = Array.from({ length: 50 }, (_, i) => mint({ jti: `burst-${i}` }))
    await auth.verify(tokens[0]!)
    await probed(sent)
    for (const t of tokens.slice(1)) await auth.verify(t).catch(() => {}) // warms the cache: hits are synchronous
    const before = sent.count
    const again = await Promise.all(tokens.map((t) => refusal(auth.verify(t))))
    expect(again.map((e) => e?.code)).toEqual(tokens.map(() => 'token_replayed'))
    expect(sent.names.slice(before)).toEqual(['evalsha'])
    const fresh = await Promise.all(Array.from({ length: 20 }, (_, i) => auth.verify(mint({ jti: `fresh-${i}` }))))
    expect(fresh).toHaveLength(20)
    // Twenty cold tokens may be checked over two turns (CaracalAuth's cold batches): a call a turn.
    expect(new Set(sent.names.slice(before + 1))).toEqual(new Set(['evalsha']))
    expect(sent.names.length - before - 1).toBeLessThanOrEqual(2)
  })

  it('calls from separate callbacks of one loop turn (node:http gives each request its own) share one command', async () => {
    const client = redisClient()
    const sent = countCommands(client)
    const store = new RedisReplayStore(client, { keyPrefix: prefix(), scriptBatches: true })
    await store.firstUse('connect', 60_000) // the client connected: later flushes send at once
    await probed(sent)
    const before = sent.count
    // Each callback drains its microtasks before the next runs, as each socket's request does.
    const answers = await new Promise<Promise<boolean>[]>((resolve) => {
      const calls: Promise<boolean>[] = []
      for (let i = 0; i < 8; i++) setImmediate(() => calls.push(store.firstUse(`callback-${i}`, 60_000)))
      setImmediate(() => resolve(calls))
    })
    expect(await Promise.all(answers)).toEqual(answers.map(() => true))
    expect(sent.names.slice(before)).toEqual(['evalsha'])
  })

  it('with Redis down, 503 (token_replayed, unavailable); with failOpen: true, accepted with one coded warning', async () => {
    const deadPort = await freePort()
    const closed = authWith(new RedisReplayStore(redisClient(deadPort), { timeoutMs: 500 }))
    const e = await refusal(closed.verify(mint()))
    expect(e).toMatchObject({ code: 'token_replayed', unavailable: true })
    expect(renderAuthError(e!).status).toBe(503)
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    const open = authWith(new RedisReplayStore(redisClient(deadPort), { failOpen: true, timeoutMs: 500 }))
    await expect(open.verify(mint())).resolves.toBeDefined()
    await expect(open.verify(mint())).resolves.toBeDefined()
    expect(
      warn.mock.calls.filter((c) => (c[1] as { code?: string })?.code === 'CARACAL_REPLAY_UNAVAILABLE'),
    ).toHaveLength(1)
    vi.restoreAllMocks()
  })

  it('validates its options with a TypeError that names the option', () => {
    const redis = redisClient() as Redis
    expect(() => new RedisReplayStore(redis, { failOpen: 'yes' as unknown as boolean })).toThrow(
      'RedisReplayStore option "failOpen"',
    )
    expect(() => new RedisReplayStore(redis, { unknown: 1 } as never)).toThrow('RedisReplayStore option "unknown"')
    expect(() => new RedisReplayStore(redis, { scriptBatches: 1 as unknown as boolean })).toThrow(
      'RedisReplayStore option "scriptBatches"',
    )
  })
})

describeWithRedisServer('single-use mandates behind a sharding proxy, and scripts Redis forgot', () => {
  afterAll(() => closeClients())

  it('a proxy that routes a script by its first key fails the probe: batches stay pipelines, and a replay is refused on every instance', async () => {
    const shards = [await startPrivateRedis(), await startPrivateRedis()]
    const proxy = await startShardingProxy(shards.map((s) => s.port))
    try {
      const clients = [redisClient(proxy.port), redisClient(proxy.port)]
      const sent = countCommands(clients[0]!)
      // scriptBatches is the user's word that this is one Redis: here it is wrong, and the probe says so.
      const [a, b] = clients.map((c) => authWith(new RedisReplayStore(c, { scriptBatches: true })))
      await a!.verify(mint({ jti: 'opening' }))
      await probed(sent)
      const before = sent.count
      const tokens = Array.from({ length: 40 }, (_, i) => mint({ jti: `sharded-${i}` }))
      await Promise.all(tokens.map((t) => a!.verify(t)))
      expect(sent.names.slice(before).filter((n) => n.startsWith('eval'))).toEqual([])
      // Every jti is on the shard its key hashes to, where any other presentation looks for it.
      const direct = await Promise.all(shards.map((s) => connectedClient(s.port)))
      for (let i = 0; i < tokens.length; i++) {
        const key = `seen:jti:sharded-${i}`
        expect(await direct[proxy.shardOf(key)]!.exists(key)).toBe(1)
      }
      const replays = await Promise.all(tokens.map((t) => refusal(b!.verify(t))))
      expect(replays.map((e) => e?.code)).toEqual(tokens.map(() => 'token_replayed'))
    } finally {
      await proxy.close()
      for (const s of shards) await s.stop()
    }
  })

  it('after SCRIPT FLUSH (or a failover to a server without the script) the next batch sends it whole and is answered', async () => {
    const server = await startPrivateRedis()
    try {
      const client = redisClient(server.port)
      const sent = countCommands(client)
      const auth = authWith(new RedisReplayStore(client, { scriptBatches: true }))
      await auth.verify(mint({ jti: 'before-flush' }))
      await probed(sent)
      await (await connectedClient(server.port)).script('FLUSH')
      const before = sent.count
      const tokens = Array.from({ length: 5 }, (_, i) => mint({ jti: `after-flush-${i}` }))
      await Promise.all(tokens.map((t) => auth.verify(t)))
      expect(sent.names.slice(before)).toEqual(['evalsha', 'eval'])
      // Scripts refused from now on (an ACL, say): that batch fails closed, the next go as pipelines.
      await (await connectedClient(server.port)).acl('SETUSER', 'default', '-evalsha', '-eval')
      const refused = await Promise.all([1, 2].map((i) => refusal(auth.verify(mint({ jti: `refused-${i}` })))))
      expect(refused.map((e) => e?.unavailable)).toEqual([true, true])
      const piped = sent.count
      await Promise.all([1, 2].map((i) => auth.verify(mint({ jti: `piped-${i}` }))))
      expect(sent.names.slice(piped)).toEqual(['set', 'set'])
      const replays = await Promise.all(tokens.map((t) => refusal(auth.verify(t))))
      expect(replays.map((e) => e?.code)).toEqual(tokens.map(() => 'token_replayed'))
    } finally {
      await server.stop()
    }
  })
})
