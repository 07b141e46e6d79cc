/**
 * The end-to-end suite's scenarios and what its processes (bench/e2e-suite.ts, bench/e2e-server.ts,
 * bench/e2e-loader.ts) say to each other over IPC. Tokens are minted in the loader and never leave
 * it: the servers get the public key only.
 */

/** The two servers: a plain node:http gateway hop (verify the bearer, answer JSON), and fastmcp's stateless HTTP stream. */
export const SERVERS = ['gateway', 'fastmcp'] as const
export type ServerKind = (typeof SERVERS)[number]

/**
 * `warm`: a few tokens presented again and again (a cache answers). `cold`: every request a token
 * the server has not seen, as with Caracal's per-request minting (its gateway refuses a replayed `jti`).
 */
export type TokenMode = 'warm' | 'cold'

export interface Variant {
  readonly id: string
  readonly label: string
  readonly tokens: TokenMode
  /** What the variant needs beyond the server itself; without it the variant is left out, and the report says why. */
  readonly needs?: 'redis' | 'workers'
  /** Runs on every allowed CPU instead of the server's one: a pool of workers on one core measures nothing. */
  readonly unpinned?: boolean
}

/** In the order of a round (odd rounds run it backwards, so drift over a round biases no ratio). */
export const VARIANTS: readonly Variant[] = [
  { id: 'none', label: 'no auth', tokens: 'warm' },
  { id: 'jose', label: 'plain jose verifier', tokens: 'cold' },
  { id: 'fast-jwt', label: 'fast-jwt (no cache)', tokens: 'cold' },
  { id: 'fast-jwt-cache', label: 'fast-jwt (cache), tokens reused', tokens: 'warm' },
  { id: 'node-rs', label: '@node-rs/jsonwebtoken', tokens: 'cold' },
  { id: 'caracal-warm', label: 'CaracalAuth warm (tokens reused)', tokens: 'warm' },
  { id: 'caracal-cold', label: 'CaracalAuth cold (every token new)', tokens: 'cold' },
  {
    id: 'caracal-cold-replay',
    label: 'CaracalAuth cold, single use (RedisReplayStore)',
    tokens: 'cold',
    needs: 'redis',
  },
  {
    id: 'caracal-cold-replay-script',
    label: 'CaracalAuth cold, single use (RedisReplayStore, scriptBatches)',
    tokens: 'cold',
    needs: 'redis',
  },
  {
    id: 'caracal-cold-pool2',
    label: 'CaracalAuth cold, workers: 2 (server unpinned)',
    tokens: 'cold',
    needs: 'workers',
    unpinned: true,
  },
]

/** Tokens of the warm set: more than one, so a verifier cannot keep just the last one. */
export const WARM_TOKENS = 64

export interface ServerConfig {
  readonly server: ServerKind
  readonly variant: string
  readonly publicJwk: JsonWebKey & { kid: string; alg: 'ES256' }
  /** For the single-use variants: Redis, and the key prefix of this server's replay store (deleted by the suite). */
  readonly redisUrl?: string
  readonly replayPrefix?: string
  /** Time every verify call with `performance.now()` and report the mean (issue 13 item 2: in-server against the loop figure). */
  readonly timeVerify: boolean
}

export interface ServerFinal {
  readonly rss: number
  readonly heapUsed: number
  readonly heapTotal: number
  /** heapUsed after two full collections. */
  readonly heapAfterGc: number
  /** The wasm module's linear memory (instantiated when the library is imported), or null where it is unavailable. */
  readonly wasm: number | null
  /** Mean µs per verify call, when `timeVerify`. */
  readonly verifyUs: number | null
  readonly verifyCalls: number
}

export type ServerMessage =
  | { readonly type: 'ready'; readonly url: string }
  | { readonly type: 'final'; readonly final: ServerFinal }
  | { readonly type: 'fatal'; readonly message: string }

export type ToServer = { readonly type: 'start'; readonly config: ServerConfig } | { readonly type: 'stop' }

export interface LoadJob {
  readonly url: string
  readonly server: ServerKind
  readonly tokens: TokenMode
  readonly connections: number
  readonly warmupSec: number
  readonly durationSec: number
}

export interface LoadResult {
  /** Responses in the measured window. */
  readonly requests: number
  readonly seconds: number
  readonly reqPerSec: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly non2xx: number
  readonly errors: number
  readonly timeouts: number
  /** The cold pool ran out before the window ended: the window was cut short there. */
  readonly exhausted: boolean
  /** Responses in each whole second of the warm-up: where the server's warm-up curve flattens. */
  readonly warmupPerSec: readonly number[]
}

export type LoaderMessage =
  | { readonly type: 'hello'; readonly publicJwk: ServerConfig['publicJwk']; readonly coldTokens: number }
  | { readonly type: 'warm' }
  | { readonly type: 'result'; readonly result: LoadResult }
  | { readonly type: 'fatal'; readonly message: string }

export type ToLoader =
  | { readonly type: 'mint'; readonly coldTokens: number }
  | { readonly type: 'load'; readonly job: LoadJob }
  | { readonly type: 'go' }

/** The JSON-RPC request every fastmcp load sends. */
export const TOOLS_CALL = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: { name: 'whoami', arguments: {} },
})
