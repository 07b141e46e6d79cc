/**
 * The signature check alone, per backend (docs/architecture.md "Backends"): what `auto` chooses from. Same keys, same
 * signing inputs (real mandate tokens) for every backend. ES256 rows are compared with node:crypto,
 * RS256 rows with the BigInt path (noble backend). Also what a wasm key costs: import time and the
 * linear memory its tables take.
 */
import { sign } from 'node:crypto'
import { measure } from './measure.js'
import { backendByName, isBackendAvailable } from '../src/backends/index.js'
import { nodeSha256 } from '../src/backends/node.js'
import { withHashStage } from '../src/backends/staged.js'
import type { BackendName, MandateRules, VerifyingKey } from '../src/backends/types.js'
import { decodeSegments, parseJsonObject, splitCompact } from '../src/jws/compact.js'
import { verifyWithKey } from '../src/jws/verify-with-key.js'
import { resolveOptions } from '../src/options.js'
import { readMandate } from '../src/policy/claims.js'
import { checkPolicy } from '../src/policy/mandate-policy.js'
import { InMemoryRevocationStore } from '../src/revocation/in-memory-store.js'
import { wasmInternalsForTests, wasmKeyBytes } from '../src/backends/wasm.js'
import { generateSigningKey, type SigningKey } from '../src/dev/sign-jws.js'
import type { Algorithm } from '../src/jws/algorithms.js'
import { readPublicKey, type PublicKeyMaterial } from '../src/jws/public-key.js'
import { AUDIENCE, ISSUER, REQUIRED_SCOPES, ZONE, makeFixture } from './fixtures.js'
import type { BenchRow, SuiteOptions } from './rows.js'

interface Signed {
  readonly input: Uint8Array
  readonly signature: Uint8Array
}

function material(alg: Algorithm, jwk: JsonWebKey): PublicKeyMaterial {
  const m = readPublicKey(alg, jwk)
  if (typeof m === 'string') throw new Error(m)
  return m
}

function signedInputs(tokens: readonly string[]): Signed[] {
  return tokens.map((t) => {
    const dot = t.lastIndexOf('.')
    return { input: Buffer.from(t.slice(0, dot), 'latin1'), signature: Buffer.from(t.slice(dot + 1), 'base64url') }
  })
}

/** Slow contenders (noble ES256 at ~2 ms) run one check per iteration, fast ones a batch. */
const BATCH: Record<BackendName, number> = { wasm: 16, node: 16, noble: 1 }

export async function wasmSuite(options: SuiteOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = []
  const backends: BackendName[] = ['node', 'noble', ...(isBackendAvailable('wasm') ? (['wasm'] as const) : [])]
  const cases = [
    { alg: 'ES256' as const, bits: 2048, label: 'ES256', baseline: 'node' },
    { alg: 'RS256' as const, bits: 2048, label: 'RS256', baseline: 'noble' },
    { alg: 'RS256' as const, bits: 4096, label: 'RS256-4096', baseline: 'noble' },
  ]
  for (const c of cases) {
    const f = makeFixture(c.alg, 64)
    const key = c.bits === 2048 ? f.key : generateSigningKey('RS256', 'rs-4096', 4096)
    const signed = c.bits === 2048 ? signedInputs(f.pool) : signedInputs(resignedTokens(key, f.pool))
    const m = material(c.alg, key.publicJwk)
    const keys: VerifyingKey[] = []
    const tasks = backends.map((b) => {
      const k = backendByName(b).importKey(m)
      keys.push(k)
      // Every backend must accept every input, or the comparison means nothing.
      for (const s of signed)
        if (!k.verify(s.input, s.signature)) throw new Error(`${b} rejects a valid ${c.label} signature`)
      let i = 0
      const batch = BATCH[b]
      return {
        name: `${c.label} ${b}`,
        batch,
        fn: () => {
          for (let j = 0; j < batch; j++) {
            const s = signed[i]!
            k.verify(s.input, s.signature)
            i = i + 1 === signed.length ? 0 : i + 1
          }
        },
      }
    })
    const opsPerSec = await measure(tasks, options.timeMs, options.quick ? 1 : undefined)
    const base = c.baseline === 'noble' ? 'noble BigInt' : c.baseline
    backends.forEach((b, n) => {
      const name = `signature (${b === 'noble' && c.alg === 'RS256' ? 'noble BigInt' : b})`
      rows.push({
        suite: 'wasm',
        alg: c.label,
        group: 'signature',
        name,
        opsPerSec: opsPerSec[n]!,
        baseline: `${c.label} signature (${base})`,
      })
    })
    for (const k of keys) k.release()
  }
  if (isBackendAvailable('wasm')) {
    rows.push(...(await pathRows(options)))
    rows.push(...importRows())
  }
  return rows
}

/**
 * Everything after the header, without cache or revocation: the step-by-step path (JS decoding,
 * the key's signature check, JSON.parse, the JS claim rules and policy) against the one wasm call
 * (decoding, signature, JSON reader, rules and policy in the module; claims read back). For ES256
 * with the hash from node:crypto (what `auto` composes) and all in wasm; RS256 for reference.
 */
async function pathRows(options: SuiteOptions): Promise<BenchRow[]> {
  const o = resolveOptions({
    issuer: ISSUER,
    audience: AUDIENCE,
    revocations: new InMemoryRevocationStore(),
    requiredScopes: REQUIRED_SCOPES,
    expectedZoneId: ZONE,
    requireAgent: true,
    jwks: { keys: [] },
  })
  const rules: MandateRules = { claimRules: o.claimRules, policy: o.policy }
  const rows: BenchRow[] = []
  for (const alg of ['ES256', 'RS256'] as const) {
    const f = makeFixture(alg, 512)
    const m = material(alg, f.key.publicJwk)
    // The two ways `auto` could compose ES256 (src/backends/index.ts, AUTO_ONE_CALL).
    const staged = withHashStage(backendByName('wasm'), nodeSha256!, { oneCall: true }).importKey(m)
    const wasm = backendByName('wasm').importKey(m)
    const node = backendByName('node').importKey(m)
    const nowSec = Date.now() / 1000
    const wire = f.pool.map((t) => Buffer.from(t, 'latin1'))
    const stepwise = (key: VerifyingKey) => (token: string) => {
      const split = splitCompact(token)
      const jws = decodeSegments(token, split)
      if (!verifyWithKey(key, jws.signingInput, jws.signature)) throw new Error('rejected')
      checkPolicy(readMandate(parseJsonObject(jws.payload, 'payload'), rules.claimRules, nowSec), rules.policy)
    }
    const oneCall = (key: VerifyingKey) => (token: string) => {
      const split = splitCompact(token)
      if (key.verifyMandate!(token, split.dot1, split.dot2, rules, nowSec).kind !== 'accepted')
        throw new Error('rejected')
    }
    const contenders =
      alg === 'ES256'
        ? [
            { name: 'step by step (node SHA-256, wasm P-256, JSON.parse)', run: stepwise(staged) },
            { name: 'one wasm call (node SHA-256)', run: oneCall(staged) },
            { name: 'one wasm call (wasm SHA-256)', run: oneCall(wasm) },
          ]
        : [
            { name: 'step by step (node)', run: stepwise(node) },
            { name: 'one wasm call', run: oneCall(wasm) },
          ]
    const tasks = contenders.map((c) => {
      for (const t of f.pool) c.run(t) // each must accept every token
      let i = 0
      return {
        name: `${alg} ${c.name}`,
        batch: 16,
        fn: () => {
          // A new string per call, as a request brings (see verify-suite).
          for (let j = 0; j < 16; j++) {
            c.run(wire[i]!.toString('latin1'))
            i = i + 1 === wire.length ? 0 : i + 1
          }
        },
      }
    })
    const opsPerSec = await measure(tasks, options.timeMs, options.quick ? 1 : undefined)
    contenders.forEach((c, n) => {
      rows.push({
        suite: 'wasm',
        alg,
        group: 'path',
        name: c.name,
        opsPerSec: opsPerSec[n]!,
        baseline: `${alg} ${contenders[0]!.name}`,
      })
    })
    for (const k of [staged, wasm, node]) k.release()
  }
  return rows
}

/** The pool's signing inputs signed again by another key (the 4096-bit one). */
function resignedTokens(key: SigningKey, pool: readonly string[]): string[] {
  return pool.map((t) => {
    const input = t.slice(0, t.lastIndexOf('.'))
    const signature = signWith(key, Buffer.from(input, 'latin1'))
    return `${input}.${signature.toString('base64url')}`
  })
}

function signWith(key: SigningKey, input: Uint8Array): Buffer {
  return key.alg === 'ES256'
    ? sign('sha256', input, { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
    : sign('sha256', input, key.privateKey)
}

/**
 * Import cost and linear memory of wasm keys. An EC key's import is its record; its fixed-base
 * table (and, once per process, the generator's) comes once it is hot (assembly/p256-tables.ts):
 * the time to build those is measured here in one go, as the chunks of verifications add up to.
 */
function importRows(): BenchRow[] {
  const wasm = backendByName('wasm')
  const bytes = wasmKeyBytes()
  const rows: BenchRow[] = []
  for (const alg of ['ES256', 'RS256'] as const) {
    const mats = Array.from({ length: 8 }, (_, i) => material(alg, generateSigningKey(alg, `imp-${i}`).publicJwk))
    wasm.importKey(mats[0]!).release() // the first EC import computes the generator's odd multiples
    const t0 = performance.now()
    const live = mats.map((m) => wasm.importKey(m))
    const ms = (performance.now() - t0) / mats.length
    rows.push({ suite: 'wasm', alg, group: 'key', name: 'wasm key import', value: ms, unit: 'ms/key' })
    rows.push({
      suite: 'wasm',
      alg,
      group: 'key',
      name: 'wasm key memory',
      value: (alg === 'ES256' ? bytes.es256Cold : bytes.rs256) / 1024,
      unit: 'KiB/key',
    })
    if (alg === 'ES256') {
      // The generator's table is complete by now (the signature rows made their keys hot).
      const t1 = performance.now()
      for (const k of live) wasmInternalsForTests.buildTables(k, Number.POSITIVE_INFINITY)
      rows.push({
        suite: 'wasm',
        alg,
        group: 'key',
        name: 'wasm key table, once hot (build)',
        value: (performance.now() - t1) / live.length,
        unit: 'ms/key',
      })
      rows.push({
        suite: 'wasm',
        alg,
        group: 'key',
        name: 'wasm key table, once hot (memory)',
        value: (bytes.es256 - bytes.es256Cold) / 1024,
        unit: 'KiB/key',
      })
    }
    for (const k of live) k.release()
  }
  rows.push({
    suite: 'wasm',
    alg: 'ES256',
    group: 'key',
    name: 'wasm generator table (once)',
    value: bytes.generator / 1024,
    unit: 'KiB',
  })
  return rows
}
