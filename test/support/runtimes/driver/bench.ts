/**
 * The bench's work inside a runtime (bench/runtimes.ts drives it): on the same ES256 tokens,
 * `CaracalAuth.verify` per backend (no cache, so every call checks the signature) against the
 * runtime's own `crypto.subtle.verify` plus the decoding and `JSON.parse` any verifier needs — no
 * claim checks at all, the floor. Batches return their time from `performance.now()` where the
 * runtime lets it advance (workerd does not: there the bench reads the process's CPU time).
 */
import { CaracalAuth, InMemoryRevocationStore } from 'caracal-fastmcp'

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

export interface ColdResult {
  readonly verified: boolean
  /** `performance.now()` around the first `verify` (0 where the runtime freezes the clock). */
  readonly firstVerifyMs: number
}

let tokens: readonly string[] = []
let verifiers: Partial<Record<BenchVariant, CaracalAuth>> = {}
let subtleKey: CryptoKey | undefined
let next = 0

const utf8 = new TextDecoder('utf-8', { fatal: true })
const ascii = new TextEncoder()

function base64urlBytes(text: string): Uint8Array {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'))
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

/** What the floor does with a token: split, decode, `crypto.subtle.verify`, `JSON.parse` the payload. */
async function subtleVerify(text: string): Promise<boolean> {
  const first = text.indexOf('.')
  const last = text.lastIndexOf('.')
  const ok = await crypto.subtle.verify(
    { name: 'ECDSA', hash: 'SHA-256' },
    subtleKey!,
    base64urlBytes(text.slice(last + 1)),
    ascii.encode(text.slice(0, last)),
  )
  if (ok) JSON.parse(utf8.decode(base64urlBytes(text.slice(first + 1, last))))
  return ok
}

function verifierFor(input: BenchInput, backend: 'wasm' | 'auto' | 'noble'): CaracalAuth {
  return new CaracalAuth({
    issuer: input.issuer,
    audience: input.audience,
    revocations: new InMemoryRevocationStore(),
    backend,
    cache: false,
    jwks: { keys: [input.jwk] },
  })
}

async function once(variant: BenchVariant, token: string): Promise<boolean> {
  if (variant === 'subtle') return subtleVerify(token)
  await verifiers[variant]!.verify(token)
  return true
}

async function prepare(input: BenchInput): Promise<PreparedBench> {
  tokens = input.tokens
  verifiers = { wasm: verifierFor(input, 'wasm'), auto: verifierFor(input, 'auto'), noble: verifierFor(input, 'noble') }
  subtleKey = await crypto.subtle.importKey('jwk', input.jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify'])
  const accepted = { subtle: 0, wasm: 0, auto: 0, noble: 0 }
  for (const variant of BENCH_VARIANTS) {
    // noble takes ~2 ms a check: a handful proves it accepts them.
    for (const token of variant === 'noble' ? tokens.slice(0, 4) : tokens) if (await once(variant, token)) accepted[variant]++
  }
  const backend: Record<string, Record<string, string>> = {}
  for (const [name, auth] of Object.entries(verifiers)) backend[name] = { ...auth.stats().backend }
  return { accepted, backend }
}

/** Sent once to a fresh isolate: its first verification, or none at all (the control). */
async function cold(input: BenchInput & { readonly verify: boolean }): Promise<ColdResult> {
  const auth = new CaracalAuth({
    issuer: input.issuer,
    audience: input.audience,
    revocations: new InMemoryRevocationStore(),
    jwks: { keys: [input.jwk] },
  })
  if (!input.verify) return { verified: false, firstVerifyMs: 0 }
  const start = performance.now()
  await auth.verify(input.tokens[0]!)
  return { verified: true, firstVerifyMs: performance.now() - start }
}

async function batch(body: { readonly variant: BenchVariant; readonly count: number }): Promise<BatchResult> {
  const start = performance.now()
  for (let i = 0; i < body.count; i++) {
    const token = tokens[next++ % tokens.length]!
    if (!(await once(body.variant, token))) throw new Error(`${body.variant} refused a bench token`)
  }
  return { count: body.count, elapsedMs: performance.now() - start }
}

export async function benchRoute(name: string, body: unknown): Promise<PreparedBench | BatchResult | ColdResult> {
  if (name === 'prepare') return prepare(body as BenchInput)
  if (name === 'batch') return batch(body as { variant: BenchVariant; count: number })
  if (name === 'cold') return cold(body as BenchInput & { verify: boolean })
  throw new Error(`no bench route ${name}`)
}
