/**
 * The values of the Caracal sources, written out once for the adapter tests: `@caracalai/verify`
 * `authenticate.ts` — the default hint of each code and `httpStatusForAuthError`. Written from the
 * source, never read back from our modules, so a changed answer of ours fails the tests.
 */
import type { AuthErrorCode } from '../../src/compat/verify.js'

export const HINT: Readonly<Record<AuthErrorCode, string>> = {
  missing_token: 'Send Authorization: Bearer <Caracal mandate>.',
  invalid_token: 'Check issuer, audience, signature, expiry, token use, scopes, and targets.',
  invalid_zone: 'Check the configured zoneId and the mandate zone_id claim.',
  insufficient_scope: 'Request a mandate that includes every required scope for this route.',
  session_revoked: 'Refresh the mandate or start a new authorized session.',
  delegation_stale: 'Refresh the mandate so delegated authority is evaluated against the latest graph.',
  session_required: 'Use a resource mandate issued for a governed Session.',
  delegation_required: 'Use a mandate produced by a delegated grant flow.',
  chain_mismatch: 'Check requireChainContains and the mandate delegation chain.',
  hop_count_exceeded: 'Reduce delegation depth or raise maxHopCount deliberately.',
}

export const STATUS: Readonly<Record<AuthErrorCode, 401 | 403>> = {
  missing_token: 401,
  invalid_token: 401,
  invalid_zone: 401,
  session_revoked: 401,
  delegation_stale: 401,
  insufficient_scope: 403,
  session_required: 403,
  delegation_required: 403,
  chain_mismatch: 403,
  hop_count_exceeded: 403,
}
