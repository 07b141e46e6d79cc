/** Entry `caracal-fastmcp/dev`: a development STS and signing helpers, for demos and tests only. */
export { startDevSts, type DevSts, type DevStsOptions, type IssuedMandate, type MintOptions } from './sts.js'
export { generateSigningKey, signJws, type SigningKey } from './sign-jws.js'
