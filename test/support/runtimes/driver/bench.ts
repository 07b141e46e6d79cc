/**
 * The bench's work inside a runtime (bench/runtimes.ts drives it): on the same ES256 tokens,
 * `CaracalAuth.verify` per backend (no cache, so every call checks the signature) against the
 * runtime's own `crypto.subtle.verify` plus the decoding and `JSON.parse` any verifier needs — no
 * claim checks at all, the floor. Batches return their time from `performance.now()` where the
 * runtime lets it advance (workerd does not: there the bench reads the process's CPU time). The
 * cold start is cold.ts's, in entries of its own.
 */
import { CaracalAuth, InMemoryRevocationStore } from 'caracal-fastmcp'
import { BENCH_VARIANTS, type BatchResult, type BenchInput, type BenchVariant, type PreparedBench } from './protocol.js'

let tokens: readonly string[] = []
let verifiers: Partial<Record<BenchVariant, CaracalAuth>> = {}
let subtleKey: CryptoKey | undefined
let next = 0

const utf8 = new TextDecoder('utf-8', { fatal: true })
const ascii = new TextEncoder()

function base64urlBytes(text: string): Uint8Array<ArrayBuffer> {
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
    for (const token of variant === 'noble' ? tokens.slice(0, 4) : tokens)
      if (await once(variant, token)) accepted[variant]++
  }
  const backend: Record<string, Record<string, string>> = {}
  for (const [name, auth] of Object.entries(verifiers)) backend[name] = { ...auth.stats().backend }
  return { accepted, backend }
}

async function batch(body: { readonly variant: BenchVariant; readonly count: number }): Promise<BatchResult> {
  const start = performance.now()
  for (let i = 0; i < body.count; i++) {
    const token = tokens[next++ % tokens.length]!
    if (!(await once(body.variant, token))) throw new Error(`${body.variant} refused a bench token`)
  }
  return { count: body.count, elapsedMs: performance.now() - start }
}

export async function benchRoute(name: string, body: unknown): Promise<PreparedBench | BatchResult> {
  if (name === 'prepare') return prepare(body as BenchInput)
  if (name === 'batch') return batch(body as { variant: BenchVariant; count: number })
  throw new Error(`no bench route ${name}`)
}
