/**
 * Single-use mandates (README "Single-use mandates"): a replay store remembers each resource
 * mandate's `jti` until the mandate expires, and answers whether a presentation is the first.
 */
export interface ReplayStore {
  /**
   * Records `jti` as used for `ttlMs` if it was not already, atomically: true for its first
   * presentation, false for any later one (on any instance sharing the store). A store that cannot
   * tell throws or rejects; `CaracalAuth` then fails closed (`token_replayed`, `unavailable`).
   */
  firstUse(jti: string, ttlMs: number): boolean | Promise<boolean>
}

export function isReplayStore(value: unknown): value is ReplayStore {
  return typeof value === 'object' && value !== null && typeof (value as ReplayStore).firstUse === 'function'
}
