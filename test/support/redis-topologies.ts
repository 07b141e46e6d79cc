/**
 * Redis topologies for tests, started by the test itself from the redis-server and redis-cli on
 * PATH, on free loopback ports, with their files in temporary directories: a Redis Cluster of
 * masters (no replicas), and a Sentinel set (a master, its replica, one sentinel) with a forced
 * failover. Every process is killed by its pid by `stop()` (and on a failed start-up, and, as a
 * last resort, when the test process exits); every directory is removed.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { describe, it } from 'vitest'
import { REDIS_SERVER, findExecutable, freePort, redisAnswers } from './redis.js'

/** The redis-cli that creates clusters: the one on PATH, or undefined without one. */
export const REDIS_CLI: string | undefined = findExecutable('redis-cli')

/** The hostname every node binds and announces: clients reach them as they are told to. */
export const LOOPBACK = '127.0.0.1'

/**
 * `describe` for suites that start Redis topologies of their own: like `describeWithRedisServer`
 * (test/support/redis.ts), without redis-server or redis-cli on PATH they fail with one line
 * under CI=true (a green CI must not hide a missing tool) and are skipped, loudly, elsewhere.
 */
export function describeWithRedisTopology(name: string, body: () => void): void {
  const missing = [REDIS_SERVER === undefined ? 'redis-server' : '', REDIS_CLI === undefined ? 'redis-cli' : '']
    .filter((tool) => tool !== '')
    .join(' and ')
  if (missing === '') {
    describe(name, body)
  } else if (process.env.CI === 'true') {
    describe(name, () => {
      it('needs redis-server and redis-cli on PATH', () => {
        throw new Error(`${missing} not on PATH; CI=true requires them for "${name}", which starts Redis topologies`)
      })
    })
  } else {
    console.warn(
      `\n*** SKIPPED "${name}": ${missing} not on PATH. Install redis-server (and redis-tools) to run it. ***\n`,
    )
    describe.skip(name, body)
  }
}

/** Children still running, and their directories: the last resort's to clean up. */
const running = new Set<ChildProcess>()
const directories = new Set<string>()

/** A temporary directory the last resort removes too, should the suite not stop its topology. */
function temporaryDirectory(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  directories.add(dir)
  return dir
}

function killRunning(): void {
  for (const child of running) {
    try {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  running.clear()
  for (const dir of directories) {
    try {
      rmSync(dir, { recursive: true, force: true })
    } catch {
      // a node killed a moment ago may still be writing: the directory stays in the temp dir
    }
  }
  directories.clear()
}

let reaperInstalled = false

/**
 * The last resort, installed with the first child: on exit, and on the SIGTERM with which
 * vitest ends its worker processes (no 'exit' event then), after which the signal is raised
 * again so the worker still ends as it would have.
 */
function track(child: ChildProcess): void {
  running.add(child)
  if (reaperInstalled) return
  reaperInstalled = true
  process.once('exit', killRunning)
  process.once('SIGTERM', () => {
    killRunning()
    if (process.listenerCount('SIGTERM') === 0) process.kill(process.pid, 'SIGTERM')
  })
}

interface ServerProcess {
  readonly port: number
  readonly pid: number
  /** SIGKILL by pid; resolves once it has exited. */
  kill(): Promise<void>
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `check` every 20 ms until it holds; rejects with `what` (and the last error seen) after `timeoutMs`. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  for (;;) {
    try {
      if (await check()) return
    } catch (error) {
      last = error instanceof Error ? error.message : String(error)
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last === '' ? '' : ` (last error: ${last})`}`,
      )
    await sleep(20)
  }
}

/** Starts redis-server with `args`; resolves once it answers PING on `port`. Its log tail explains a failed start. */
async function startServer(args: readonly string[], port: number): Promise<ServerProcess> {
  const executable = REDIS_SERVER
  if (executable === undefined) throw new Error('redis-server is not on PATH (use describeWithRedisTopology)')
  const child = spawn(executable, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  track(child)
  let output = ''
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-2_000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  let failure: Error | undefined
  child.on('error', (error) => {
    failure ??= new Error(`could not run ${executable}: ${error.message}`)
  })
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child)
      failure ??= new Error(
        `${executable} on port ${port} exited (${signal ?? `code ${code}`}): ${output.trim() || 'no output'}`,
      )
      resolve()
    })
  })
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return
    try {
      process.kill(child.pid, 'SIGKILL')
    } catch {
      // it ended on its own a moment ago: its exit event is on the way
    }
    await exited
  }
  try {
    // A process that failed ends the wait at once, with its own reason.
    await waitFor(async () => failure !== undefined || redisAnswers(port, 200), 10_000, `${executable} on port ${port}`)
    if (failure !== undefined) throw failure
  } catch (error) {
    await kill()
    throw failure ?? error
  }
  return { port, pid: child.pid as number, kill }
}

/** The arguments every node gets: loopback only, no persistence, its log on stdout. */
function baseArgs(port: number, dir: string): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    LOOPBACK,
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'no',
    '--logfile',
    '',
    '--loglevel',
    'warning',
    // A master otherwise waits 5 s for more replicas before it starts a (diskless) full sync.
    '--repl-diskless-sync-delay',
    '0',
  ]
}

/** A plain connection to one node (never a cluster or sentinel client): for the harness's own questions. */
export function nodeClient(port: number): Redis {
  const client = new Redis({
    host: LOOPBACK,
    port,
    enableOfflineQueue: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: 2_000,
    retryStrategy: () => null,
  })
  client.on('error', () => undefined)
  return client
}

/** Runs `use` on a fresh connection to `port`, then closes it. */
async function withNode<T>(port: number, use: (client: Redis) => Promise<T>): Promise<T> {
  const client = nodeClient(port)
  try {
    return await use(client)
  } finally {
    client.disconnect()
  }
}

/** `INFO <section>` as name → value. */
export async function info(port: number, section: string): Promise<Record<string, string>> {
  const text = await withNode(port, (c) => c.info(section))
  const fields: Record<string, string> = {}
  for (const line of text.split('\r\n')) {
    const at = line.indexOf(':')
    if (at > 0 && !line.startsWith('#')) fields[line.slice(0, at)] = line.slice(at + 1)
  }
  return fields
}

function run(executable: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(executable, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    track(child)
    let output = ''
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-4_000)
    }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
    }, timeoutMs)
    child.on('error', (error) => reject(new Error(`could not run ${executable}: ${error.message}`)))
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      running.delete(child)
      if (code === 0) resolve(output)
      else reject(new Error(`${executable} ${args.join(' ')} failed (${signal ?? `code ${code}`}): ${output.trim()}`))
    })
  })
}

async function stopAll(servers: readonly ServerProcess[], dir: string): Promise<void> {
  await Promise.all(servers.map((s) => s.kill()))
  rmSync(dir, { recursive: true, force: true })
  directories.delete(dir)
}

export interface ClusterMaster {
  readonly port: number
  /** The slot ranges it serves, inclusive. */
  readonly slots: readonly (readonly [number, number])[]
}

export interface TestRedisCluster {
  /** The masters' ports, in the order they were started. */
  readonly ports: readonly number[]
  /** The node list a `Cluster` client starts from (one node is enough: it learns the rest). */
  readonly startupNodes: readonly { readonly host: string; readonly port: number }[]
  /** Who serves which slots, as CLUSTER SLOTS answers. */
  masters(): Promise<ClusterMaster[]>
  /** `CLUSTER KEYSLOT key`, as the server computes it. */
  keySlot(key: string): Promise<number>
  /** The port of the master that serves `key`'s slot. */
  masterOf(key: string): Promise<number>
  /**
   * `count` names, `make(i)` for i = 0, 1, …, the first ones whose keys (`key(name)`) land on
   * each master in turn: names spread over every master, checked with CLUSTER KEYSLOT.
   */
  spread(count: number, make: (i: number) => string, key?: (name: string) => string): Promise<string[]>
  /** Kills every node by pid and removes the directory. */
  stop(): Promise<void>
}

/**
 * A Redis Cluster of `masterCount` masters (no replicas) on free loopback ports, created with
 * `redis-cli --cluster create`; resolves once every node reports `cluster_state:ok` and knows
 * every other. About 2 s on two cores.
 */
export async function startRedisCluster(masterCount = 3): Promise<TestRedisCluster> {
  const cli = REDIS_CLI
  if (cli === undefined) throw new Error('redis-cli is not on PATH (use describeWithRedisTopology)')
  const dir = temporaryDirectory('caracal-cluster-')
  const servers: ServerProcess[] = []
  try {
    const ports: number[] = []
    for (let i = 0; i < masterCount; i++) {
      let port = await freePort()
      // The cluster bus listens on port + 10000, which must be a port too.
      while (port + 10_000 > 65_535 || ports.includes(port)) port = await freePort()
      ports.push(port)
    }
    // Pushed one by one: when one fails to start, the others are still stopped below.
    await Promise.all(
      ports.map(async (port) => {
        const args = [
          ...baseArgs(port, dir),
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          '5000',
        ]
        servers.push(await startServer(args, port))
      }),
    )
    await run(
      cli,
      ['--cluster', 'create', ...ports.map((p) => `${LOOPBACK}:${p}`), '--cluster-replicas', '0', '--cluster-yes'],
      30_000,
    )
    await waitFor(
      async () => {
        for (const port of ports) {
          const state = await withNode(port, (c) => c.call('CLUSTER', 'INFO') as Promise<string>)
          if (!state.includes('cluster_state:ok') || !state.includes(`cluster_known_nodes:${masterCount}`)) return false
        }
        return true
      },
      15_000,
      `cluster_state:ok on every node of ${ports.join(', ')}`,
    )
    const masters = async (): Promise<ClusterMaster[]> => {
      const reply = (await withNode(ports[0]!, (c) => c.call('CLUSTER', 'SLOTS'))) as [
        number,
        number,
        [string, number],
      ][]
      const byPort = new Map<number, [number, number][]>()
      for (const [from, to, [, port]] of reply) {
        const ranges = byPort.get(port) ?? []
        ranges.push([from, to])
        byPort.set(port, ranges)
      }
      return [...byPort].map(([port, slots]) => ({ port, slots })).sort((a, b) => a.port - b.port)
    }
    const keySlot = async (key: string): Promise<number> =>
      Number(await withNode(ports[0]!, (c) => c.call('CLUSTER', 'KEYSLOT', key)))
    const masterOf = async (key: string): Promise<number> => {
      const slot = await keySlot(key)
      const owner = (await masters()).find((m) => m.slots.some(([from, to]) => slot >= from && slot <= to))
      if (owner === undefined) throw new Error(`no master serves slot ${slot}`)
      return owner.port
    }
    return {
      ports,
      startupNodes: ports.map((port) => ({ host: LOOPBACK, port })),
      masters,
      keySlot,
      masterOf,
      async spread(count, make, key = (name) => name) {
        const all = await masters()
        const wanted = all.map((m) => m.port)
        const picked: string[] = []
        for (let i = 0; picked.length < count && i < 100_000; i++) {
          const name = make(i)
          if ((await masterOf(key(name))) === wanted[picked.length % wanted.length]) picked.push(name)
        }
        if (picked.length < count) throw new Error(`could not spread ${count} names over ${wanted.length} masters`)
        return picked
      },
      stop: () => stopAll(servers, dir),
    }
  } catch (error) {
    await stopAll(servers, dir)
    throw error
  }
}

export interface TestRedisSentinel {
  /** The name the sentinel monitors the master under. */
  readonly masterName: string
  readonly sentinelPort: number
  /** The two data nodes' ports: the first master, then its replica. */
  readonly nodePorts: readonly [number, number]
  /** What a `Redis` client is given to find the master through the sentinel. */
  readonly sentinels: readonly { readonly host: string; readonly port: number }[]
  /** The master's port as the sentinel names it now (SENTINEL GET-MASTER-ADDR-BY-NAME). */
  currentMaster(): Promise<number>
  /**
   * `SENTINEL FAILOVER`, then waits until the sentinel names the other node. Resolves with the old
   * and new masters' ports; the old master is demoted by the sentinel later (see `settled`).
   */
  failover(timeoutMs?: number): Promise<{ readonly from: number; readonly to: number }>
  /**
   * Waits until the nodes agree with the sentinel: the master it names answers `role:master`, the
   * other is its replica with the link up, and the sentinel sees that replica (so another
   * failover can be forced).
   */
  settled(timeoutMs?: number): Promise<void>
  /**
   * Resolves once the replica has acknowledged every write the master took so far (a write of
   * the harness's own, then WAIT 1): what was written before it survives a failover.
   */
  replicated(timeoutMs?: number): Promise<void>
  /** Kills every process by pid and removes the directory. */
  stop(): Promise<void>
}

/** Sentinel's minimum useful values, for a failover within about a second of being asked. */
const DOWN_AFTER_MS = 1_000
const FAILOVER_TIMEOUT_MS = 5_000
/** The harness's own key, written and deleted to make WAIT count the replica's acknowledgement. */
const REPLICATION_MARK = 'caracal-test:replication-mark'
const SENTINEL_PERIODS = ['info-period', '100', 'publish-period', '250', 'ping-period', '200', 'ask-period', '200']

/**
 * A master, a replica of it (`--replicaof`) and one sentinel monitoring them (quorum 1, short
 * timeouts) on free loopback ports; resolves once the replica is in sync and the sentinel knows
 * it, so `failover()` can be forced at once. About 1 s.
 */
export async function startRedisSentinel(masterName = 'mymaster'): Promise<TestRedisSentinel> {
  const dir = temporaryDirectory('caracal-sentinel-')
  const servers: ServerProcess[] = []
  try {
    const masterPort = await freePort()
    let replicaPort = await freePort()
    while (replicaPort === masterPort) replicaPort = await freePort()
    let sentinelPort = await freePort()
    while (sentinelPort === masterPort || sentinelPort === replicaPort) sentinelPort = await freePort()
    const nodeDir = (port: number) => {
      const d = join(dir, `node-${port}`)
      mkdirSync(d)
      return d
    }
    servers.push(await startServer(baseArgs(masterPort, nodeDir(masterPort)), masterPort))
    servers.push(
      await startServer(
        [...baseArgs(replicaPort, nodeDir(replicaPort)), '--replicaof', LOOPBACK, String(masterPort)],
        replicaPort,
      ),
    )
    await waitFor(
      async () => (await info(replicaPort, 'replication')).master_link_status === 'up',
      10_000,
      `the replica on ${replicaPort} to sync with ${masterPort}`,
    )
    // The sentinel rewrites its configuration file (what it learns): it must be its own, writable.
    const conf = join(dir, 'sentinel.conf')
    writeFileSync(
      conf,
      [
        `port ${sentinelPort}`,
        `bind ${LOOPBACK}`,
        `dir ${dir}`,
        'logfile ""',
        'loglevel warning',
        `sentinel monitor ${masterName} ${LOOPBACK} ${masterPort} 1`,
        `sentinel down-after-milliseconds ${masterName} ${DOWN_AFTER_MS}`,
        `sentinel failover-timeout ${masterName} ${FAILOVER_TIMEOUT_MS}`,
        `sentinel parallel-syncs ${masterName} 1`,
        '',
      ].join('\n'),
    )
    servers.push(await startServer([conf, '--sentinel'], sentinelPort))
    const sentinelCall = (...args: string[]) =>
      withNode(sentinelPort, (c) => c.call('SENTINEL', ...args)) as Promise<unknown>
    // Sentinel's own periods (Redis 7.0's SENTINEL DEBUG) are tuned for production: INFO every
    // 10 s, and an old master left serving writes for 4 publish periods (8 s) before it is
    // demoted. Shorter here, so a failover settles within about a second; the order of events
    // stays the sentinel's. An older sentinel without SENTINEL DEBUG is only slower.
    await sentinelCall('DEBUG', ...SENTINEL_PERIODS).catch(() => undefined)
    const currentMaster = async (): Promise<number> => {
      const reply = (await sentinelCall('GET-MASTER-ADDR-BY-NAME', masterName)) as [string, string] | null
      if (reply === null) throw new Error(`the sentinel does not know ${masterName}`)
      return Number(reply[1])
    }
    const replicaSeen = async (master: number, replica: number): Promise<boolean> => {
      const rows = (await sentinelCall('REPLICAS', masterName)) as string[][]
      return rows.some((row) => {
        const f = Object.fromEntries(Array.from({ length: row.length / 2 }, (_, i) => [row[2 * i], row[2 * i + 1]]))
        return (
          Number(f.port) === replica &&
          f.flags === 'slave' &&
          f['master-link-status'] === 'ok' &&
          Number(f['master-port']) === master
        )
      })
    }
    const replicated = async (timeoutMs = 5_000): Promise<void> => {
      const master = await currentMaster()
      // WAIT counts acknowledgements of this connection's last write, so it needs one of its own;
      // it also outlasts the second after a full resync in which a master holds the stream back.
      // Short WAITs, each after a write of its own, stay within the connection's command timeout.
      await waitFor(
        () =>
          withNode(master, async (c) => {
            await c.set(REPLICATION_MARK, String(Date.now()))
            await c.del(REPLICATION_MARK)
            return (await c.call('WAIT', '1', '500')) === 1
          }),
        timeoutMs,
        `the replica to acknowledge the writes on ${master}`,
      )
    }
    const settled = async (timeoutMs = 20_000): Promise<void> => {
      await waitFor(
        async () => {
          const master = await currentMaster()
          const replica = master === masterPort ? replicaPort : masterPort
          const [m, r] = await Promise.all([info(master, 'replication'), info(replica, 'replication')])
          return (
            m.role === 'master' &&
            r.role === 'slave' &&
            Number(r.master_port) === master &&
            r.master_link_status === 'up' &&
            (await replicaSeen(master, replica))
          )
        },
        timeoutMs,
        `the master the sentinel names and its replica to agree (ports ${masterPort}, ${replicaPort})`,
      )
      await replicated(timeoutMs)
    }
    await settled(15_000)
    return {
      masterName,
      sentinelPort,
      nodePorts: [masterPort, replicaPort],
      sentinels: [{ host: LOOPBACK, port: sentinelPort }],
      currentMaster,
      settled,
      replicated,
      async failover(timeoutMs = 10_000) {
        const from = await currentMaster()
        await sentinelCall('FAILOVER', masterName)
        let to = from
        await waitFor(
          async () => {
            to = await currentMaster()
            return to !== from
          },
          timeoutMs,
          `the sentinel to name a new master after SENTINEL FAILOVER ${masterName} (was ${from})`,
        )
        return { from, to }
      },
      stop: () => stopAll(servers, dir),
    }
  } catch (error) {
    await stopAll(servers, dir)
    throw error
  }
}
