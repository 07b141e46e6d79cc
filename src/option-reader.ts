/**
 * The one helper that reads a constructor's options (docs/architecture.md "Rules a change keeps":
 * options are validated once, in one helper). Every failure is a `TypeError` of the form
 * `<Owner> option "<name>" <what is wrong>`, and options the constructor does not know are refused.
 * `CaracalAuth` (`src/options.ts`), `InMemoryRevocationStore`, `startDevSts` and the Redis classes
 * (`src/revocation/redis-options.ts`, which adds the Redis readers) all read theirs with it.
 *
 * A reader treats an option set to `undefined` as not set: it gets the default.
 */

/** How a reader names the options it reads; see `OptionReader.nested`. */
export interface OptionReaderSettings {
  /** Put before every option name in messages, e.g. `jwks.` for the options under `jwks`. */
  readonly prefix?: string
  /** What an unknown option is not, after "is not". Default: `an option of <owner>`. */
  readonly unknown?: string
}

/** Reads and checks options one by one; every failure is a TypeError naming the option. */
export class OptionReader {
  readonly #owner: string
  readonly #prefix: string
  readonly #o: Record<string, unknown>

  /**
   * `options` must be an object (anything else is `<owner> needs an options object`); every key of
   * it must be in `known`.
   */
  constructor(owner: string, options: unknown, known: readonly string[], settings: OptionReaderSettings = {}) {
    this.#owner = owner
    this.#prefix = settings.prefix ?? ''
    if (typeof options !== 'object' || options === null) throw new TypeError(`${owner} needs an options object`)
    this.#o = options as Record<string, unknown>
    const unknown = settings.unknown ?? `an option of ${owner}`
    for (const key of Object.keys(options)) if (!known.includes(key)) this.fail(key, `is not ${unknown}`)
  }

  /** Who reads these options (the class or function named in every message). */
  get owner(): string {
    return this.#owner
  }

  fail(name: string, message: string): never {
    throw new TypeError(`${this.#owner} option "${this.#prefix}${name}" ${message}`)
  }

  /** The value as given, unchecked: for checks of one owner's own, which then `fail`. */
  raw(name: string): unknown {
    return this.#o[name]
  }

  /**
   * The options object under `name` (unset: no options), read by a reader of its own: its options
   * are named `<name>.<key>` in messages, and a key not in `known` is "not `what`".
   */
  nested(name: string, known: readonly string[], what: string): OptionReader {
    const v = this.#o[name]
    if (v !== undefined && (typeof v !== 'object' || v === null)) this.fail(name, 'must be an object')
    return new OptionReader(this.#owner, v ?? {}, known, { prefix: `${this.#prefix}${name}.`, unknown: what })
  }

  /**
   * One option under two names (e.g. the seed's and the Caracal TypeScript packages'), both read
   * with `read`: either may be set, or both to the same value; two different values are a mistake to
   * refuse, not to pick from.
   */
  aliased<T>(name: string, alias: string, read: (name: string) => T): T {
    const value = read(name)
    if (this.#o[alias] === undefined) return value
    const aliasValue = read(alias)
    if (this.#o[name] !== undefined && aliasValue !== value)
      this.fail(alias, `is another name for "${this.#prefix}${name}"; they are set to different values`)
    return aliasValue
  }

  /** A value `accepts` takes (`undefined` included, if it takes that); anything else fails with `message`. */
  guarded<T>(name: string, accepts: (value: unknown) => value is T, message: string): T {
    const v = this.#o[name]
    if (!accepts(v)) this.fail(name, message)
    return v
  }

  /** A string, non-empty unless `allowEmpty`. */
  string<F extends string | undefined>(name: string, fallback: F, allowEmpty = false): string | F {
    const v = this.#o[name]
    if (v === undefined) return fallback
    if (typeof v !== 'string' || (!allowEmpty && v === ''))
      this.fail(name, allowEmpty ? 'must be a string' : 'must be a non-empty string')
    return v
  }

  /** A non-empty string, or undefined when unset. */
  optionalString(name: string): string | undefined {
    return this.string(name, undefined)
  }

  /** A string that is required (no default). */
  requiredString(name: string): string {
    const v = this.#o[name]
    if (typeof v !== 'string' || v === '') this.fail(name, 'must be a non-empty string')
    return v
  }

  /**
   * An array of non-empty strings, copied (later changes to the caller's array change nothing);
   * unset: an empty list. With `single`, one non-empty string is accepted too, as a list of one.
   */
  stringList(name: string, single = false): readonly string[] {
    const v = this.#o[name]
    if (v === undefined) return []
    if (single && typeof v === 'string') return [this.requiredString(name)]
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' || s === '')) {
      this.fail(
        name,
        single ? 'must be a non-empty string or an array of them' : 'must be an array of non-empty strings',
      )
    }
    return Object.freeze([...(v as string[])])
  }

  /** One of `choices`. */
  oneOf<T>(name: string, choices: readonly T[], fallback: T, message = `must be one of ${choices.join(', ')}`): T {
    const v = this.#o[name]
    if (v === undefined) return fallback
    if (!choices.includes(v as T)) this.fail(name, message)
    return v as T
  }

  /** A non-empty array of `choices` (copied; repeats kept). */
  choiceList<T>(name: string, choices: readonly T[], fallback: readonly T[]): readonly T[] {
    const v = this.#o[name]
    if (v === undefined) return fallback
    if (!Array.isArray(v) || v.length === 0 || !v.every((c) => choices.includes(c as T)))
      this.fail(name, `must be a non-empty array of ${choices.join(', ')}`)
    return Object.freeze([...(v as T[])])
  }

  boolean(name: string, fallback: boolean): boolean {
    const v = this.#o[name]
    if (v === undefined) return fallback
    if (typeof v !== 'boolean') this.fail(name, 'must be a boolean')
    return v
  }

  /** A safe integer, ≥ `min` and ≤ `max` when they are given. */
  integer(name: string, fallback: number, min?: number, max?: number): number {
    const v = this.#o[name]
    if (v === undefined) return fallback
    if (
      typeof v !== 'number' ||
      !Number.isSafeInteger(v) ||
      (min !== undefined && v < min) ||
      (max !== undefined && v > max)
    ) {
      this.fail(
        name,
        min === undefined
          ? 'must be an integer'
          : max !== undefined
            ? `must be an integer from ${min} to ${max}`
            : min === 0
              ? 'must be a non-negative integer'
              : `must be an integer ≥ ${min}`,
      )
    }
    return v
  }

  /** `word` itself, or an integer from `min` to `max`. */
  integerOr<W extends string>(name: string, word: W, fallback: number, min: number, max: number): number | W {
    const v = this.#o[name]
    if (v === word) return word
    if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)) {
      this.fail(name, `must be ${JSON.stringify(word)} or an integer from ${min} to ${max}`)
    }
    return (v as number | undefined) ?? fallback
  }

  /** A finite number ≥ 0. */
  nonNegativeNumber<F extends number | undefined>(name: string, fallback: F): number | F {
    return this.#number(name, fallback, (v) => v >= 0, 'must be a non-negative number')
  }

  /** A finite number of milliseconds ≥ 0. */
  nonNegativeMs(name: string, fallback: number): number {
    return this.#number(name, fallback, (v) => v >= 0, 'must be a non-negative number of milliseconds')
  }

  /** A finite number of milliseconds > 0 (fractions allowed). */
  positiveMs(name: string, fallback: number): number {
    return this.#number(name, fallback, (v) => v > 0, 'must be a positive number of milliseconds')
  }

  /** A function; `message` says what kind, when "a function" is not enough. */
  fn<T extends (...args: never[]) => unknown>(name: string, fallback: T, message = 'must be a function'): T {
    const v = this.#o[name]
    if (v === undefined) return fallback
    if (typeof v !== 'function') this.fail(name, message)
    return v as T
  }

  #number<F extends number | undefined>(
    name: string,
    fallback: F,
    inRange: (v: number) => boolean,
    message: string,
  ): number | F {
    const v = this.#o[name]
    if (v === undefined) return fallback
    if (typeof v !== 'number' || !Number.isFinite(v) || !inRange(v)) this.fail(name, message)
    return v
  }
}
