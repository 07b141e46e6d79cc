/**
 * Cold verifications gathered per turn of the event loop (README "Cold tokens under load"). In a
 * server, each request's HTTP code runs between two signature checks, and each evicts the other's
 * code and data from the core's caches: measured in a node:http gateway, a cold ES256 request
 * cost ~64 µs of CPU over no auth where the check alone costs ~36 µs, and a second check in the
 * same request only ~36 µs more (bench/README.md "The cold path inside a server"). Run back to
 * back instead — every request of a turn parsed, then every check, then every answer — each part
 * runs warm.
 *
 * Deferring costs a caller that waits for each answer before asking the next (a loop of `await
 * verify`) one turn of the loop per token, so the gathering switches itself on and off: it starts
 * off; every PROBE_EVERY-th cold token waits for the turn's end, and when others join it there
 * (other requests of the same turn) the gathering stays on; after LONELY_TURNS turns in a row that
 * held a single token, it goes off again. Answers never change, only when they are given.
 */

import { endOfTurn as schedule } from '#end-of-turn'

/** While off, one cold token in this many waits for the end of its turn to see whether others come. */
export const PROBE_EVERY = 64
/** Turns in a row with a single token that switch the gathering off. */
export const LONELY_TURNS = 4
/** Tokens checked per turn: more wait for the next one, so the first answers of a burst go out. */
export const PER_TURN = 32

interface Waiting<T> {
  readonly work: (waited: boolean) => T | Promise<T>
  readonly resolve: (value: T | Promise<T>) => void
  readonly reject: (error: unknown) => void
}

export class ColdBatch {
  #on = false
  #sinceProbe = 0
  #lonely = 0
  #queue: Waiting<unknown>[] = []
  /** Turns that checked more than one token, and tokens checked in them (for `stats()` and the tests). */
  #turns = 0
  #gathered = 0

  /** `work(false)` now, or `work(true)` once this turn's other cold tokens have arrived. */
  run<T>(work: (waited: boolean) => T | Promise<T>): T | Promise<T> {
    if (schedule === undefined) return work(false)
    if (this.#queue.length === 0) {
      if (!this.#on && ++this.#sinceProbe < PROBE_EVERY) return work(false)
      this.#sinceProbe = 0
      schedule(this.#flush)
    }
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ work, resolve, reject } as Waiting<unknown>)
    })
  }

  get stats(): { readonly gathering: boolean; readonly turns: number; readonly tokens: number } {
    return { gathering: this.#on, turns: this.#turns, tokens: this.#gathered }
  }

  readonly #flush = (): void => {
    const queue = this.#queue
    const now = queue.length > PER_TURN ? queue.slice(0, PER_TURN) : queue
    this.#queue = now === queue ? [] : queue.slice(PER_TURN)
    if (this.#queue.length > 0) schedule!(this.#flush)
    if (queue.length > 1) {
      this.#on = true
      this.#lonely = 0
      this.#turns++
      this.#gathered += now.length
    } else if (++this.#lonely >= LONELY_TURNS) {
      this.#on = false
    }
    for (const w of now) {
      try {
        w.resolve(w.work(true))
      } catch (error) {
        w.reject(error)
      }
    }
  }
}
