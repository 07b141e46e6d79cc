import { randomBytes } from 'node:crypto'
import { afterAll, afterEach, expect, it } from 'vitest'
import type { Redis } from 'ioredis'
import { CaracalAuth } from '../src/index.js'
import {
  RedisRevocationConsumer,
  RedisRevocationStore,
  signRevocationEvent,
  verifyRevocationSignature,
  type RedisRevocationStoreOptions,
} from '../src/redis.js'
import { AUDIENCE, ISSUER, NOW_MS, mint, staticJwks } from './support/mandates.js'
import {
  closeClients,
  connectedClient,
  countCommands,
  describeWithRedis,
  dropNamespace,
  eventually,
  fieldsOf,
  freePort,
  redisClient,
  uniqueNames,
} from './support/redis.js'

const HMAC_KEY = 'stream-secret'

function authFor(store: RedisRevocationStore): CaracalAuth {
  return new CaracalAuth({
    issuer: ISSUER,
    audience: AUDIENCE,
    revocations: store,
    jwks: { keys: staticJwks },
    now: () => NOW_MS,
  })
}

function signedFields(stream: string, fields: Record<string, string>): string[] {
  return Object.entries({ ...fields, _sig: signRevocationEvent(Buffer.from(HMAC_KEY), stream, fields) }).flat()
}

describeWithRedis('RedisRevocationStore against Redis', () => {
  const stores: RedisRevocationStore[] = []
  const namespaces: string[] = []
  let admin: Redis

  function names(label: string) {
    const n = uniqueNames(label)
    namespaces.push(n.namespace)
    return n
  }

  function store(options: Partial<RedisRevocationStoreOptions> & { stream: string; keyPrefix: string }) {
    const s = new RedisRevocationStore({ redis: redisClient(), streamHmacKey: HMAC_KEY, ...options })
    stores.push(s)
    return s
  }

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()))
    admin ??= await connectedClient()
    for (const ns of namespaces.splice(0)) await dropNamespace(admin, ns)
  })

  afterAll(() => closeClients())

  it('loads the durable keys at start with SCAN (never KEYS), each expiring with its key', async () => {
    const n = names('load')
    admin = await connectedClient()
    await admin.set(`${n.keyPrefix}short`, '1', 'PX', 300)
    await admin.set(`${n.keyPrefix}long`, '1', 'PX', 60_000)
    await admin.set(`${n.keyPrefix}forever`, '1')
    await admin.set(`${n.namespace}:other:unrelated`, '1')
    const client = redisClient()
    const commands = countCommands(client)
    const s = new RedisRevocationStore({ redis: client, ...n.store })
    stores.push(s)
    await s.ready()
    expect(commands.names).toContain('scan')
    expect(commands.names).not.toContain('keys')
    expect([s.isRevoked('short'), s.isRevoked('long'), s.isRevoked('forever'), s.isRevoked('unrelated')]).toEqual([
      true,
      true,
      true,
      false,
    ])
    await eventually(() => s.isRevoked('short') === false, 2_000, 'the short key to expire locally')
    expect(s.isRevoked('long')).toBe(true)
    expect(s.isRevoked('forever')).toBe(true)
  })

  it("a store started on a backlog nobody consumed (no durable key) has every revocation and epoch Caracal's streams retain once loaded; checks wait for all of it", async () => {
    const n = names('backlog')
    const publisher = await connectedClient()
    const pipeline = publisher.pipeline()
    for (let i = 0; i < 45; i++) {
      const fields = { zone_id: 'z', session_id: `sess-backlog-${i}`, agent_session_id: `agent-backlog-${i}` }
      pipeline.xadd(n.stream, '*', ...signedFields(n.stream, { ...fields, reason: 'agent_suspended' }))
    }
    for (const [zone, epoch] of [
      ['zone-1', '3'],
      ['zone-2', '8'],
      ['zone-1', '5'],
      ['zone-1', '4'],
    ] as const) {
      pipeline.xadd(n.delegationStream, '*', ...signedFields(n.delegationStream, { zone_id: zone, epoch }))
    }
    // An announcement whose durable key is gone (expired): the peer stream is not replayed.
    pipeline.xadd(
      n.peerStream,
      '*',
      ...signedFields(n.peerStream, { event: 'session_revoke', zone_id: 'z', session_id: 'peer-old', ttl_ms: '60000' }),
    )
    await pipeline.exec()
    // Several batches per stream (batchSize 4).
    const mirrors = [store({ ...n.store, batchSize: 4 }), store({ ...n.store, batchSize: 4 })]
    const early = mirrors.map((m) => [m.isRevoked('agent-backlog-44'), m.currentDelegationEpoch('zone-1')])
    for (const [revoked, epoch] of early) {
      expect(revoked).toBeInstanceOf(Promise)
      expect(epoch).toBeInstanceOf(Promise)
    }
    // Answered once everything is in, not after the first batch.
    expect(await Promise.all(early.flat())).toEqual([true, 5, true, 5])
    for (const m of mirrors) {
      await m.ready()
      for (let i = 0; i < 45; i++) {
        expect(m.isRevoked(`sess-backlog-${i}`)).toBe(true)
        expect(m.isRevoked(`agent-backlog-${i}`)).toBe(true)
      }
      expect([m.currentDelegationEpoch('zone-1'), m.currentDelegationEpoch('zone-2')]).toEqual([5, 8])
      expect(m.isRevoked('peer-old')).toBe(false)
      expect(m.state()).toMatchObject({ loaded: true, size: 90, applied: 49, refused: 0, unavailable: undefined })
    }
    // Reading the streams wrote nothing anywhere.
    admin = await connectedClient()
    expect(await admin.exists(`${n.keyPrefix}sess-backlog-0`, `${n.keyPrefix}delegation-epoch:zone-1`)).toBe(0)
    expect(await admin.xlen(n.peerStream)).toBe(1)
  })

  it('checks made before the first load wait for it (a promise), then answer synchronously', async () => {
    const n = names('start')
    const s = store({ ...n.store })
    const token = mint()
    const early = s.isRevoked('anything')
    expect(early).toBeInstanceOf(Promise)
    expect(s.unavailableReason()).toMatch(/not loaded/)
    // The first request is served, not refused with 503, while Redis is healthy.
    await expect(authFor(s).verify(token)).resolves.toMatchObject({ sub: 'user-1' })
    await expect(early).resolves.toBe(false)
    expect(s.unavailableReason()).toBeUndefined()
    expect(s.isRevoked('anything')).toBe(false)
  })

  it('fails closed (unavailable) once initialLoadTimeoutMs passes without a load, synchronously from then on', async () => {
    const n = names('start-dead')
    const s = store({ ...n.store, redis: redisClient(await freePort()), initialLoadTimeoutMs: 150 })
    const t0 = performance.now()
    await expect(authFor(s).verify(mint())).rejects.toMatchObject({ code: 'session_revoked', unavailable: true })
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140)
    expect(s.isRevoked('anything')).toBe(true)
    expect(s.currentDelegationEpoch('zone-1')).toBe(Number.MAX_SAFE_INTEGER)
    expect(s.unavailableReason()).toMatch(/not loaded/)
    // initialLoadTimeoutMs: 0 never waits.
    const eager = store({ ...n.store, redis: redisClient(await freePort()), initialLoadTimeoutMs: 0 })
    expect(eager.isRevoked('anything')).toBe(true)
  })

  it('with failClosed: false serves the set it has (empty before loading) and warns with a code', async () => {
    const n = names('open')
    const deadPort = await freePort()
    const warnings: string[] = []
    const onWarning = (w: Error & { code?: string }) => warnings.push(w.code ?? '')
    process.on('warning', onWarning)
    try {
      const s = store({ ...n.store, redis: redisClient(deadPort), failClosed: false, initialLoadTimeoutMs: 0 })
      s.applyRevocation('known', 60_000)
      expect(s.isRevoked('known')).toBe(true)
      expect(s.isRevoked('other')).toBe(false)
      expect(s.unavailableReason()).toBeUndefined()
      await expect(authFor(s).verify(mint())).resolves.toBeDefined()
      await eventually(() => warnings.includes('CARACAL_REVOCATIONS_STALE'), 1_000, 'the stale warning')
      await expect(s.ready({ timeoutMs: 50 })).rejects.toThrow(/not loaded within 50 ms/)
    } finally {
      process.off('warning', onWarning)
    }
  })

  it('follows the stream: applies signed events and ignores what the consumer would refuse', async () => {
    const n = names('follow')
    const s = store({ ...n.store })
    await s.ready()
    const publisher = await connectedClient()
    await publisher.xadd(
      n.stream,
      '*',
      ...signedFields(n.stream, { zone_id: 'z', session_id: 'good', reason: 'r', agent_session_id: 'good-agent' }),
    )
    await publisher.xadd(n.stream, '*', 'zone_id', 'z', 'session_id', 'unsigned', 'reason', 'r')
    await publisher.xadd(
      n.stream,
      '*',
      ...signedFields(n.stream, { zone_id: 'z', session_id: 'tampered', reason: 'r' }).map((v) =>
        v === 'tampered' ? 'forged' : v,
      ),
    )
    await publisher.xadd(n.stream, '*', ...signedFields(n.stream, { zone_id: 'z', reason: 'no anchor' }))
    await publisher.xadd(n.stream, '*', ...signedFields(n.stream, { zone_id: 'z', session_id: 'last', reason: 'r' }))
    await eventually(() => s.isRevoked('last') === true, 2_000, 'the last event')
    expect(s.isRevoked('good')).toBe(true)
    expect(s.isRevoked('good-agent')).toBe(true)
    expect(s.isRevoked('unsigned')).toBe(false)
    expect(s.isRevoked('forged')).toBe(false)
    expect(s.isRevoked('tampered')).toBe(false)
    expect(s.state()).toMatchObject({ applied: 2, refused: 3 })
  })

  it('without a stream key, applies unsigned events as the consumer would', async () => {
    const n = names('unsigned')
    const s = store({ ...n.store, streamHmacKey: undefined })
    await s.ready()
    const publisher = await connectedClient()
    await publisher.xadd(n.stream, '*', 'zone_id', 'z', 'delegation_edge_id', 'edge-1', 'reason', 'r')
    await eventually(() => s.isRevoked('edge-1') === true, 2_000, 'the unsigned event')
    await expect(authFor(s).verify(mint({ delegation_edge_id: 'edge-1' }))).rejects.toMatchObject({
      code: 'session_revoked',
      unavailable: false,
    })
  })

  it("markRevoked applies at once, writes the durable key with its TTL and a signed peer event every instance learns; Caracal's stream untouched", async () => {
    const n = names('mark')
    const a = store({ ...n.store, zoneId: 'zone-1' })
    const b = store({ ...n.store })
    await Promise.all([a.ready(), b.ready()])
    const done = a.markRevoked('sess-9', 120_000)
    // Before any round trip: this instance already refuses it.
    expect(a.isRevoked('sess-9')).toBe(true)
    await done
    await eventually(() => b.isRevoked('sess-9') === true, 2_000, 'the other instance to learn it')
    admin = await connectedClient()
    const ttl = await admin.pttl(`${n.keyPrefix}sess-9`)
    expect(ttl).toBeGreaterThan(110_000)
    expect(ttl).toBeLessThanOrEqual(120_000)
    const [[, flat]] = (await admin.xrange(n.peerStream, '-', '+')) as [[string, string[]]]
    const fields = fieldsOf(flat)
    expect(fields).toMatchObject({ event: 'session_revoke', zone_id: 'zone-1', session_id: 'sess-9', ttl_ms: '120000' })
    expect(typeof fields.reason).toBe('string')
    // Signed over the peer stream's name: it cannot be replayed onto Caracal's stream.
    expect(verifyRevocationSignature(Buffer.from(HMAC_KEY), n.peerStream, fields)).toBe(true)
    expect(verifyRevocationSignature(Buffer.from(HMAC_KEY), n.stream, fields)).toBe(false)
    // Nothing this library does on its own appends to Caracal's streams.
    expect(await admin.exists(n.stream, n.delegationStream)).toBe(0)
    expect(await admin.xlen(n.peerStream)).toBe(1)
  })

  it('never shortens a durable key that already lives longer', async () => {
    const n = names('keep')
    admin = await connectedClient()
    await admin.set(`${n.keyPrefix}kept`, '1', 'PX', 600_000)
    const s = store({ ...n.store })
    await s.ready()
    await s.markRevoked('kept', 1_000)
    expect(await admin.pttl(`${n.keyPrefix}kept`)).toBeGreaterThan(500_000)
  })

  it("refuses an anchor named like a zone's epoch key: markRevoked and applyRevocation throw a TypeError, a stream event naming one is ignored; the epoch stays", async () => {
    const n = names('reserved')
    admin = await connectedClient()
    const epochKey = `${n.keyPrefix}delegation-epoch:zone-1`
    await admin.set(epochKey, '7', 'PX', 60_000)
    const s = store({ ...n.store })
    await s.ready()
    await expect(s.markRevoked('delegation-epoch:zone-1')).rejects.toThrow(TypeError)
    await expect(s.markRevoked('delegation-epoch:zone-1')).rejects.toThrow(/delegation-epoch:/)
    expect(() => s.applyRevocation('delegation-epoch:zone-2', 60_000)).toThrow(TypeError)
    expect(await admin.get(epochKey)).toBe('7')
    expect(await admin.exists(n.peerStream, `${n.keyPrefix}delegation-epoch:zone-2`)).toBe(0)
    expect(s.isRevoked('delegation-epoch:zone-1')).toBe(false)
    expect(s.currentDelegationEpoch('zone-1')).toBe(7)
    const publisher = await connectedClient()
    await publisher.xadd(
      n.stream,
      '*',
      ...signedFields(n.stream, { zone_id: 'z', session_id: 'delegation-epoch:zone-1', reason: 'r' }),
    )
    await eventually(() => s.state().refused === 1, 2_000, 'the event to be refused')
    expect(s.state().applied).toBe(0)
    expect(s.isRevoked('delegation-epoch:zone-1')).toBe(false)
  })

  it('a full local set drops no revocation: the mirror fails closed (unavailable, coded warning) until entries expire, then reloads everything', async () => {
    const n = names('full')
    const warnings: string[] = []
    const onWarning = (w: Error & { code?: string }): void => {
      if (w.code === 'CARACAL_REVOCATIONS_UNAVAILABLE' || w.code === 'CARACAL_REVOCATIONS_FULL') warnings.push(w.code)
    }
    process.on('warning', onWarning)
    try {
      const s = store({ ...n.store, maxEntries: 3 })
      await s.ready()
      expect(s.unavailableReason()).toBeUndefined()
      for (const a of ['a', 'b', 'c']) await s.markRevoked(a, 400) // fills the set, for 400 ms
      const publisher = await connectedClient()
      await publisher.xadd(n.stream, '*', ...signedFields(n.stream, { zone_id: 'z', session_id: 'd', reason: 'r' }))
      // 'd' does not fit: nothing is dropped to make room, and the mirror no longer vouches for anyone.
      await eventually(() => s.unavailableReason() !== undefined, 2_000, 'the overflow')
      expect(s.unavailableReason()).toBe('revocation set full (maxEntries 3 unexpired revocations)')
      expect(s.isRevoked('never-revoked')).toBe(true)
      expect(['a', 'b', 'c'].map((a) => s.isRevoked(a))).toEqual([true, true, true])
      const error = await authFor(s)
        .verify(mint())
        .catch((e: unknown) => e as { code: string; unavailable: boolean })
      expect(error).toMatchObject({ code: 'session_revoked', unavailable: true })
      await new Promise((r) => setImmediate(r))
      expect(warnings).toEqual(expect.arrayContaining(['CARACAL_REVOCATIONS_FULL', 'CARACAL_REVOCATIONS_UNAVAILABLE']))
      // a, b and c expire (locally and in Redis): the mirror reloads, 'd' included, and is trusted again.
      await eventually(() => s.unavailableReason() === undefined, 5_000, 'the reload after the overflow')
      expect(s.isRevoked('d')).toBe(true)
      expect(['a', 'b', 'c', 'never-revoked'].map((a) => s.isRevoked(a))).toEqual([false, false, false, false])
      expect(s.state().reloads).toBeGreaterThanOrEqual(1)
    } finally {
      process.off('warning', onWarning)
    }
  })

  it('refuses an anchor or zone with a newline (the signed event form could not carry it) with a TypeError, writing nothing', async () => {
    const n = names('newline')
    const s = store({ ...n.store })
    await s.ready()
    const message = 'anchor must not contain a newline: a signed revocation event could not tell it from two fields'
    await expect(s.markRevoked('a\nsession_id=victim')).rejects.toThrow(new TypeError(message))
    expect(() => s.applyRevocation('a\nb')).toThrow(new TypeError(message))
    await expect(s.markDelegationEpoch('z\n', 3)).rejects.toThrow(TypeError)
    expect(s.isRevoked('a\nsession_id=victim')).toBe(false)
    admin ??= await connectedClient()
    expect(await admin.xlen(n.peerStream)).toBe(0)
    expect(() => new RedisRevocationStore({ redis: redisClient(), ...n.store, zoneId: 'z\n' })).toThrow(
      'RedisRevocationStore option "zoneId" must not contain a newline',
    )
  })

  it('a durable key written after the store loaded, with no event it could read (a consumer after a trim), is in the set within reconcileIntervalMs', async () => {
    const n = names('reconcile')
    const s = store({ ...n.store, reconcileIntervalMs: 300 })
    await s.ready()
    admin ??= await connectedClient()
    await admin.set(`${n.keyPrefix}late-key`, '1', 'PX', 60_000)
    await admin.set(`${n.keyPrefix}delegation-epoch:zone-late`, '7', 'PX', 60_000)
    expect(s.isRevoked('late-key')).toBe(false)
    const t0 = performance.now()
    await eventually(() => s.isRevoked('late-key') === true, 3_000, 'the periodic scan')
    // The bound: one interval plus one scan (the machine is shared: a wide margin, never a tight one).
    expect(performance.now() - t0).toBeLessThan(3_000)
    expect(s.currentDelegationEpoch('zone-late')).toBe(7)
    expect(s.state().reconciles).toBeGreaterThanOrEqual(1)
  })

  it('2 000 revocations published with MAXLEN ~ 100 while the store is connected are all enforced: the gap starts a scan of the durable keys', async () => {
    const n = names('trimmed')
    // A long interval: only the gap check can bring the trimmed entries in time.
    const s = store({ ...n.store, reconcileIntervalMs: 600_000, batchSize: 100 })
    await s.ready()
    const publisher = await connectedClient()
    const anchors = Array.from({ length: 2_000 }, (_, i) => `trimmed-${i}`)
    // One MULTI: the whole burst lands, and is trimmed, between two of the store's reads.
    {
      // What Caracal's coordinator and a consumer leave behind: the event (capped) and its durable key.
      const batch = publisher.multi()
      for (const anchor of anchors) {
        batch.set(`${n.keyPrefix}${anchor}`, '1', 'PX', 60_000)
        batch.xadd(
          n.stream,
          'MAXLEN',
          '~',
          100,
          '*',
          ...signedFields(n.stream, { zone_id: 'z', session_id: anchor, reason: 'r' }),
        )
      }
      await batch.exec()
    }
    expect(await publisher.xlen(n.stream)).toBeLessThan(400)
    await eventually(() => anchors.every((a) => s.isRevoked(a) === true), 10_000, 'every trimmed revocation')
    expect(s.state().reloads).toBeGreaterThanOrEqual(1)
    expect(s.unavailableReason()).toBeUndefined()
  })

  it('a scan cut off by a dropped connection is started again and completes', async () => {
    const n = names('reconcile-kill')
    const s = store({ ...n.store, reconcileIntervalMs: 200, batchSize: 20 })
    await s.ready()
    admin ??= await connectedClient()
    const keys = Array.from({ length: 4_000 }, (_, i) => `killed-${i}`)
    for (let i = 0; i < keys.length; i += 500) {
      const batch = admin.multi()
      for (const k of keys.slice(i, i + 500)) batch.set(`${n.keyPrefix}${k}`, '1', 'PX', 60_000)
      await batch.exec()
    }
    // Kill the reconciler's connection a few times while it scans 200 steps of 20 keys.
    let kills = 0
    for (let attempt = 0; attempt < 40 && kills < 3; attempt++) {
      const clients = (await admin.client('LIST')) as string
      const reconciler = clients.split('\n').find((line) => line.includes('name=caracal-fastmcp:mirror-reconciler'))
      const id = /\bid=(\d+)/.exec(reconciler ?? '')?.[1]
      if (id !== undefined && /\bcmd=(scan|pttl|exec)/.test(reconciler ?? '')) {
        await admin.client('KILL', 'ID', id)
        kills++
      }
      await new Promise((r) => setTimeout(r, 15))
    }
    expect(kills).toBeGreaterThan(0)
    await eventually(() => keys.every((k) => s.isRevoked(k) === true), 10_000, 'every key after the reconnects')
    expect(s.unavailableReason()).toBeUndefined()
  })

  it('answers isRevoked synchronously, with no command sent to Redis', async () => {
    const n = names('local')
    const client = redisClient()
    const commands = countCommands(client)
    const s = new RedisRevocationStore({ redis: client, ...n.store })
    stores.push(s)
    await s.ready()
    s.applyRevocation('hit', 60_000)
    const before = commands.count
    let hits = 0
    for (let i = 0; i < 20_000; i++) {
      const answer = s.isRevoked(i % 2 === 0 ? 'hit' : `miss-${i}`)
      expect(typeof answer).toBe('boolean')
      if (answer) hits++
    }
    expect(hits).toBe(10_000)
    expect(commands.count - before).toBe(0)
    // The counter does see the store's traffic: the follower's reads go through it.
    await eventually(() => commands.names.slice(before).includes('xread'), 3_000, 'a stream read')
  })

  // How fast it gets there (the < 50 ms p99 target) is measured by `npm run bench`, not asserted here.
  it('three stores and one consumer: each of 200 signed events reaches all three stores (within 2 s each)', async () => {
    const n = names('fanout')
    const mirrors = [store({ ...n.store }), store({ ...n.store }), store({ ...n.store })]
    await Promise.all(mirrors.map((m) => m.ready()))
    const consumer = new RedisRevocationConsumer({
      redis: redisClient(),
      store: mirrors[0]!,
      consumer: 'c1',
      streamHmacKey: HMAC_KEY,
      blockMs: 200,
      ...n.revocations,
    })
    const stop = new AbortController()
    const running = consumer.run({ signal: stop.signal })
    const publisher = await connectedClient()
    try {
      for (let i = 0; i < 200; i++) {
        const anchor = `agent-fanout-${i}`
        const fields = signedFields(n.stream, {
          zone_id: 'zone-1',
          session_id: `sess-fanout-${i}`,
          agent_session_id: anchor,
          reason: 'logout',
        })
        await publisher.xadd(n.stream, '*', ...fields)
        await eventually(
          () => mirrors.every((m) => m.isRevoked(anchor) === true),
          2_000,
          `revocation ${i} on every store`,
          0,
        )
      }

      for (const mirror of mirrors) {
        const auth = authFor(mirror)
        await expect(auth.verify(mint({ agent_session_id: 'agent-fanout-7' }))).rejects.toMatchObject({
          code: 'session_revoked',
          unavailable: false,
        })
        await expect(auth.verify(mint({ sid: 'sess-fanout-8' }))).rejects.toMatchObject({
          code: 'session_revoked',
          unavailable: false,
        })
        await expect(auth.verify(mint())).resolves.toMatchObject({ sub: 'user-1' })
      }
      // The consumer made every one durable, once each.
      await eventually(() => consumer.stats().applied === 200, 5_000, 'the consumer to apply all 200')
      admin = await connectedClient()
      const exists = await admin.exists(...Array.from({ length: 200 }, (_, i) => `${n.keyPrefix}agent-fanout-${i}`))
      expect(exists).toBe(200)
      expect(await admin.xlen(n.stream)).toBe(200)
    } finally {
      stop.abort()
      await running
    }
  })

  it('close() ends the follower; ready() of a store closed before loading rejects', async () => {
    const n = names('close')
    const s = new RedisRevocationStore({ redis: redisClient(await freePort()), ...n.store })
    const ready = s.ready()
    await s.close()
    await expect(ready).rejects.toThrow(/closed before its first load/)
    await expect(s.markRevoked('x')).rejects.toThrow(/closed/)
  })

  it("a string streamHmacKey that looks like hex text (Caracal's STREAMS_HMAC_KEY as it is) is still used as its UTF-8 bytes, with one CARACAL_STREAM_KEY_HEX_TEXT warning", async () => {
    const n = names('hex-text')
    const hexText = randomBytes(32).toString('hex')
    const warnings: (Error & { code?: string })[] = []
    const onWarning = (w: Error & { code?: string }) => warnings.push(w)
    process.on('warning', onWarning)
    try {
      // Not hex text: shorter than 64, a non-hex character, or bytes.
      store({ ...n.store, streamHmacKey: hexText.slice(0, 63) })
      store({ ...n.store, streamHmacKey: `${hexText.slice(0, 63)}g` })
      store({ ...n.store, streamHmacKey: Buffer.from(hexText, 'hex') })
      await new Promise((r) => setImmediate(r))
      expect(warnings.filter((w) => w.code === 'CARACAL_STREAM_KEY_HEX_TEXT')).toEqual([])

      const s = store({ ...n.store, streamHmacKey: hexText.toUpperCase() })
      // The same key again (the store and its consumers, in one process): no second warning.
      new RedisRevocationConsumer({ redis: redisClient(), consumer: 'c1', streamHmacKey: hexText.toUpperCase() })
      store({ ...n.store, streamHmacKey: hexText.toUpperCase() })
      await new Promise((r) => setImmediate(r))
      const hexWarnings = warnings.filter((w) => w.code === 'CARACAL_STREAM_KEY_HEX_TEXT')
      expect(hexWarnings).toHaveLength(1)
      expect(hexWarnings[0]!.message).toContain("Buffer.from(key, 'hex')")
      expect(hexWarnings[0]!.message).toMatch(/^RedisRevocationStore: streamHmacKey is a string of 64 hex digits/)

      // No guessing: the string's UTF-8 bytes are the key.
      await s.ready()
      const publisher = await connectedClient()
      const fields = { zone_id: 'z', session_id: 'utf8-signed', reason: 'r' }
      const sig = signRevocationEvent(Buffer.from(hexText.toUpperCase(), 'utf8'), n.stream, fields)
      await publisher.xadd(n.stream, '*', ...Object.entries({ ...fields, _sig: sig }).flat())
      await eventually(() => s.isRevoked('utf8-signed') === true, 2_000, 'the UTF-8-signed event')
    } finally {
      process.off('warning', onWarning)
    }
  })

  it('validates its options with a TypeError that names the option', () => {
    const redis = redisClient()
    expect(() => new RedisRevocationStore({ redis: {} as Redis })).toThrow(/"redis" must be an ioredis client/)
    expect(() => new RedisRevocationStore({ redis, maxStalenessMs: 0 })).toThrow(/maxStalenessMs/)
    expect(() => new RedisRevocationStore({ redis, maxStalenessMs: 100, blockMs: 100 })).toThrow(/blockMs/)
    expect(() => new RedisRevocationStore({ redis, streamHmacKey: '' })).toThrow(/streamHmacKey/)
    expect(() => new RedisRevocationStore({ redis, failClosed: 'no' as unknown as boolean })).toThrow(/failClosed/)
    expect(() => new RedisRevocationStore({ redis, initialLoadTimeoutMs: -1 })).toThrow(/initialLoadTimeoutMs/)
    expect(() => new RedisRevocationStore({ redis, peerStream: 'x', stream: 'x' })).toThrow(/peerStream/)
    expect(() => new RedisRevocationStore({ redis, requireSignature: true })).toThrow(TypeError)
    expect(() => new RedisRevocationStore({ redis, requireSignature: true })).toThrow(
      'streamHmacKey is required when requireSignature is true',
    )
    expect(() => new RedisRevocationStore({ redis, streamHmacKy: 'typo' } as RedisRevocationStoreOptions)).toThrow(
      /"streamHmacKy" is not an option of RedisRevocationStore/,
    )
    expect(() => new RedisRevocationStore(redis, { redis } as RedisRevocationStoreOptions)).toThrow(
      /"redis" is given twice/,
    )
    expect(() => new RedisRevocationStore(undefined as unknown as Redis)).toThrow(TypeError)
  })
})
