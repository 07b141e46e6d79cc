/**
 * The soak's server, in a process of its own (started by bench/soak.ts, which sends its config over
 * IPC): a stateless fastmcp HTTP stream server with one tool, protected by CaracalAuth, with its
 * keys from the development STS's JWKS and its revocations from Redis, wired as README "Several
 * gateway instances, one Redis" shows it (RedisRevocationStore plus a RedisRevocationConsumer,
 * signed streams). It logs what a deployment would — a status line every 10 s and each distinct
 * rejection it answered, challenge and body — so the soak can check that no token reaches a log,
 * and sends a memory sample every second.
 */
import type { IncomingMessage } from 'node:http'
import { FastMCP } from 'fastmcp'
import { Redis } from 'ioredis'
import { CaracalAuth, type CaracalSession } from '../src/index.js'
import { FAIL_FAST_REDIS_OPTIONS, RedisRevocationConsumer, RedisRevocationStore } from '../src/redis.js'
import { sendToParent, wasmBytesOrNull } from './child-side.js'
import { quietLogger } from '../src/demo/documents.js'
import { startHttpStream } from '../src/demo/listen.js'
import type { MemorySample, ServerConfig, ServerMessage, ToServer } from './soak-protocol.js'

/** Distinct rejections logged at most (each one is a line: the log stays bounded whatever the traffic). */
const MAX_LOGGED_REJECTIONS = 500

let stop: (() => Promise<void>) | undefined
let checkpoint: (() => void) | undefined

const send = (message: ServerMessage): Promise<void> => sendToParent(message)

async function start(config: ServerConfig): Promise<() => Promise<void>> {
  const redis = new Redis(config.redisUrl, { connectTimeout: 2000, ...FAIL_FAST_REDIS_OPTIONS })
  redis.on('error', (error: unknown) => {
    console.error(`soak-server: redis: ${error instanceof Error ? error.message : String(error)}`)
  })
  const streamHmacKey = Buffer.from(config.streamHmacKeyHex, 'hex')
  const names = {
    stream: config.stream,
    delegationStream: config.delegationStream,
    peerStream: config.peerStream,
    keyPrefix: config.keyPrefix,
  }
  const store = new RedisRevocationStore(redis, { failClosed: true, streamHmacKey, zoneId: config.zoneId, ...names })
  const consumer = new RedisRevocationConsumer(redis, store, {
    consumer: 'soak-server-1',
    streamHmacKey,
    stream: config.stream,
    keyPrefix: config.keyPrefix,
    blockMs: 1000,
  })
  await consumer.ensureGroup()
  const stopConsumer = new AbortController()
  const consuming = consumer.run({ signal: stopConsumer.signal })
  await store.ready({ timeoutMs: 10_000 })

  const auth = new CaracalAuth({
    issuer: config.issuer,
    audience: config.audience,
    revocations: store,
    requiredScopes: ['tool:call'],
    expectedZoneId: config.zoneId,
    requireAgent: true,
    clockToleranceSec: config.clockToleranceSec,
    cache: { max: config.cacheMax },
  })
  await auth.warmup()

  // A rejection is a thrown Response (README "fastmcp"); log each distinct one once, as an access
  // log that dedupes would: its status, challenge and body are what a client sees.
  const logged = new Set<string>()
  const authenticate = async (req: IncomingMessage | undefined): Promise<CaracalSession> => {
    try {
      return await auth.authenticate(req)
    } catch (thrown) {
      if (thrown instanceof Response && logged.size < MAX_LOGGED_REJECTIONS) {
        const line = `${thrown.status} ${thrown.headers.get('www-authenticate') ?? '-'} ${await thrown.clone().text()}`
        if (!logged.has(line)) {
          logged.add(line)
          console.log(`soak-server: rejected ${line}`)
        }
      }
      throw thrown
    }
  }

  const server = new FastMCP<CaracalSession>({
    name: 'soak',
    version: '1.0.0',
    authenticate,
    logger: quietLogger,
  })
  server.addTool({
    name: 'whoami',
    description: 'The jti of the mandate the call carried',
    execute: async (_args, { session }) => `ok:${session?.claims.jti ?? 'none'}`,
  })
  const url = await startHttpStream(server)

  const sample = (afterGc = false): void => {
    const m = process.memoryUsage()
    const s: MemorySample = { t: Date.now(), heapUsed: m.heapUsed, rss: m.rss, wasm: wasmBytesOrNull(), afterGc }
    void send({ type: 'memory', sample: s })
  }
  const sampler = setInterval(() => sample(), 1000)
  checkpoint = () => {
    // Twice: what the first collection's finalizers (FinalizationRegistry) free goes in the second.
    const gc = (globalThis as { gc?: () => void }).gc
    if (gc === undefined) throw new Error('soak-server needs --expose-gc for its memory checkpoints')
    gc()
    gc()
    sample(true)
  }
  const status = setInterval(() => {
    const s = auth.stats()
    const st = store.state()
    const mib = (process.memoryUsage().heapUsed / 2 ** 20).toFixed(1)
    console.log(
      `soak-server: accepted ${s.verifications.accepted}, rejected ${JSON.stringify(s.verifications.rejected)}, ` +
        `cache ${s.cache.hits} hits ${s.cache.misses} misses, revocations ${st.size} (${st.applied} applied, ` +
        `${st.refused} refused), staleness ${Math.round(st.stalenessMs)} ms, heap ${mib} MiB`,
    )
  }, 10_000)
  console.log(`soak-server: listening on ${url.href}, backends ${JSON.stringify(auth.stats().backend)}`)
  void send({ type: 'ready', url: url.href, backend: auth.stats().backend })
  sample()

  return async () => {
    clearInterval(sampler)
    clearInterval(status)
    await send({
      type: 'final',
      final: {
        auth: auth.stats(),
        store: store.state(),
        consumer: consumer.stats(),
        distinctRejections: logged.size,
      },
    })
    await server.stop()
    stopConsumer.abort()
    await consuming.catch(() => {})
    await consumer.close()
    await store.close()
    await auth.close()
    redis.disconnect()
  }
}

process.on('message', (message: ToServer) => {
  if (message.type === 'checkpoint') {
    checkpoint?.()
  } else if (message.type === 'start') {
    start(message.config).then(
      (s) => {
        stop = s
      },
      async (error: unknown) => {
        await send({ type: 'fatal', message: error instanceof Error ? error.message : String(error) })
        process.exit(1)
      },
    )
  } else if (message.type === 'stop') {
    const done = stop ?? (async () => {})
    done().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`soak-server: stop failed: ${error instanceof Error ? error.message : String(error)}`)
        process.exit(1)
      },
    )
  }
})
// The orchestrator gone (killed, crashed): nobody is left to stop this server.
process.on('disconnect', () => process.exit(2))
