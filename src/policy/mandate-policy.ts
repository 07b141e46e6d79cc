/**
 * The policy options (README "Options"), checked on every request (cache hit or not), in the order of the
 * error table: zone, scopes, agent, delegation, chain, hop count, targets.
 */
import { CaracalAuthError, invalidToken } from '../errors.js'
import { hasScope, type VerifiedMandate } from './claims.js'

export interface MandatePolicy {
  readonly expectedZoneId: string | undefined
  readonly requiredScopes: readonly string[]
  readonly requireAgent: boolean
  readonly requireDelegation: boolean
  readonly requireChainContains: readonly string[]
  readonly maxHopCount: number
  readonly requiredTargets: readonly string[]
}

export function checkPolicy(m: VerifiedMandate, policy: MandatePolicy): void {
  const c = m.claims
  if (policy.expectedZoneId !== undefined && c.zoneId !== policy.expectedZoneId) {
    throw new CaracalAuthError('invalid_zone', 'mandate was issued for another zone')
  }
  // Runs on every request: no allocation unless a scope is actually missing.
  for (let i = 0; i < policy.requiredScopes.length; i++) {
    if (!hasScope(c.scope, policy.requiredScopes[i]!)) {
      const missing = policy.requiredScopes.filter((s) => !hasScope(c.scope, s))
      throw new CaracalAuthError('insufficient_scope', `missing required scope: ${missing.join(' ')}`, {
        scope: policy.requiredScopes,
      })
    }
  }
  if (policy.requireAgent && c.sessionId === undefined)
    throw new CaracalAuthError('agent_required', 'mandate has no agent session')
  if (policy.requireDelegation && c.delegationId === undefined)
    throw new CaracalAuthError('delegation_required', 'mandate has no delegation edge')
  for (const app of policy.requireChainContains) {
    if (m.chainApplications?.includes(app) !== true)
      throw new CaracalAuthError('chain_mismatch', `delegation chain does not include ${app}`)
  }
  if (c.hopCount !== undefined && c.hopCount > policy.maxHopCount) {
    throw new CaracalAuthError('hop_count_exceeded', `hop count above ${policy.maxHopCount}`)
  }
  for (const target of policy.requiredTargets) {
    if (c.targetResources?.includes(target) !== true) throw invalidToken(`mandate is not for target ${target}`)
  }
}
