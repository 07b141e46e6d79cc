/**
 * Redis for tests: the shared server at 127.0.0.1:6379 (with unique names per test), private
 * redis-servers on free ports that a test may kill and restart (started from the redis-server on
 * PATH), a TCP proxy that cuts one client off while the server stays up, and a command counter.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { accessSync, constants, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { Redis, type RedisOptions } from 'ioredis'
import { describe, it } from 'vitest'
import { FAIL_FAST_REDIS_OPTIONS } from '../../src/redis.js'

export const LOCAL_REDIS_PORT = 6379

/** The first executable file called `name` in the directories of `path` (PATH by default), as `which` finds it. */
export function findExecutable(name: string, path = process.env.PATH ?? ''): string | undefined {
  const names = process.platform === 'win32' ? [`${name}.exe`, name] : [name]
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue
    for (const file of names) {
      const candidate = join(dir, file)
      try {
        accessSync(candidate, constants.X_OK)
        if (statSync(candidate).isFile()) return candidate
      } catch {
        // not here (or not executable): the next directory
      }
    }
  }
  return undefined
}

/** The redis-server that `startPrivateRedis` runs: the one on PATH, or undefined without one. */
export const REDIS_SERVER: string | undefined = findExecutable('redis-server')

/** True when something at 127.0.0.1:`port` answers PING with +PONG within `timeoutMs`. */
export function redisAnswers(port = LOCAL_REDIS_PORT, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    let reply = ''
    const done = (ok: boolean) => {
      clearTimeout(timer)
      socket.destroy()
      resolve(ok)
    }
    const timer = setTimeout(() => done(false), timeoutMs)
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1')
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'))
    })
    socket.on('error', () => done(false))
  })
}

export const localRedisUp = await redisAnswers()

/**
 * `describe` for suites that need the local Redis. Without it they fail under CI=true (a green CI
 * must not hide a missing service) and are skipped, loudly, everywhere else.
 */
export function describeWithRedis(name: string, body: () => void): void {
  if (localRedisUp) {
    describe(name, body)
  } else if (process.env.CI === 'true') {
    describe(name, () => {
      it('needs Redis at 127.0.0.1:6379', () => {
        throw new Error(`Redis does not answer at 127.0.0.1:${LOCAL_REDIS_PORT}; CI=true requires it for "${name}"`)
      })
    })
  } else {
    console.warn(
      `\n*** SKIPPED "${name}": Redis does not answer at 127.0.0.1:${LOCAL_REDIS_PORT}. Start redis-server to run it. ***\n`,
    )
    describe.skip(name, body)
  }
}

/**
 * `describe` for suites that start redis-servers of their own (`startPrivateRedis`). Without
 * redis-server on PATH they fail with one line under CI=true and are skipped, loudly, elsewhere.
 */
export function describeWithRedisServer(name: string, body: () => void): void {
  if (REDIS_SERVER !== undefined) {
    describe(name, body)
  } else if (process.env.CI === 'true') {
    describe(name, () => {
      it('needs redis-server on PATH', () => {
        throw new Error(
          `redis-server is not on PATH; CI=true requires it for "${name}", which starts redis-servers of its own`,
        )
      })
    })
  } else {
    console.warn(`\n*** SKIPPED "${name}": redis-server is not on PATH. Install redis-server to run it. ***\n`)
    describe.skip(name, body)
  }
}

export interface UniqueNames {
  readonly namespace: string
  /** Caracal's revocation stream (`caracal.sessions.revoke` in production). */
  readonly stream: string
  /** Caracal's delegation stream (`caracal.delegations.invalidate`). */
  readonly delegationStream: string
  /** This library's stream between instances (`caracal-fastmcp.revocations`). */
  readonly peerStream: string
  readonly keyPrefix: string
  /** The options of a RedisRevocationStore: every stream it follows, and the key prefix. */
  readonly store: {
    readonly stream: string
    readonly delegationStream: string
    readonly peerStream: string
    readonly keyPrefix: string
  }
  /** The options of a RedisRevocationConsumer. */
  readonly revocations: { readonly stream: string; readonly keyPrefix: string }
  /** The options of a RedisDelegationInvalidationConsumer. */
  readonly delegations: { readonly stream: string; readonly keyPrefix: string }
}

/** Names no other test (or suite) uses: the streams and a key prefix under one random namespace. */
export function uniqueNames(label: string): UniqueNames {
  const namespace = `test:${label}:${randomBytes(6).toString('hex')}`
  const stream = `${namespace}:caracal.sessions.revoke`
  const delegationStream = `${namespace}:caracal.delegations.invalidate`
  const peerStream = `${namespace}:caracal-fastmcp.revocations`
  const keyPrefix = `${namespace}:revoked:`
  return {
    namespace,
    stream,
    delegationStream,
    peerStream,
    keyPrefix,
    store: { stream, delegationStream, peerStream, keyPrefix },
    revocations: { stream, keyPrefix },
    delegations: { stream: delegationStream, keyPrefix },
  }
}

/** A stream entry's flat field list as an object. */
export function fieldsOf(flat: readonly string[]): Record<string, string> {
  return Object.fromEntries(Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i]!, flat[2 * i + 1]!]))
}

/** A fail-fast client; tracked so `closeClients` can end every connection a test opened. */
export function redisClient(port = LOCAL_REDIS_PORT, options: RedisOptions = {}): Redis {
  const client = new Redis({ host: '127.0.0.1', port, ...FAIL_FAST_REDIS_OPTIONS, ...options })
  client.on('error', () => undefined)
  openClients.add(client)
  return client
}

const openClients = new Set<Redis>()

/** A client that can take commands now (fail-fast clients refuse them while still connecting). */
export async function connectedClient(port = LOCAL_REDIS_PORT, options: RedisOptions = {}): Promise<Redis> {
  const client = redisClient(port, options)
  if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve))
  return client
}

export function closeClients(): void {
  for (const client of openClients) client.disconnect()
  openClients.clear()
}

/** Deletes everything under a namespace from `uniqueNames` (SCAN, so the shared server is never blocked). */
export async function dropNamespace(client: Redis, namespace: string): Promise<void> {
  if (client.status !== 'ready') return
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) await client.del(...keys)
  } while (cursor !== '0')
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() =>
        typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port')),
      )
    })
  })
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

export interface PrivateRedis {
  readonly port: number
  /** SIGKILL: no shutdown, connections drop as if the host died. */
  kill(): Promise<void>
  /** Starts again on the same port and data directory (AOF, fsync always: nothing acknowledged is lost). */
  restart(): Promise<void>
  /** Killed, its data files deleted, started again on the same port: Redis restarted empty. */
  restartEmpty(): Promise<void>
  /** Restarts it if it is not running. */
  ensureRunning(): Promise<void>
  stop(): Promise<void>
}

/**
 * A redis-server of the test's own, on a free port, with its data in a temporary directory. Use it
 * inside `describeWithRedisServer`; without redis-server on PATH it throws at once.
 */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const executable = REDIS_SERVER
  if (executable === undefined)
    throw new Error('redis-server is not on PATH (startPrivateRedis needs it; use describeWithRedisServer)')
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'caracal-redis-'))
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'yes',
    '--appendfsync',
    'always',
    '--daemonize',
    'no',
    '--logfile',
    '',
    '--loglevel',
    'warning',
    // DEBUG SLEEP freezes the server for the fault tests (Redis 7 refuses DEBUG unless enabled).
    '--enable-debug-command',
    'yes',
  ]
  let child: ChildProcess | undefined
  const launch = async () => {
    // Its log goes to stdout (--logfile ''): kept, the tail of it, to say why a start failed.
    const started = spawn(executable, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    child = started
    let output = ''
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-2_000)
    }
    started.stdout?.on('data', keep)
    started.stderr?.on('data', keep)
    let failure: Error | undefined
    started.on('error', (error) => {
      failure ??= new Error(`could not run ${executable}: ${error.message}`)
    })
    started.once('exit', (code, signal) => {
      failure ??= new Error(
        `${executable} on port ${port} exited (${signal ?? `code ${code}`}) before answering: ${output.trim() || 'no output'}`,
      )
    })
    try {
      await until(
        async () => {
          if (failure !== undefined) throw failure
          return redisAnswers(port, 200)
        },
        10_000,
        `${executable} on port ${port}`,
      )
    } catch (error) {
      if (child === started) child = undefined
      started.kill('SIGKILL')
      throw error
    }
  }
  const kill = async () => {
    const running = child
    child = undefined
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return
    await new Promise<void>((resolve) => {
      running.once('exit', () => resolve())
      running.kill('SIGKILL')
    })
  }
  try {
    await launch()
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
  return {
    port,
    kill,
    restart: launch,
    /** Killed, its data files deleted, started again: Redis restarted empty. */
    async restartEmpty() {
      await kill()
      for (const f of readdirSync(dir)) rmSync(join(dir, f), { recursive: true, force: true })
      await launch()
    },
    async ensureRunning() {
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) await launch()
    },
    async stop() {
      await kill()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export interface CuttableProxy {
  readonly port: number
  /** Drops every proxied connection and refuses new ones until `restore`. */
  cut(): void
  restore(): void
  close(): Promise<void>
}

/** A TCP proxy to 127.0.0.1:`targetPort`: cuts the clients behind it off while the server stays up. */
export async function startProxy(targetPort: number): Promise<CuttableProxy> {
  const live = new Set<Socket>()
  let isCut = false
  const server: Server = createServer((client) => {
    if (isCut) {
      client.destroy()
      return
    }
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort })
    live.add(client)
    live.add(upstream)
    const drop = () => {
      client.destroy()
      upstream.destroy()
      live.delete(client)
      live.delete(upstream)
    }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (typeof address !== 'object' || address === null) throw new Error('proxy has no port')
  return {
    port: address.port,
    cut() {
      isCut = true
      for (const socket of live) socket.destroy()
      live.clear()
    },
    restore() {
      isCut = false
    },
    close() {
      isCut = true
      for (const socket of live) socket.destroy()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}

/**
 * Counts the commands a client sends, and those of every connection `duplicate()` makes from it:
 * ioredis routes single commands, pipelines and MULTI through `sendCommand`. Names are lowercased.
 */
export function countCommands(client: Redis): { readonly names: readonly string[]; readonly count: number } {
  const names: string[] = []
  const instrument = (target: Redis) => {
    const send = target.sendCommand.bind(target)
    target.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
      names.push(command.name.toLowerCase())
      return (send as (...args: unknown[]) => unknown)(command, ...rest)
    }) as Redis['sendCommand']
    const duplicate = target.duplicate.bind(target)
    target.duplicate = ((override?: Partial<RedisOptions>) => {
      const copy = duplicate(override)
      copy.on('error', () => undefined)
      openClients.add(copy)
      instrument(copy)
      return copy
    }) as Redis['duplicate']
  }
  instrument(client)
  return {
    names,
    get count() {
      return names.length
    },
  }
}

/**
 * Resolves when `check()` holds. With `everyMs` 0 it polls every event-loop turn (sub-millisecond
 * resolution, for latency measurements); otherwise every `everyMs`.
 */
export async function eventually(check: () => boolean, timeoutMs: number, what: string, everyMs = 10): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => (everyMs === 0 ? setImmediate(r) : setTimeout(r, everyMs)))
  }
}
