/**
 * Resolves the `backend` option into the backend that serves each algorithm. `auto` takes, per
 * algorithm, the first backend of `AUTO_ORDER` (what `npm run bench` measured fastest on Node,
 * bench/README.md) that this runtime has and that passes the known-answer test; on runtimes where
 * the wasm module loads asynchronously it waits for that load first (README "Runtimes").
 */
import { nodeCryptoBackend, nodeCryptoMissing, nodeCryptoSha256 } from '#node-crypto'
import type { Algorithm } from '../jws/algorithms.js'
import { decodeBase64url } from '../jws/base64url.js'
import { readPublicKey } from '../jws/public-key.js'
import { emitWarning } from '../platform/warning.js'
import { KNOWN_ANSWERS, KNOWN_ANSWER_MESSAGE, KNOWN_ANSWER_TAMPERED } from './known-answers.js'
import { nobleBackend } from './noble.js'
import { withHashStage } from './staged.js'
import { wasmBackend, wasmLoad, wasmSettled, type WasmLoad } from './wasm.js'
import type { BackendChoice, BackendForAlgorithm, BackendName, SignatureBackend } from './types.js'

/**
 * Per algorithm, the order `auto` tries backends in. Measured (bench/README.md): the wasm ES256
 * check, with fixed-base tables per key, is ~2.2× OpenSSL's; OpenSSL's RS256 is ~2.6× the wasm one
 * (wasm has no 64×64→128-bit multiply).
 */
const AUTO_ORDER: Readonly<Record<Algorithm, readonly BackendName[]>> = {
  ES256: ['wasm', 'node', 'noble'],
  RS256: ['node', 'wasm', 'noble'],
}
const ALGORITHMS = Object.keys(AUTO_ORDER) as Algorithm[]

/**
 * Whether `auto` hands ES256 tokens to the wasm module in one call (decoding, JSON, claim rules and
 * policy there too, the hash from OpenSSL) or only the curve arithmetic. Measured (bench/README.md,
 * `[wasm/path]` rows, compiled build): the one call is 1.03–1.08× the step-by-step path — it saves
 * the JS decoding and JSON.parse and spends most of that reading the claims back.
 */
const AUTO_ONE_CALL = true

/**
 * How long `auto` (and a forced `wasm`) waits for a wasm load under way before it gives up on it
 * (README "Runtimes"): a fetch that never answers must not hold every request forever.
 */
export const WASM_WAIT_MS = 10_000

export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'wasm', 'node', 'noble']

/** The backends of this runtime; a test may put fakes in their place (`backendsForTests`). */
const registry: { wasm: SignatureBackend; node: SignatureBackend | undefined; noble: SignatureBackend } = {
  wasm: wasmBackend,
  node: nodeCryptoBackend,
  noble: nobleBackend,
}
let sha256Stage = nodeCryptoSha256

/** Why a candidate of `auto` was not trusted for an algorithm (`stats().backends`). */
const refusals = new Map<BackendName, Partial<Record<Algorithm, string>>>()

/** Where one backend stands on this runtime (`stats().backends`, README "Runtimes"). */
export interface BackendStatus {
  /** `loading`: the wasm module is on its way (in async runtimes; `verify` waits for it). */
  readonly state: 'ready' | 'loading' | 'unavailable'
  /** Why it cannot serve here (for `unavailable`). */
  readonly reason?: string
  /** Per algorithm, why `auto` did not trust it: the known-answer test it failed. */
  readonly refused?: Readonly<Partial<Record<Algorithm, string>>>
}

/** False where the platform cannot run it (or the wasm module is still loading); throws for a broken build. */
export function isBackendAvailable(name: BackendName): boolean {
  return registry[name]?.supports('ES256') === true
}

/**
 * Why `name` cannot serve on this platform, known now (for the option error), or undefined: it
 * can, or whether it can is not known yet (the wasm module is loading; `verify` will say).
 */
export function backendUnavailableReason(name: BackendName): string | undefined {
  if (name === 'wasm') {
    const l = wasmLoad()
    return l instanceof Promise || l.ok ? undefined : l.reason
  }
  if (name === 'node' && registry.node === undefined) return nodeCryptoMissing
  return undefined
}

export function backendByName(name: BackendName): SignatureBackend {
  const backend = registry[name]
  if (backend === undefined)
    throw new TypeError(`backend "${name}" is not available: ${backendUnavailableReason(name) ?? 'not in this build'}`)
  return backend
}

export function backendStatuses(): Readonly<Record<BackendName, BackendStatus>> {
  const status = (name: BackendName, base: { state: BackendStatus['state']; reason?: string }): BackendStatus => {
    const refused = refusals.get(name)
    return Object.freeze(refused === undefined ? base : { ...base, refused: Object.freeze({ ...refused }) })
  }
  const l = wasmLoad()
  return Object.freeze({
    wasm: status(
      'wasm',
      l instanceof Promise
        ? { state: 'loading' }
        : l.ok
          ? { state: 'ready' }
          : { state: 'unavailable', reason: l.reason },
    ),
    node: status(
      'node',
      registry.node === undefined ? { state: 'unavailable', reason: nodeCryptoMissing ?? '' } : { state: 'ready' },
    ),
    noble: status('noble', { state: 'ready' }),
  })
}

/**
 * The backends of one `backend` option. On Node everything is known at once (`pending()` is
 * undefined from the start); where the wasm module loads asynchronously, `pending()` settles once
 * the choice is made, and never rejects: a choice that could not be made is `failure()`.
 */
export interface BackendSelection {
  pending(): Promise<void> | undefined
  /** Why this choice cannot serve (a forced backend that did not load, a broken wasm build). */
  failure(): Error | undefined
  /** The backend of an algorithm; only once `pending()` is undefined and there is no failure. */
  readonly backendFor: BackendForAlgorithm
  /** The backend serving each algorithm: `loading` while the choice waits for the wasm module, `unavailable` after a failure. */
  names(): Readonly<Record<Algorithm, BackendName | 'loading' | 'unavailable'>>
}

/** The backend of each algorithm, decided on first use (so the known-answer test runs only for algorithms in use). */
type Chosen = (alg: Algorithm) => SignatureBackend

class Selection implements BackendSelection {
  #chosen: Chosen | undefined
  #failure: Error | undefined
  #pending: Promise<void> | undefined

  constructor(choose: () => Chosen | Promise<Chosen>) {
    let result: Chosen | Promise<Chosen>
    try {
      result = choose()
    } catch (error) {
      this.#failure = error instanceof Error ? error : new Error(String(error))
      return
    }
    if (!(result instanceof Promise)) {
      this.#chosen = result
      return
    }
    this.#pending = result.then(
      (chosen) => {
        this.#chosen = chosen
        this.#pending = undefined
      },
      (error: unknown) => {
        this.#failure = error instanceof Error ? error : new Error(String(error))
        this.#pending = undefined
      },
    )
  }

  pending(): Promise<void> | undefined {
    return this.#pending
  }

  failure(): Error | undefined {
    return this.#failure
  }

  readonly backendFor: BackendForAlgorithm = (alg) => {
    const chosen = this.#chosen
    if (chosen !== undefined) return chosen(alg)
    throw this.#failure ?? new Error('the signature backends are not chosen yet (await verify or warmup)')
  }

  names(): Readonly<Record<Algorithm, BackendName | 'loading' | 'unavailable'>> {
    const chosen = this.#chosen
    const none = this.#failure === undefined ? 'loading' : 'unavailable'
    return Object.freeze(
      Object.fromEntries(ALGORITHMS.map((a) => [a, chosen === undefined ? none : chosen(a).name])) as Record<
        Algorithm,
        BackendName | 'loading' | 'unavailable'
      >,
    )
  }
}

/** A wasm load under way, waited for at most `WASM_WAIT_MS`. */
function settledWithin(): Promise<WasmLoad> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<WasmLoad>((resolve) => {
    timer = setTimeout(
      () => resolve({ ok: false, broken: false, reason: `caracal.wasm did not load within ${WASM_WAIT_MS / 1000} s` }),
      WASM_WAIT_MS,
    )
  })
  return Promise.race([wasmSettled(), late]).finally(() => clearTimeout(timer))
}

function unavailable(name: BackendName, reason: string): TypeError {
  return new TypeError(`backend "${name}" is not available: ${reason}`)
}

/** A forced `wasm`: the module, or the reason it did not load. */
function forcedWasm(l: WasmLoad): Chosen {
  if (!l.ok) throw unavailable('wasm', l.reason)
  const wasm = registry.wasm
  return () => wasm
}

/** wasm as `auto` uses it: where OpenSSL is at hand, OpenSSL does the hashing (per stage). */
let stagedWasm: { readonly of: SignatureBackend; readonly staged: SignatureBackend } | undefined
function autoWasm(): SignatureBackend {
  const stage = sha256Stage
  if (stage === undefined || registry.node === undefined) return registry.wasm
  if (stagedWasm?.of !== registry.wasm) {
    stagedWasm = { of: registry.wasm, staged: withHashStage(registry.wasm, stage, { oneCall: AUTO_ONE_CALL }) }
  }
  return stagedWasm.staged
}

/** Known-answer verdicts, per backend object and algorithm: each is run once per process. */
const knownAnswerVerdicts = new WeakMap<SignatureBackend, Partial<Record<Algorithm, string | null>>>()

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error)
}

/**
 * Why `backend` cannot be trusted with `alg`, or undefined when it verifies the fixed valid
 * signature and refuses the same signature over an altered message. A backend that throws is
 * refused with what it threw: a `verify` that throws on every call (workerd's `node:crypto` on an
 * ES256 KeyObject) would otherwise look like a backend that refuses every token.
 */
export function knownAnswerFailure(backend: SignatureBackend, alg: Algorithm): string | undefined {
  let verdicts = knownAnswerVerdicts.get(backend)
  if (verdicts === undefined) {
    verdicts = {}
    knownAnswerVerdicts.set(backend, verdicts)
  }
  const known = verdicts[alg]
  if (known !== undefined) return known ?? undefined
  const verdict = runKnownAnswer(backend, alg)
  verdicts[alg] = verdict ?? null
  return verdict
}

function runKnownAnswer(backend: SignatureBackend, alg: Algorithm): string | undefined {
  const vector = KNOWN_ANSWERS[alg]
  const material = readPublicKey(alg, vector.jwk)
  const signature = decodeBase64url(vector.signature)
  if (typeof material === 'string' || signature === undefined) return `the known-answer vector is unusable`
  const encoder = new TextEncoder()
  let key: ReturnType<SignatureBackend['importKey']>
  try {
    if (!backend.supports(alg)) return `does not support ${alg} here`
    key = backend.importKey(material)
  } catch (error) {
    return `threw importing the known-answer ${alg} key (${describeError(error)})`
  }
  try {
    if (key.verify(encoder.encode(KNOWN_ANSWER_MESSAGE), signature) !== true)
      return `refused the known-answer ${alg} signature`
    if (key.verify(encoder.encode(KNOWN_ANSWER_TAMPERED), signature) !== false)
      return `accepted the known-answer ${alg} signature over an altered message`
  } catch (error) {
    return `threw verifying the known-answer ${alg} signature (${describeError(error)})`
  } finally {
    key.release()
  }
  return undefined
}

/** `auto`'s pick for every algorithm, given the wasm load (settled). */
/**
 * `auto`'s pick, given the wasm load (settled), per algorithm on first use: the known-answer test
 * costs milliseconds of CPU at a fresh isolate's first verification (bench/README.md "Runtime-neutral
 * core (issue 14): Node keeps its speed"), so an algorithm no key uses never pays it.
 */
function chooseAuto(l: WasmLoad): Chosen {
  if (!l.ok && l.broken) throw new Error(`wasm backend: ${l.reason}`)
  if (!l.ok) warnWasmUnavailable(l.reason)
  const chosen: Partial<Record<Algorithm, SignatureBackend>> = {}
  return (alg) => {
    const known = chosen[alg]
    if (known !== undefined) return known
    for (const name of AUTO_ORDER[alg]) {
      const backend = name === 'wasm' ? (l.ok ? autoWasm() : undefined) : registry[name]
      if (backend === undefined) continue
      const failure = knownAnswerFailure(backend, alg)
      if (failure === undefined) {
        chosen[alg] = backend
        return backend
      }
      const refused = refusals.get(name) ?? {}
      if (refused[alg] === undefined) {
        refused[alg] = failure
        refusals.set(name, refused)
        emitWarning(`backend "${name}" is not used for ${alg}: ${failure}`, 'CARACAL_BACKEND_REFUSED')
      }
    }
    // noble is plain JavaScript: only a runtime that breaks it leaves nothing to verify with.
    throw new Error(`no signature backend passed the known-answer test for ${alg}`)
  }
}

let warnedWasm: string | undefined
function warnWasmUnavailable(reason: string): void {
  if (warnedWasm === reason) return
  warnedWasm = reason
  emitWarning(`the wasm backend is not used: ${reason}`, 'CARACAL_WASM_UNAVAILABLE')
}

/** The selection of each choice, kept while the wasm load it was made from is current. */
const selections = new Map<BackendChoice, { readonly load: WasmLoad | undefined; readonly selection: Selection }>()

function choose(choice: BackendChoice): () => Chosen | Promise<Chosen> {
  switch (choice) {
    case 'auto':
    case 'wasm': {
      const pick = choice === 'auto' ? chooseAuto : forcedWasm
      return () => {
        const l = wasmLoad()
        return l instanceof Promise ? settledWithin().then(pick) : pick(l)
      }
    }
    case 'node':
    case 'noble':
      return () => {
        const backend = registry[choice]
        if (backend === undefined) throw unavailable(choice, nodeCryptoMissing ?? 'not in this build')
        return () => backend
      }
    default:
      return () => {
        throw new TypeError(`backend "${String(choice)}" is not available in this build`)
      }
  }
}

/** The backends of `choice`; one selection per choice while the wasm load stays what it was. */
export function selectBackends(choice: BackendChoice): BackendSelection {
  const l = wasmLoad()
  const current = l instanceof Promise ? undefined : l
  const kept = selections.get(choice)
  // A selection still waiting, or made from this very load, is reused; after `initWasm` replaced a
  // failed load, new verifiers choose again (those already made keep their backends).
  if (kept !== undefined && (kept.selection.pending() !== undefined || kept.load === current)) return kept.selection
  const selection = new Selection(choose(choice))
  selections.set(choice, { load: current, selection })
  return selection
}

/**
 * The backend of each algorithm for `choice`, synchronously: for runtimes where that is known at
 * once (Node), and for tests. Throws while a wasm load is under way, or when the choice failed.
 */
export function resolveBackends(choice: BackendChoice): BackendForAlgorithm {
  const selection = selectBackends(choice)
  const failure = selection.failure()
  if (failure !== undefined) throw failure
  if (selection.pending() !== undefined) throw new Error('the wasm module is still loading: await initWasm() first')
  return selection.backendFor
}

/**
 * For the tests only: put fake backends in place of this runtime's (what `auto` must then make of
 * them), and take them out again. Forgets every selection and known-answer verdict both times.
 */
export const backendsForTests = {
  replace(fakes: Partial<Record<BackendName, SignatureBackend | undefined>>, sha256?: typeof sha256Stage): void {
    Object.assign(registry, fakes)
    sha256Stage = sha256
    selections.clear()
    refusals.clear()
  },
  restore(): void {
    registry.wasm = wasmBackend
    registry.node = nodeCryptoBackend
    registry.noble = nobleBackend
    sha256Stage = nodeCryptoSha256
    selections.clear()
    refusals.clear()
  },
}

export type { BackendChoice, BackendName, SignatureBackend, VerifyingKey } from './types.js'
