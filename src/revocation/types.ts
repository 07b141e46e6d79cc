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
}

export function isRevocationStore(value: unknown): value is RevocationStore {
  return (
    typeof value === 'object' && value !== null &&
    typeof (value as RevocationStore).isRevoked === 'function' &&
    typeof (value as RevocationStore).markRevoked === 'function'
  )
}
