/**
 * The cold part of a verification once the key is known (docs/architecture.md "Data flow", steps 5–7):
 * signature, claim rules and policy, in one call where the key offers it (wasm) or step by step.
 * `CaracalAuth` runs it on the main thread; a verification pool's workers run it with a policy that
 * refuses nothing, the main thread then applying the real one (README "Several cores in one process").
 */
import type { MandateRules, VerifyingKey } from './backends/types.js'
import { invalidToken } from './errors.js'
import { JWS_ERRORS, decodeSegments, parseJsonObject, type SplitJws } from './jws/compact.js'
import { verifyWithKey } from './jws/verify-with-key.js'
import { readMandate, type VerifiedMandate } from './policy/claims.js'
import { checkPolicy, type MandatePolicy } from './policy/mandate-policy.js'

/** A policy no mandate fails: what the workers of a pool apply, the main thread applying the real one. */
export const NO_POLICY: MandatePolicy = Object.freeze({
  expectedZoneId: undefined,
  requiredScopes: Object.freeze([]),
  requireAgent: false,
  requireDelegation: false,
  requireChainContains: Object.freeze([]),
  maxHopCount: Number.POSITIVE_INFINITY,
  requiredTargets: Object.freeze([]),
})

/** The mandate of `token` once signature, claim rules and `rules.policy` passed; `invalid_token` (or the policy's code) otherwise. */
export function verifySignedMandate(
  token: string,
  jws: SplitJws,
  key: VerifyingKey,
  rules: MandateRules,
  nowSec: number,
): VerifiedMandate {
  const verdict = key.verifyMandate?.(token, jws.dot1, jws.dot2, rules, nowSec)
  if (verdict === undefined || verdict.kind === 'defer') {
    const parsed = decodeSegments(token, jws)
    if (!verifyWithKey(key, parsed.signingInput, parsed.signature)) throw invalidToken(JWS_ERRORS.signature)
    const mandate = readMandate(parseJsonObject(parsed.payload, 'payload'), rules.claimRules, nowSec)
    checkPolicy(mandate, rules.policy)
    return mandate
  }
  if (verdict.kind === 'refused') {
    checkPolicy(verdict.mandate, rules.policy) // throws the error, worded
    // The module refused what checkPolicy accepts: one of them is wrong, so neither is trusted.
    throw invalidToken('token could not be verified')
  }
  return verdict.mandate
}
