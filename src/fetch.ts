/** Entry `caracal-fastmcp/fetch`: HTTP on the Fetch API (Workers, Hono, Deno, Bun); runtime-neutral. */
export { authErrorResponse, type ChallengeOptions } from './adapters/http-error.js'
export {
  authenticateRequest,
  serveProtectedResourceMetadata,
  withCaracalAuth,
  type FetchAuthOptions,
  type FetchAuthResult,
  type FetchVerifier,
} from './adapters/fetch.js'
export {
  protectedResourceMetadata,
  protectedResourceMetadataUrl,
  type ProtectedResourceMetadataOptions,
} from './adapters/resource-metadata.js'
export {
  caracalHono,
  type CaracalHonoEnv,
  type CaracalHonoMiddleware,
  type HonoContextLike,
} from './adapters/hono.js'
