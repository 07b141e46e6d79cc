export { CaracalAuth, type CaracalAuthStats, type PolicyOverrides } from './caracal-auth.js'
export {
  CaracalAuthError,
  ERROR_CODES,
  isCaracalAuthError,
  type CaracalAuthErrorOptions,
  type CaracalErrorCode,
  type CodeInfo,
} from './errors.js'
export {
  InMemoryRevocationStore,
  type InMemoryRevocationStoreOptions,
  RevocationStoreFullError,
} from './revocation/in-memory-store.js'
export type { RevocationStore } from './revocation/types.js'
export { InMemoryReplayStore, type InMemoryReplayStoreOptions } from './replay/in-memory-replay-store.js'
export type { ReplayStore } from './replay/types.js'
export type { CaracalAuthOptions, JwksOptions, ResolvedOptions } from './options.js'
export type { JwksStats } from './jwks/remote-jwks.js'
export type { ClaimRules } from './policy/claims.js'
export type { MandatePolicy } from './policy/mandate-policy.js'
export type { Claims, DelegationHop } from './policy/claims.js'
export type { Algorithm } from './jws/algorithms.js'
export type { BackendChoice, BackendName } from './backends/types.js'
export type { BackendStatus } from './backends/index.js'
export { initWasm, type WasmSource } from './backends/wasm.js'
export {
  createAuthenticate,
  hasScopes,
  type AuthenticateOptions,
  type CaracalSession,
  type MandateVerifier,
} from './adapters/fastmcp.js'
export { renderAuthError, type ChallengeOptions, type RenderedAuthError } from './adapters/http-error.js'
