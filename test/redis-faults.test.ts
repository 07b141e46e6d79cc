/**
 * Fault scenarios on a redis-server of the test's own (killed and restarted at will) behind a
 * proxy that can cut the stores off while the server is up.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import type { Redis } from 'ioredis'
import { CaracalAuth } from '../src/index.js'
import { RedisRevocationConsumer, RedisRevocationStore, signRevocationEvent } from '../src/redis.js'
import { AUDIENCE, ISSUER, NOW_MS, mint, staticJwks } from './support/mandates.js'
import {
  closeClients,
  connectedClient,
  describeWithRedisServer,
  eventually,
  redisClient,
  startPrivateRedis,
  startProxy,
  uniqueNames,
  type CuttableProxy,
  type PrivateRedis,
  type UniqueNames,
} from './support/redis.js'

const HMAC_KEY = 'stream-secret'
const MAX_STALENESS_MS = 1_000

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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describeWithRedisServer('Redis revocation when Redis fails', () => {
  let server: PrivateRedis
  let proxy: CuttableProxy
  const stores: RedisRevocationStore[] = []

  function mirror(names: UniqueNames['store'], failClosed: boolean): RedisRevocationStore {
    const store = new RedisRevocationStore({
      redis: redisClient(proxy.port),
      streamHmacKey: HMAC_KEY,
      maxStalenessMs: MAX_STALENESS_MS,
      failClosed,
      ...names,
    })
    stores.push(store)
    return store
  }

  beforeAll(async () => {
    server = await startPrivateRedis()
    proxy = await startProxy(server.port)
  })

  afterEach(async () => {
    proxy.restore()
    // A test that failed while the server was down must not take the next ones with it.
    await server.ensureRunning()
    await Promise.all(stores.splice(0).map((s) => s.close()))
  })

  afterAll(async () => {
    closeClients()
    await proxy?.close()
    await server?.stop()
  })

  it('Redis killed: past the staleness bound failClosed stores refuse (unavailable), failClosed: false stores keep answering; restarted: they catch up, including what was published while they were cut off', async () => {
    const n = uniqueNames('kill')
    const closedStore = mirror(n.store, true)
    const openStore = mirror(n.store, false)
    await Promise.all([closedStore.ready(), openStore.ready()])
    const consumer = new RedisRevocationConsumer({
      redis: redisClient(server.port),
      consumer: 'c1',
      streamHmacKey: HMAC_KEY,
      blockMs: 200,
      ...n.revocations,
    })
    const stopConsumer = new AbortController()
    const consuming = consumer.run({ signal: stopConsumer.signal })
    const closedAuth = authFor(closedStore)
    const openAuth = authFor(openStore)
    const warnings: string[] = []
    const onWarning = (w: Error & { code?: string }) => warnings.push(w.code ?? '')
    process.on('warning', onWarning)
    try {
      await closedStore.markRevoked('agent-before')
      await eventually(() => openStore.isRevoked('agent-before') === true, 2_000, 'the first revocation')

      await server.kill()
      const killedAt = performance.now()
      // Within the bound the mirror still vouches for what it has.
      expect(closedStore.unavailableReason()).toBeUndefined()
      await expect(closedAuth.verify(mint())).resolves.toBeDefined()
      await eventually(() => closedStore.unavailableReason() !== undefined, 5_000, 'the failClosed store to give up')
      // Its last sync was at most one block (200 ms) before the kill.
      expect(performance.now() - killedAt).toBeGreaterThan(MAX_STALENESS_MS - 300)
      await expect(closedAuth.verify(mint())).rejects.toMatchObject({
        code: 'session_revoked',
        unavailable: true,
        status: 401,
      })
      expect(closedStore.unavailableReason()).toMatch(/cut off from Redis/)
      // Epochs fail closed with it; the open store keeps its last known epoch.
      expect(closedStore.currentDelegationEpoch('z')).toBe(Number.MAX_SAFE_INTEGER)
      expect(openStore.currentDelegationEpoch('z')).toBe(0)

      await expect(openAuth.verify(mint())).resolves.toMatchObject({ sub: 'user-1' })
      await expect(openAuth.verify(mint({ agent_session_id: 'agent-before' }))).rejects.toMatchObject({
        code: 'session_revoked',
        unavailable: false,
      })
      expect(openStore.unavailableReason()).toBeUndefined()
      // Warnings are delivered on a later tick, each store's on its own staleness check: a loaded
      // machine may run the open store's a while after the closed one's.
      await eventually(
        () => warnings.includes('CARACAL_REVOCATIONS_UNAVAILABLE') && warnings.includes('CARACAL_REVOCATIONS_STALE'),
        5_000,
        'both warnings',
      )

      // Writes fail fast instead of queueing; the revocation still holds locally.
      const t0 = performance.now()
      await expect(openStore.markRevoked('agent-local-only')).rejects.toThrow(/not connected/)
      expect(performance.now() - t0).toBeLessThan(2_000)
      expect(openStore.isRevoked('agent-local-only')).toBe(true)

      // Redis comes back, but the stores stay cut off while revocations are published.
      proxy.cut()
      await server.restart()
      const publisher = await connectedClient(server.port)
      await publisher.xadd(
        n.stream,
        '*',
        ...signedFields(n.stream, {
          zone_id: 'z',
          session_id: 'sess-during-1',
          agent_session_id: 'agent-during-1',
          reason: 'r',
        }),
      )
      await publisher.xadd(
        n.stream,
        '*',
        ...signedFields(n.stream, { zone_id: 'z', session_id: 'sess-during-2', reason: 'r' }),
      )
      await publisher.xadd(
        n.delegationStream,
        '*',
        ...signedFields(n.delegationStream, { event: 'edge_revoke', zone_id: 'z', edge_id: 'e', epoch: '4' }),
      )
      await sleep(300)
      expect(openStore.isRevoked('agent-during-1')).toBe(false)
      expect(closedStore.unavailableReason()).toBeDefined()

      proxy.restore()
      await eventually(
        () =>
          closedStore.unavailableReason() === undefined &&
          openStore.isRevoked('agent-during-1') === true &&
          openStore.isRevoked('sess-during-2') === true,
        10_000,
        'the stores to reconnect and catch up',
      )
      for (const [store, auth] of [
        [closedStore, closedAuth],
        [openStore, openAuth],
      ] as const) {
        expect(store.isRevoked('agent-before')).toBe(true)
        expect(store.isRevoked('sess-during-2')).toBe(true)
        expect(store.currentDelegationEpoch('z')).toBe(4)
        await expect(auth.verify(mint({ agent_session_id: 'agent-during-1' }))).rejects.toMatchObject({
          code: 'session_revoked',
          unavailable: false,
        })
        await expect(auth.verify(mint())).resolves.toBeDefined()
        // Caught up from the last ID it saw: the stream still held everything after it.
        expect(store.state().reloads).toBe(0)
      }
      // The consumer survived the outage too and made the new revocations durable.
      await eventually(() => consumer.stats().applied >= 2, 10_000, 'the consumer to catch up')
      expect(await publisher.exists(`${n.keyPrefix}agent-during-1`, `${n.keyPrefix}sess-during-2`)).toBe(2)
    } finally {
      process.off('warning', onWarning)
      stopConsumer.abort()
      await consuming
    }
  })

  /**
   * Revocations published every 20 ms and mandates of every published session verified every
   * 50 ms while `fault` runs: a mandate whose revocation Redis acknowledged more than
   * `PROPAGATION_BOUND_MS` ago must never be accepted (refused as revoked, or as unavailable while
   * the mirror cannot vouch), and once Redis is back the store recovers by itself and holds
   * every revocation acknowledged before, during and after the fault.
   */
  async function underLoad(
    label: string,
    fault: (publisher: Redis) => Promise<void>,
    longerThanStaleness = false,
  ): Promise<void> {
    const PROPAGATION_BOUND_MS = 1_000
    const n = uniqueNames(label)
    const store = mirror(n.store, true)
    await store.ready()
    const consumer = new RedisRevocationConsumer({
      redis: redisClient(server.port),
      consumer: 'c1',
      streamHmacKey: HMAC_KEY,
      blockMs: 200,
      ...n.revocations,
    })
    const stopConsumer = new AbortController()
    const consuming = consumer.run({ signal: stopConsumer.signal })
    const auth = authFor(store)
    const publisher = redisClient(server.port, { enableOfflineQueue: true, maxRetriesPerRequest: null })
    const published: { readonly anchor: string; readonly at: number }[] = []
    const outcomes = { wrong: 0, refusedRevoked: 0, refusedUnavailable: 0 }
    let stop = false
    const publishing = (async () => {
      for (let k = 0; !stop; ) {
        const anchor = `agent-${label}-${k}`
        try {
          await publisher.xadd(
            n.stream,
            '*',
            ...signedFields(n.stream, { zone_id: 'z', session_id: `sess-${k}`, agent_session_id: anchor, reason: 'r' }),
          )
          published.push({ anchor, at: performance.now() })
          k++
        } catch {
          // Redis down or restarting: this one was not acknowledged, so it is not owed; try again.
        }
        await sleep(20)
      }
    })()
    const verifying = (async () => {
      while (!stop) {
        const now = performance.now()
        const due = published.filter((p) => now - p.at > PROPAGATION_BOUND_MS)
        for (const p of due.slice(-25)) {
          const outcome = await auth.verify(mint({ agent_session_id: p.anchor })).then(
            () => 'accepted' as const,
            (e: { code: string; unavailable: boolean }) => (e.unavailable ? 'unavailable' : e.code),
          )
          if (outcome === 'accepted') outcomes.wrong++
          else if (outcome === 'unavailable') outcomes.refusedUnavailable++
          else if (outcome === 'session_revoked') outcomes.refusedRevoked++
          else outcomes.wrong++
        }
        await sleep(50)
      }
    })()
    try {
      await sleep(600)
      const before = published.length
      await fault(publisher)
      await eventually(() => published.length > before + 10, 15_000, 'publishing to resume after the fault')
      await sleep(PROPAGATION_BOUND_MS + 500)
    } finally {
      stop = true
      await Promise.all([publishing, verifying])
      stopConsumer.abort()
      await consuming
    }
    await eventually(
      () => store.unavailableReason() === undefined && published.every((p) => store.isRevoked(p.anchor) === true),
      10_000,
      'the store to recover and hold every acknowledged revocation',
    )
    expect(outcomes.wrong).toBe(0)
    expect(outcomes.refusedRevoked).toBeGreaterThan(0)
    // A fault longer than maxStalenessMs is seen as one: the mirror stopped vouching meanwhile.
    if (longerThanStaleness) expect(outcomes.refusedUnavailable).toBeGreaterThan(0)
    // A mandate of a session never revoked is accepted again: recovered, not stuck closed.
    await expect(auth.verify(mint())).resolves.toBeDefined()
  }

  it('Redis paused (CLIENT PAUSE) while revocations are published and requests verified: no revoked mandate accepted, all enforced after', async () => {
    await underLoad(
      'pause',
      async (publisher) => {
        const admin = await connectedClient(server.port)
        await admin.call('CLIENT', 'PAUSE', '2000', 'ALL')
        await sleep(2_300)
        void publisher
      },
      true,
    )
  })

  it('Redis frozen (DEBUG SLEEP) while revocations are published and requests verified: no revoked mandate accepted, all enforced after', async () => {
    await underLoad(
      'sleep',
      async () => {
        const admin = await connectedClient(server.port)
        // DEBUG SLEEP blocks the server and answers only when it wakes: not awaited here.
        void admin.call('DEBUG', 'SLEEP', '2').catch(() => undefined)
        await sleep(2_300)
      },
      true,
    )
  })

  it('Redis restarted empty while revocations are published and requests verified: what was revoked stays revoked, the new streams are followed', async () => {
    await underLoad('empty', async () => {
      await server.restartEmpty()
    })
  })

  it('an entry that failed only because Redis was failing (OOM) past maxDeliveries is made durable once Redis recovers, not dead-lettered', async () => {
    const n = uniqueNames('transient')
    const admin = await connectedClient(server.port)
    const consumer = new RedisRevocationConsumer({
      redis: redisClient(server.port),
      consumer: 'c1',
      streamHmacKey: HMAC_KEY,
      blockMs: 50,
      pendingIdleMs: 0,
      maxDeliveries: 2,
      ...n.revocations,
    })
    try {
      await consumer.ensureGroup()
      await admin.xadd(
        n.stream,
        '*',
        ...signedFields(n.stream, { zone_id: 'z', session_id: 'during-oom', reason: 'r' }),
      )
      await admin.config('SET', 'maxmemory-policy', 'noeviction')
      await admin.config('SET', 'maxmemory', '1')
      for (let delivery = 1; delivery <= 4; delivery++) await expect(consumer.pollOnce()).rejects.toThrow(/OOM/)
      await admin.config('SET', 'maxmemory', '0')
      await consumer.pollOnce()
      expect(await admin.exists(`${n.keyPrefix}during-oom`)).toBe(1)
      expect(consumer.stats()).toMatchObject({ applied: 1, deadLettered: {} })
      expect(await admin.exists(`${n.stream}.dead`)).toBe(0)
    } finally {
      await admin.config('SET', 'maxmemory', '0')
      await consumer.close()
    }
  })

  it('reloads from the durable keys when the stream was trimmed past the last ID it saw', async () => {
    const n = uniqueNames('trim')
    const store = mirror(n.store, true)
    await store.ready()
    await store.markRevoked('seen')
    proxy.cut()
    const admin = await connectedClient(server.port)
    await admin.xadd(
      n.stream,
      '*',
      ...signedFields(n.stream, { zone_id: 'z', session_id: 'trimmed-away', reason: 'r' }),
    )
    // The consumer made it durable before the stream was trimmed.
    await admin.set(`${n.keyPrefix}trimmed-away`, '1', 'PX', 60_000)
    await admin.xtrim(n.stream, 'MAXLEN', 0)
    await admin.xadd(n.stream, '*', ...signedFields(n.stream, { zone_id: 'z', session_id: 'after-trim', reason: 'r' }))
    proxy.restore()
    await eventually(
      () => store.isRevoked('after-trim') === true && store.unavailableReason() === undefined,
      10_000,
      'the store to catch up',
    )
    // The gap starts a key scan on the reconciler's own connection: within one scan, not at once.
    await eventually(() => store.isRevoked('trimmed-away') === true, 5_000, 'the key scan after the gap')
    expect(store.isRevoked('seen')).toBe(true)
    // Seen after the reconnect, and again after the first read from before the stream's head: a
    // scan each (counted as reloads), never none.
    expect(store.state().reloads).toBeGreaterThanOrEqual(1)
  })

  it('reads a recreated stream from its start when its IDs went backwards', async () => {
    const n = uniqueNames('reborn')
    const store = mirror(n.store, true)
    await store.ready()
    await store.markRevoked('before-reset')
    const admin = await connectedClient(server.port)
    // Caracal's stream gets far past 1-1 before it is recreated.
    await admin.xadd(
      n.stream,
      '9999999999999-0',
      ...signedFields(n.stream, { zone_id: 'z', session_id: 'old-stream', reason: 'r' }),
    )
    await eventually(() => store.isRevoked('old-stream') === true, 2_000, 'the store to read the old stream')
    proxy.cut()
    await admin.del(n.stream)
    await admin.xadd(n.stream, '1-1', ...signedFields(n.stream, { zone_id: 'z', session_id: 'reborn', reason: 'r' }))
    proxy.restore()
    await eventually(
      () => store.isRevoked('reborn') === true && store.unavailableReason() === undefined,
      10_000,
      'the store to read the new stream',
    )
    expect(store.isRevoked('before-reset')).toBe(true)
    expect(store.state().reloads).toBe(1)
  })
})
