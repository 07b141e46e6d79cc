/** The revocation contract of docs/architecture.md "Revocation". */
export interface RevocationStore {
  /** True if the anchor is revoked. A synchronous answer stays synchronous on the hot path. */
  isRevoked(anchor: string): boolean | Promise<boolean>
  markRevoked(anchor: string, ttlMs?: number): void | Promise<void>
  /**
   * Why the store cannot be trusted right now, or undefined when it can. A store that fails closed
   * answers every `isRevoked` with true while this returns a reason; the verifier then marks its
   * `session_revoked` error `unavailable` (HTTP 503 with Retry-After instead of 401).
   */
  unavailableReason?(): string | undefined
  /**
   * The zone's current delegation graph epoch (0 when none is known). A mandate whose
   * `delegation_graph_epoch` is below it was issued against a graph that has changed since:
   * `delegation_stale`. Optional: a store without it is not asked. A synchronous answer stays
   * synchronous on the hot path.
   */
  currentDelegationEpoch?(zoneId: string): number | Promise<number>
  /** Raises the zone's epoch to `epoch` (never lowers it: max semantics), for `ttlMs` (default 24 h). */
  markDelegationEpoch?(zoneId: string, epoch: number, ttlMs?: number): void | Promise<void>
}

export function isRevocationStore(value: unknown): value is RevocationStore {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as RevocationStore).isRevoked === 'function' &&
    typeof (value as RevocationStore).markRevoked === 'function' &&
    optionalFunction((value as RevocationStore).currentDelegationEpoch) &&
    optionalFunction((value as RevocationStore).markDelegationEpoch)
  )
}

function optionalFunction(value: unknown): boolean {
  return value === undefined || typeof value === 'function'
}
