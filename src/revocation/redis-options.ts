/**
 * Options of the Redis revocation classes, read once in their constructors (docs/architecture.md
 * "Rules a change keeps": a bad option is a `TypeError` that names it, unknown options are refused).
 * Both the Caracal wiring, `new X(redis, …, options)`, and one options object `{ redis, … }` are
 * accepted; `argumentsOf` turns either into one object, which `RedisOptionReader` (the shared
 * `OptionReader` plus the Redis readers) then reads.
 */
import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import { OptionReader } from '../option-reader.js'
import { hmacKeyBytes } from './redis-wire.js'

/** Hashes of the hex-looking string keys already warned about: one warning per key per process. */
const warnedHexTextKeys = new Set<string>()

/**
 * A string key of at least 64 hex digits and nothing else is most likely Caracal's
 * `STREAMS_HMAC_KEY` passed as it is: it is still used as its UTF-8 bytes (no guessing), but that
 * refuses every event Caracal signs, so say so once, with a code.
 */
function warnIfHexText(owner: string, key: unknown): void {
  if (typeof key !== 'string' || key.length < 64 || !/^[0-9a-fA-F]+$/.test(key)) return
  const id = createHash('sha256').update(key, 'utf8').digest('hex')
  if (warnedHexTextKeys.has(id)) return
  warnedHexTextKeys.add(id)
  process.emitWarning(
    `${owner}: streamHmacKey is a string of ${key.length} hex digits, used as its ${key.length} UTF-8 bytes. ` +
      "Caracal's STREAMS_HMAC_KEY is hex text: to verify Caracal's signatures pass its bytes, " +
      "Buffer.from(key, 'hex'); as it is, every event Caracal signs is refused as invalid_signature.",
    { code: 'CARACAL_STREAM_KEY_HEX_TEXT' },
  )
}

export function isRedisClient(value: unknown): value is Redis {
  return typeof value === 'object' && value !== null && typeof (value as Redis).duplicate === 'function'
}

/**
 * The options object of a constructor called either as `(redis, ...positional, options?)` or as
 * `(options)`. Positional values become the options named in `positional`; naming one of them in
 * the options object as well is an error, so it cannot be ambiguous which one counts.
 */
export function argumentsOf(
  owner: string,
  args: readonly unknown[],
  positional: readonly string[],
): Record<string, unknown> {
  const [first] = args
  if (!isRedisClient(first)) {
    if (args.length > 1) {
      throw new TypeError(
        `${owner} takes (${positional.join(', ')}, options) or one options object, and its first argument is not an ioredis client`,
      )
    }
    if (typeof first !== 'object' || first === null || Array.isArray(first))
      throw new TypeError(`${owner} needs an options object`)
    return first as Record<string, unknown>
  }
  if (args.length > positional.length + 1)
    throw new TypeError(`${owner} takes at most ${positional.length + 1} arguments`)
  const options = args[positional.length] ?? {}
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`${owner}: its last argument must be an options object`)
  }
  const merged: Record<string, unknown> = { ...(options as Record<string, unknown>) }
  positional.forEach((name, i) => {
    if (Object.hasOwn(merged, name))
      throw new TypeError(`${owner} option "${name}" is given twice: as an argument and as an option`)
    merged[name] = args[i]
  })
  return merged
}

/**
 * The shared `OptionReader` (`src/option-reader.ts`) with the readers only the Redis classes need:
 * the ioredis client, and the stream signing options.
 */
export class RedisOptionReader extends OptionReader {
  redis(name = 'redis'): Redis {
    const v = this.raw(name)
    if (!isRedisClient(v)) this.fail(name, 'must be an ioredis client')
    return v
  }

  /**
   * `streamHmacKey` and `requireSignature` together, as Caracal reads them: `requireSignature`
   * defaults to "a key is set", and true without a key is an error. With a key every event must
   * carry a valid `_sig` whatever `requireSignature` says (Caracal's consumers check it then too).
   * A string is used as its UTF-8 bytes; one that looks like hex text (64 hex digits or more) gets
   * a `CARACAL_STREAM_KEY_HEX_TEXT` warning, once per key and process.
   */
  signing(): Buffer | undefined {
    let key: Buffer | undefined
    const raw = this.raw('streamHmacKey')
    try {
      key = hmacKeyBytes(raw as string | Uint8Array | undefined)
    } catch {
      this.fail('streamHmacKey', 'must be a non-empty string or Uint8Array (a Buffer)')
    }
    warnIfHexText(this.owner, raw)
    const required = this.boolean('requireSignature', key !== undefined)
    if (required && key === undefined)
      throw new TypeError(`${this.owner}: streamHmacKey is required when requireSignature is true`)
    return key
  }
}
