/**
 * The soak (bench/soak.ts; `npm run soak` runs it for 10 minutes) for 30 s: a fastmcp server
 * protected by CaracalAuth, its keys from the development STS and its revocations from Redis as
 * Caracal publishes them (README "Several gateway instances, one Redis"), under autocannon load
 * from another process. Every request carries a planned token — valid, expiring during the run,
 * revoked during the run, forged, garbage, refused by policy — and every answer is checked against
 * the one it must be (bench/soak-protocol.ts states the grace windows around an expiry or a
 * revocation). Memory must stay flat after warm-up, and no piece of any token may reach the logs.
 *
 * The orchestrator runs here from its TypeScript source, and it starts the server and the loader
 * from theirs through tsx (bench/soak.ts `childCommand`): the test never depends on dist/ being
 * current, so plain `npx vitest` runs what is in the tree. Both children are pinned to a core each
 * with `taskset` when two are allowed.
 *
 * Cost: ~30 s of load that keeps both cores busy, plus ~5 s to start the children and mint the
 * tokens. Needs Redis (describeWithRedis: fails under CI=true without it, skips loudly elsewhere).
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runSoak, type SoakRun } from '../bench/soak.js'
import { TOKEN_CLASSES } from '../bench/soak-protocol.js'
import { LOCAL_REDIS_PORT, closeClients, connectedClient, describeWithRedis } from './support/redis.js'

const SOAK_SECONDS = 30

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Every 12-character window of every '.'-separated segment of each token, looked up in `text`. */
function leakedFragments(text: string, tokens: readonly string[]): { windows: number; leaks: string[] } {
  const present = new Set<string>()
  for (let i = 0; i + 12 <= text.length; i++) present.add(text.slice(i, i + 12))
  let windows = 0
  const leaks: string[] = []
  tokens.forEach((token, t) => {
    token.split('.').forEach((segment, s) => {
      for (let i = 0; i + 12 <= segment.length; i++) {
        windows++
        // Named by position only: the fragment itself is not printed.
        if (present.has(segment.slice(i, i + 12))) leaks.push(`token ${t}, segment ${s}, offset ${i}`)
      }
    })
  })
  return { windows, leaks }
}

describeWithRedis('soak: 30 s of mixed traffic against a fastmcp server with Redis revocations', () => {
  const pids: number[] = []
  const lines: string[] = []
  let run: SoakRun

  beforeAll(async () => {
    run = await runSoak({
      durationSec: SOAK_SECONDS,
      // The Redis describeWithRedis found, whatever REDIS_URL says.
      redisUrl: `redis://127.0.0.1:${LOCAL_REDIS_PORT}`,
      log: (line) => lines.push(line),
      onChild: (pid) => pids.push(pid),
    })
  }, 150_000)

  afterAll(() => {
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL')
    closeClients()
  })

  it('gives every request the answer it must: zero wrong answers in every class', () => {
    const wrong = Object.fromEntries(TOKEN_CLASSES.map((c) => [c, run.report.classes[c].wrong]))
    expect(wrong, lines.join('\n')).toEqual(Object.fromEntries(TOKEN_CLASSES.map((c) => [c, 0])))
    expect(run.report.wrongSamples).toEqual([])
  })

  it('exercises every class, and sees both sides of every expiry and every revocation', () => {
    for (const c of TOKEN_CLASSES) expect(run.report.classes[c].requests, c).toBeGreaterThan(100)
    const { expiry, revocation } = run.report.flipsWithBothSides
    expect(expiry.of).toBeGreaterThanOrEqual(3)
    expect(expiry.seen).toBe(expiry.of)
    expect(revocation.of).toBeGreaterThanOrEqual(3)
    expect(revocation.seen).toBe(revocation.of)
    expect(run.report.revocations.published).toBe(run.report.revocations.planned)
    for (const cls of ['expiring', 'revoked'] as const)
      for (const [flip, counts] of Object.entries(run.report.classes[cls].flips ?? {})) {
        expect(counts.before, `${cls} ${flip}`).toBeGreaterThan(0)
        expect(counts.after, `${cls} ${flip}`).toBeGreaterThan(0)
      }
  })

  it('refuses each class with its code and reason (README "Errors"), and accepts only with the tool answer for that mandate', () => {
    const answers = (c: (typeof TOKEN_CLASSES)[number]) => Object.keys(run.report.classes[c].answers).sort()
    expect(answers('valid')).toEqual(['200 ok'])
    expect(answers('expiring')).toEqual(['200 ok', '401 invalid_token: token expired'])
    expect(answers('revoked')).toEqual(['200 ok', '401 session_revoked: session has been revoked'])
    for (const answer of answers('forged')) expect(answer).toMatch(/^401 invalid_token: /)
    expect(answers('forged')).toEqual(
      expect.arrayContaining([
        '401 invalid_token: signature verification failed',
        '401 invalid_token: no usable key: unknown kid',
        '401 invalid_token: alg not allowed',
      ]),
    )
    for (const answer of answers('garbage')) expect(answer).toMatch(/^401 (invalid_token|missing_token): /)
    expect(answers('garbage')).toEqual(
      expect.arrayContaining([
        '401 missing_token: no bearer token in the Authorization header',
        '401 invalid_token: not a compact JWS: expected three segments',
        '401 invalid_token: token longer than 8192 characters',
      ]),
    )
    expect(answers('policy')).toEqual([
      '401 invalid_token: audience mismatch',
      '401 invalid_zone: mandate was issued for another zone',
      '403 agent_required: mandate has no agent session',
      '403 insufficient_scope: missing required scope: tool:call',
    ])
  })

  it('forged revocation events on the stream change nothing: the store and the consumer refuse them', () => {
    expect(run.report.revocations.forgedChurn).toBeGreaterThan(0)
    const server = run.report.server as { consumer: { deadLettered: unknown }; store: { refused: number } } | null
    expect(server?.consumer.deadLettered).toEqual({ invalid_signature: run.report.revocations.forgedChurn })
    expect(server?.store.refused).toBe(run.report.revocations.forgedChurn)
  })

  it('keeps memory flat after warm-up: heap after a full collection, RSS, and wasm linear memory', () => {
    const m = run.report.memory
    expect(m.samples).toBeGreaterThanOrEqual(SOAK_SECONDS - 3)
    expect(m.heapUsed.flat, JSON.stringify(m.heapUsed)).toBe(true)
    expect(m.rss.flat, JSON.stringify(m.rss)).toBe(true)
    expect(m.wasm, 'the wasm module serves ES256 here, so its memory is sampled').not.toBeNull()
    expect(m.wasm!.flat, JSON.stringify(m.wasm)).toBe(true)
  })

  it('never lets a fragment of any token reach what the server and the loader print, nor the report', () => {
    // The server logs every distinct rejection it answers (challenge and body): the check has substance.
    expect(run.outputs.server).toContain('soak-server: rejected 401')
    expect(run.outputs.loader).toContain('soak-loader:')
    const text = [run.outputs.server, run.outputs.loader, ...lines, JSON.stringify(run.report)].join('\n')
    const { windows, leaks } = leakedFragments(text, run.tokens)
    expect(windows).toBeGreaterThan(100_000)
    expect(leaks).toEqual([])
  })

  it('loses no connection, and leaves no process running and nothing in Redis', async () => {
    expect(run.report.load.errors).toBe(0)
    expect(run.report.load.timeouts).toBe(0)
    expect(pids).toHaveLength(2)
    for (const pid of pids) expect(alive(pid), `pid ${pid}`).toBe(false)
    const redis = await connectedClient()
    const left: string[] = []
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${run.namespace}:*`, 'COUNT', 1000)
      cursor = next
      left.push(...keys)
    } while (cursor !== '0')
    expect(left).toEqual([])
    expect(run.report.pass, run.report.failures.join('; ')).toBe(true)
  })
})
