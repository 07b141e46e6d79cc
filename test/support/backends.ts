/**
 * The one list of backends every backend-dependent test runs on. A backend that becomes available
 * (the wasm build) joins every table automatically.
 */
import { isBackendAvailable } from '../../src/backends/index.js'
import type { BackendChoice } from '../../src/backends/types.js'

/** `auto` is listed too: it composes stages of the others (OpenSSL's SHA-256 with wasm's P-256). */
export const TEST_BACKENDS: readonly BackendChoice[] = Object.freeze([
  'node',
  'noble',
  ...(isBackendAvailable('wasm') ? (['wasm'] as const) : []),
  'auto',
])
