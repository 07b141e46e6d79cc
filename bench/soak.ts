/**
 * `npm run soak` (`node dist/bench/soak.js [--duration 600] [--connections 10] [--out file]`):
 * a fastmcp server protected by CaracalAuth (bench/soak-server.ts) under autocannon load
 * (bench/soak-loader.ts), each in a process of its own — on separate cores when `taskset` exists
 * and two are allowed — for ~10 minutes by default. Keys come from the development STS (README
 * "Development STS") in this process; revocations go through Redis (REDIS_URL, or 127.0.0.1:6379)
 * as Caracal publishes them (README "Several gateway instances, one Redis"), under stream and key
 * names of this run only.
 *
 * Every request carries a planned token and every answer is checked: valid mandates → 200 with the
 * tool's answer; mandates that expire or whose session is revoked during the run → 200 before,
 * the reference refusal after, either inside the grace window (bench/soak-protocol.ts); forged
 * mandates, garbage and policy refusals → the refusal the same library gives in-process (its
 * status, code and description). Anything else is a wrong answer. Memory is sampled in the server
 * every second and must be flat after warm-up, and no piece of any token may appear in what the
 * server and the loader print. Prints a compact report, writes it as JSON (bench/soak-results.json
 * by default) and exits 1 unless everything held.
 */
import { createHmac, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import type { IncomingMessage } from 'node:http'
import { cpus } from 'node:os'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { CaracalAuth, InMemoryRevocationStore, type RevocationStore } from '../src/index.js'
import { signRevocationEvent } from '../src/redis.js'
import { generateSigningKey, signJws, startDevSts, type DevSts } from '../src/dev/index.js'
import type { Algorithm } from '../src/jws/algorithms.js'
import { tamper } from '../src/demo/tour.js'
import { Child, childCommand, pinning } from './children.js'
import { connectRedis, deleteNamespace } from './bench-redis.js'
import {
  DEFAULT_WINDOWS,
  MEMORY_TOLERANCE,
  TOKEN_CLASSES,
  memoryVerdict,
  tokenFragmentsIn,
  type GraceWindows,
  type LoadSummary,
  type LoaderMessage,
  type LoaderResult,
  type MemorySample,
  type MemoryVerdict,
  type PlannedToken,
  type PublishedRevocation,
  type Refusal,
  type ServerFinal,
  type ServerMessage,
  type TokenClass,
} from './soak-protocol.js'

const ZONE = 'soak-zone'
const AUDIENCE = 'resource://soak'
const VALID_POOL = 1024
/** Smaller than the valid pool, so verification stays mostly cold (the wasm one-call path) and the LRU keeps evicting. */
const CACHE_MAX = 256
/** The coordinator's STREAMS_MAXLEN (`MAXLEN ~`). */
const CARACAL_STREAMS_MAXLEN = 100_000
/** Unrelated revocations published all along, as other sessions end elsewhere in the deployment. */
const CHURN_EVERY_MS = 500
const DEFAULT_WEIGHTS: Readonly<Record<TokenClass, number>> = {
  valid: 0.4,
  expiring: 0.15,
  revoked: 0.15,
  forged: 0.12,
  garbage: 0.1,
  policy: 0.08,
}

export interface SoakOptions {
  readonly durationSec: number
  readonly connections?: number
  /** Default: REDIS_URL, else redis://127.0.0.1:6379. */
  readonly redisUrl?: string
  /** Where the JSON report goes; none when undefined. */
  readonly outFile?: string
  readonly windows?: GraceWindows
  /** Progress lines (default: console.log). */
  readonly log?: (line: string) => void
  /** Called with each child's pid as soon as it is spawned (a test kills them by pid if the run is cut short). */
  readonly onChild?: (pid: number) => void
}

export interface SoakReport {
  readonly node: string
  readonly cpu: string
  readonly cores: number
  readonly date: string
  readonly pinned: { readonly server: number; readonly loader: number } | null
  readonly durationSec: number
  readonly connections: number
  readonly backend: Readonly<Record<string, string>>
  readonly windows: GraceWindows
  readonly weights: Readonly<Record<TokenClass, number>>
  readonly tokens: Readonly<Record<TokenClass, number>>
  readonly load: LoadSummary
  readonly classes: LoaderResult['classes']
  readonly wrongAnswers: number
  readonly wrongSamples: LoaderResult['wrongSamples']
  readonly flipsWithBothSides: {
    readonly expiry: { readonly seen: number; readonly of: number }
    readonly revocation: { readonly seen: number; readonly of: number }
  }
  readonly revocations: {
    readonly planned: number
    readonly published: number
    readonly maxAckMs: number
    readonly churn: number
    readonly forgedChurn: number
  }
  readonly memory: MemoryVerdict & {
    readonly tolerance: typeof MEMORY_TOLERANCE
    /** Every sample while the load ran: [seconds into the load, heapUsed MiB, rss MiB, wasm MiB]. */
    readonly series: readonly (readonly [number, number, number, number | null])[]
  }
  readonly server: ServerFinal | null
  readonly leaks: { readonly windows: number; readonly outputBytes: number; readonly leakedTokens: number }
  readonly failures: readonly string[]
  readonly pass: boolean
}

export interface SoakRun {
  readonly report: SoakReport
  /** Every token the run sent (the credential part of each Authorization header). */
  readonly tokens: readonly string[]
  /** What the server and the loader printed, stdout and stderr. */
  readonly outputs: { readonly server: string; readonly loader: string }
  /** The run's Redis namespace: every stream and key it used starts with `<namespace>:`, and is deleted at the end. */
  readonly namespace: string
}

/** The answer of `auth`'s fastmcp adapter to `authorization`: a session, or the refusal it renders (README "HTTP answers"). */
async function answerOf(auth: CaracalAuth, authorization: string | undefined): Promise<Refusal | 'accepted'> {
  const req = { headers: authorization === undefined ? {} : { authorization } } as IncomingMessage
  try {
    await auth.authenticate(req)
    return 'accepted'
  } catch (thrown) {
    if (!(thrown instanceof Response)) throw thrown
    const body = (await thrown.json()) as { error: { data: { error: string; error_description: string } } }
    return { status: thrown.status, code: body.error.data.error, description: body.error.data.error_description }
  }
}

interface RevocationGroup {
  readonly group: number
  readonly anchorKind: string
  /** When it is published, as a fraction of the load's duration. */
  readonly at: number
  readonly fields: Readonly<Record<string, string>>
  readonly dedupe: string
  readonly anchor: string
}

interface MintedPlan {
  readonly groups: readonly RevocationGroup[]
  /** Anchors of valid mandates: forged revocation events name them, and must change nothing. */
  readonly validAnchors: readonly string[]
  /** Mandates the server must accept (until their flip, if they have one). */
  readonly accepted: Accepted[]
  /** Requests the server must refuse, whatever the time. */
  readonly refused: { authorization: string | undefined; cls: TokenClass; kind: string }[]
}

const ANCHOR_KINDS = ['agent_session_id', 'sid', 'root_sid', 'delegation_edge_id'] as const

/** base64url of random bytes: garbage that looks like token material. */
function noise(bytes: number): string {
  return randomBytes(bytes).toString('base64url')
}

interface Accepted {
  readonly token: string
  readonly cls: TokenClass
  readonly kind: string
  readonly flip?: PlannedToken['flip']
}

/** How many expiry instants and revocations a run of `durationMs` has: one of each per 20 s, at least 3. */
function flipsIn(durationMs: number): number {
  return Math.max(3, Math.round(durationMs / 20_000))
}

/** Where the i-th of `n` flips falls, as a fraction of the load: from a tenth of it to nine tenths, `offset` into its slot. */
function flipFraction(i: number, n: number, offset: number): number {
  return 0.1 + (0.8 * (i + offset)) / n
}

/**
 * Mints every token of the run but the expiring ones (whose `exp` needs the load's start time):
 * for a load of `durationMs` that starts in the next few minutes.
 */
function mintPlan(sts: DevSts, durationMs: number): MintedPlan {
  const farExp = Math.floor((Date.now() + durationMs) / 1000) + 3 * 3600
  const algs: readonly Algorithm[] = ['ES256', 'RS256']
  const accepted: Accepted[] = []
  const refused: MintedPlan['refused'] = []
  const validAnchors: string[] = []

  for (let i = 0; i < VALID_POOL; i++) {
    const alg = algs[i % 2]!
    const issued = sts.issue({ exp: farExp }, { alg })
    validAnchors.push(String(issued.claims.agent_session_id))
    accepted.push({ token: issued.token, cls: 'valid', kind: alg })
  }

  const instants = flipsIn(durationMs)
  const groups: RevocationGroup[] = []
  for (let g = 0; g < instants; g++) {
    const anchorKind = ANCHOR_KINDS[g % ANCHOR_KINDS.length]!
    const tag = `g${g}-${randomUUID().slice(0, 8)}`
    const anchor = `${anchorKind === 'delegation_edge_id' ? 'edge' : anchorKind.replace(/_id$/, '')}-soak-${tag}`
    const subject = `subject-soak-${tag}`
    const claims: Record<string, unknown> = { exp: farExp, [anchorKind]: anchor }
    // Caracal's revocation events as its coordinator writes them (README "Several gateway instances").
    const fields: Record<string, string> = { zone_id: ZONE }
    let dedupe: string
    if (anchorKind === 'agent_session_id') {
      Object.assign(fields, { session_id: subject, agent_session_id: anchor, reason: 'agent_suspended' })
      dedupe = `agent_suspend:${anchor}`
    } else if (anchorKind === 'delegation_edge_id') {
      Object.assign(fields, { session_id: subject, delegation_edge_id: anchor, reason: 'delegation_revoked' })
      dedupe = `delegation:${anchor}:subject:${subject}`
    } else {
      Object.assign(fields, { session_id: anchor, reason: 'session_revoked' })
      dedupe = `session_revoke:${anchor}`
    }
    for (const alg of algs) {
      accepted.push({
        token: sts.mint(claims, { alg }),
        cls: 'revoked',
        kind: `${alg}, ${anchorKind} revoked`,
        flip: { kind: 'revocation', group: g },
      })
    }
    groups.push({ group: g, anchorKind, at: flipFraction(g, instants, 0.25), fields, dedupe, anchor })
  }

  const bearer = (token: string) => `Bearer ${token}`
  for (const alg of algs) {
    const key = sts.signingKeys.find((k) => k.alg === alg)!
    const issued = sts.issue({ exp: farExp }, { alg })
    const other = sts.issue({ exp: farExp }, { alg })
    const [h, p, s] = issued.token.split('.') as [string, string, string]
    const mid = s.length >> 1
    const flipped = `${s.slice(0, mid)}${s[mid] === 'A' ? 'B' : 'A'}${s.slice(mid + 1)}`
    const header = (members: Record<string, unknown>) => Buffer.from(JSON.stringify(members)).toString('base64url')
    const publicPem = key.publicKey.export({ format: 'pem', type: 'spki' }).toString()
    const hs = `${header({ alg: 'HS256', kid: key.kid, typ: 'JWT' })}.${p}`
    const forged: [string, string][] = [
      ['bad signature', `${h}.${p}.${flipped}`],
      ['tampered payload', tamper(issued.token)],
      ['another key under the STS kid', signJws(generateSigningKey(alg, key.kid), issued.claims)],
      [
        'another key, unknown kid',
        signJws(generateSigningKey(alg, `soak-unknown-${alg.toLowerCase()}`), issued.claims),
      ],
      ["another mandate's signature", `${h}.${p}.${other.token.split('.')[2]}`],
      ['alg none', `${header({ alg: 'none', kid: key.kid, typ: 'JWT' })}.${p}.`],
      ['HS256 keyed with the public key', `${hs}.${createHmac('sha256', publicPem).update(hs).digest('base64url')}`],
      [
        'alg swapped in the header',
        `${header({ alg: alg === 'ES256' ? 'RS256' : 'ES256', kid: key.kid, typ: 'JWT' })}.${p}.${s}`,
      ],
    ]
    for (const [kind, token] of forged)
      refused.push({ authorization: bearer(token), cls: 'forged', kind: `${alg}, ${kind}` })

    const policy: [string, Record<string, unknown>][] = [
      ['no tool:call scope', { scope: 'documents:read' }],
      ['no agent session', { agent_session_id: undefined }],
      ['another zone', { zone_id: 'other-zone' }],
      ['another audience', { aud: 'resource://other' }],
    ]
    for (const [kind, claims] of policy)
      refused.push({
        authorization: bearer(sts.mint({ exp: farExp, ...claims }, { alg })),
        cls: 'policy',
        kind: `${alg}, ${kind}`,
      })
  }

  // An unrelated key pair's PEM: the text of a key where a token should be.
  const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    .publicKey.export({ format: 'pem', type: 'spki' })
    .toString()
    .replace(/\n/g, '')
  const garbage: [string, string | undefined][] = [
    ['no Authorization header', undefined],
    ['Basic credentials', `Basic ${Buffer.from(`soak-user:${noise(9)}`).toString('base64')}`],
    ['Bearer without a token', 'Bearer'],
    ['another scheme', `Token ${noise(24)}.${noise(48)}.${noise(64)}`],
    ['not a JWS', bearer('not-a-token')],
    ['one-letter segments', bearer('a.b.c')],
    ['random segments', bearer(`${noise(27)}.${noise(90)}.${noise(64)}`)],
    ['two segments', bearer(`${noise(27)}.${noise(90)}`)],
    ['four segments', bearer(`${noise(27)}.${noise(90)}.${noise(64)}.${noise(12)}`)],
    ['padded base64', bearer(`${Buffer.from('{"alg":"ES256"}').toString('base64')}.${noise(40)}=.${noise(64)}==`)],
    ['raw JSON segments', bearer(`{"alg":"ES256","kid":"${noise(6)}"}.{"sub":"x"}.${noise(64)}`)],
    ['a space inside', bearer(`${noise(27)}.${noise(45)} ${noise(45)}.${noise(64)}`)],
    ['over maxTokenLength', bearer(`${noise(30)}.${noise(7000)}.${noise(64)}`)],
    ['a PEM key', bearer(pem)],
    [
      'printable noise',
      bearer(
        Buffer.from(randomBytes(150))
          .toString('latin1')
          .replace(/[^\x21-\x7e]/g, 'x'),
      ),
    ],
    ['empty segments', bearer('..')],
  ]
  for (const [kind, authorization] of garbage) refused.push({ authorization, cls: 'garbage', kind })

  // A valid mandate sent with the scheme in lowercase (RFC 7235 §2.1: the scheme is case-insensitive).
  const lower = sts.issue({ exp: farExp }, { alg: 'ES256' })
  accepted.push({ token: lower.token, cls: 'valid', kind: 'ES256, lowercase scheme' })
  return { groups, validAnchors, accepted, refused }
}

/** Mandates that expire during a load that starts at `startAt`: two (ES256, RS256) per expiry instant. */
function mintExpiring(sts: DevSts, startAt: number, durationMs: number, w: GraceWindows): Accepted[] {
  const accepted: Accepted[] = []
  const instants = flipsIn(durationMs)
  for (let i = 0; i < instants; i++) {
    // The mandate stops being valid at (exp + clockToleranceSec) s; exp is whole seconds.
    const exp = Math.round((startAt + durationMs * flipFraction(i, instants, 0.5)) / 1000) - w.clockToleranceSec
    for (const alg of ['ES256', 'RS256'] as const) {
      accepted.push({
        token: sts.mint({ exp }, { alg }),
        cls: 'expiring',
        kind: alg,
        flip: { kind: 'expiry', atMs: (exp + w.clockToleranceSec) * 1000 },
      })
    }
  }
  return accepted
}

function credentialOf(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined
  const space = authorization.indexOf(' ')
  return space < 0 ? authorization : authorization.slice(space + 1).trim()
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
/** Mean of each third of a per-second series (the last, partial second left out). */
function thirds(perSecond: readonly number[]): number[] {
  const full = perSecond.slice(0, -1)
  const n = Math.floor(full.length / 3)
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)
  return [full.slice(0, n), full.slice(n, 2 * n), full.slice(2 * n)].map(mean)
}
const mib = (n: number) => (n / 2 ** 20).toFixed(1)

export async function runSoak(options: SoakOptions): Promise<SoakRun> {
  const log = options.log ?? ((line: string) => console.log(line))
  const durationSec = options.durationSec
  const connections = options.connections ?? 10
  const windows = options.windows ?? DEFAULT_WINDOWS
  const redisUrl = options.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
  const pinned = pinning()
  const runId = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`
  const namespace = `soak:${runId}`
  const names = {
    stream: `${namespace}:caracal.sessions.revoke`,
    delegationStream: `${namespace}:caracal.delegations.invalidate`,
    peerStream: `${namespace}:caracal-fastmcp.revocations`,
    keyPrefix: `${namespace}:revoked:`,
  }
  const streamHmacKey = randomBytes(32)
  const cleanups: (() => Promise<void> | void)[] = []
  const children: Child[] = []
  const samples: MemorySample[] = []
  const checkpoints: MemorySample[] = []
  try {
    const redis = await connectRedis(redisUrl)
    cleanups.push(async () => {
      // Everything this run wrote lives under its namespace: streams, groups, dead letters, keys.
      await deleteNamespace(redis, namespace)
      redis.disconnect()
    })
    const sts = await startDevSts({ zoneId: ZONE, audience: AUDIENCE })
    cleanups.push(() => sts.close())

    const spawnChild = (
      name: string,
      core: number | undefined,
      nodeOptions: readonly string[],
      onMessage?: (m: unknown) => boolean,
    ): Child => {
      const [command, args] = childCommand(name, core, nodeOptions)
      const child = new Child(name, command, args, onMessage)
      children.push(child)
      if (child.proc.pid !== undefined) options.onChild?.(child.proc.pid)
      return child
    }
    // --expose-gc for the memory checkpoints only (bench/soak-protocol.ts "Flat after warm-up").
    const server = spawnChild('soak-server', pinned?.server, ['--expose-gc'], (m) => {
      const message = m as ServerMessage
      if (message.type !== 'memory') return false
      ;(message.sample.afterGc ? checkpoints : samples).push(message.sample)
      return true
    })
    server.send({
      type: 'start',
      config: {
        issuer: sts.issuer,
        audience: AUDIENCE,
        zoneId: ZONE,
        redisUrl,
        streamHmacKeyHex: streamHmacKey.toString('hex'),
        ...names,
        clockToleranceSec: windows.clockToleranceSec,
        cacheMax: CACHE_MAX,
      },
    })
    const loader = spawnChild('soak-loader', pinned?.loader, [])
    const [ready] = await Promise.all([
      server.next<Extract<ServerMessage, { type: 'ready' }>>('ready', 60_000),
      loader.next<Extract<LoaderMessage, { type: 'hello' }>>('hello', 60_000),
    ])

    // The load starts once every token is minted and judged by the reference verifiers.
    const durationMs = durationSec * 1000
    const minted = mintPlan(sts, durationMs)
    const referenceOptions = {
      issuer: sts.issuer,
      audience: AUDIENCE,
      requiredScopes: ['tool:call'],
      expectedZoneId: ZONE,
      requireAgent: true,
      clockToleranceSec: windows.clockToleranceSec,
      backend: 'node',
    } as const
    // What the server must answer now, and what it must answer once every flip has happened.
    const now = new CaracalAuth({ ...referenceOptions, revocations: new InMemoryRevocationStore() })
    const revokedStore: RevocationStore = new InMemoryRevocationStore()
    for (const g of minted.groups) revokedStore.markRevoked(g.anchor)
    const afterAll = Date.now() + durationMs + 10 * 60_000
    const later = new CaracalAuth({ ...referenceOptions, revocations: revokedStore, now: () => afterAll })
    cleanups.push(() => now.close())
    cleanups.push(() => later.close())
    const tokens: PlannedToken[] = []
    const judgeAccepted = async (a: Accepted): Promise<void> => {
      const authorization = a.kind.includes('lowercase scheme') ? `bearer ${a.token}` : `Bearer ${a.token}`
      if ((await answerOf(now, authorization)) !== 'accepted')
        throw new Error(`the reference verifier refuses a ${a.cls} mandate (${a.kind}): the plan is wrong`)
      const jti = (await now.verify(a.token)).jti
      if (a.flip === undefined) {
        tokens.push({ cls: a.cls, kind: a.kind, authorization, jti })
        return
      }
      const refusal = await answerOf(later, authorization)
      if (refusal === 'accepted') throw new Error(`a ${a.cls} mandate (${a.kind}) is still accepted after its flip`)
      tokens.push({ cls: a.cls, kind: a.kind, authorization, jti, refusal, flip: a.flip })
    }
    for (const a of minted.accepted) await judgeAccepted(a)
    for (const r of minted.refused) {
      const refusal = await answerOf(now, r.authorization)
      if (refusal === 'accepted') throw new Error(`the reference verifier accepts a ${r.cls} request (${r.kind})`)
      tokens.push({ cls: r.cls, kind: r.kind, authorization: r.authorization, refusal })
    }
    // Expiries are signed into their tokens, so those few are minted last, for a start just ahead.
    const startAt = Date.now() + 500
    for (const a of mintExpiring(sts, startAt, durationMs, windows)) await judgeAccepted(a)
    loader.send({
      type: 'start',
      start: { url: ready.url, tokens, weights: DEFAULT_WEIGHTS, startAt, durationSec, connections, windows },
    })
    log(
      `soak: ${tokens.length} tokens, ${durationSec} s, ${connections} connections, ` +
        (pinned === null ? 'not pinned' : `server on CPU ${pinned.server}, loader on CPU ${pinned.loader}`),
    )

    // Caracal's revocations at their planned instants, and churn all along (README "Several gateway
    // instances": signed events on caracal.sessions.revoke; one in five churn events is forged).
    const published: PublishedRevocation[] = []
    let churn = 0
    let forgedChurn = 0
    const wrongKey = randomBytes(32)
    const publish = async (fields: Record<string, string>, dedupe: string, key: Uint8Array | undefined) => {
      const entry: Record<string, string> = { outbox_id: randomUUID(), dedupe_key: dedupe, ...fields }
      if (key !== undefined) entry._sig = signRevocationEvent(key, names.stream, entry)
      await redis.xadd(names.stream, 'MAXLEN', '~', CARACAL_STREAMS_MAXLEN, '*', ...Object.entries(entry).flat())
    }
    const pending: Promise<void>[] = []
    const timers: NodeJS.Timeout[] = []
    for (const g of minted.groups) {
      timers.push(
        setTimeout(
          () => {
            const startMs = Date.now()
            pending.push(
              publish(g.fields, g.dedupe, streamHmacKey).then(() => {
                published.push({ group: g.group, anchorKind: g.anchorKind, startMs, ackMs: Date.now() })
              }),
            )
          },
          Math.max(0, startAt + durationMs * g.at - Date.now()),
        ),
      )
    }
    // Heap checkpoints after a full collection at the end of the first and second thirds; the last follows the load.
    for (const third of [1, 2])
      timers.push(
        setTimeout(() => server.send({ type: 'checkpoint' }), startAt + (durationMs * third) / 3 - Date.now()),
      )
    const churnTimer = setInterval(() => {
      if (Date.now() < startAt) return
      churn++
      if (churn % 5 === 0) {
        // Names a valid mandate's agent session: refused by the store and the consumer, it must change nothing.
        forgedChurn++
        const anchor = minted.validAnchors[churn % minted.validAnchors.length]!
        const fields = { zone_id: ZONE, session_id: `forged-${churn}`, agent_session_id: anchor, reason: 'forged' }
        pending.push(publish(fields, `agent_suspend:${anchor}`, churn % 10 === 0 ? undefined : wrongKey))
      } else {
        const anchor = `churn-${runId}-${churn}`
        pending.push(
          publish(
            { zone_id: ZONE, session_id: anchor, reason: 'session_revoked' },
            `session_revoke:${anchor}`,
            streamHmacKey,
          ),
        )
      }
    }, CHURN_EVERY_MS)
    cleanups.push(() => {
      clearInterval(churnTimer)
      for (const t of timers) clearTimeout(t)
    })

    const { load } = await loader.next<Extract<LoaderMessage, { type: 'load-done' }>>('load-done', durationMs + 120_000)
    clearInterval(churnTimer)
    await Promise.all(pending)
    loader.send({ type: 'finish', revocations: [...published].sort((a, b) => a.group - b.group) })
    server.send({ type: 'checkpoint' })
    const { result } = await loader.next<Extract<LoaderMessage, { type: 'result' }>>('result', 60_000)
    // The last checkpoint, and a second for the server to take the last events off the stream
    // before its final counts (the consumer and the mirror read new entries as they arrive).
    const settled = Date.now() + 1000
    const lastCheckpoint = Date.now() + 10_000
    while ((checkpoints.length < 3 || Date.now() < settled) && server.exit === undefined && Date.now() < lastCheckpoint)
      await new Promise((r) => setTimeout(r, 50))
    server.send({ type: 'stop' })
    const final = await server.next<Extract<ServerMessage, { type: 'final' }>>('final', 30_000).then(
      (m) => m.final,
      () => null,
    )
    await Promise.all([server.stop(10_000), loader.stop(10_000)])

    const during = samples.filter((s) => s.t >= load.startedAt && s.t <= load.endedAt)
    const round = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10
    const memory = {
      ...memoryVerdict(during, checkpoints),
      tolerance: MEMORY_TOLERANCE,
      series: during.map(
        (s) =>
          [
            Math.round((s.t - load.startedAt) / 100) / 10,
            round(s.heapUsed),
            round(s.rss),
            s.wasm === null ? null : round(s.wasm),
          ] as const,
      ),
    }
    const credentials = tokens.map((t) => credentialOf(t.authorization)).filter((c): c is string => c !== undefined)
    const outputs = { server: server.output, loader: loader.output }
    const leaks = tokenFragmentsIn(`${outputs.server}\n${outputs.loader}`, credentials)
    const bothSides = (kind: 'expiring' | 'revoked') => {
      const flips = Object.values(result.classes[kind].flips ?? {})
      return { seen: flips.filter((f) => f.before > 0 && f.after > 0).length, of: flips.length }
    }
    const expiryInstants = new Set(tokens.flatMap((t) => (t.flip?.kind === 'expiry' ? [t.flip.atMs] : []))).size
    const flipsWithBothSides = { expiry: bothSides('expiring'), revocation: bothSides('revoked') }
    const wrongAnswers = TOKEN_CLASSES.reduce((n, c) => n + result.classes[c].wrong, 0)
    const failures: string[] = []
    for (const c of TOKEN_CLASSES) {
      if (result.classes[c].wrong > 0) failures.push(`${result.classes[c].wrong} wrong answers to ${c} requests`)
      if (result.classes[c].requests === 0) failures.push(`no ${c} request was answered`)
    }
    if (flipsWithBothSides.expiry.seen !== expiryInstants)
      failures.push(`both sides seen at ${flipsWithBothSides.expiry.seen} of ${expiryInstants} expiry instants`)
    if (flipsWithBothSides.revocation.seen !== minted.groups.length)
      failures.push(`both sides seen at ${flipsWithBothSides.revocation.seen} of ${minted.groups.length} revocations`)
    if (published.length !== minted.groups.length)
      failures.push(`${published.length} of ${minted.groups.length} revocations published`)
    if (!memory.flat) failures.push('memory is not flat after warm-up')
    if (leaks.leaked.length > 0) failures.push(`${leaks.leaked.length} tokens have fragments in the output`)
    if (load.errors > 0 || load.timeouts > 0)
      failures.push(`${load.errors} connection errors, ${load.timeouts} timeouts`)
    if (final === null) failures.push('the server did not report its final state')

    const report: SoakReport = {
      node: process.version,
      cpu: cpus()[0]?.model ?? 'unknown CPU',
      cores: cpus().length,
      date: new Date().toISOString(),
      pinned,
      durationSec,
      connections,
      backend: ready.backend,
      windows,
      weights: DEFAULT_WEIGHTS,
      tokens: Object.fromEntries(TOKEN_CLASSES.map((c) => [c, tokens.filter((t) => t.cls === c).length])) as Record<
        TokenClass,
        number
      >,
      load,
      classes: result.classes,
      wrongAnswers,
      wrongSamples: result.wrongSamples,
      flipsWithBothSides,
      revocations: {
        planned: minted.groups.length,
        published: published.length,
        maxAckMs: Math.max(0, ...published.map((p) => p.ackMs - p.startMs)),
        churn,
        forgedChurn,
      },
      memory,
      server: final,
      leaks: {
        windows: leaks.windows,
        outputBytes: outputs.server.length + outputs.loader.length,
        leakedTokens: leaks.leaked.length,
      },
      failures,
      pass: failures.length === 0,
    }
    for (const line of formatReport(report)) log(line)
    if (options.outFile !== undefined) writeFileSync(options.outFile, `${JSON.stringify(report, null, 2)}\n`)
    return { report, tokens: credentials, outputs, namespace }
  } finally {
    for (const child of children) child.kill()
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {})
  }
}

export function formatReport(r: SoakReport): string[] {
  const lines = [
    `caracal-fastmcp soak — Node ${r.node}, ${r.cpu} (${r.cores} cores), ${r.durationSec} s, ${r.connections} connections, ` +
      (r.pinned === null ? 'not pinned' : `server on CPU ${r.pinned.server}, loader on CPU ${r.pinned.loader}`),
    `backends  ${Object.entries(r.backend)
      .map(([alg, b]) => `${alg} ${b}`)
      .join(', ')}`,
    `load      ${fmt(r.load.requests)} requests, ${fmt(r.load.reqPerSec)} req/s, latency p50 ${r.load.latencyMs.p50} ms, ` +
      `p99 ${r.load.latencyMs.p99} ms, max ${r.load.latencyMs.max} ms; ${r.load.errors} errors, ${r.load.timeouts} timeouts; ` +
      `req/s by third ${thirds(r.load.perSecond)
        .map((t) => fmt(t))
        .join(' / ')}`,
    `windows   expiry: exp + ${r.windows.clockToleranceSec} s ± ${r.windows.expiryMarginMs} ms; revocation: XADD … ack + ` +
      `${r.windows.propagationBoundMs} + ${r.windows.revocationMarginMs} ms`,
    `class     ${'tokens'.padStart(7)} ${'requests'.padStart(11)} ${'wrong'.padStart(6)}  detail`,
  ]
  for (const c of TOKEN_CLASSES) {
    const k = r.classes[c]
    let detail = ''
    if (k.flips !== undefined) {
      const f = Object.values(k.flips)
      const sum = (side: 'before' | 'grace' | 'after') => fmt(f.reduce((n, x) => n + x[side], 0))
      const both = c === 'expiring' ? r.flipsWithBothSides.expiry : r.flipsWithBothSides.revocation
      detail = `${f.length} flips: before ${sum('before')} · grace ${sum('grace')} · after ${sum('after')}; both sides at ${both.seen}/${both.of}`
    } else {
      detail = Object.entries(k.answers)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 2)
        .map(([answer, n]) => `${answer.length > 60 ? `${answer.slice(0, 57)}...` : answer} ×${fmt(n)}`)
        .join('; ')
    }
    lines.push(
      `${c.padEnd(9)} ${fmt(r.tokens[c]).padStart(7)} ${fmt(k.requests).padStart(11)} ${fmt(k.wrong).padStart(6)}  ${detail}`,
    )
  }
  const m = r.memory
  const series = (name: string, s: MemoryVerdict['heapUsed'] | null) =>
    s === null
      ? `${name} n/a`
      : `${name} ${mib(s.start)} / ${mib(s.warm)} / ${mib(s.end)} MiB (limit ${mib(s.limit)}) ${s.flat ? 'flat' : 'GROWS'}`
  lines.push(
    `memory    start / warm / end, ${m.samples} samples: ${series('heap', m.heapUsed)}; ${series('rss', m.rss)}; ${series('wasm', m.wasm)}`,
  )
  lines.push(
    `revoked   ${r.revocations.published}/${r.revocations.planned} published (ack ≤ ${r.revocations.maxAckMs} ms), ` +
      `${fmt(r.revocations.churn)} churn events, ${fmt(r.revocations.forgedChurn)} of them forged`,
  )
  lines.push(
    `leaks     ${r.leaks.leakedTokens} tokens with a fragment in ${fmt(r.leaks.outputBytes)} bytes of server and loader output ` +
      `(${fmt(r.leaks.windows)} 12-character windows)`,
  )
  for (const w of r.wrongSamples.slice(0, 10))
    lines.push(`wrong     ${w.cls} (${w.kind}) #${w.token} ${w.side} at +${w.atMs} ms: ${w.answer}`)
  lines.push(r.pass ? 'verdict   PASS' : `verdict   FAIL: ${r.failures.join('; ')}`)
  return lines
}

function argValue(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name)
  if (i < 0) return undefined
  const v = args[i + 1]
  if (v === undefined || v.startsWith('--')) throw new Error(`${name} needs a value`)
  return v
}

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  const known = new Set(['--duration', '--connections', '--out'])
  for (let i = 0; i < args.length; i += 2)
    if (!known.has(args[i]!)) throw new Error(`unknown argument ${args[i]} (--duration s, --connections n, --out file)`)
  const durationSec = Number(argValue(args, '--duration') ?? 600)
  const connections = Number(argValue(args, '--connections') ?? 10)
  if (!Number.isInteger(durationSec) || durationSec < 9)
    throw new Error('--duration must be a whole number of seconds ≥ 9')
  if (!Number.isInteger(connections) || connections < 1) throw new Error('--connections must be a positive integer')
  // bench/soak-results.json beside the sources (this file runs from dist/bench).
  const outFile = argValue(args, '--out') ?? fileURLToPath(new URL('../../bench/soak-results.json', import.meta.url))
  const { report } = await runSoak({ durationSec, connections, outFile })
  console.log(`report    ${outFile}`)
  if (!report.pass) process.exitCode = 1
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(`soak failed: ${error instanceof Error ? error.message : String(error)}`)
    process.exit(1)
  })
}
