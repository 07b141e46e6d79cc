/**
 * What the soak's three processes (bench/soak.ts, bench/soak-server.ts, bench/soak-loader.ts) say
 * to each other over their IPC channels, and the rules they judge by: which answer each planned
 * token must get, the grace windows around an expiry or a revocation, and "memory is flat".
 * Tokens travel over IPC only, never on a command line, in the environment or in a file.
 */

/** The soak's classes of request. `policy`: validly signed mandates the policy refuses (README "Errors"). */
export const TOKEN_CLASSES = ['valid', 'expiring', 'revoked', 'forged', 'garbage', 'policy'] as const
export type TokenClass = (typeof TOKEN_CLASSES)[number]

/** The refusal a request must get: status, and the `error` and `error_description` of the body (README "HTTP answers"). */
export interface Refusal {
  readonly status: number
  readonly code: string
  readonly description: string
}

/** When a time-dependent token flips from accepted to refused. */
export type Flip =
  | { readonly kind: 'expiry'; readonly atMs: number }
  | { readonly kind: 'revocation'; readonly group: number }

export interface PlannedToken {
  readonly cls: TokenClass
  /** What it is, in words (never the token). */
  readonly kind: string
  /** The Authorization header; undefined sends none. */
  readonly authorization: string | undefined
  /** When it must be accepted: the tool answers `ok:<jti>`. */
  readonly jti?: string
  /** When it must be refused: the answer the reference verifier gives (the same library in-process). */
  readonly refusal?: Refusal
  readonly flip?: Flip
}

/** A revocation as the soak published it: XADD sent at `startMs`, acknowledged by Redis at `ackMs`. */
export interface PublishedRevocation {
  readonly group: number
  readonly anchorKind: string
  readonly startMs: number
  readonly ackMs: number
}

/**
 * The grace windows. Around an expiry: the instant the mandate stops being valid, `exp` plus
 * `clockToleranceSec` (README "Options": expired once `exp ≤ now − tolerance`), ± `expiryMarginMs`.
 * After a revocation: from the XADD until its acknowledgement plus the mirror's propagation bound
 * (README "Several gateway instances": p99 of a few ms; bench target 50 ms) plus a margin.
 */
export interface GraceWindows {
  readonly clockToleranceSec: number
  readonly expiryMarginMs: number
  readonly propagationBoundMs: number
  readonly revocationMarginMs: number
}

export const DEFAULT_WINDOWS: GraceWindows = {
  clockToleranceSec: 1,
  expiryMarginMs: 100,
  propagationBoundMs: 50,
  revocationMarginMs: 250,
}

export interface ServerConfig {
  readonly issuer: string
  readonly audience: string
  readonly zoneId: string
  readonly redisUrl: string
  /** Caracal's STREAMS_HMAC_KEY, hex (README "Several gateway instances"). */
  readonly streamHmacKeyHex: string
  readonly stream: string
  readonly delegationStream: string
  readonly peerStream: string
  readonly keyPrefix: string
  readonly clockToleranceSec: number
  readonly cacheMax: number
}

export interface MemorySample {
  /** Date.now() in the server. */
  readonly t: number
  readonly heapUsed: number
  readonly rss: number
  /** Linear memory of the wasm module (`wasmMemoryBytes`), or null when the module is not in use. */
  readonly wasm: number | null
  /** Taken right after a full collection (a checkpoint), not by the 1 s timer. */
  readonly afterGc: boolean
}

export interface ServerFinal {
  readonly auth: unknown
  readonly store: unknown
  readonly consumer: unknown
  /** Distinct rejections the server logged (status, challenge and body). */
  readonly distinctRejections: number
}

export type ServerMessage =
  | { readonly type: 'ready'; readonly url: string; readonly backend: Readonly<Record<string, string>> }
  | { readonly type: 'memory'; readonly sample: MemorySample }
  | { readonly type: 'final'; readonly final: ServerFinal }
  | { readonly type: 'fatal'; readonly message: string }

export type ToServer =
  | { readonly type: 'start'; readonly config: ServerConfig }
  | { readonly type: 'checkpoint' }
  | { readonly type: 'stop' }

export interface LoaderStart {
  readonly url: string
  readonly tokens: readonly PlannedToken[]
  /** Weight of each class in the mix. */
  readonly weights: Readonly<Record<TokenClass, number>>
  readonly startAt: number
  readonly durationSec: number
  readonly connections: number
  readonly windows: GraceWindows
}

export interface LoadSummary {
  readonly startedAt: number
  readonly endedAt: number
  readonly requests: number
  readonly reqPerSec: number
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number }
  readonly errors: number
  readonly timeouts: number
  readonly non2xx: number
  /** Responses in each second of the load. */
  readonly perSecond: readonly number[]
}

/** Requests on one side of one flip (one expiry instant, one revocation group). */
export interface FlipCounts {
  readonly before: number
  readonly grace: number
  readonly after: number
}

export interface ClassResult {
  readonly requests: number
  readonly wrong: number
  /** `200` or `<status> <code>: <description>` → count. */
  readonly answers: Readonly<Record<string, number>>
  /** Time-dependent classes: per flip (expiry instant or revocation group). */
  readonly flips?: Readonly<Record<string, FlipCounts>>
}

export interface WrongAnswer {
  readonly cls: TokenClass
  readonly kind: string
  readonly token: number
  readonly side: 'always' | 'before' | 'grace' | 'after'
  readonly status: number
  readonly answer: string
  /** Milliseconds from the start of the load. */
  readonly atMs: number
}

export interface LoaderResult {
  readonly load: LoadSummary
  readonly classes: Readonly<Record<TokenClass, ClassResult>>
  readonly wrongSamples: readonly WrongAnswer[]
}

export type LoaderMessage =
  | { readonly type: 'hello' }
  | { readonly type: 'load-done'; readonly load: LoadSummary }
  | { readonly type: 'result'; readonly result: LoaderResult }
  | { readonly type: 'fatal'; readonly message: string }

export type ToLoader =
  | { readonly type: 'start'; readonly start: LoaderStart }
  | { readonly type: 'finish'; readonly revocations: readonly PublishedRevocation[] }

/** What a response was: the accepted answer, the planned refusal, or anything else. */
export type Outcome = 'accepted' | 'refused' | 'other'

/**
 * Which side of its flip a request falls on. The server checks the token somewhere between the
 * request's send and its response, on the same machine's clock, so "before" needs the response
 * before the window opens and "after" needs the send after it closes; in between either answer is fine.
 */
export function sideOf(
  window: { readonly from: number; readonly to: number },
  sentAt: number,
  receivedAt: number,
): 'before' | 'grace' | 'after' {
  if (receivedAt < window.from) return 'before'
  if (sentAt > window.to) return 'after'
  return 'grace'
}

export function expiryWindow(atMs: number, w: GraceWindows): { from: number; to: number } {
  return { from: atMs - w.expiryMarginMs, to: atMs + w.expiryMarginMs }
}

export function revocationWindow(r: PublishedRevocation, w: GraceWindows): { from: number; to: number } {
  return { from: r.startMs, to: r.ackMs + w.propagationBoundMs + w.revocationMarginMs }
}

/** Whether `outcome` is right on `side`: accepted before, refused after, either in the grace window. */
export function isRight(side: 'always' | 'before' | 'grace' | 'after', outcome: Outcome, mustAccept: boolean): boolean {
  if (outcome === 'other') return false
  if (side === 'grace') return true
  if (side === 'before') return outcome === 'accepted'
  if (side === 'after') return outcome === 'refused'
  return outcome === (mustAccept ? 'accepted' : 'refused')
}

/**
 * "Flat after warm-up". The load runs in thirds and the first is warm-up. heapUsed is a sawtooth
 * (a stateless fastmcp server builds a server per request; the samples go from ~60 to ~200 MiB
 * between collections), so the heap is judged on checkpoints taken after a full collection
 * (`gc()` in the server, `--expose-gc`) at the end of each third: the last against the first,
 * with a tolerance. RSS is smooth enough for medians: the last third's against the second's.
 * Wasm linear memory must not grow at all after the first third (docs/architecture.md "The wasm
 * module": memory grows only to import keys).
 */
export interface MemoryTolerance {
  /** Allowed growth: a fraction of the earlier value plus bytes. */
  readonly heapFraction: number
  readonly heapBytes: number
  readonly rssFraction: number
  readonly rssBytes: number
}

export const MEMORY_TOLERANCE: MemoryTolerance = {
  heapFraction: 0.1,
  heapBytes: 4 * 1024 * 1024,
  rssFraction: 0.1,
  rssBytes: 16 * 1024 * 1024,
}

export interface SeriesVerdict {
  /** heapUsed: after a collection at the end of the first, second and last thirds; rss: the thirds' medians; wasm: first, first third's largest, last. */
  readonly start: number
  readonly warm: number
  readonly end: number
  readonly limit: number
  readonly flat: boolean
}

export interface MemoryVerdict {
  readonly samples: number
  readonly heapUsed: SeriesVerdict
  readonly rss: SeriesVerdict
  readonly wasm: SeriesVerdict | null
  readonly flat: boolean
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/**
 * Judges the periodic samples taken while the load ran and the three after-collection
 * checkpoints (fewer than 3 samples or checkpoints, or a NaN: not flat).
 */
export function memoryVerdict(
  samples: readonly MemorySample[],
  checkpoints: readonly MemorySample[],
  t: MemoryTolerance = MEMORY_TOLERANCE,
): MemoryVerdict {
  const n = samples.length
  const third = Math.floor(n / 3)
  const first = samples.slice(0, third)
  const second = samples.slice(third, 2 * third)
  const last = samples.slice(2 * third)
  const [c1, c2, c3] = checkpoints.map((c) => c.heapUsed)
  const heapLimit = (c1 ?? Number.NaN) * (1 + t.heapFraction) + t.heapBytes
  const heapUsed: SeriesVerdict = {
    start: c1 ?? Number.NaN,
    warm: c2 ?? Number.NaN,
    end: c3 ?? Number.NaN,
    limit: heapLimit,
    flat: checkpoints.length === 3 && c2! <= heapLimit && c3! <= heapLimit,
  }
  const rssWarm = median(second.map((s) => s.rss))
  const rssEnd = median(last.map((s) => s.rss))
  const rssLimit = rssWarm * (1 + t.rssFraction) + t.rssBytes
  const rss: SeriesVerdict = {
    start: median(first.map((s) => s.rss)),
    warm: rssWarm,
    end: rssEnd,
    limit: rssLimit,
    flat: third > 0 && rssEnd <= rssLimit,
  }
  let wasm: SeriesVerdict | null = null
  if (n > 0 && samples.every((s) => s.wasm !== null)) {
    const warmMax = Math.max(...first.map((s) => s.wasm!))
    const laterMax = Math.max(...[...second, ...last].map((s) => s.wasm!))
    wasm = {
      start: samples[0]!.wasm!,
      warm: warmMax,
      end: samples[n - 1]!.wasm!,
      limit: warmMax,
      flat: third > 0 && laterMax <= warmMax,
    }
  }
  return { samples: n, heapUsed, rss, wasm, flat: heapUsed.flat && rss.flat && (wasm === null || wasm.flat) }
}

/**
 * The windows of `size` characters of each segment of each token (split on '.') that occur in
 * `text`: a token, or a piece of one, that reached a log (README "Errors": descriptions never
 * contain token contents). Returns how many windows were checked and which tokens leaked.
 */
export function tokenFragmentsIn(
  text: string,
  tokens: readonly string[],
  size = 12,
): { readonly windows: number; readonly leaked: readonly number[] } {
  const seen = new Set<string>()
  for (let i = 0; i + size <= text.length; i++) seen.add(text.slice(i, i + size))
  let windows = 0
  const leaked: number[] = []
  tokens.forEach((token, index) => {
    let hit = false
    for (const segment of token.split('.')) {
      for (let i = 0; i + size <= segment.length; i++) {
        windows++
        if (!hit && seen.has(segment.slice(i, i + size))) hit = true
      }
    }
    if (hit) leaked.push(index)
  })
  return { windows, leaked }
}
