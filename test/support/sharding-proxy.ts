/**
 * A sharding Redis proxy as twemproxy and Envoy's redis_proxy are: each command goes to the shard
 * its key hashes to, a script (EVAL/EVALSHA) to the shard of its first key whatever keys follow,
 * keyless commands to the first shard. Clients cannot tell it from one Redis, which is the point:
 * RedisReplayStore must not trust a script to see every key behind it.
 */
import { createHash } from 'node:crypto'
import { createServer, type Server, type Socket } from 'node:net'
import { Redis } from 'ioredis'

export interface ShardingProxy {
  readonly port: number
  /** The shard (an index into the ports given) a key lives on. */
  shardOf(key: string): number
  close(): Promise<void>
}

type Reply = string | number | null | Error | Reply[]

/** RESP requests are arrays of bulk strings: parses every complete one at the front of `buffer`. */
function parseRequests(buffer: Buffer): { requests: string[][]; rest: Buffer } {
  const requests: string[][] = []
  let at = 0
  for (;;) {
    const start = at
    const line = (): string | undefined => {
      const end = buffer.indexOf('\r\n', at)
      if (end < 0) return undefined
      const text = buffer.toString('latin1', at, end)
      at = end + 2
      return text
    }
    const header = line()
    if (header === undefined) break
    if (!header.startsWith('*')) throw new Error(`sharding proxy: not a RESP array: ${header.slice(0, 20)}`)
    const args: string[] = []
    let complete = true
    for (let i = Number(header.slice(1)); i > 0; i--) {
      const size = line()
      if (size === undefined || at + Number(size.slice(1)) + 2 > buffer.length) {
        complete = false
        break
      }
      const n = Number(size.slice(1))
      args.push(buffer.toString('utf8', at, at + n))
      at += n + 2
    }
    if (!complete) {
      at = start
      break
    }
    requests.push(args)
  }
  return { requests, rest: buffer.subarray(at) }
}

function encode(reply: Reply): string {
  if (reply === null) return '$-1\r\n'
  if (reply instanceof Error) return `-${reply.message}\r\n`
  if (typeof reply === 'number') return `:${reply}\r\n`
  if (Array.isArray(reply)) return `*${reply.length}\r\n${reply.map(encode).join('')}`
  return `$${Buffer.byteLength(reply)}\r\n${reply}\r\n`
}

/** Forwards to `shardPorts` (redis-servers on 127.0.0.1), one upstream client per shard and client. */
export async function startShardingProxy(shardPorts: readonly number[]): Promise<ShardingProxy> {
  const shardOf = (key: string) => createHash('sha1').update(key).digest()[0]! % shardPorts.length
  const routeKey = (args: readonly string[]): string | undefined => {
    const name = args[0]?.toLowerCase()
    if (name === 'eval' || name === 'evalsha') return Number(args[2]) > 0 ? args[3] : undefined
    if (['set', 'get', 'del', 'exists', 'pttl'].includes(name ?? '')) return args[1]
    return undefined
  }
  const sockets = new Set<Socket>()
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    const upstream = shardPorts.map((port) => new Redis({ port, lazyConnect: false, maxRetriesPerRequest: 0 }))
    for (const u of upstream) u.on('error', () => undefined)
    let pending: Buffer = Buffer.alloc(0)
    let chain: Promise<void> = Promise.resolve()
    socket.on('data', (data: Buffer) => {
      pending = Buffer.concat([pending, data])
      const { requests, rest } = parseRequests(pending)
      pending = rest
      for (const args of requests) {
        const key = routeKey(args)
        const shard = upstream[key === undefined ? 0 : shardOf(key)]!
        const answer = shard.call(args[0]!, ...args.slice(1)).then(
          (r) => r as Reply,
          (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
        )
        // Replies in request order, as Redis gives them.
        chain = chain.then(async () => {
          socket.write(encode(await answer))
        })
      }
    })
    const drop = () => {
      sockets.delete(socket)
      for (const u of upstream) u.disconnect()
    }
    socket.on('close', drop).on('error', drop)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (typeof address !== 'object' || address === null) throw new Error('sharding proxy has no port')
  return {
    port: address.port,
    shardOf,
    close() {
      for (const s of sockets) s.destroy()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}
