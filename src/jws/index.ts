/**
 * `caracal-fastmcp/jws`: the policy-free layer, fixed by README "The low-level JWS layer" so that
 * external conformance suites can drive every backend through it.
 */
import { LRUCache } from 'lru-cache'
import { selectBackends } from '../backends/index.js'
import type { BackendChoice, BackendForAlgorithm, VerifyingKey } from '../backends/types.js'
import { invalidToken } from '../errors.js'
import { KeySet } from '../jwks/key-set.js'
import { ALL_ALGORITHMS, isAlgorithm, type Algorithm } from './algorithms.js'
import { JWS_ERRORS, parseCompact } from './compact.js'
import { readPublicKey } from './public-key.js'
import { verifyWithKey } from './verify-with-key.js'

export interface VerifyJwsOptions {
  readonly algorithms?: readonly Algorithm[]
  readonly backend?: BackendChoice
}

export interface VerifiedJws {
  readonly header: Readonly<Record<string, unknown>>
  readonly payload: Uint8Array
}

/**
 * Imported keys of this layer, by backend and key: importing is the expensive part (wasm builds
 * tables), and suites call with the same key many times. Bounded; evicted keys are released.
 */
const importedKeys = new LRUCache<string, VerifyingKey>({ max: 8, dispose: (key) => key.release() })
const keySets = new LRUCache<string, KeySet>({ max: 4, dispose: (set) => set.clear() })

export async function verifyJws(
  token: string,
  jwks: { keys: readonly JsonWebKey[] },
  options: VerifyJwsOptions = {},
): Promise<VerifiedJws> {
  if (typeof token !== 'string') throw invalidToken('token must be a string')
  const algorithms = options.algorithms ?? ALL_ALGORITHMS
  const jws = parseCompact(token)
  if (!algorithms.includes(jws.header.alg)) throw invalidToken('alg not allowed')
  const backend = options.backend ?? 'auto'
  const backendFor = await backendsOf(backend)
  const setKey = `${backend}|${safeStringify(jwks)}`
  let set = keySets.get(setKey)
  if (set === undefined) {
    set = new KeySet(backendFor)
    set.replace(jwks)
    keySets.set(setKey, set)
  }
  const found = set.find(jws.header.alg, jws.header.kid)
  if (found.key === undefined) throw invalidToken(`no usable key: ${found.reason}`)
  if (!verifyWithKey(found.key, jws.signingInput, jws.signature)) throw invalidToken(JWS_ERRORS.signature)
  return { header: jws.header.raw, payload: jws.payload }
}

export async function verifySignature(
  alg: Algorithm,
  jwk: JsonWebKey,
  message: Uint8Array,
  signature: Uint8Array,
  options: { readonly backend?: BackendChoice } = {},
): Promise<boolean> {
  // A wrong backend name, or one this runtime cannot run, is not a bad signature: it throws.
  const backendFor = await backendsOf(options.backend ?? 'auto')
  try {
    if (!isAlgorithm(alg) || !(message instanceof Uint8Array) || !(signature instanceof Uint8Array)) return false
    const material = readPublicKey(alg, jwk)
    if (typeof material === 'string') return false
    const backend = backendFor(alg)
    const id = `${backend.name}|${alg}|${JSON.stringify(material.jwk)}`
    let key = importedKeys.get(id)
    if (key === undefined) {
      key = backend.importKey(material)
      importedKeys.set(id, key)
    }
    return verifyWithKey(key, message, signature)
  } catch {
    return false
  }
}

/**
 * The backends of `choice`, once chosen (README "Runtimes": the wasm module may still be loading).
 * A backend that cannot serve rejects with the reason, never as an unknown key or a bad signature.
 */
async function backendsOf(choice: BackendChoice): Promise<BackendForAlgorithm> {
  const selection = selectBackends(choice)
  await selection.pending()
  const failure = selection.failure()
  if (failure !== undefined) throw failure
  return selection.backendFor
}

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? ''
  } catch {
    return ''
  }
}

export { ALGORITHMS, ALL_ALGORITHMS, type Algorithm, type AlgorithmSpec } from './algorithms.js'
export { CaracalAuthError } from '../errors.js'
export type { BackendChoice, BackendName } from '../backends/types.js'
