/**
 * The one list of backends every backend-dependent test runs on. A backend that becomes available
 * (the wasm build) joins every table automatically.
 */
import { isBackendAvailable } from '../../src/backends/index.js'
import type { BackendName } from '../../src/backends/types.js'

export const TEST_BACKENDS: readonly BackendName[] = Object.freeze([
  'node',
  'noble',
  ...(isBackendAvailable('wasm') ? (['wasm'] as const) : []),
])
