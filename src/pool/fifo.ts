/**
 * The pool's queue of tokens waiting for a thread: taken from the front a batch at a time, so
 * that taking `n` of `m` waiting costs `n`, not `m` (a busy pool's queue holds hundreds).
 */
export class Fifo<T> {
  #items: T[] = []
  #head = 0

  get length(): number {
    return this.#items.length - this.#head
  }

  push(item: T): void {
    this.#items.push(item)
  }

  /** The first `n` (at most all), removed. */
  take(n: number): T[] {
    const end = Math.min(this.#head + n, this.#items.length)
    const taken = this.#head === 0 && end === this.#items.length ? this.#items : this.#items.slice(this.#head, end)
    this.#head = end
    if (this.#head === this.#items.length) {
      this.#items = []
      this.#head = 0
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    return taken
  }
}
