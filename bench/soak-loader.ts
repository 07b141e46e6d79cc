/**
 * The soak's load generator, in a process of its own (started by bench/soak.ts, which sends the
 * plan over IPC): autocannon's programmatic API, one request shape whose `setupRequest` picks a
 * planned token for every request and whose `onResponse` checks the answer against what that token
 * must get. Time-dependent tokens are judged against their flip: an expiry instant known from the
 * plan, or a revocation whose XADD times the orchestrator sends once the load is over (a response
 * can arrive before the loader could have heard of the revocation, so their judgement waits).
 * It never prints a token: a wrong answer is named by class, kind and index.
 */
import autocannon from 'autocannon'
import {
  TOKEN_CLASSES,
  expiryWindow,
  isRight,
  revocationWindow,
  sideOf,
  type ClassResult,
  type FlipCounts,
  type LoadSummary,
  type LoaderMessage,
  type LoaderResult,
  type LoaderStart,
  type Outcome,
  type PlannedToken,
  type PublishedRevocation,
  type TokenClass,
  type ToLoader,
  type WrongAnswer,
} from './soak-protocol.js'

const MAX_WRONG_SAMPLES = 25
const CALL = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {} } })

function send(message: LoaderMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) resolve()
    else process.send(message, undefined, {}, () => resolve())
  })
}

class Tally {
  requests = 0
  wrong = 0
  readonly answers: Record<string, number> = {}
  readonly flips = new Map<string, { before: number; grace: number; after: number }>()

  flip(key: string, side: 'before' | 'grace' | 'after'): void {
    let f = this.flips.get(key)
    if (f === undefined) {
      f = { before: 0, grace: 0, after: 0 }
      this.flips.set(key, f)
    }
    f[side]++
  }

  result(): ClassResult {
    const flips: Record<string, FlipCounts> = {}
    for (const [k, v] of this.flips) flips[k] = v
    return {
      requests: this.requests,
      wrong: this.wrong,
      answers: this.answers,
      ...(this.flips.size > 0 ? { flips } : {}),
    }
  }
}

/** The error of a refusal body (README "HTTP answers": `{"jsonrpc":…,"error":{…,"data":{error,error_description}}}`). */
function refusalOf(body: string): { code: string; description: string } | undefined {
  try {
    const data = (JSON.parse(body) as { error?: { data?: { error?: unknown; error_description?: unknown } } }).error
      ?.data
    if (typeof data?.error === 'string' && typeof data.error_description === 'string')
      return { code: data.error, description: data.error_description }
  } catch {
    // not JSON: an answer no adapter gives
  }
  return undefined
}

async function run(start: LoaderStart): Promise<void> {
  const tokens = start.tokens
  const byClass = new Map<TokenClass, number[]>()
  tokens.forEach((t, i) => {
    const list = byClass.get(t.cls) ?? []
    list.push(i)
    byClass.set(t.cls, list)
  })
  const mix: { cls: TokenClass; upTo: number }[] = []
  let total = 0
  for (const cls of TOKEN_CLASSES) {
    if ((byClass.get(cls)?.length ?? 0) === 0 || start.weights[cls] <= 0) continue
    total += start.weights[cls]
    mix.push({ cls, upTo: total })
  }
  const pick = (): number => {
    const r = Math.random() * total
    const cls = (mix.find((m) => r < m.upTo) ?? mix[mix.length - 1]!).cls
    const list = byClass.get(cls)!
    return list[Math.floor(Math.random() * list.length)]!
  }

  const tallies = Object.fromEntries(TOKEN_CLASSES.map((c) => [c, new Tally()])) as Record<TokenClass, Tally>
  const wrongSamples: WrongAnswer[] = []
  // Responses of revocation-flip tokens, judged once the revocation times are known.
  const deferred: {
    token: number
    sentAt: number
    receivedAt: number
    outcome: Outcome
    answer: string
    status: number
  }[] = []

  const judge = (
    token: number,
    side: 'always' | 'before' | 'grace' | 'after',
    outcome: Outcome,
    status: number,
    answer: string,
    at: number,
    flipKey?: string,
  ): void => {
    const t = tokens[token]!
    const tally = tallies[t.cls]
    if (flipKey !== undefined && side !== 'always') tally.flip(flipKey, side)
    if (isRight(side, outcome, t.jti !== undefined && t.refusal === undefined)) return
    tally.wrong++
    if (wrongSamples.length < MAX_WRONG_SAMPLES)
      wrongSamples.push({ cls: t.cls, kind: t.kind, token, side, status, answer, atMs: at - start.startAt })
  }

  const perSecond: number[] = []
  let startedAt = start.startAt
  const onResponse = (status: number, body: string, context: Record<string, unknown>): void => {
    const receivedAt = Date.now()
    const second = Math.max(0, Math.floor((receivedAt - startedAt) / 1000))
    perSecond[second] = (perSecond[second] ?? 0) + 1
    const token = context.token as number | undefined
    const sentAt = context.sentAt as number | undefined
    if (token === undefined || sentAt === undefined) return
    const t: PlannedToken = tokens[token]!
    let outcome: Outcome = 'other'
    let answer: string
    if (status === 200) {
      const accepted = t.jti !== undefined && body.includes(`ok:${t.jti}`)
      if (accepted) outcome = 'accepted'
      answer = accepted ? '200 ok' : '200 without the expected tool answer'
    } else {
      const r = refusalOf(body)
      answer = r === undefined ? `${status} unparsable body` : `${status} ${r.code}: ${r.description}`
      if (
        r !== undefined &&
        t.refusal !== undefined &&
        status === t.refusal.status &&
        r.code === t.refusal.code &&
        r.description === t.refusal.description
      )
        outcome = 'refused'
    }
    const tally = tallies[t.cls]
    tally.requests++
    tally.answers[answer] = (tally.answers[answer] ?? 0) + 1
    if (t.flip === undefined) {
      judge(token, 'always', outcome, status, answer, receivedAt)
    } else if (t.flip.kind === 'expiry') {
      const side = sideOf(expiryWindow(t.flip.atMs, start.windows), sentAt, receivedAt)
      judge(
        token,
        side,
        outcome,
        status,
        answer,
        receivedAt,
        `expiry at +${((t.flip.atMs - start.startAt) / 1000).toFixed(1)} s`,
      )
    } else {
      deferred.push({ token, sentAt, receivedAt, outcome, answer, status })
    }
  }

  const delay = start.startAt - Date.now()
  if (delay > 0) await new Promise((r) => setTimeout(r, delay))
  startedAt = Date.now()
  const result = await autocannon({
    url: start.url,
    method: 'POST',
    connections: start.connections,
    duration: start.durationSec,
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: CALL,
    requests: [
      {
        setupRequest: (req, context) => {
          const token = pick()
          const c = context as Record<string, unknown>
          c.token = token
          c.sentAt = Date.now()
          const headers: Record<string, string> = { ...(req.headers as Record<string, string>) }
          const authorization = tokens[token]!.authorization
          if (authorization === undefined) delete headers.authorization
          else headers.authorization = authorization
          return { ...req, headers }
        },
        onResponse: (status, body, context) => onResponse(status, body, context as Record<string, unknown>),
      },
    ],
  })
  const endedAt = Date.now()
  const load: LoadSummary = {
    startedAt,
    endedAt,
    requests: result.requests.total,
    reqPerSec: result.requests.total / ((endedAt - startedAt) / 1000),
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    perSecond: Array.from(perSecond, (n) => n ?? 0),
  }
  await send({ type: 'load-done', load })

  const revocations = await new Promise<readonly PublishedRevocation[]>((resolve) => {
    process.on('message', (m: ToLoader) => {
      if (m.type === 'finish') resolve(m.revocations)
    })
  })
  const byGroup = new Map(revocations.map((r) => [r.group, r]))
  for (const d of deferred) {
    const t = tokens[d.token]!
    const flip = t.flip?.kind === 'revocation' ? byGroup.get(t.flip.group) : undefined
    if (flip === undefined) {
      // A planned revocation that was never published: nothing can be judged, so it is wrong.
      judge(d.token, 'always', 'other', d.status, `${d.answer} (revocation never published)`, d.receivedAt)
      continue
    }
    const side = sideOf(revocationWindow(flip, start.windows), d.sentAt, d.receivedAt)
    judge(d.token, side, d.outcome, d.status, d.answer, d.receivedAt, `revocation ${flip.group} (${flip.anchorKind})`)
  }
  const classes = Object.fromEntries(TOKEN_CLASSES.map((c) => [c, tallies[c].result()])) as Record<
    TokenClass,
    ClassResult
  >
  const wrong = TOKEN_CLASSES.reduce((n, c) => n + classes[c].wrong, 0)
  console.log(
    `soak-loader: ${load.requests} requests in ${((endedAt - startedAt) / 1000).toFixed(1)} s, ${wrong} wrong answers`,
  )
  for (const w of wrongSamples)
    console.log(`soak-loader: wrong answer: ${w.cls} (${w.kind}) #${w.token} ${w.side} at +${w.atMs} ms: ${w.answer}`)
  const out: LoaderResult = { load, classes, wrongSamples }
  await send({ type: 'result', result: out })
}

process.once('message', (m: ToLoader) => {
  if (m.type !== 'start') return
  console.log(
    `soak-loader: ${m.start.tokens.length} tokens planned, ${m.start.connections} connections, ${m.start.durationSec} s`,
  )
  run(m.start).then(
    () => process.exit(0),
    async (error: unknown) => {
      await send({ type: 'fatal', message: error instanceof Error ? error.message : String(error) })
      process.exit(1)
    },
  )
})
process.on('disconnect', () => process.exit(2))
void send({ type: 'hello' })
