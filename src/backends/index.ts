/**
 * Resolves the `backend` option into the backend that serves each algorithm. `auto` takes, per
 * algorithm, what `npm run bench` measured fastest on Node (bench/README.md has the numbers).
 */
import type { Algorithm } from '../jws/algorithms.js'
import { nobleBackend } from './noble.js'
import { nodeBackend, nodeSha256 } from './node.js'
import { withHashStage } from './staged.js'
import { wasmBackend, wasmUnavailableReason } from './wasm.js'
import type { BackendChoice, BackendForAlgorithm, BackendName, SignatureBackend } from './types.js'

const BACKENDS: Record<string, SignatureBackend> = { wasm: wasmBackend, node: nodeBackend, noble: nobleBackend }

/**
 * Per algorithm, the order `auto` tries backends in; the first that supports it wins. Measured
 * (bench/README.md): the wasm ES256 check, with fixed-base tables per key, is ~2.2× OpenSSL's;
 * OpenSSL's RS256 is ~2.6× the wasm one (wasm has no 64×64→128-bit multiply).
 */
const AUTO_ORDER: Readonly<Record<Algorithm, readonly BackendName[]>> = {
  ES256: ['wasm', 'node', 'noble'],
  RS256: ['node', 'wasm', 'noble'],
}

/**
 * Whether `auto` hands ES256 tokens to the wasm module in one call (decoding, JSON, claim rules and
 * policy there too, the hash from OpenSSL) or only the curve arithmetic. Measured (bench/README.md,
 * `[wasm/path]` rows, compiled build): the one call is 1.03–1.08× the step-by-step path — it saves
 * the JS decoding and JSON.parse and spends most of that reading the claims back.
 */
const AUTO_ONE_CALL = true

export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'wasm', 'node', 'noble']

/** False where the platform cannot run it; throws for a broken build (a missing or stale wasm module). */
export function isBackendAvailable(name: BackendName): boolean {
  return BACKENDS[name]?.supports('ES256') === true
}

/** Why `name` cannot serve on this platform (for the option error), or undefined. */
export function backendUnavailableReason(name: BackendName): string | undefined {
  if (isBackendAvailable(name)) return undefined
  return name === 'wasm' ? wasmUnavailableReason() : `node:crypto is missing here`
}

export function backendByName(name: BackendName): SignatureBackend {
  const backend = BACKENDS[name]
  if (backend === undefined) throw new TypeError(`backend "${name}" is not available in this build`)
  return backend
}

export function resolveBackends(choice: BackendChoice): BackendForAlgorithm {
  if (choice !== 'auto') {
    const backend = backendByName(choice)
    return () => backend
  }
  const chosen = {} as Record<Algorithm, SignatureBackend>
  for (const alg of Object.keys(AUTO_ORDER) as Algorithm[]) {
    const name = AUTO_ORDER[alg].find((n) => BACKENDS[n]?.supports(alg) === true) ?? 'noble'
    // Per stage: where wasm does the arithmetic and OpenSSL is at hand, OpenSSL does the hashing.
    chosen[alg] =
      name === 'wasm' && nodeSha256 !== undefined && nodeBackend.supports(alg)
        ? withHashStage(wasmBackend, nodeSha256, { oneCall: AUTO_ONE_CALL })
        : BACKENDS[name]!
  }
  return (alg) => chosen[alg]
}

export type { BackendChoice, BackendName, SignatureBackend, VerifyingKey } from './types.js'
