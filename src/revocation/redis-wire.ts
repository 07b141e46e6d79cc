/**
 * The wire format shared with the Caracal backend (docs/architecture.md "Revocation"): durable key
 * names, the streams, event fields, the `_sig` HMAC canonical form and the checks an event must pass
 * before anything acts on it. The store and the consumers decide through `checkRevocationEvent` and
 * `checkDelegationEvent`, so a mirror learns exactly what a consumer would accept.
 *
 * Streams: `caracal.sessions.revoke` and `caracal.delegations.invalidate` are Caracal's (its
 * coordinator appends to them; this library only reads them). `caracal-fastmcp.revocations` is
 * this library's own: what `markRevoked`/`markDelegationEpoch` announce to the other instances.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'

export const REVOCATION_STREAM = 'caracal.sessions.revoke'
export const DELEGATION_INVALIDATION_STREAM = 'caracal.delegations.invalidate'
/**
 * The stream of this library's own instances: `markRevoked` and `markDelegationEpoch` append here
 * (never to Caracal's streams), and every mirror follows it. Capped with `MAXLEN ~`.
 */
export const PEER_STREAM = 'caracal-fastmcp.revocations'
export const PEER_STREAM_MAX_LENGTH = 10_000
export const REVOCATION_KEY_PREFIX = 'caracal:revoked:sessions:'
/** Under the key prefix: `<prefix>delegation-epoch:<zone>` holds the zone's epoch (decimal). */
export const DELEGATION_EPOCH_KEY_INFIX = 'delegation-epoch:'
export const DEFAULT_CONSUMER_GROUP = 'resource-revocation'
export const DEFAULT_DELEGATION_GROUP = 'resource-delegation-invalidation'
export const DEAD_LETTER_MAX_LENGTH = 10_000
export const SIGNATURE_FIELD = '_sig'
/** What a store that fails closed answers for a zone's epoch: every epoch-carrying mandate is stale. */
export const FAIL_CLOSED_EPOCH = Number.MAX_SAFE_INTEGER
/** `event` of the epoch announcements on the peer stream (revocations there carry `session_revoke`). */
export const PEER_EPOCH_EVENT = 'delegation_epoch'
export const PEER_REVOKE_EVENT = 'session_revoke'

/** Fields that name a revoked anchor, in the order the backend's consumers read them. */
export const ANCHOR_FIELDS = ['session_id', 'sid', 'root_sid', 'agent_session_id', 'delegation_edge_id'] as const

/**
 * Extension field of this library's own peer stream: the TTL (ms) the publisher gave its durable
 * key, so every mirror expires the entry when the key does. Caracal never sends it, so on Caracal's
 * streams it is never read (pass `readTtl` only for the peer stream): an event there cannot choose
 * how long its key lives, and Caracal's events get the reader's default TTL. The backend's consumers
 * ignore unknown fields, and the HMAC covers every field, so adding it keeps the format compatible.
 */
export const TTL_FIELD = 'ttl_ms'

/** Why an event was refused; these strings are the `reason` of its dead letter. */
export type RejectionReason =
  | 'invalid_signature'
  | 'missing_revocation_anchor'
  | 'invalid_anchor'
  | 'invalid_delegation_epoch'
  | 'malformed_event'

export type RevocationFields = Readonly<Record<string, string>>

export type EventCheck =
  | { readonly ok: true; readonly anchors: readonly string[]; readonly ttlMs: number | undefined }
  | { readonly ok: false; readonly reason: RejectionReason }

export type DelegationCheck =
  | { readonly ok: true; readonly zoneId: string; readonly epoch: number; readonly ttlMs: number | undefined }
  | { readonly ok: false; readonly reason: RejectionReason }

export function deadLetterStream(stream: string): string {
  return `${stream}.dead`
}

export function delegationEpochKey(keyPrefix: string, zoneId: string): string {
  return `${keyPrefix}${DELEGATION_EPOCH_KEY_INFIX}${zoneId}`
}

/**
 * A TTL as `PX` takes it: a whole number of milliseconds, at least 1. Fractions round up, the same
 * way for the store and the consumer (a fractional PX is an error Redis would answer forever).
 */
export function pxTtl(ttlMs: number): number {
  return Math.max(1, Math.ceil(ttlMs))
}

/** A key given as text is used as its UTF-8 bytes, as the backend reads it from its environment. */
export function hmacKeyBytes(key: string | Uint8Array | undefined, name = 'streamHmacKey'): Buffer | undefined {
  if (key === undefined) return undefined
  const bytes =
    typeof key === 'string' ? Buffer.from(key, 'utf8') : key instanceof Uint8Array ? Buffer.from(key) : undefined
  if (bytes === undefined || bytes.length === 0) throw new TypeError(`${name} must be a non-empty string or Uint8Array`)
  return bytes
}

/**
 * Keys sorted by their UTF-8 bytes: what Go's and Python's sorts give for the backend's field
 * names, and identical to JavaScript's default sort for ASCII names.
 */
function sortedKeys(fields: RevocationFields): string[] {
  return Object.keys(fields).sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')))
}

/**
 * Why these fields cannot be signed unambiguously, or undefined. The canonical form is Caracal's,
 * `"<key>=<value>\n"` per field, and it has no escaping: `{a: "x\nb=y"}` and `{a: "x", b: "y"}`
 * give the same bytes, so one signature would vouch for both. Such fields are never signed,
 * accepted or written here (Caracal's anchors, zones and epochs never contain them).
 */
export function ambiguousFieldReason(fields: RevocationFields): string | undefined {
  for (const name of Object.keys(fields)) {
    if (name.includes('=') || name.includes('\n')) return `field name ${JSON.stringify(name)} contains "=" or a newline`
    if (name !== SIGNATURE_FIELD && fields[name]!.includes('\n'))
      return `field ${JSON.stringify(name)} contains a newline`
  }
  return undefined
}

/**
 * Hex HMAC-SHA256 over "<stream>\n" then "<key>=<value>\n" per field but `_sig`, keys ascending.
 * Throws a TypeError for fields that form would not tell apart (`ambiguousFieldReason`).
 */
export function signRevocationEvent(key: Uint8Array, stream: string, fields: RevocationFields): string {
  const ambiguous = ambiguousFieldReason(fields)
  if (ambiguous !== undefined) throw new TypeError(`cannot sign the event: ${ambiguous}`)
  const mac = createHmac('sha256', key)
  mac.update(`${stream}\n`, 'utf8')
  for (const name of sortedKeys(fields)) {
    if (name === SIGNATURE_FIELD) continue
    mac.update(`${name}=${fields[name]}\n`, 'utf8')
  }
  return mac.digest('hex')
}

export function verifyRevocationSignature(key: Uint8Array, stream: string, fields: RevocationFields): boolean {
  const got = fields[SIGNATURE_FIELD]
  // Exactly 64 lowercase or uppercase hex digits; Buffer.from(…, 'hex') would silently drop the rest.
  if (got === undefined || !/^[0-9a-fA-F]{64}$/.test(got)) return false
  if (ambiguousFieldReason(fields) !== undefined) return false
  const want = Buffer.from(signRevocationEvent(key, stream, fields), 'hex')
  return timingSafeEqual(Buffer.from(got, 'hex'), want)
}

/**
 * An anchor that would name a zone's epoch key: `<prefix><anchor>` would be
 * `<prefix>delegation-epoch:<zone>`. `markRevoked` refuses it, and an event naming one is refused
 * as `invalid_anchor` (Caracal's anchors are session and edge IDs, never this).
 */
export function isReservedAnchor(anchor: string): boolean {
  return anchor.startsWith(DELEGATION_EPOCH_KEY_INFIX)
}

/** The distinct, non-empty anchors an event names. */
export function revocationAnchors(fields: RevocationFields): string[] {
  const anchors: string[] = []
  for (const name of ANCHOR_FIELDS) {
    const value = fields[name]
    if (value !== undefined && value !== '' && !anchors.includes(value)) anchors.push(value)
  }
  return anchors
}

/**
 * A usable TTL from the optional `ttl_ms` field, or undefined (then the reader's default applies).
 * A garbled value never costs the revocation itself: it only falls back to the default.
 */
function eventTtlMs(fields: RevocationFields): number | undefined {
  const raw = fields[TTL_FIELD]
  if (raw === undefined || !/^[1-9][0-9]{0,15}$/.test(raw)) return undefined
  const ttl = Number(raw)
  return Number.isSafeInteger(ttl) ? ttl : undefined
}

/**
 * The consumer's rules, in its order: signature first (when a key is configured it is required),
 * then at least one anchor, none of them reserved (`isReservedAnchor`: the whole event is refused
 * as `invalid_anchor`). `ttlMs` is read from `ttl_ms` only with `readTtl` (this library's peer
 * stream); otherwise it is always undefined and the reader's default applies.
 */
export function checkRevocationEvent(
  fields: RevocationFields | undefined,
  stream: string,
  hmacKey: Uint8Array | undefined,
  readTtl = false,
): EventCheck {
  if (fields === undefined || ambiguousFieldReason(fields) !== undefined)
    return { ok: false, reason: 'malformed_event' }
  if (hmacKey !== undefined && !verifyRevocationSignature(hmacKey, stream, fields))
    return { ok: false, reason: 'invalid_signature' }
  const anchors = revocationAnchors(fields)
  if (anchors.length === 0) return { ok: false, reason: 'missing_revocation_anchor' }
  if (anchors.some(isReservedAnchor)) return { ok: false, reason: 'invalid_anchor' }
  return { ok: true, anchors, ttlMs: readTtl ? eventTtlMs(fields) : undefined }
}

/** A decimal epoch as the coordinator writes it (`JSON.stringify` of an integer): digits only, a safe integer. */
export function parseEpoch(raw: string | undefined | null): number | undefined {
  if (typeof raw !== 'string' || !/^[0-9]{1,16}$/.test(raw)) return undefined
  const epoch = Number(raw)
  return Number.isSafeInteger(epoch) ? epoch : undefined
}

/**
 * The delegation consumer's rules: signature first (required with a key), then a non-empty
 * `zone_id` and an `epoch` of decimal digits. Stricter than Caracal's TypeScript consumer, which
 * reads an empty epoch as 0 and lets an empty zone through (its store then ignores it); like its
 * Python one, both are `invalid_delegation_epoch` here. `event` and the other fields are ignored,
 * `ttl_ms` too unless `readTtl` (the peer stream), as in `checkRevocationEvent`.
 */
export function checkDelegationEvent(
  fields: RevocationFields | undefined,
  stream: string,
  hmacKey: Uint8Array | undefined,
  readTtl = false,
): DelegationCheck {
  if (fields === undefined || ambiguousFieldReason(fields) !== undefined)
    return { ok: false, reason: 'malformed_event' }
  if (hmacKey !== undefined && !verifyRevocationSignature(hmacKey, stream, fields))
    return { ok: false, reason: 'invalid_signature' }
  const zoneId = fields.zone_id
  const epoch = parseEpoch(fields.epoch)
  if (zoneId === undefined || zoneId === '' || epoch === undefined)
    return { ok: false, reason: 'invalid_delegation_epoch' }
  return { ok: true, zoneId, epoch, ttlMs: readTtl ? eventTtlMs(fields) : undefined }
}

function signedFlat(fields: Record<string, string>, stream: string, hmacKey: Uint8Array | undefined): string[] {
  // Unsigned too: another instance with a key would refuse it anyway, and a reader without one
  // must not be handed what a signed stream could not carry.
  const ambiguous = ambiguousFieldReason(fields)
  if (ambiguous !== undefined) throw new TypeError(`cannot write the event: ${ambiguous}`)
  if (hmacKey !== undefined) fields[SIGNATURE_FIELD] = signRevocationEvent(hmacKey, stream, fields)
  return Object.entries(fields).flat()
}

/**
 * Builds the flat field list of a revocation the library announces on its peer stream, signed
 * (over that stream's name) when a key is given. The anchor goes in `session_id`, so that
 * `checkRevocationEvent` reads it like any revocation.
 */
export function revocationEventFields(
  event: { readonly zoneId: string; readonly anchor: string; readonly reason: string; readonly ttlMs?: number },
  stream: string,
  hmacKey: Uint8Array | undefined,
): string[] {
  const fields: Record<string, string> = {
    event: PEER_REVOKE_EVENT,
    zone_id: event.zoneId,
    session_id: event.anchor,
    reason: event.reason,
  }
  if (event.ttlMs !== undefined) fields[TTL_FIELD] = String(pxTtl(event.ttlMs))
  return signedFlat(fields, stream, hmacKey)
}

/** The announcement of a raised delegation epoch on the peer stream. */
export function delegationEpochEventFields(
  event: { readonly zoneId: string; readonly epoch: number; readonly ttlMs: number },
  stream: string,
  hmacKey: Uint8Array | undefined,
): string[] {
  const fields: Record<string, string> = {
    event: PEER_EPOCH_EVENT,
    zone_id: event.zoneId,
    epoch: String(event.epoch),
    [TTL_FIELD]: String(pxTtl(event.ttlMs)),
  }
  return signedFlat(fields, stream, hmacKey)
}

export interface StreamEntry {
  readonly id: string
  /** The entry was deleted after it was delivered (XAUTOCLAIM and pending reads report it so). */
  readonly deleted: boolean
  /** Undefined when the entry cannot be read as flat string pairs, or names a field twice. */
  readonly fields: RevocationFields | undefined
  /** The raw pairs, for dead letters of entries that `fields` could not represent. */
  readonly raw: readonly unknown[]
}

/**
 * Reads `[id, [field, value, …]]` as Redis returns a stream entry. A field named twice makes the
 * entry malformed: which value the HMAC covered would be ambiguous.
 */
export function parseStreamEntry(entry: unknown): StreamEntry | undefined {
  if (!Array.isArray(entry) || typeof entry[0] !== 'string') return undefined
  const id = entry[0]
  const raw = entry[1]
  if (raw === null) return { id, deleted: true, fields: undefined, raw: [] }
  if (!Array.isArray(raw) || raw.length % 2 !== 0)
    return { id, deleted: false, fields: undefined, raw: Array.isArray(raw) ? raw : [] }
  const fields: Record<string, string> = Object.create(null) as Record<string, string>
  for (let i = 0; i < raw.length; i += 2) {
    const name: unknown = raw[i]
    const value: unknown = raw[i + 1]
    if (typeof name !== 'string' || typeof value !== 'string' || Object.hasOwn(fields, name))
      return { id, deleted: false, fields: undefined, raw }
    fields[name] = value
  }
  return { id, deleted: false, fields, raw }
}

/** The entries of an XREAD over several streams, by stream name (`null` when nothing arrived). */
export function parseStreamsReply(reply: unknown): Map<string, StreamEntry[]> {
  const byStream = new Map<string, StreamEntry[]>()
  if (!Array.isArray(reply)) return byStream
  for (const perStream of reply) {
    if (!Array.isArray(perStream) || typeof perStream[0] !== 'string' || !Array.isArray(perStream[1])) continue
    byStream.set(perStream[0], parseStreamReply([perStream]))
  }
  return byStream
}

/** The entries of an XREAD/XREADGROUP reply for one stream (`null` when nothing arrived). */
export function parseStreamReply(reply: unknown): StreamEntry[] {
  if (!Array.isArray(reply)) return []
  const entries: StreamEntry[] = []
  for (const perStream of reply) {
    if (!Array.isArray(perStream) || !Array.isArray(perStream[1])) continue
    for (const item of perStream[1] as unknown[]) {
      const entry = parseStreamEntry(item)
      if (entry !== undefined) entries.push(entry)
    }
  }
  return entries
}

/** The dead-letter payload: the event as JSON, whatever shape it had. */
export function deadLetterPayload(entry: StreamEntry): string {
  if (entry.fields !== undefined) return JSON.stringify(entry.fields)
  return JSON.stringify(entry.raw.map((v) => (typeof v === 'string' ? v : String(v))))
}

/** Orders stream IDs ("<ms>-<seq>"); IDs are 64-bit pairs, hence BigInt. */
export function compareStreamIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-')
  const [bm = '0', bs = '0'] = b.split('-')
  const ms = BigInt(am) - BigInt(bm)
  if (ms !== 0n) return ms < 0n ? -1 : 1
  const seq = BigInt(as) - BigInt(bs)
  return seq === 0n ? 0 : seq < 0n ? -1 : 1
}

/**
 * Writes a durable key `1` with a TTL, never shortening one already there: a revocation only has
 * to outlive the mandates it kills, and a longer TTL someone else set was set for a reason.
 * Lua rather than `PEXPIRE … GT` so that Redis before 7.0 runs it too.
 */
export const DURABLE_KEY_SCRIPT = `
local ttl = tonumber(ARGV[1])
local current = redis.call('PTTL', KEYS[1])
if current == -1 or current >= ttl then return 0 end
redis.call('SET', KEYS[1], '1', 'PX', ttl)
return 1
`

/**
 * Raises a zone's epoch key to ARGV[1] (decimal) with a PX TTL of ARGV[2], atomically, only when
 * that is greater than what the key holds (missing or unreadable counts as 0); the TTL is renewed
 * only by a raise. Returns 1 when it raised the key, else 0: Caracal's max semantics.
 */
export const MAX_EPOCH_SCRIPT = `
local held = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tonumber(ARGV[1]) <= held then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`

/** A key prefix as a SCAN MATCH pattern that matches it literally. */
export function scanPatternFor(prefix: string): string {
  return `${prefix.replace(/[\\*?[\]]/g, (c) => `\\${c}`)}*`
}
