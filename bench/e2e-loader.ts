/**
 * The end-to-end suite's load generator, in a process of its own (started by bench/e2e-suite.ts):
 * it makes the signing key, mints every token before any load starts (a warm set, and a cold pool
 * of distinct mandates larger than a measured window needs, so that minting never runs in the hot
 * loop and no cold request repeats a `jti`), then runs autocannon against one server at a time: a
 * warm-up, a pause while the suite samples the server's CPU time, and the measured window. It
 * never prints a token. Each server is a fresh process, so every load starts the cold pool from
 * its first token.
 */
import autocannon from 'autocannon'
import { generateSigningKey, signJws, type SigningKey } from '../src/dev/sign-jws.js'
import { mandateClaims } from './fixtures.js'
import {
  TOOLS_CALL,
  WARM_TOKENS,
  type LoadJob,
  type LoadResult,
  type LoaderMessage,
  type ServerConfig,
  type ToLoader,
} from './e2e-protocol.js'

function send(message: LoaderMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) resolve()
    else process.send(message, undefined, {}, () => resolve())
  })
}

function mint(key: SigningKey, count: number, tag: string): string[] {
  const now = Math.floor(Date.now() / 1000)
  // Valid for longer than any run takes: the suite deletes the replay keys it leaves in Redis.
  const exp = now + 6 * 3600
  const out: string[] = new Array(count)
  for (let i = 0; i < count; i++) out[i] = `Bearer ${signJws(key, mandateClaims(i, { tag, exp, iat: now }))}`
  return out
}

let warm: string[] = []
let cold: string[] = []
const inbox: ToLoader[] = []
let wake: (() => void) | undefined

function next<T extends ToLoader['type']>(type: T): Promise<Extract<ToLoader, { type: T }>> {
  return new Promise((resolve) => {
    const check = () => {
      const i = inbox.findIndex((m) => m.type === type)
      if (i < 0) {
        wake = check
        return
      }
      wake = undefined
      resolve(inbox.splice(i, 1)[0] as Extract<ToLoader, { type: T }>)
    }
    check()
  })
}

async function load(job: LoadJob): Promise<void> {
  const tokens = job.tokens === 'warm' ? warm : cold
  let cursor = 0
  // Stop a few connections' worth early: a request set up after stop() must still carry a new token.
  const limit = job.tokens === 'cold' ? tokens.length - 4 * job.connections : Number.POSITIVE_INFINITY
  let exhausted = false
  const run = (durationSec: number, perSecond?: number[]) =>
    new Promise<autocannon.Result>((resolve, reject) => {
      let stopped = false
      const instance: autocannon.Instance = autocannon(
        {
          url: job.url,
          method: job.server === 'gateway' ? 'GET' : 'POST',
          connections: job.connections,
          duration: durationSec,
          headers:
            job.server === 'gateway'
              ? {}
              : { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
          ...(job.server === 'gateway' ? {} : { body: TOOLS_CALL }),
          requests: [
            {
              setupRequest: (req) => {
                if (cursor >= limit) {
                  exhausted = true
                  if (!stopped) instance.stop()
                  stopped = true
                }
                const i = job.tokens === 'warm' ? cursor % tokens.length : Math.min(cursor, tokens.length - 1)
                const authorization = tokens[i]!
                cursor++
                return { ...req, headers: { ...(req.headers as Record<string, string>), authorization } }
              },
            },
          ],
        },
        (error, result) => (error === null || error === undefined ? resolve(result) : reject(error)),
      )
      if (perSecond !== undefined) {
        const started = performance.now()
        instance.on('response', () => {
          const second = Math.floor((performance.now() - started) / 1000)
          if (second < durationSec) perSecond[second] = (perSecond[second] ?? 0) + 1
        })
      }
    })
  const warmupPerSec: number[] = Array.from({ length: Math.floor(job.warmupSec) }, () => 0)
  if (job.warmupSec > 0) await run(job.warmupSec, warmupPerSec)
  await send({ type: 'warm' })
  await next('go')
  const t0 = performance.now()
  const r = await run(job.durationSec)
  const seconds = (performance.now() - t0) / 1000
  const requests = r['2xx'] + r.non2xx
  const result: LoadResult = {
    requests,
    seconds,
    reqPerSec: requests / seconds,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    exhausted,
    warmupPerSec,
  }
  await send({ type: 'result', result })
}

async function main(): Promise<void> {
  const { coldTokens } = await next('mint')
  const key = generateSigningKey('ES256', 'e2e-es256')
  warm = mint(key, WARM_TOKENS, 'warm')
  cold = mint(key, coldTokens, 'cold')
  await send({ type: 'hello', publicJwk: key.publicJwk as ServerConfig['publicJwk'], coldTokens })
  for (;;) await load((await next('load')).job)
}

process.on('message', (m: ToLoader) => {
  inbox.push(m)
  wake?.()
})
process.on('disconnect', () => process.exit(2))
main().catch(async (error: unknown) => {
  await send({ type: 'fatal', message: error instanceof Error ? error.message : String(error) })
  process.exit(1)
})
