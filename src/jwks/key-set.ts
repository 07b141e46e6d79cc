/**
 * The imported keys of one JWKS, indexed for lookup by (alg, kid). Keys are imported once, through
 * the backend chosen for their algorithm, and reused across refreshes when the JWK is unchanged;
 * keys that leave the set are released (the wasm backend reuses their table space).
 */
import { ALL_ALGORITHMS, algorithmForKeyType, type Algorithm } from '../jws/algorithms.js'
import { readPublicKey } from '../jws/public-key.js'
import { isWeakKeyReason } from '../jws/weak-rsa.js'
import { emitWarning } from '../platform/warning.js'
import type { BackendForAlgorithm, VerifyingKey } from '../backends/types.js'

/**
 * Most keys imported from one JWKS. An STS publishes a few (current and next, during rotation);
 * each ES256 key on the wasm backend holds 832 KiB of tables, so a set stuffed with keys (256 KiB
 * of JSON is ~1 300 EC keys) must not turn into a gigabyte of linear memory.
 */
export const MAX_KEYS = 32

export type KeyLookup =
  | { readonly key: VerifyingKey; readonly reason?: undefined }
  | { readonly key?: undefined; readonly reason: string }

interface Entry {
  readonly kid: string | undefined
  readonly key: VerifyingKey
  readonly fingerprint: string
}

/** A JWK that was not imported, and why (`stats().jwks.ignoredKeys`). */
export interface IgnoredKey {
  readonly kid: string | undefined
  readonly reason: string
}

export interface KeySetSummary {
  readonly usable: number
  readonly ignored: number
}

/** Weak keys already warned about, remembered so a refresh does not warn again; bounded. */
const MAX_WARNED = 256

export class KeySet {
  #entries: Entry[] = []
  #byKid = new Map<string, Entry | 'ambiguous'>()
  /** Usable keys per algorithm, for tokens without kid. */
  #byAlg = new Map<Algorithm, Entry[]>()
  #ignored: readonly IgnoredKey[] = []
  readonly #warned = new Set<string>()
  readonly #backendFor: BackendForAlgorithm

  constructor(backendFor: BackendForAlgorithm) {
    this.#backendFor = backendFor
  }

  get size(): number {
    return this.#entries.length
  }

  /** The keys of the last `replace` that were not imported, with the reason. */
  get ignored(): readonly IgnoredKey[] {
    return this.#ignored
  }

  /** Replaces the set with the keys of `jwks`, reusing keys already imported. */
  replace(jwks: unknown): KeySetSummary {
    const list = readKeyList(jwks)
    const previous = new Map(this.#entries.map((e) => [e.fingerprint, e]))
    const entries: Entry[] = []
    const kidCounts = new Map<string, number>()
    const ignored: IgnoredKey[] = []
    for (const jwk of list) {
      const kid = typeof jwk.kid === 'string' && jwk.kid !== '' ? jwk.kid : undefined
      if (kid !== undefined) kidCounts.set(kid, (kidCounts.get(kid) ?? 0) + 1)
      if (entries.length >= MAX_KEYS) {
        ignored.push({ kid, reason: `more than ${MAX_KEYS} usable keys` })
        continue
      }
      const entry = this.#import(jwk, kid, previous)
      if (typeof entry !== 'string') {
        entries.push(entry)
        continue
      }
      ignored.push({ kid, reason: entry })
      if (isWeakKeyReason(entry)) this.#warnWeak(kid, entry, jwk)
    }
    if (entries.length >= MAX_KEYS && ignored.length > 0) {
      emitWarning(`JWKS has more than ${MAX_KEYS} usable keys: the rest are ignored`, 'CARACAL_JWKS_TOO_MANY_KEYS')
    }
    // What is left in `previous` was not carried over: its keys are retired.
    for (const old of previous.values()) old.key.release()
    this.#entries = entries
    this.#ignored = Object.freeze(ignored.map((i) => Object.freeze(i)))
    this.#byKid = new Map()
    this.#byAlg = new Map(ALL_ALGORITHMS.map((a) => [a, [] as Entry[]]))
    for (const e of entries) {
      this.#byAlg.get(e.key.alg)!.push(e)
      // Two keys under one kid: the verifier cannot know which is meant, so neither is used.
      if (e.kid !== undefined) this.#byKid.set(e.kid, (kidCounts.get(e.kid) ?? 0) > 1 ? 'ambiguous' : e)
    }
    return { usable: entries.length, ignored: ignored.length }
  }

  find(alg: Algorithm, kid: string | undefined): KeyLookup {
    if (kid !== undefined) {
      const e = this.#byKid.get(kid)
      if (e === undefined) return { reason: 'unknown kid' }
      if (e === 'ambiguous') return { reason: 'kid names more than one key' }
      if (e.key.alg !== alg) return { reason: 'alg does not match the key' }
      return { key: e.key }
    }
    const candidates = this.#byAlg.get(alg)
    if (candidates === undefined || candidates.length === 0) return { reason: 'no key for alg' }
    // Without kid, only an unambiguous set is tried (README "Keys (JWKS)").
    if (candidates.length > 1) return { reason: 'token has no kid and several keys fit' }
    return { key: candidates[0]!.key }
  }

  /** Releases every key (wasm table space); the set is empty after. */
  clear(): void {
    for (const e of this.#entries) e.key.release()
    this.#entries = []
    this.#byKid = new Map()
    this.#byAlg = new Map()
  }

  #import(jwk: Record<string, unknown>, kid: string | undefined, previous: Map<string, Entry>): Entry | string {
    const alg = algorithmForKeyType(jwk.kty, jwk.crv)
    if (alg === undefined) return 'key type is not supported'
    const material = readPublicKey(alg, jwk)
    if (typeof material === 'string') return material
    const fingerprint = `${alg}|${kid ?? ''}|${JSON.stringify(material.jwk)}`
    const reused = previous.get(fingerprint)
    if (reused !== undefined) {
      previous.delete(fingerprint)
      return reused
    }
    try {
      return { kid, key: this.#backendFor(alg).importKey(material), fingerprint }
    } catch {
      return 'the backend could not import the key'
    }
  }

  /** A weak key in a JWKS means its owner's signer is broken: say so once per key, not per refresh. */
  #warnWeak(kid: string | undefined, reason: string, jwk: Record<string, unknown>): void {
    const id = `${kid ?? ''}|${String(jwk.n)}`
    if (this.#warned.has(id)) return
    if (this.#warned.size >= MAX_WARNED) this.#warned.clear()
    this.#warned.add(id)
    emitWarning(
      `JWKS key ${kid === undefined ? 'without kid' : JSON.stringify(kid)} ignored: ${reason}`,
      'CARACAL_JWKS_WEAK_KEY',
    )
  }
}

/** The `keys` array of a JWKS, objects only; anything else is an empty set. */
export function readKeyList(jwks: unknown): Record<string, unknown>[] {
  if (typeof jwks !== 'object' || jwks === null) return []
  const keys = (jwks as { keys?: unknown }).keys
  if (!Array.isArray(keys)) return []
  return keys.filter((k): k is Record<string, unknown> => typeof k === 'object' && k !== null && !Array.isArray(k))
}
