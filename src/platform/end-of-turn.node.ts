/**
 * `#end-of-turn` on Node, Bun and Deno (package.json `imports`): `setImmediate` from `node:timers`,
 * not the global. Fake timers (vitest's, Jest's, Sinon's) replace the global one — also when they
 * are installed before this module loads — and a cold token waiting for the end of its turn
 * (src/cold-batch.ts) must not wait for a test to advance a fake clock.
 */
import { setImmediate } from 'node:timers'

export const endOfTurn: (callback: () => void) => unknown = setImmediate
