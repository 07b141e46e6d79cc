/**
 * What the suites (in Node) and the driver (in each runtime) send each other, as JSON. Types only:
 * the driver is the application a user would write, and imports nothing of the suites.
 */

export const BACKEND_CHOICES = ['auto', 'wasm', 'noble'] as const
export type DriverBackend = (typeof BACKEND_CHOICES)[number]

/** The tokens of one run, minted in Node by the development STS. */
export const TOKEN_NAMES = ['es256', 'rs256', 'es256Tampered', 'rs256Tampered', 'noScope'] as const
export type TokenName = (typeof TOKEN_NAMES)[number]

/** Requests the Fetch adapter answers: no Authorization header, or `Bearer <token>`. */
export const REQUEST_NAMES = ['valid', 'missing', 'tampered', 'noScope'] as const
export type RequestName = (typeof REQUEST_NAMES)[number]
export const REQUEST_TOKENS: Readonly<Record<RequestName, TokenName | undefined>> = {
  valid: 'es256',
  missing: undefined,
  tampered: 'es256Tampered',
  noScope: 'noScope',
}

export interface CaseInput {
  readonly issuer: string
  readonly audience: string
  readonly zoneId: string
  readonly requiredScopes: readonly string[]
  /** The STS's JWKS, for the verifiers given static keys. */
  readonly jwks: { readonly keys: readonly JsonWebKey[] }
  readonly tokens: Readonly<Record<TokenName, string>>
}

export type Verdict =
  | { readonly ok: true; readonly sub: string; readonly jti: string }
  | {
      readonly ok: false
      /** `CaracalAuthError` for the library's refusals; anything else is a defect. */
      readonly name: string
      readonly code: string | undefined
      readonly description: string | undefined
      readonly status: number | undefined
      readonly message: string
    }

export interface VerifierRun {
  /** Set when the constructor threw (e.g. a backend that cannot load here). */
  readonly constructError?: string
  readonly backend?: Readonly<Record<string, string>>
  /** `stats().backends` after the run: each backend's state, and what `auto`'s known-answer test refused. */
  readonly backends?: Readonly<Record<string, BackendStatusReport>>
  readonly verdicts?: Readonly<Record<TokenName, Verdict>>
  readonly jwksFetches?: number
  readonly jwksLastError?: string | undefined
}

/** One entry of `stats().backends`, as JSON. */
export interface BackendStatusReport {
  readonly state: string
  readonly reason?: string
  readonly refused?: Readonly<Record<string, string>>
}

export interface HttpAnswer {
  readonly status: number
  /** The headers an adapter sets (content-type, cache-control, www-authenticate, retry-after). */
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

export type AuthenticateOutcome =
  | { readonly ok: true; readonly sub: string }
  | { readonly ok: false; readonly code: string; readonly status: number; readonly answer: HttpAnswer }

export interface CaseResults {
  readonly runtime: {
    readonly userAgent: string
    /** Whether Node's globals are there (workerd with nodejs_compat, Deno, Bun). */
    readonly buffer: boolean
    readonly process: boolean
  }
  /** Static keys (`jwks.keys`), one verifier per backend. */
  readonly static: Readonly<Record<DriverBackend, VerifierRun>>
  /** Keys from the STS's JWKS endpoint on loopback, `backend: 'auto'`. */
  readonly remote: VerifierRun
  readonly adapter?: {
    readonly withCaracalAuth: Readonly<Record<RequestName, HttpAnswer>>
    readonly authenticateRequest: Readonly<Record<RequestName, AuthenticateOutcome>>
  }
  readonly adapterError?: string
}

/** The headers the comparison looks at: what the adapters set. */
export const ANSWER_HEADERS = ['content-type', 'cache-control', 'www-authenticate', 'retry-after'] as const

/** The bench (bench/runtimes.ts): what each runtime times, on the same ES256 tokens. */
export const BENCH_VARIANTS = ['subtle', 'wasm', 'auto', 'noble'] as const
export type BenchVariant = (typeof BENCH_VARIANTS)[number]

export interface BenchInput {
  readonly issuer: string
  readonly audience: string
  readonly jwk: JsonWebKey
  readonly tokens: readonly string[]
}

export interface PreparedBench {
  /** Tokens each variant accepted before anything was timed (all of them, or the bench stops). */
  readonly accepted: Readonly<Record<BenchVariant, number>>
  readonly backend: Readonly<Record<string, Readonly<Record<string, string>>>>
}

export interface BatchResult {
  readonly count: number
  readonly elapsedMs: number
}

/** What a fresh isolate's one request does (test/support/runtimes/driver/cold.ts). */
export const COLD_STAGES = ['none', 'import', 'verify'] as const
export type ColdStage = (typeof COLD_STAGES)[number]

export interface ColdInput extends BenchInput {
  readonly stage: ColdStage
}

export interface ColdResult {
  readonly stage: ColdStage
  /** `performance.now()` around the import, `new CaracalAuth` and the first `verify` (0 where the clock is frozen). */
  readonly importMs: number
  readonly constructMs: number
  readonly firstVerifyMs: number
}
