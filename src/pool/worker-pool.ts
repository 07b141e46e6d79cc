/**
 * A verification pool on `worker_threads` (README "Several cores in one process"). The main thread
 * keeps what is cheap or stateful — the compact-form checks, key lookup, cache, policy, revocation,
 * replay — and hands the cold work of each token (signature and claim rules, ~90% of a cold
 * ES256 verify, bench/README.md) to a worker, in batches: a message costs the main thread
 * microseconds whatever it holds, so the queue is sent as one batch whenever a worker can take
 * one (at most two batches in flight per worker: one computing, one waiting, none idle). When every
 * worker holds all it may, the main thread verifies queued tokens itself, a share per turn of the
 * event loop: on 2 cores `workers: 1` then keeps both busy, paying the hand-off (~6 µs of the main
 * thread per token) only on the worker's part.
 *
 * Keys: each key the main thread imports gets a number and is imported by every worker (once,
 * however many key sets hold it; a token whose own set released it meanwhile still gets the main
 * thread's answer); the
 * import and release messages travel on the same port as the batches, so a worker has a key
 * before the first batch that uses it. An answer for a key released meanwhile is dropped, and the
 * token is verified again on the main thread (as a request arriving then would be).
 *
 * Failures never hang a request: a batch not answered within `timeoutMs` ends its worker; a worker
 * that ends is replaced, and the tokens it held are sent once more, then refused as `invalid_token`
 * marked `unavailable` (HTTP 503). Idle workers are unref'd: they never keep the process alive.
 */
import { Worker } from 'node:worker_threads'
import type {
  BackendChoice,
  BackendForAlgorithm,
  MandateRules,
  SignatureBackend,
  VerifyingKey,
} from '../backends/types.js'
import { CaracalAuthError, invalidToken } from '../errors.js'
import type { SplitJws } from '../jws/compact.js'
import type { PublicKeyMaterial } from '../jws/public-key.js'
import { type ClaimRules, mandateFromClaims, type VerifiedMandate } from '../policy/claims.js'
import { NO_POLICY, verifySignedMandate } from '../signed-mandate.js'
import { Fifo } from './fifo.js'
import type { Answer, FromWorker, ToWorker, WorkerSetup } from './protocol.js'
import type { VerifierPool, VerifierPoolInternals, VerifierPoolOptions } from './types.js'

/**
 * Tokens a worker holds at most, in two batches (one computing, one waiting, none idle): ~5 ms of
 * ES256, four main-thread shares, so that it does not run dry while the main thread verifies one;
 * what is queued beyond it goes to the main thread. Of 64, 128 and 256, 128 verified the most on
 * 2 cores with `workers: 1` (bench/pool-suite.ts, docs/architecture.md "Verification pool").
 */
const MAX_IN_FLIGHT = 128
const MAX_BATCH = MAX_IN_FLIGHT / 2
const BATCHES_IN_FLIGHT = 2
/** Tokens the main thread verifies per turn of the event loop while the workers are full: ~1.3 ms of ES256. */
const MAIN_SHARE = 32
/** Far above any batch's time (MAX_BATCH tokens, plus a worker's start): only a hung worker reaches it. */
const DEFAULT_TIMEOUT_MS = 10_000
/** A worker's start: loading the module, compiling wasm, building the key tables (~0.1 s; 0.4 s under tsx). */
const START_TIMEOUT_MS = 30_000
/** A worker that ended before answering anything (it cannot start): its replacement waits this long. */
const RESPAWN_DELAY_MS = 1_000

interface Pending {
  readonly token: string
  readonly jws: SplitJws
  readonly key: VerifyingKey
  readonly handle: KeyHandle
  readonly nowSec: number
  readonly resolve: (m: VerifiedMandate | undefined) => void
  readonly reject: (e: unknown) => void
  retried: boolean
}

/** A key as one key set of the main thread holds it: `live` until that set releases it. */
interface KeyHandle {
  readonly id: number
  readonly jwk: string
  live: boolean
}

interface Batch {
  readonly items: Pending[]
  /** Started once the worker is ready: its start-up has a bound of its own. */
  timer: ReturnType<typeof setTimeout> | undefined
}

interface Slot {
  readonly worker: Worker
  readonly batches: Map<number, Batch>
  /** Tokens in its batches. */
  tokens: number
  ready: boolean
  readonly startTimer: ReturnType<typeof setTimeout>
  answered: boolean
  ended: boolean
}

/**
 * Under the test runner the sources are TypeScript: the worker loads them through tsx (a
 * devDependency). `--import tsx` in `execArgv` does not reach a worker's entry module on Node 20.
 */
const FROM_SOURCES = import.meta.url.endsWith('.ts')
const fromSources = (url: string): string =>
  `import('tsx/esm/api').then((tsx) => tsx.tsImport(${JSON.stringify(url)}, ${JSON.stringify(url)}))`

export class WorkerPool implements VerifierPool {
  readonly #options: VerifierPoolOptions
  readonly #slots: (Slot | undefined)[] = []
  readonly #queue = new Fifo<Pending>()
  #flushQueued = false
  #nextBatch = 1
  #nextKey = 1
  /** Keys live on the main thread, by number: what a new worker starts with. */
  readonly #live = new Map<number, PublicKeyMaterial>()
  /** The workers' number of each key (by its JWK) and how many key sets hold it. */
  readonly #held = new Map<string, { readonly id: number; holders: number }>()
  readonly #handles = new WeakMap<VerifyingKey, KeyHandle>()
  /** A key dropped without `release()` (an auth never closed) is dropped by the workers too. */
  readonly #finalizer = new FinalizationRegistry<KeyHandle>((handle) => this.#letGo(handle))
  #shareQueued = false
  readonly #rules: MandateRules
  #closed = false
  #tokensHere = 0
  #timeoutMs = DEFAULT_TIMEOUT_MS
  #tokensAnswered = 0

  get backend(): BackendChoice {
    return this.#options.backend
  }

  get claimRules(): ClaimRules {
    return this.#options.claimRules
  }

  constructor(options: VerifierPoolOptions) {
    this.#options = options
    this.#rules = { claimRules: options.claimRules, policy: NO_POLICY }
    for (let i = 0; i < options.workers; i++) this.#slots.push(this.#spawn(i))
  }

  track(backendFor: BackendForAlgorithm): BackendForAlgorithm {
    const wrapped = new Map<SignatureBackend, SignatureBackend>()
    return (alg) => {
      const backend = backendFor(alg)
      let w = wrapped.get(backend)
      if (w === undefined) {
        w = this.#wrap(backend)
        wrapped.set(backend, w)
      }
      return w
    }
  }

  #wrap(backend: SignatureBackend): SignatureBackend {
    return {
      name: backend.name,
      supports: (alg) => backend.supports(alg),
      importKey: (material) => {
        const inner = backend.importKey(material)
        // One import per key in the workers, however many key sets of the main thread hold it.
        const jwk = `${material.alg} ${JSON.stringify(material.jwk)}`
        let held = this.#held.get(jwk)
        if (held === undefined) {
          held = { id: this.#nextKey++, holders: 0 }
          this.#held.set(jwk, held)
          this.#live.set(held.id, material)
          this.#post({ t: 'keys', add: [[held.id, material]], drop: [] })
        }
        held.holders++
        const handle: KeyHandle = { id: held.id, jwk, live: true }
        // `release` holds `inner`: were it collected while the wrapper is in use, the wasm
        // backend's finalizer would free the key's table slot under it.
        const key: VerifyingKey = {
          ...inner,
          release: () => {
            inner.release()
            this.#finalizer.unregister(key)
            this.#letGo(handle)
          },
        }
        this.#handles.set(key, handle)
        this.#finalizer.register(key, handle, key)
        return key
      },
    }
  }

  /** A key set released its key: its tokens get the main thread's answer now, whoever else holds it. */
  #letGo(handle: KeyHandle): void {
    if (!handle.live) return
    handle.live = false
    const held = this.#held.get(handle.jwk)!
    if (--held.holders > 0) return
    this.#held.delete(handle.jwk)
    this.#live.delete(handle.id)
    this.#post({ t: 'keys', add: [], drop: [handle.id] })
  }

  #post(m: ToWorker): void {
    for (const s of this.#slots) if (s !== undefined && !s.ended) s.worker.postMessage(m)
  }

  verify(token: string, jws: SplitJws, key: VerifyingKey, nowSec: number): Promise<VerifiedMandate | undefined> {
    if (this.#closed) return Promise.reject(invalidToken('verifier is closed'))
    const handle = this.#handles.get(key)
    if (handle === undefined) return Promise.resolve(undefined)
    return new Promise((resolve, reject) => {
      this.#queue.push({ token, jws, key, handle, nowSec, resolve, reject, retried: false })
      if (!this.#flushQueued) {
        this.#flushQueued = true
        // Every token submitted in this turn goes in the same batch.
        queueMicrotask(() => {
          this.#flushQueued = false
          this.#flush()
        })
      }
    })
  }

  #flush(): void {
    while (this.#queue.length > 0) {
      let best: Slot | undefined
      let open = 0
      for (const s of this.#slots) {
        if (s === undefined || s.ended || s.batches.size >= BATCHES_IN_FLIGHT || s.tokens >= MAX_IN_FLIGHT) continue
        open++
        if (best === undefined || s.tokens < best.tokens) best = s
      }
      if (best === undefined) break
      const n = Math.min(MAX_IN_FLIGHT - best.tokens, MAX_BATCH, Math.ceil(this.#queue.length / open))
      this.#send(best, this.#queue.take(n))
    }
    if (this.#queue.length > 0 && !this.#shareQueued) {
      this.#shareQueued = true
      setImmediate(this.#share)
    }
  }

  /**
   * Every worker has its batches: the main thread verifies a share of the queue itself, so that
   * with `workers: 1` on 2 cores both cores verify, and the hand-off is paid only on the worker's
   * share. One share per turn of the event loop: between two, the workers' answers are read and
   * their next batches sent, so they never wait on the main thread.
   */
  readonly #share = (): void => {
    this.#shareQueued = false
    for (const p of this.#queue.take(MAIN_SHARE)) this.#verifyHere(p)
    this.#flush()
  }

  #verifyHere(p: Pending): void {
    // Released meanwhile: the caller verifies it as a request arriving now would be.
    if (!p.handle.live) {
      p.resolve(undefined)
      return
    }
    this.#tokensHere++
    let m: VerifiedMandate
    try {
      m = verifySignedMandate(p.token, p.jws, p.key, this.#rules, p.nowSec)
    } catch (error) {
      p.reject(error)
      return
    }
    p.resolve(m)
  }

  #send(slot: Slot, items: Pending[]): void {
    const id = this.#nextBatch++
    const tokens = new Array<string>(items.length)
    const keys = new Int32Array(items.length)
    const now = new Float64Array(items.length)
    for (let i = 0; i < items.length; i++) {
      const p = items[i]!
      tokens[i] = p.token
      keys[i] = p.handle.id
      now[i] = p.nowSec
    }
    if (slot.batches.size === 0) slot.worker.ref()
    slot.tokens += items.length
    slot.batches.set(id, { items, timer: slot.ready ? this.#timer(slot) : undefined })
    slot.worker.postMessage({ t: 'batch', id, tokens, keys, now } satisfies ToWorker, [keys.buffer, now.buffer])
  }

  #timer(slot: Slot): ReturnType<typeof setTimeout> {
    return setTimeout(() => this.#end(slot), this.#timeoutMs).unref()
  }

  #message(slot: Slot, m: FromWorker): void {
    if (m.t === 'answers') this.#answered(slot, m)
    else if (!slot.ready) {
      slot.ready = true
      clearTimeout(slot.startTimer)
      for (const b of slot.batches.values()) b.timer = this.#timer(slot)
    }
  }

  #answered(slot: Slot, m: FromWorker & { t: 'answers' }): void {
    const batch = slot.batches.get(m.id)
    if (batch === undefined) return
    slot.batches.delete(m.id)
    slot.tokens -= batch.items.length
    clearTimeout(batch.timer)
    slot.answered = true
    if (slot.batches.size === 0) slot.worker.unref()
    // The next batch first, so the worker computes while this one is settled here.
    this.#flush()
    const { items } = batch
    for (let i = 0; i < items.length; i++) this.#settle(items[i]!, m.answers[i]!)
  }

  #settle(p: Pending, a: Answer): void {
    // Released meanwhile: the main thread answers as it would now (a key it no longer holds).
    if (a[0] !== 2) this.#tokensAnswered++
    if (a[0] === 2 || !p.handle.live) p.resolve(undefined)
    else if (a[0] === 0) p.resolve(mandateFromClaims(a[1], a[2]))
    else p.reject(new CaracalAuthError(a[1], a[2], a[3] === undefined ? {} : { scope: a[3] }))
  }

  #spawn(index: number): Slot {
    const setup: WorkerSetup = {
      backend: this.#options.backend,
      claimRules: this.#options.claimRules,
      keys: [...this.#live],
    }
    const worker = FROM_SOURCES
      ? new Worker(fromSources(new URL('./worker.ts', import.meta.url).href), { eval: true, workerData: setup })
      : new Worker(new URL('./worker.js', import.meta.url), { workerData: setup })
    const slot: Slot = {
      worker,
      batches: new Map(),
      tokens: 0,
      ready: false,
      startTimer: setTimeout(() => this.#end(slot), START_TIMEOUT_MS).unref(),
      answered: false,
      ended: false,
    }
    worker.on('message', (m: FromWorker) => this.#message(slot, m))
    const end = (): void => this.#end(slot, index)
    // No 'messageerror' listener: on Node 20 it refs the worker's port, and the process could never
    // exit. An answer that cannot be read is a batch not answered: its timer ends the worker.
    worker.on('error', end)
    worker.on('exit', end)
    // After the listeners: adding a 'message' listener refs the worker again.
    worker.unref()
    return slot
  }

  /** A worker crashed, hung or exited: its tokens go once more to the others (or its replacement). */
  #end(slot: Slot, index = this.#slots.indexOf(slot)): void {
    if (slot.ended) return
    slot.ended = true
    clearTimeout(slot.startTimer)
    void slot.worker.terminate()
    for (const batch of slot.batches.values()) {
      clearTimeout(batch.timer)
      for (const p of batch.items) {
        if (this.#closed) p.reject(invalidToken('verifier is closed'))
        else if (p.retried) p.reject(workerFailed())
        else {
          p.retried = true
          this.#queue.push(p)
        }
      }
    }
    slot.batches.clear()
    slot.tokens = 0
    if (this.#closed || index < 0) return
    if (slot.answered) this.#slots[index] = this.#spawn(index)
    else {
      this.#slots[index] = undefined
      setTimeout(() => {
        if (this.#closed) return
        this.#slots[index] = this.#spawn(index)
        this.#flush()
      }, RESPAWN_DELAY_MS).unref()
    }
    this.#flush()
  }

  async close(): Promise<void> {
    this.#closed = true
    for (const p of this.#queue.take(this.#queue.length)) p.reject(invalidToken('verifier is closed'))
    const ending: Promise<number>[] = []
    for (const s of this.#slots) {
      if (s === undefined) continue
      ending.push(s.worker.terminate())
      this.#end(s)
    }
    await Promise.all(ending)
  }

  get internals(): VerifierPoolInternals {
    const pool = this
    return {
      tokensAnswered: () => this.#tokensAnswered,
      tokensHere: () => this.#tokensHere,
      workerKeys: () => this.#live.size,
      threadIds: () => this.#slots.filter((s) => s !== undefined && !s.ended).map((s) => s!.worker.threadId),
      crash: (i) => void this.#slots[i]?.worker.terminate(),
      hang: (i) => this.#slots[i]?.worker.postMessage({ t: 'hang' } satisfies ToWorker),
      get timeoutMs() {
        return pool.#timeoutMs
      },
      set timeoutMs(ms: number) {
        pool.#timeoutMs = ms
      },
    }
  }
}

function workerFailed(): CaracalAuthError {
  return new CaracalAuthError('invalid_token', 'the verification worker failed', { unavailable: true })
}
