/**
 * The signature check alone, per backend (SPEC §5): what `auto` chooses from. Same keys, same
 * signing inputs (real mandate tokens) for every backend. ES256 rows are compared with node:crypto,
 * RS256 rows with the BigInt path (noble backend). Also what a wasm key costs: import time and the
 * linear memory its tables take.
 */
import { sign } from 'node:crypto'
import { measure } from './measure.js'
import { backendByName, isBackendAvailable } from '../src/backends/index.js'
import type { BackendName, VerifyingKey } from '../src/backends/types.js'
import { wasmKeyBytes } from '../src/backends/wasm.js'
import { generateSigningKey, type SigningKey } from '../src/dev/sign-jws.js'
import type { Algorithm } from '../src/jws/algorithms.js'
import { readPublicKey, type PublicKeyMaterial } from '../src/jws/public-key.js'
import { makeFixture } from './fixtures.js'
import type { BenchRow } from './rows.js'

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

export async function wasmSuite(options: { timeMs: number }): Promise<BenchRow[]> {
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
      for (const s of signed) if (!k.verify(s.input, s.signature)) throw new Error(`${b} rejects a valid ${c.label} signature`)
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
    const opsPerSec = await measure(tasks, options.timeMs)
    const base = c.baseline === 'noble' ? 'noble BigInt' : c.baseline
    backends.forEach((b, n) => {
      const name = `signature (${b === 'noble' && c.alg === 'RS256' ? 'noble BigInt' : b})`
      rows.push({ suite: 'wasm', alg: c.label, group: 'signature', name, opsPerSec: opsPerSec[n]!, baseline: `${c.label} signature (${base})` })
    })
    for (const k of keys) k.release()
  }
  if (isBackendAvailable('wasm')) rows.push(...importRows())
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
  return key.alg === 'ES256' ? sign('sha256', input, { key: key.privateKey, dsaEncoding: 'ieee-p1363' }) : sign('sha256', input, key.privateKey)
}

/** Import cost and linear memory of wasm keys (the generator's table is built by the first import). */
function importRows(): BenchRow[] {
  const wasm = backendByName('wasm')
  const bytes = wasmKeyBytes()
  const rows: BenchRow[] = []
  for (const alg of ['ES256', 'RS256'] as const) {
    const mats = Array.from({ length: 8 }, (_, i) => material(alg, generateSigningKey(alg, `imp-${i}`).publicJwk))
    wasm.importKey(mats[0]!).release() // the first import may build the generator table
    const t0 = performance.now()
    const live = mats.map((m) => wasm.importKey(m))
    const ms = (performance.now() - t0) / mats.length
    for (const k of live) k.release()
    rows.push({ suite: 'wasm', alg, group: 'key', name: 'wasm key import', value: ms, unit: 'ms/key' })
    rows.push({ suite: 'wasm', alg, group: 'key', name: 'wasm key memory', value: (alg === 'ES256' ? bytes.es256 : bytes.rs256) / 1024, unit: 'KiB/key' })
  }
  rows.push({ suite: 'wasm', alg: 'ES256', group: 'key', name: 'wasm generator table (once)', value: bytes.generator / 1024, unit: 'KiB' })
  return rows
}
