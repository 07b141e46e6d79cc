/**
 * `#end-of-turn` where no other condition applies (package.json `imports`): the runtime's global
 * `setImmediate`, taken when this module loads, or undefined where there is none (browsers,
 * workerd without nodejs_compat), in which case cold tokens are checked at once (src/cold-batch.ts).
 */
export const endOfTurn: ((callback: () => void) => unknown) | undefined =
  typeof globalThis.setImmediate === 'function' ? globalThis.setImmediate.bind(globalThis) : undefined
