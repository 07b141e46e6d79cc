/** Entry `caracal-fastmcp/mcp-sdk`: the MCP TypeScript SDK integration (optional peer dependency). */
export {
  authInfoOf,
  mcpSdkVerifier,
  protectedResourceMetadata,
  protectedResourceMetadataHandler,
  protectedResourceMetadataUrl,
  requireCaracalAuth,
  toSdkError,
  type McpSdkVerifierOptions,
  type NodeMiddleware,
  type ProtectedResourceMetadataOptions,
  type RequireCaracalAuthOptions,
} from './adapters/mcp-sdk.js'
