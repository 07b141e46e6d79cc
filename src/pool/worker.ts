/**
 * A verification pool's worker (README "Several cores in one process"): its own wasm instance and
 * key tables, the keys the main thread pushes, and for each token of a batch the cold work —
 * compact form, signature, claim rules — answered as `CaracalAuth` would answer it; the policy,
 * the cache, revocation and replay stay on the main thread.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { resolveBackends } from '../backends/index.js'
import type { MandateRules, VerifyingKey } from '../backends/types.js'
import { CaracalAuthError } from '../errors.js'
import { splitCompact } from '../jws/compact.js'
import type { PublicKeyMaterial } from '../jws/public-key.js'
import { NO_POLICY, verifySignedMandate } from '../signed-mandate.js'
import type { Answer, FromWorker, ToWorker, WorkerSetup } from './protocol.js'

const setup = workerData as WorkerSetup
const backendFor = resolveBackends(setup.backend)
const rules: MandateRules = { claimRules: setup.claimRules, policy: NO_POLICY }
const keys = new Map<number, VerifyingKey>()
const NO_KEY: Answer = [2]

function add(id: number, material: PublicKeyMaterial): void {
  try {
    keys.set(id, backendFor(material.alg).importKey(material))
  } catch {
    // Not held here: tokens of this key get NO_KEY, and the main thread verifies them itself.
  }
}

for (const [id, material] of setup.keys) add(id, material)
parentPort!.postMessage({ t: 'ready' } satisfies FromWorker)

function answer(token: string, keyId: number, nowSec: number): Answer {
  const key = keys.get(keyId)
  if (key === undefined) return NO_KEY
  try {
    // The main thread's checks passed: no length cap here, the header comes from the memo.
    const m = verifySignedMandate(token, splitCompact(token, Number.POSITIVE_INFINITY), key, rules, nowSec)
    return [0, m.claims, m.notBefore]
  } catch (error) {
    if (error instanceof CaracalAuthError) return [1, error.code, error.description, error.scope]
    return [1, 'invalid_token', 'token could not be verified', undefined]
  }
}

parentPort!.on('message', (m: ToWorker) => {
  if (m.t === 'batch') {
    const answers: Answer[] = new Array(m.tokens.length)
    for (let i = 0; i < m.tokens.length; i++) answers[i] = answer(m.tokens[i]!, m.keys[i]!, m.now[i]!)
    parentPort!.postMessage({ t: 'answers', id: m.id, answers } satisfies FromWorker)
  } else if (m.t === 'keys') {
    for (const id of m.drop) {
      keys.get(id)?.release()
      keys.delete(id)
    }
    for (const [id, material] of m.add) add(id, material)
  } else if (m.t === 'hang') {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)
  }
})
