/** A settable clock for the `now` options: tests move time instead of waiting for it. */
import { NOW_MS } from './mandates.js'

export interface TestClock {
  readonly now: () => number
  set(ms: number): void
  advance(ms: number): void
  readonly ms: number
}

export function testClock(start: number = NOW_MS): TestClock {
  let current = start
  return {
    now: () => current,
    set(ms) {
      current = ms
    },
    advance(ms) {
      current += ms
    },
    get ms() {
      return current
    },
  }
}
