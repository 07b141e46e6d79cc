/**
 * Issue 15 item 1: the mirror's bound (docs/architecture.md "Revocation", "The bound") taken at
 * its word. A revocation that exists in Redis — a retained entry of Caracal's stream, or a durable
 * key `<keyPrefix><anchor>` — is enforced by `CaracalAuth.verify` within the stated bound
 * whatever the order of start-up, publication, consumption, trimming and reconnection. Every
 * ordering runs twice, identically: on the shared local Redis (names of its own under a random
 * namespace) and on a Redis Cluster of three masters started by this file (Caracal's default
 * names, whose streams live on different masters; flushed after each test).
 *
 * Cost: about 22 s for both topologies on two cores (the cluster's start included), most of it
 * the two load scenarios, 5 and 7: each publishes for about a second, then verifies on until its
 * bound has passed.
 */
import { randomBytes } from 'node:crypto'
import { Cluster, type Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import type { CaracalAuth, CaracalAuthError } from '../src/index.js'
import {
  REVOCATION_KEY_PREFIX,
  REVOCATION_STREAM,
  RedisRevocationConsumer,
  RedisRevocationStore,
  signRevocationEvent,
  type RedisClient,
  type RedisRevocationStoreSettings,
} from '../src/redis.js'
import { mint } from './support/mandates.js'
import {
  closeClients,
  connectedClient,
  describeWithRedis,
  dropNamespace,
  eventually,
  redisClient,
  uniqueNames,
} from './support/redis.js'
import {
  describeWithRedisTopology,
  nodeClient,
  startRedisCluster,
  type TestRedisCluster,
} from './support/redis-topologies.js'
import { testVerifier } from './support/verifiers.js'

const HMAC_KEY = 'stream-secret'
/** A retained entry is read at the next XREAD (README "Several gateway instances, one Redis"): 2 s is a wide margin. */
const PROPAGATION_MS = 2_000
/** Ordering 4: a key no stream shows is found by the reconciler, every this often. */
const RECONCILE_MS = 500
/** `reconcileIntervalMs` plus one scan of a handful of keys (milliseconds), with a wide margin. */
const RECONCILE_BOUND_MS = RECONCILE_MS + 1_500
/** Orderings 5 and 6: thousands of keys a gap's scan must find; such a scan takes milliseconds. */
const GAP_BOUND_MS = 10_000
/** Long enough that no periodic scan runs during a test: only the gap check can start one. */
const NO_PERIODIC_SCAN_MS = 600_000
const READER = 'caracal-fastmcp:mirror-reader'
const RECONCILER = 'caracal-fastmcp:mirror-reconciler'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The names one scenario uses: its streams and key prefix, as the store and the consumer take them. */
interface Names {
  readonly stream: string
  readonly keyPrefix: string
  readonly store: Partial<RedisRevocationStoreSettings>
  readonly revocations: { readonly stream?: string; readonly keyPrefix?: string }
}

/** One Redis or a Cluster, as the scenarios see it. */
interface Topology {
  readonly label: string
  /** How many stream readers a store has here: one on one Redis, one per stream on a Cluster. */
  readonly readers: number
  /** The masters' ports: where CLIENT LIST and CLIENT KILL go. */
  ports(): readonly number[]
  /** A fresh client as a user wires one for the Redis classes. */
  client(): Promise<RedisClient>
  names(label: string): Names
  /**
   * The test's own writer. On a Cluster it is a `Cluster` typed as `Redis`, as the library types
   * its own connections (redis-connection.ts): every command sent here names one key, routed by it.
   */
  admin(): Redis
  /** Removes what a test left (its namespace, or every key of the cluster). */
  clean(): Promise<void>
}

/** A connection the store made of the client it was given (`duplicate`), with the name it asked for. */
interface Made {
  readonly name: string | undefined
  readonly conn: RedisClient
}

interface Started {
  readonly store: RedisRevocationStore
  readonly auth: CaracalAuth
  /** Every connection of the store's own, as it made them: what CLIENT KILL may target. */
  readonly made: readonly Made[]
}

interface ClientRow {
  readonly id: string
  readonly name: string
  readonly port: number
  readonly cmd: string
  readonly node: number
}

/**
 * Records what `duplicate` makes of `client`: `Redis.duplicate(options)` and
 * `Cluster.duplicate(nodes, options)` (docs/architecture.md "Revocation", Connections).
 */
function recordConnections(client: RedisClient): Made[] {
  const made: Made[] = []
  const target = client as unknown as { duplicate: (...args: unknown[]) => RedisClient }
  const duplicate = target.duplicate.bind(client)
  target.duplicate = (...args: unknown[]) => {
    const conn = duplicate(...args)
    const options = (client instanceof Cluster ? args[1] : args[0]) as
      | { connectionName?: string; redisOptions?: { connectionName?: string } }
      | undefined
    made.push({ name: options?.redisOptions?.connectionName ?? options?.connectionName, conn })
    return conn
  }
  return made
}

/** The local ports a connection (every node connection of a Cluster) talks to Redis from: CLIENT LIST's `addr`. */
function localPortsOf(conn: RedisClient): number[] {
  const links = conn instanceof Cluster ? conn.nodes('all') : [conn]
  return links.map((link) => link.stream?.localPort).filter((p): p is number => typeof p === 'number')
}

function parseClientList(list: string, node: number): ClientRow[] {
  return list
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const f = Object.fromEntries(
        line
          .trim()
          .split(' ')
          .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
      )
      const addr = f.addr ?? ''
      return {
        id: f.id ?? '',
        name: f.name ?? '',
        port: Number(addr.slice(addr.lastIndexOf(':') + 1)),
        cmd: f.cmd ?? '',
        node,
      }
    })
}

function signedFields(stream: string, fields: Record<string, string>): string[] {
  return Object.entries({ ...fields, _sig: signRevocationEvent(Buffer.from(HMAC_KEY), stream, fields) }).flat()
}

/** A revocation event as Caracal publishes it, for one agent session. */
const revocationEvent = (stream: string, anchor: string, extra: Record<string, string> = {}) =>
  signedFields(stream, { zone_id: 'zone-1', agent_session_id: anchor, reason: 'revoked', ...extra })

const refusal = (p: Promise<unknown>): Promise<CaracalAuthError | undefined> =>
  p.then(
    () => undefined,
    (e: unknown) => e as CaracalAuthError,
  )

/** Refused as revoked, not as unavailable: the mirror vouches for its copy and the anchor is in it. */
const REVOKED = { code: 'session_revoked', description: 'session has been revoked', unavailable: false, status: 401 }

/** Every anchor's mandate verified once: the anchors whose mandate was not refused as revoked. */
async function notRefused(auth: CaracalAuth, anchors: readonly string[]): Promise<string[]> {
  const outcomes = await Promise.all(anchors.map((a) => refusal(auth.verify(mint({ agent_session_id: a })))))
  return anchors.filter((_, i) => {
    const e = outcomes[i]
    return e?.code !== REVOKED.code || e.description !== REVOKED.description || e.unavailable !== false
  })
}

/** Resolves with how long it took until every anchor's mandate is refused as revoked; fails after `boundMs`. */
async function refusedWithin(auth: CaracalAuth, anchors: readonly string[], boundMs: number, what: string) {
  const t0 = performance.now()
  let left = [...anchors]
  for (;;) {
    left = await notRefused(auth, left)
    if (left.length === 0) return performance.now() - t0
    if (performance.now() - t0 > boundMs)
      throw new Error(`${what}: ${left.length} of ${anchors.length} mandates still accepted after ${boundMs} ms`)
    await sleep(20)
  }
}

/** A mandate of a session nobody revoked still passes: the store refuses what it holds, not everything. */
async function acceptsTheUnrevoked(auth: CaracalAuth): Promise<void> {
  await expect(
    auth.verify(mint({ agent_session_id: `never-revoked-${randomBytes(4).toString('hex')}` })),
  ).resolves.toMatchObject({ sub: 'user-1' })
}

interface Acked {
  readonly anchor: string
  /** When Redis acknowledged the revocation (performance.now()). */
  readonly at: number
}

/**
 * Verifies, every 50 ms until `stop()`, mandates of anchors Redis acknowledged more than `boundMs`
 * ago (the newest 20 of them and 10 at random): none may be accepted (test/redis-faults.test.ts
 * checks the same through Redis faults). Resolves with what was accepted or refused otherwise.
 */
function verifyMeanwhile(auth: CaracalAuth, acked: readonly Acked[], boundMs: number) {
  let stopped = false
  const wrong: string[] = []
  let checked = 0
  const loop = (async () => {
    while (!stopped) {
      const now = performance.now()
      const due = acked.filter((a) => now - a.at > boundMs)
      const sample = [
        ...due.slice(-20),
        ...Array.from({ length: Math.min(10, due.length) }, () => due[Math.floor(Math.random() * due.length)]!),
      ]
      const outcomes = await Promise.all(sample.map((a) => refusal(auth.verify(mint({ agent_session_id: a.anchor })))))
      for (const [i, e] of outcomes.entries()) {
        checked++
        if (e?.code !== 'session_revoked')
          wrong.push(`${sample[i]!.anchor}: ${e === undefined ? 'accepted' : `${e.code} (${e.description})`}`)
      }
      await sleep(50)
    }
  })()
  return {
    async stop() {
      stopped = true
      await loop
      return { wrong, checked }
    },
  }
}

/** What a scenario is given: the topology, and helpers that clean up after it. */
interface Run {
  readonly t: Topology
  readonly admin: Redis
  names(label: string): Names
  /** A store on a fresh client (HMAC key set, the scenario's names), with a CaracalAuth on it. */
  start(n: Names, options?: Partial<RedisRevocationStoreSettings>): Promise<Started>
  /** A consumer of Caracal's stream, as another instance runs one. */
  consumer(n: Names): Promise<RedisRevocationConsumer>
  /** The rows of CLIENT LIST, on every master, of the connections `made` that asked for `name`. */
  rows(made: readonly Made[], name: string): Promise<ClientRow[]>
  /** CLIENT KILL ID of each of those rows; resolves with the rows killed. */
  kill(made: readonly Made[], name: string): Promise<ClientRow[]>
  /** CLIENT KILL ID of these rows only. */
  killRows(rows: readonly ClientRow[]): Promise<void>
}

/** `ready()`, or a failure that says why the store could not load. */
async function loaded(store: RedisRevocationStore): Promise<void> {
  try {
    await store.ready({ timeoutMs: 5_000 })
  } catch (error) {
    const { lastError, unavailable } = store.state()
    throw new Error(
      `store not loaded (${(error as Error).message}); unavailable: ${unavailable}; last error: ${lastError ?? 'none'}`,
    )
  }
}

/**
 * `eventually`, with the failure's detail (the store's state, say) taken when it fails rather
 * than when the wait starts.
 */
async function holds(check: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  try {
    await eventually(check, timeoutMs, 'the condition')
  } catch {
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`)
  }
}

/** Writes durable keys as a consumer does (value 1, a TTL), 500 commands in flight at a time. */
async function writeKeys(admin: Redis, keys: readonly string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 500)
    await Promise.all(keys.slice(i, i + 500).map((key) => admin.set(key, '1', 'PX', 600_000)))
}

interface Ordering {
  readonly name: string
  run(r: Run): Promise<void>
}

/** The orderings, shared by both topologies. */
const ORDERINGS: readonly Ordering[] = [
  {
    name: '1. published on Caracal’s stream, consumed by nobody, then the store starts: refused once loaded (and a check made during the load waits for it)',
    async run({ admin, names, start }) {
      const n = names('backlog')
      const anchors = ['backlog-a', 'backlog-b', 'backlog-c'].map((a) => `${a}-${randomBytes(4).toString('hex')}`)
      for (const anchor of anchors) await admin.xadd(n.stream, '*', ...revocationEvent(n.stream, anchor))
      // Nobody consumed them: there is no durable key, only the entries.
      for (const a of anchors) expect(await admin.exists(n.keyPrefix + a)).toBe(0)
      const { store, auth } = await start(n)
      const duringLoad = refusal(auth.verify(mint({ agent_session_id: anchors[0] })))
      await loaded(store)
      expect(await duringLoad).toMatchObject(REVOKED)
      expect(await notRefused(auth, anchors)).toEqual([])
      await acceptsTheUnrevoked(auth)
    },
  },
  {
    name: '2. store started, then the event published: refused within the propagation bound',
    async run({ admin, names, start }) {
      const n = names('live')
      const { store, auth } = await start(n)
      await loaded(store)
      const anchor = `live-${randomBytes(4).toString('hex')}`
      await acceptsTheUnrevoked(auth)
      await expect(auth.verify(mint({ agent_session_id: anchor }))).resolves.toBeDefined()
      await admin.xadd(n.stream, '*', ...revocationEvent(n.stream, anchor))
      const took = await refusedWithin(auth, [anchor], PROPAGATION_MS, 'a live event')
      expect(took).toBeLessThan(PROPAGATION_MS)
      await acceptsTheUnrevoked(auth)
    },
  },
  {
    name: '3. consumed and made durable by a consumer, the stream then trimmed to nothing, then the store starts: refused (found by the key scan)',
    async run({ admin, names, start, consumer }) {
      const n = names('consumed')
      const anchor = `consumed-${randomBytes(4).toString('hex')}`
      const c = await consumer(n)
      await admin.xadd(n.stream, '*', ...revocationEvent(n.stream, anchor))
      expect(await c.pollOnce()).toBe(1)
      expect(await admin.exists(n.keyPrefix + anchor)).toBe(1)
      await admin.xtrim(n.stream, 'MAXLEN', 0)
      expect(await admin.xlen(n.stream)).toBe(0)
      const { store, auth } = await start(n)
      await loaded(store)
      await expect(auth.verify(mint({ agent_session_id: anchor }))).rejects.toMatchObject(REVOKED)
      // Nothing was read from the stream: the key scan found it.
      expect(store.state().applied).toBe(0)
      await acceptsTheUnrevoked(auth)
    },
  },
  {
    name: '4. store loaded, then a durable key appears whose entry no stream shows any more: refused within reconcileIntervalMs plus one scan',
    async run({ admin, names, start }) {
      const n = names('reconciled')
      const { store, auth } = await start(n, { reconcileIntervalMs: RECONCILE_MS })
      await loaded(store)
      const keyOnly = `key-only-${randomBytes(4).toString('hex')}`
      const trimmed = `trimmed-${randomBytes(4).toString('hex')}`
      await acceptsTheUnrevoked(auth)
      // Another instance's consumer made it durable and the entry is gone: no stream shows a
      // trace of it (no gap either), so only the periodic scan can find it.
      await admin.set(n.keyPrefix + keyOnly, '1', 'PX', 600_000)
      const tookKey = await refusedWithin(auth, [keyOnly], RECONCILE_BOUND_MS, 'a key no stream shows')
      expect(tookKey).toBeLessThan(RECONCILE_BOUND_MS)
      // Not read from a stream, and no gap seen: a periodic scan found it (it holds each key as
      // it comes, so the scan may still be under way).
      expect(store.state()).toMatchObject({ reloads: 0, applied: 0 })
      // The same with the entry appended and trimmed in one transaction, so this store could
      // never read it: the gap it leaves, or the next periodic scan, finds the key.
      await admin.set(n.keyPrefix + trimmed, '1', 'PX', 600_000)
      await admin
        .multi()
        .xadd(n.stream, '*', ...revocationEvent(n.stream, trimmed))
        .xtrim(n.stream, 'MAXLEN', 0)
        .exec()
      const tookTrimmed = await refusedWithin(auth, [trimmed], RECONCILE_BOUND_MS, 'a key whose entry was trimmed')
      expect(tookTrimmed).toBeLessThan(RECONCILE_BOUND_MS)
      expect(store.state().applied).toBe(0)
      await acceptsTheUnrevoked(auth)
    },
  },
  // Only the gap check can save what is trimmed here (docs/architecture.md "Revocation": "After
  // every read … entries trimmed or deleted past it … start a scan of the keys at once"): it
  // must compare the stream's head with where the read began, since the read itself ends past it.
  {
    name: '5. 2 000 revocations published with MAXLEN ~ 100 (durable keys written with each batch) while the store follows, no periodic scan: all refused within the bound, none accepted past it meanwhile',
    async run({ admin, names, start }) {
      const n = names('trimmed')
      const { store, auth } = await start(n, { reconcileIntervalMs: NO_PERIODIC_SCAN_MS })
      await loaded(store)
      const tag = randomBytes(4).toString('hex')
      const anchors = Array.from({ length: 2_000 }, (_, i) => `burst-${tag}-${i}`)
      const acked: Acked[] = []
      const verifier = verifyMeanwhile(auth, acked, PROPAGATION_MS)
      let report: Awaited<ReturnType<typeof verifier.stop>>
      try {
        for (let b = 0; b < anchors.length; b += 250) {
          const batch = anchors.slice(b, b + 250)
          // The consumers' durable writes are in place before the entries can be trimmed; the
          // entries go in one MULTI, so the store cannot read between them: most are trimmed
          // (MAXLEN ~ 100) before it reads anything of the batch.
          await writeKeys(
            admin,
            batch.map((a) => n.keyPrefix + a),
          )
          const multi = admin.multi()
          for (const a of batch) multi.xadd(n.stream, 'MAXLEN', '~', '100', '*', ...revocationEvent(n.stream, a))
          const replies = await multi.exec()
          expect(replies?.every(([error]) => error === null)).toBe(true)
          const at = performance.now()
          for (const a of batch) acked.push({ anchor: a, at })
          await sleep(100)
        }
        await holds(
          () => anchors.every((a) => store.isRevoked(a) === true),
          GAP_BOUND_MS,
          () =>
            `all 2 000 revocations (missing ${anchors.filter((a) => store.isRevoked(a) !== true).length}; state: ${JSON.stringify(store.state())})`,
        )
        await sleep(Math.max(0, acked[acked.length - 1]!.at + PROPAGATION_MS + 300 - performance.now()))
      } finally {
        report = await verifier.stop()
      }
      // Entries were trimmed before the store read them: the keys, not the stream, had them.
      expect(store.state().applied).toBeLessThan(anchors.length)
      expect(await admin.xlen(n.stream)).toBeLessThan(400)
      expect(report.wrong).toEqual([])
      expect(report.checked).toBeGreaterThan(50)
      expect(await notRefused(auth, anchors)).toEqual([])
      expect(store.unavailableReason()).toBeUndefined()
      await acceptsTheUnrevoked(auth)
    },
  },
  {
    name: '6. the reconciler’s connection killed, on every master, while it scans a few thousand keys a gap made it reload: every key still enforced',
    run: (r) => killedWhileScanning(r, 'every link'),
  },
  {
    name: '7. the store’s reader connection killed while events are published: every event before, during and after enforced once it reconnects, none accepted past the bound meanwhile',
    async run({ t, admin, names, start, kill, rows }) {
      const n = names('killed-reader')
      const { store, auth, made } = await start(n)
      await loaded(store)
      const tag = randomBytes(4).toString('hex')
      const acked: Acked[] = []
      const verifier = verifyMeanwhile(auth, acked, PROPAGATION_MS)
      let stop = false
      let k = 0
      const publishing = (async () => {
        while (!stop) {
          const anchor = `reader-${tag}-${k++}`
          await admin.xadd(n.stream, '*', ...revocationEvent(n.stream, anchor))
          acked.push({ anchor, at: performance.now() })
          await sleep(20)
        }
      })()
      let killed: ClientRow[] = []
      let report: Awaited<ReturnType<typeof verifier.stop>>
      try {
        await sleep(500)
        const before = acked.length
        killed = await kill(made, READER)
        await eventually(() => acked.length > before + 30, 5_000, 'publishing on after the kill')
      } finally {
        stop = true
        await publishing
      }
      try {
        await holds(
          () => acked.every((a) => store.isRevoked(a.anchor) === true),
          PROPAGATION_MS,
          () =>
            `every event after the reconnect (missing ${acked.filter((a) => store.isRevoked(a.anchor) !== true).length}; state: ${JSON.stringify(store.state())})`,
        )
        await sleep(Math.max(0, acked[acked.length - 1]!.at + PROPAGATION_MS + 300 - performance.now()))
      } finally {
        report = await verifier.stop()
      }
      // Each reader's link was cut (one reader here, one per stream on a Cluster).
      expect(killed.length).toBeGreaterThanOrEqual(t.readers)
      const after = await rows(made, READER)
      expect(after.filter((row) => killed.some((x) => x.id === row.id && x.node === row.node))).toEqual([])
      expect(report.wrong).toEqual([])
      expect(report.checked).toBeGreaterThan(50)
      expect(
        await notRefused(
          auth,
          acked.map((a) => a.anchor),
        ),
      ).toEqual([])
      expect(store.state()).toMatchObject({ connected: true, unavailable: undefined })
      await acceptsTheUnrevoked(auth)
    },
  },
]

/**
 * Ordering 6: a gap makes the store scan 3 000 durable keys that no stream shows (written after
 * it loaded, with no periodic scan due), and the reconciler's connection is killed mid-scan —
 * every one of its links (`'every link'`), or only those to the masters it has reached so far
 * (`'scanning links'`, on a Cluster: the others stay up). The scan is started again and must
 * cover every master (docs/architecture.md "Revocation": "a scan cut off is started again after 0.5 s").
 */
async function killedWhileScanning(
  { t, admin, names, start, rows, killRows }: Run,
  which: 'every link' | 'scanning links',
): Promise<void> {
  const n = names('killed-scan')
  // Ten keys per SCAN step: a scan of 3 000 keys takes hundreds of round trips, long enough to be cut.
  const { store, auth, made } = await start(n, { reconcileIntervalMs: NO_PERIODIC_SCAN_MS, batchSize: 10 })
  await loaded(store)
  const tag = randomBytes(4).toString('hex')
  const anchors = Array.from({ length: 3_000 }, (_, i) => `scanned-${tag}-${i}`)
  await writeKeys(
    admin,
    anchors.map((a) => n.keyPrefix + a),
  )
  // One entry appended and trimmed at once: the gap check sees it and starts a scan.
  await admin
    .multi()
    .xadd(n.stream, '*', ...revocationEvent(n.stream, anchors[0]!))
    .xtrim(n.stream, 'MAXLEN', 0)
    .exec()
  let links: ClientRow[] = []
  let scanning: ClientRow[] = []
  const t0 = performance.now()
  while (scanning.length === 0) {
    if (performance.now() - t0 > 5_000) throw new Error('the reconciler never started scanning')
    links = await rows(made, RECONCILER)
    scanning = links.filter((row) => ['scan', 'pttl'].includes(row.cmd))
  }
  const killed = which === 'every link' ? links : scanning
  await killRows(killed)
  // The scan was under way: none had completed yet.
  expect(store.state().reconciles).toBe(0)
  const masters = new Set(killed.map((row) => row.node)).size
  if (which === 'every link') expect(masters).toBe(t.ports().length)
  else expect(masters).toBeLessThan(t.ports().length)
  await holds(
    () => anchors.every((a) => store.isRevoked(a) === true),
    GAP_BOUND_MS,
    () =>
      `every key after the kill (missing ${anchors.filter((a) => store.isRevoked(a) !== true).length}; state: ${JSON.stringify(store.state())})`,
  )
  // The scan started again completes (it holds each key as it comes, so it may still be going).
  await holds(
    () => store.state().reconciles > 0,
    GAP_BOUND_MS,
    () => `a scan to complete after the kill (state: ${JSON.stringify(store.state())})`,
  )
  // Scanning on new connections, not the killed ones.
  const after = await rows(made, RECONCILER)
  expect(after.length).toBeGreaterThan(0)
  expect(after.filter((row) => killed.some((k) => k.id === row.id && k.node === row.node))).toEqual([])
  expect(await notRefused(auth, anchors)).toEqual([])
  await acceptsTheUnrevoked(auth)
}

/**
 * The Cluster's own case: a master whose link dropped leaves the scanner's pool until the slot map
 * is refreshed, so a scan that trusted the pool would skip that master and count as complete
 * (`scanTargets` refreshes the map and refuses a missing master). On one Redis its only link is
 * all of them (ordering 6).
 */
const ONE_MASTER_LINK: Ordering = {
  name: '6b. the reconciler’s link to the master it is scanning killed, its other links left up: every key on every master still enforced',
  run: (r) => killedWhileScanning(r, 'scanning links'),
}

/** The scenarios on `topology`, with the cleanup each needs. */
function runOrderings(topology: () => Topology, orderings: readonly Ordering[] = ORDERINGS): void {
  const stores: RedisRevocationStore[] = []
  const consumers: RedisRevocationConsumer[] = []
  const nodes = new Map<number, Redis>()
  let t: Topology

  const node = (port: number): Redis => {
    let client = nodes.get(port)
    if (client === undefined) {
      client = nodeClient(port)
      nodes.set(port, client)
    }
    return client
  }

  const rows = async (made: readonly Made[], name: string): Promise<ClientRow[]> => {
    const ours = new Set(made.filter((m) => m.name === name).flatMap((m) => localPortsOf(m.conn)))
    const found: ClientRow[] = []
    for (const port of t.ports()) {
      const list = (await node(port).call('CLIENT', 'LIST')) as string
      found.push(...parseClientList(list, port).filter((row) => row.name === name && ours.has(row.port)))
    }
    return found
  }

  beforeAll(async () => {
    t = topology()
  })

  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((c) => c.close()))
    await Promise.all(stores.splice(0).map((s) => s.close()))
    await t.clean()
  })

  afterAll(() => {
    for (const client of nodes.values()) client.disconnect()
    nodes.clear()
  })

  it.each(orderings)('$name', async (ordering) => {
    const run: Run = {
      t,
      admin: t.admin(),
      names: (label) => t.names(label),
      async start(n, options = {}) {
        const client = await t.client()
        const made = recordConnections(client)
        const store = new RedisRevocationStore(client, { streamHmacKey: HMAC_KEY, ...n.store, ...options })
        stores.push(store)
        return { store, made, auth: testVerifier('auto', { revocations: store }).auth }
      },
      async consumer(n) {
        const c = new RedisRevocationConsumer({
          redis: await t.client(),
          consumer: 'other-instance',
          streamHmacKey: HMAC_KEY,
          blockMs: 50,
          ...n.revocations,
        })
        consumers.push(c)
        await c.ensureGroup()
        return c
      },
      rows,
      async kill(made, name) {
        const targets = await rows(made, name)
        for (const row of targets) await node(row.node).call('CLIENT', 'KILL', 'ID', row.id)
        return targets
      },
      async killRows(targets) {
        for (const row of targets) await node(row.node).call('CLIENT', 'KILL', 'ID', row.id)
      },
    }
    await ordering.run(run)
  })
}

describeWithRedis('the mirror’s bound under every ordering, on one Redis', () => {
  const namespaces: string[] = []
  let admin: Redis
  beforeAll(async () => {
    admin = await connectedClient()
  })
  afterAll(() => closeClients())
  runOrderings(() => ({
    label: 'one Redis',
    readers: 1,
    ports: () => [6379],
    async client() {
      return redisClient()
    },
    names(label) {
      const n = uniqueNames(`orderings-${label}`)
      namespaces.push(n.namespace)
      return { stream: n.stream, keyPrefix: n.keyPrefix, store: n.store, revocations: n.revocations }
    },
    admin: () => admin,
    async clean() {
      for (const ns of namespaces.splice(0)) await dropNamespace(admin, ns)
    },
  }))
})

describeWithRedisTopology('the mirror’s bound under every ordering, on a Redis Cluster of three masters', () => {
  let cluster: TestRedisCluster
  const clients: Cluster[] = []
  let admin: Cluster

  /** A Cluster client as a user makes one (as test/redis-cluster.test.ts does). */
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

  beforeAll(async () => {
    cluster = await startRedisCluster(3)
    admin = await clusterClient()
  })

  afterAll(async () => {
    for (const client of clients.splice(0)) client.disconnect()
    await cluster?.stop()
  })

  runOrderings(
    () => ({
      label: 'a Redis Cluster',
      readers: 3,
      ports: () => cluster.ports,
      client: clusterClient,
      // Caracal's default names: its streams are fixed, and land on different masters.
      names: () => ({ stream: REVOCATION_STREAM, keyPrefix: REVOCATION_KEY_PREFIX, store: {}, revocations: {} }),
      admin: () => admin as unknown as Redis,
      async clean() {
        for (const port of cluster.ports) {
          const node = nodeClient(port)
          await node.flushall()
          node.disconnect()
        }
      },
    }),
    [...ORDERINGS, ONE_MASTER_LINK],
  )
})
