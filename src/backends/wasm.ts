/**
 * WebAssembly backend: SHA-256, P-256 ECDSA and RSA PKCS#1 v1.5 compiled from `assembly/` (docs/architecture.md "Backends").
 * The module is loaded once, as the runtime allows (`#wasm-source`, README "Runtimes"): on Node
 * read and instantiated synchronously on first use, in workerd instantiated from its module
 * import, in browsers fetched, and anywhere from what `initWasm` is given. Only numbers cross the
 * boundary: bytes are copied into a static buffer in linear memory and the module is called with
 * pointers, so a verify allocates nothing on either side.
 * An imported key owns a slot in linear memory (the fixed-base table of an EC key, the Montgomery
 * constants of an RSA modulus) until it is released; released slots are reused by the next import.
 */
import { automaticWasm } from '#wasm-source'
import type { EcPublicKeyMaterial, PublicKeyMaterial, RsaPublicKeyMaterial } from '../jws/public-key.js'
import type { SignatureBackend, VerifyingKey } from './types.js'
import { WASM_BUILD_ID } from './wasm-build-id.js'
import { DEFER, MandateChannel, type MandateExports } from './wasm-mandate.js'

interface WasmExports extends MandateExports {
  readonly memory: WebAssembly.Memory
  ioPtr(): number
  ioBytes(): number
  buildId?(): number
  hashStart(): void
  hashUpdate(len: number): void
  hashDigest(): void
  ecImport(xPtr: number, yPtr: number): number
  ecFree(slot: number): void
  ecVerify(slot: number, sigPtr: number): number
  ecVerifyMessage(slot: number, msgLen: number): number
  ecVerifyDigest(slot: number, digestPtr: number, sigPtr: number): number
  ecTableBytes(which: number): number
  ecSchedule(verifiesBeforeBuilding: number, chunksPerVerify: number): void
  ecBuild(slot: number, chunks: number): number
  ecStage(slot: number): number
  rsaImport(nPtr: number, nLen: number, e: number): number
  rsaFree(slot: number): void
  rsaVerify(slot: number, sigPtr: number, sigLen: number): number
  rsaVerifyMessage(slot: number, msgLen: number, sigLen: number): number
  rsaKeyBytes(): number
  fieldOp(op: number): void
  base64urlDecode(len: number): number
}

interface Instance {
  readonly exports: WasmExports
  /** The staging buffer: its address and size in linear memory. */
  readonly io: number
  readonly ioBytes: number
  bytes: Uint8Array
  /** The one-call mandate path (assembly/mandate.ts). */
  readonly mandates: MandateChannel
}

/** What `initWasm` takes (README "Runtimes"): the module, its bytes, a response carrying them, or where to fetch them. */
export type WasmSource = WebAssembly.Module | ArrayBuffer | ArrayBufferView | Response | URL | string

/**
 * A module that is missing or was built from other sources than this code is a broken build: an
 * error wherever wasm is asked for, `auto` included, never a quiet fall back to a slower backend.
 * An engine that cannot run it (no WebAssembly SIMD), or a runtime that cannot get it (a fetch that
 * failed), is a limit of the platform: `auto` does without, and `stats()` says why.
 */
export type WasmLoad =
  | { readonly ok: true; readonly instance: Instance }
  | { readonly ok: false; readonly broken: boolean; readonly reason: string }

/** The settled load, if any; `pending` while one is under way (it wins over `loaded`). */
let loaded: WasmLoad | undefined
let pending: Promise<WasmLoad> | undefined

/** A minimal module using SIMD instructions (`i8x16.splat`, `i8x16.popcnt`): whether the engine has SIMD. */
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
])

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** Why compiling or instantiating failed: an engine without SIMD is a platform limit, the rest a broken module. */
function compileFailure(error: unknown, hint: string): WasmLoad {
  // Only an engine without WebAssembly SIMD is a platform limit; a module this engine could run
  // but cannot compile (truncated, empty, a Git LFS pointer) is a broken build. A runtime that
  // forbids compiling bytes at all (workerd) says so in the message.
  let simd = true
  try {
    simd = WebAssembly.validate(SIMD_PROBE)
  } catch {
    // validate itself refused: no verdict on SIMD from here.
  }
  if (!simd) {
    return {
      ok: false,
      broken: false,
      reason: `caracal.wasm needs WebAssembly SIMD, which this engine lacks (${message(error)})`,
    }
  }
  return {
    ok: false,
    broken: true,
    reason: `caracal.wasm is not a module this engine can compile (${message(error)})${hint}`,
  }
}

function fromExports(exports: WasmExports, hint: string): WasmLoad {
  const id = typeof exports.buildId === 'function' ? exports.buildId() >>> 0 : undefined
  if (id !== WASM_BUILD_ID) {
    const built = id === undefined ? 'an older build' : `0x${id.toString(16).padStart(8, '0')}`
    return {
      ok: false,
      broken: true,
      reason: `caracal.wasm is stale: built from other sources (${built}) than this code expects (0x${WASM_BUILD_ID.toString(16).padStart(8, '0')})${hint}`,
    }
  }
  const instance = {
    exports,
    io: exports.ioPtr(),
    ioBytes: exports.ioBytes(),
    bytes: new Uint8Array(exports.memory.buffer),
    mandates: new MandateChannel(exports),
  }
  return { ok: true, instance }
}

function instantiateNow(source: WebAssembly.Module | Uint8Array<ArrayBuffer>, hint: string): WasmLoad {
  let exports: WasmExports
  try {
    const module = source instanceof WebAssembly.Module ? source : new WebAssembly.Module(source)
    exports = new WebAssembly.Instance(module, {}).exports as unknown as WasmExports
  } catch (error) {
    return compileFailure(error, hint)
  }
  return fromExports(exports, hint)
}

/** Instantiates asynchronously: browsers refuse to compile large modules synchronously on the main thread. */
async function instantiateLater(source: WasmSource | Promise<WasmSource>, hint: string): Promise<WasmLoad> {
  let given: WasmSource
  try {
    given = await source
  } catch (error) {
    return { ok: false, broken: false, reason: `caracal.wasm could not be fetched (${message(error)})${hint}` }
  }
  if (typeof given === 'string' || given instanceof URL) {
    const url = String(given)
    try {
      given = await fetch(url)
    } catch (error) {
      return {
        ok: false,
        broken: false,
        reason: `caracal.wasm could not be fetched from ${url} (${message(error)})${hint}`,
      }
    }
  }
  let bytes: ArrayBuffer | ArrayBufferView | WebAssembly.Module
  if (typeof Response === 'function' && given instanceof Response) {
    if (!given.ok) {
      return {
        ok: false,
        broken: false,
        reason: `caracal.wasm could not be fetched from ${given.url || 'the response given'} (HTTP ${given.status})${hint}`,
      }
    }
    try {
      bytes = await given.arrayBuffer()
    } catch (error) {
      return { ok: false, broken: false, reason: `caracal.wasm could not be read (${message(error)})${hint}` }
    }
  } else if (given instanceof WebAssembly.Module || given instanceof ArrayBuffer || ArrayBuffer.isView(given)) {
    bytes = given
  } else {
    return {
      ok: false,
      broken: false,
      reason: 'initWasm takes a WebAssembly.Module, bytes (ArrayBuffer or Uint8Array), a Response or a URL',
    }
  }
  let exports: WasmExports
  try {
    const instance =
      bytes instanceof WebAssembly.Module
        ? await WebAssembly.instantiate(bytes, {})
        : (await WebAssembly.instantiate(bytes as BufferSource, {})).instance
    exports = instance.exports as unknown as WasmExports
  } catch (error) {
    return compileFailure(error, hint)
  }
  return fromExports(exports, hint)
}

/** Makes `flight` the load under way: whoever waits for the load waits for the last one started. */
function track(flight: Promise<WasmLoad>): Promise<WasmLoad> {
  const settled = flight.then((result) => {
    if (pending === settled) {
      pending = undefined
      loaded = result
    }
    return result
  })
  pending = settled
  return settled
}

/**
 * The load's state: settled, or the promise of it while it is under way. The first call starts
 * the automatic load (README "Runtimes"), which on Node and in workerd settles before it returns.
 */
export function wasmLoad(): WasmLoad | Promise<WasmLoad> {
  if (pending !== undefined) return pending
  if (loaded !== undefined) return loaded
  const auto = automaticWasm()
  if (auto.kind === 'now') loaded = instantiateNow(auto.source, auto.hint)
  else if (auto.kind === 'none') loaded = { ok: false, broken: auto.broken, reason: auto.reason }
  else return track(instantiateLater(auto.source, auto.hint))
  return loaded
}

/** The load once nothing is under way any more (an `initWasm` started meanwhile is waited for too). */
export async function wasmSettled(): Promise<WasmLoad> {
  let state = wasmLoad()
  while (state instanceof Promise) {
    await state
    state = wasmLoad()
  }
  return state
}

/**
 * Loads the module from `source` (README "Runtimes": a `WebAssembly.Module`, bytes, a `Response`,
 * a URL, or a promise of one), for runtimes where the automatic load cannot find it. Idempotent:
 * once a module is loaded, later calls resolve at once. A load already under way is waited for
 * first, and `source` is used only if it fails. Rejects with the reason, which `stats()` shows too.
 */
export function initWasm(source: WasmSource | Promise<WasmSource>): Promise<void> {
  if (pending === undefined && loaded?.ok === true) return Promise.resolve()
  const before = pending
  const flight = track(
    (async () => {
      if (before !== undefined) {
        const earlier = await before
        if (earlier.ok) return earlier
      }
      return instantiateLater(source, '')
    })(),
  )
  return flight.then((result) => {
    if (!result.ok) throw new Error(`caracal.wasm could not be loaded: ${result.reason}`)
  })
}

/** Why the module cannot serve here; undefined when it can, or while its load is under way. */
export function wasmUnavailableReason(): string | undefined {
  const l = wasmLoad()
  return l instanceof Promise || l.ok ? undefined : l.reason
}

function required(): Instance {
  const l = wasmLoad()
  if (l instanceof Promise) throw new Error('wasm backend: caracal.wasm is still loading (await initWasm, or verify)')
  if (!l.ok) throw new Error(`wasm backend: ${l.reason}`)
  return l.instance
}

/** The current view of linear memory: growing memory detaches the old buffer. */
function view(w: Instance): Uint8Array {
  if (w.bytes.buffer !== w.exports.memory.buffer) w.bytes = new Uint8Array(w.exports.memory.buffer)
  return w.bytes
}

function hash(w: Instance, input: Uint8Array): void {
  const e = w.exports
  e.hashStart()
  for (let at = 0; at < input.length; at += w.ioBytes) {
    const chunk = input.subarray(at, Math.min(at + w.ioBytes, input.length))
    view(w).set(chunk, w.io)
    e.hashUpdate(chunk.length)
  }
}

/**
 * Frees the slot of a key that was dropped without `release()` (e.g. an auth never closed). workerd
 * has no FinalizationRegistry (README "Runtimes"): there only `release()` (key rotation, `close()`) frees.
 */
const finalizer =
  typeof FinalizationRegistry === 'function' ? new FinalizationRegistry<() => void>((free) => free()) : undefined

type Check = (slot: number, signingInput: Uint8Array, signature: Uint8Array) => boolean

function makeKey(
  w: Instance,
  material: PublicKeyMaterial,
  slot: number,
  check: Check,
  free: (slot: number) => void,
  checkDigest?: Check,
): VerifyingKey {
  const rsa = material.alg === 'RS256'
  const sigLen = material.alg === 'RS256' ? material.modulusBytes : 64
  let live = true
  const token = {}
  const key: VerifyingKey = {
    alg: material.alg,
    backend: 'wasm',
    material,
    verify(signingInput, signature) {
      if (!live) return false
      return check(slot, signingInput, signature)
    },
    ...(checkDigest === undefined
      ? {}
      : { verifyDigest: (digest: Uint8Array, signature: Uint8Array) => live && checkDigest(slot, digest, signature) }),
    verifyMandate(token, dot1, dot2, rules, nowSec, sha256) {
      // A released key's slot may hold another key by now: the JS path answers (its verify is false).
      if (!live || (rsa && sha256 !== undefined)) return DEFER
      return w.mandates.verify(slot, rsa, sigLen, token, dot1, dot2, rules, nowSec, sha256)
    },
    release() {
      if (!live) return
      live = false
      finalizer?.unregister(token)
      free(slot)
    },
  }
  finalizer?.register(key, () => free(slot), token)
  return key
}

/** The slot of each live EC key, for the tests' view of its tables (`wasmInternalsForTests`). */
const ecSlots = new WeakMap<VerifyingKey, number>()

function importEc(w: Instance, material: EcPublicKeyMaterial): VerifyingKey {
  const e = w.exports
  const mem = view(w)
  mem.set(material.x, w.io)
  mem.set(material.y, w.io + 32)
  const slot = e.ecImport(w.io, w.io + 32)
  if (slot === 0) throw new TypeError('wasm backend: EC key rejected (not on P-256, or out of memory)')
  const key = makeKey(
    w,
    material,
    slot,
    (s, input, signature) => {
      if (signature.length !== 64) return false
      if (input.length + 64 <= w.ioBytes) {
        // One crossing: message and signature side by side in the staging buffer.
        const mem = view(w)
        mem.set(input, w.io)
        mem.set(signature, w.io + input.length)
        return e.ecVerifyMessage(s, input.length) !== 0
      }
      hash(w, input)
      view(w).set(signature, w.io)
      return e.ecVerify(s, w.io) !== 0
    },
    (s) => e.ecFree(s),
    (s, digest, signature) => {
      if (signature.length !== 64 || digest.length !== 32) return false
      const mem = view(w)
      mem.set(digest, w.io)
      mem.set(signature, w.io + 32)
      return e.ecVerifyDigest(s, w.io, w.io + 32) !== 0
    },
  )
  ecSlots.set(key, slot)
  return key
}

function importRsa(w: Instance, material: RsaPublicKeyMaterial): VerifyingKey {
  const e = w.exports
  let exponent = 0
  for (const b of material.e) exponent = exponent * 256 + b
  view(w).set(material.n, w.io)
  const slot = e.rsaImport(w.io, material.n.length, exponent >>> 0)
  if (slot === 0) throw new TypeError('wasm backend: RSA key rejected (size or exponent, or out of memory)')
  const k = material.modulusBytes
  return makeKey(
    w,
    material,
    slot,
    (s, input, signature) => {
      if (signature.length !== k) return false
      if (input.length + k <= w.ioBytes) {
        const mem = view(w)
        mem.set(input, w.io)
        mem.set(signature, w.io + input.length)
        return e.rsaVerifyMessage(s, input.length, k) !== 0
      }
      hash(w, input)
      view(w).set(signature, w.io)
      return e.rsaVerify(s, w.io, k) !== 0
    },
    (s) => e.rsaFree(s),
  )
}

export const wasmBackend: SignatureBackend = {
  name: 'wasm',
  supports(): boolean {
    const l = wasmLoad()
    if (l instanceof Promise) return false
    if (!l.ok && l.broken) throw new Error(`wasm backend: ${l.reason}`)
    return l.ok
  },
  importKey(material: PublicKeyMaterial): VerifyingKey {
    const w = required()
    return material.alg === 'ES256' ? importEc(w, material) : importRsa(w, material)
  },
}

/**
 * Linear memory held per imported key and once per process (assembly/p256-tables.ts). EC: a record
 * from import (`es256Cold`), plus its fixed-base table once the key is hot (`es256` is the sum),
 * and the generator's table, once, when the first key is hot. RSA: modulus and Montgomery constants.
 */
export function wasmKeyBytes(): {
  readonly es256: number
  readonly es256Cold: number
  readonly rs256: number
  readonly generator: number
} {
  const e = required().exports
  const cold = e.ecTableBytes(0)
  return { es256: cold + e.ecTableBytes(1), es256Cold: cold, rs256: e.rsaKeyBytes(), generator: e.ecTableBytes(2) }
}

/** Where an EC key's verification stands (assembly/p256-tables.ts). */
export interface EcTableStage {
  /** Its fixed-base table: none yet, partly built, or complete. */
  readonly key: 'none' | 'building' | 'complete'
  /** The generator's table, the same. Verification reads the tables only when both are complete. */
  readonly generator: 'none' | 'building' | 'complete'
}

function ecStage(e: WasmExports, slot: number): EcTableStage {
  const s = e.ecStage(slot)
  return {
    key: s & 1 ? 'complete' : s & 2 ? 'building' : 'none',
    generator: s & 4 ? 'complete' : s & 8 ? 'building' : 'none',
  }
}

function ecSlotOf(key: VerifyingKey): number {
  const slot = ecSlots.get(key)
  if (slot === undefined) throw new TypeError('not a live EC key of the wasm backend')
  return slot
}

/** Bytes of linear memory now (tests check that verifying and key rotation do not grow it). */
export function wasmMemoryBytes(): number {
  return required().exports.memory.buffer.byteLength
}

/**
 * For the tests only: SHA-256, base64url and the P-256 field operations of the module on their own,
 * so that rare carry paths and decoding rules are checked against BigInt and the JS decoder. `op`: 0 a·b, 1 a², 2 a + b, 3 a − b (mod p).
 */
export const wasmInternalsForTests = {
  sha256(input: Uint8Array): Uint8Array {
    const w = required()
    hash(w, input)
    w.exports.hashDigest()
    return view(w).slice(w.io, w.io + 32)
  },
  /** The module's strict base64url decoder: undefined where it refuses the text. */
  base64url(text: string): Uint8Array | undefined {
    const w = required()
    if (text.length > w.ioBytes) throw new RangeError('longer than the staging buffer')
    const mem = view(w)
    // Code units above 0xff are outside the alphabet like any byte ≥ 0x80: 0xff stands for them.
    for (let i = 0; i < text.length; i++) mem[w.io + i] = Math.min(text.charCodeAt(i), 0xff)
    const n = w.exports.base64urlDecode(text.length)
    return n < 0 ? undefined : view(w).slice(w.io, w.io + n)
  },
  /** The module's index of a claim name (-1 for names it does not read); `hop` for chain entries. */
  claimIndex(name: string, hop: boolean): number {
    const w = required()
    const bytes = new TextEncoder().encode(name)
    view(w).set(bytes, w.io)
    return w.exports.mandateClaimIndex(w.io, bytes.length, hop ? 1 : 0)
  },
  /**
   * When tables start to be built (verifications of a key first; `Infinity`: never) and how many
   * chunks each verification then builds (0: only `buildTables` does). Defaults: 16 and 1.
   */
  scheduleTables(verifiesBeforeBuilding: number, chunksPerVerify: number): void {
    const v = verifiesBeforeBuilding === Number.POSITIVE_INFINITY ? 0xffffffff : verifiesBeforeBuilding
    required().exports.ecSchedule(v, chunksPerVerify)
  },
  /** Builds up to `chunks` chunks as verifications of a hot `key` would (its table, then the generator's). */
  buildTables(key: VerifyingKey, chunks: number): EcTableStage {
    const e = required().exports
    e.ecBuild(ecSlotOf(key), Math.min(chunks, 0xffffffff))
    return ecStage(e, ecSlotOf(key))
  },
  tableStage(key: VerifyingKey): EcTableStage {
    return ecStage(required().exports, ecSlotOf(key))
  },
  field(op: 0 | 1 | 2 | 3, a: Uint8Array, b: Uint8Array): Uint8Array {
    const w = required()
    view(w).set(a, w.io + 32)
    view(w).set(b, w.io + 64)
    w.exports.fieldOp(op)
    return view(w).slice(w.io, w.io + 32)
  },
}
