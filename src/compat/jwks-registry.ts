/**
 * What the compat entry points (`caracal-fastmcp/compat/identity`, `…/compat/verify`) share: a JWKS
 * cache in the sense of `@caracalai/identity` — one per `createJwksCache(…)`, plus the default one
 * behind `verify`, `warmJwks` and `clearJwksCache` — holding the `CaracalAuth` engines that check
 * signatures and claims for each (issuer, zone, audience, requiredUse), and one JWKS document per
 * (issuer, zone) that all of them are served from.
 *
 * Why a document layer under the engines: the Caracal cache is keyed by (issuer, zone) only, so
 * `warmJwks(issuer, zone)` (which knows no audience) must warm what every later `verify` of that
 * zone uses, and two audiences of one zone must not fetch twice. Each engine fetches through
 * `jwks.fetch` (README "Keys (JWKS)"); here that fetch answers from the zone's document when the
 * engine has not yet been given that document and it is younger than `ttlMs`, and goes to the STS
 * otherwise (one flight per zone). So an engine's own refreshes — on its TTL, or for an unknown kid
 * (at most once per cooldown) — still reach the STS, and every other engine of the zone picks the
 * new document up without a fetch of its own.
 *
 * Engines are made once per key and reused; policy never selects an engine (the entry points apply
 * it to the claims), so any number of per-route policies share one engine, one verified-token cache
 * and so one signature check per token.
 */
import { createPublicKey, type JsonWebKey as NodeJsonWebKey, type KeyObject } from 'node:crypto'
import { CaracalAuth } from '../caracal-auth.js'
import type { BackendChoice } from '../backends/types.js'
import type { RevocationStore } from '../revocation/types.js'

export interface RegistryOptions {
  readonly ttlMs: number
  readonly maxStaleMs: number
  readonly fetchTimeoutMs: number
  readonly fetchImpl: typeof globalThis.fetch | undefined
  /** Internal (tests pick each backend); Caracal's options have no such choice. Default `auto`. */
  readonly backend?: BackendChoice
}

/** The key getter of `JwksCache.getKeySet`: jose's `JWTVerifyGetKey` shape, answering a `KeyObject`. */
export type KeyGetter = (
  protectedHeader: { readonly alg?: string; readonly kid?: string },
  token?: unknown,
) => Promise<KeyObject>

/** The engine's default `jwks.maxBytes` (README "Keys (JWKS)"): the document layer keeps the same cap. */
const MAX_JWKS_BYTES = 256 * 1024

/** Engines are chosen by configuration, not by requests; the bound only stops a config built per request from growing without end. */
const MAX_ENGINES = 256

/** The engine's default least time between refetches for unknown kids (README "Keys (JWKS)"). */
const ENGINE_COOLDOWN_MS = 30_000

/** Compat engines check signature, claims and zone only; revocation is the entry points' step (Caracal's order). */
const NO_REVOCATIONS: RevocationStore = Object.freeze({
  isRevoked: () => false,
  markRevoked: () => undefined,
})

interface ZoneDocument {
  /** Bumped on every successful fetch: an engine is served a document once per generation. */
  gen: number
  body: string | undefined
  keys: readonly JsonWebKey[]
  at: number
  inflight: Promise<FlightResult> | undefined
}

type FlightResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly status: number; readonly oversized?: boolean }

interface Slot {
  readonly auth?: CaracalAuth
  readonly failure?: unknown
  /** The document generation this engine was last given. */
  readonly seen: { served: number }
}

const docKey = (issuer: string, zoneId: string | undefined): string => `${issuer}\u0000${zoneId ?? ''}`

export class EngineRegistry {
  readonly options: RegistryOptions
  readonly #docs = new Map<string, ZoneDocument>()
  readonly #slots = new Map<string, Slot & { readonly doc: string }>()
  /** Bumped whenever an engine is dropped, so memoized lookups (`EngineMemo`) look again. */
  generation = 0

  constructor(options: RegistryOptions) {
    this.options = options
  }

  /** The engine for these settings, made on first use; a configuration it refuses throws its TypeError every time. */
  engineFor(issuer: string, audience: unknown, zoneId: string | undefined, requiredUse: unknown): CaracalAuth {
    const audienceKey = typeof audience === 'string' ? audience : JSON.stringify(audience ?? null)
    const key = `${docKey(issuer, zoneId)}\u0000${audienceKey}\u0000${String(requiredUse)}`
    let slot = this.#slots.get(key)
    if (slot === undefined) {
      const seen = { served: 0 }
      slot = { ...this.#make(issuer, audience, zoneId, requiredUse, seen), seen, doc: docKey(issuer, zoneId) }
      if (this.#slots.size >= MAX_ENGINES) this.#drop(this.#slots.keys().next().value!)
      this.#slots.set(key, slot)
    }
    if (slot.auth === undefined) throw slot.failure
    return slot.auth
  }

  #make(
    issuer: string,
    audience: unknown,
    zoneId: string | undefined,
    requiredUse: unknown,
    seen: { served: number },
  ): Omit<Slot, 'seen'> {
    try {
      const auth = new CaracalAuth({
        issuer,
        audience: audience as string,
        revocations: NO_REVOCATIONS,
        // "" is no zone, as the Caracal cache reads a falsy zoneId.
        ...(zoneId ? { zoneId } : {}),
        requiredUse: requiredUse as 'resource',
        // The Caracal TypeScript verifier accepts ES256 only.
        algorithms: ['ES256'],
        // The hop limit is policy, applied by the entry points with the config's own maxHopCount.
        maxHopCount: Number.MAX_SAFE_INTEGER,
        backend: this.options.backend ?? 'auto',
        // Read at every call, as jose reads Date.now: fake timers and a moved clock apply.
        now: () => Date.now(),
        jwks: {
          ttlMs: this.options.ttlMs,
          maxStaleMs: this.options.maxStaleMs,
          timeoutMs: this.options.fetchTimeoutMs,
          // Caracal refetches once ttlMs has passed; the engine's 30 s cooldown must not hold a
          // shorter TTL back (a development TTL of seconds), while the default TTL keeps it.
          cooldownMs: Math.min(ENGINE_COOLDOWN_MS, this.options.ttlMs),
          fetch: this.#engineFetch(this.#document(issuer, zoneId), seen),
        },
      })
      return { auth }
    } catch (failure) {
      return { failure }
    }
  }

  #document(issuer: string, zoneId: string | undefined): ZoneDocument {
    const key = docKey(issuer, zoneId)
    let doc = this.#docs.get(key)
    if (doc === undefined) {
      doc = { gen: 0, body: undefined, keys: [], at: 0, inflight: undefined }
      this.#docs.set(key, doc)
    }
    return doc
  }

  /** One engine's `jwks.fetch`: the zone's document when it is new to this engine and fresh, the STS otherwise. */
  #engineFetch(doc: ZoneDocument, seen: { served: number }): typeof globalThis.fetch {
    const serve = (): Response => {
      seen.served = doc.gen
      return new Response(doc.body, { status: 200, headers: { 'content-type': 'application/json' } })
    }
    return async (input, init) => {
      if (this.#fresh(doc) && doc.gen > seen.served) return serve()
      const result = await this.#fetchDocument(doc, String(input), init)
      if (result.ok) return serve()
      // Too large: a body one byte over the cap, so the engine words it as its own cap.
      if (result.oversized === true) return new Response(new Uint8Array(MAX_JWKS_BYTES + 1), { status: 200 })
      return new Response(null, { status: result.status })
    }
  }

  /** One flight per zone document; a failure leaves the document (and every engine's keys) as they were. */
  #fetchDocument(doc: ZoneDocument, url: string, init: RequestInit | undefined): Promise<FlightResult> {
    if (doc.inflight !== undefined) return doc.inflight
    const flight = this.#download(doc, url, init).finally(() => {
      doc.inflight = undefined
    })
    doc.inflight = flight
    return flight
  }

  async #download(doc: ZoneDocument, url: string, init: RequestInit | undefined): Promise<FlightResult> {
    // Read at every call: a fetch stubbed after the cache was made is the one used, as in Caracal.
    const response = await (this.options.fetchImpl ?? globalThis.fetch)(url, init)
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => {})
      // A Response cannot be made with a status outside 200–599; such an answer is a bad gateway.
      return { ok: false, status: response.status >= 200 && response.status <= 599 ? response.status : 502 }
    }
    const text = await readCapped(response)
    if (text === undefined) return { ok: false, status: 200, oversized: true }
    doc.body = text
    doc.keys = keysOf(text)
    doc.at = Date.now()
    doc.gen++
    return { ok: true }
  }

  #fresh(doc: ZoneDocument): boolean {
    return doc.body !== undefined && Date.now() - doc.at < this.options.ttlMs
  }

  /**
   * `JwksCache.warm`: a fresh document for the zone (fetched only when there is none), then the keys
   * of every engine of the zone that has not been given it yet. Rejects when the STS cannot be read,
   * as the Caracal cache's warm does.
   */
  async warm(issuer: string, zoneId: string | undefined): Promise<void> {
    const doc = this.#document(issuer, zoneId)
    if (!this.#fresh(doc)) {
      const url = jwksUrl(issuer, zoneId)
      // Our own timer, held until the fetch settles (fetch-jwks.ts says why not AbortSignal.timeout).
      const controller = new AbortController()
      const timer = setTimeout(() => controller.abort(), this.options.fetchTimeoutMs)
      let result: FlightResult
      try {
        result = await this.#fetchDocument(doc, url, {
          signal: controller.signal,
          redirect: 'manual',
          headers: { accept: 'application/json' },
        })
      } finally {
        clearTimeout(timer)
      }
      if (!result.ok)
        throw new Error(result.oversized === true ? 'JWKS document too large' : `JWKS fetch failed: ${result.status}`)
    }
    const key = docKey(issuer, zoneId)
    const behind = [...this.#slots.values()].filter(
      (s) => s.doc === key && s.auth !== undefined && s.seen.served < doc.gen,
    )
    await Promise.all(behind.map((s) => s.auth!.warmup()))
  }

  /** The keys of the zone's current document (fetched first if there is none). */
  async keys(issuer: string, zoneId: string | undefined): Promise<readonly JsonWebKey[]> {
    await this.warm(issuer, zoneId)
    return this.#document(issuer, zoneId).keys
  }

  /** `JwksCache.clear`: drops documents and engines, so the next verification fetches again. */
  clear(issuer?: string, zoneId?: string): void {
    const matches = (key: string): boolean =>
      issuer && zoneId ? key === docKey(issuer, zoneId) : issuer ? key.startsWith(`${issuer}\u0000`) : true
    for (const key of [...this.#docs.keys()]) if (matches(key)) this.#docs.delete(key)
    for (const [key, slot] of [...this.#slots]) if (matches(slot.doc)) this.#drop(key)
  }

  #drop(key: string): void {
    const slot = this.#slots.get(key)
    this.#slots.delete(key)
    this.generation++
    void slot?.auth?.close()
  }

  /** Every engine made so far (for tests and stats: their cache misses count the signature checks). */
  engines(): CaracalAuth[] {
    return [...this.#slots.values()].flatMap((s) => (s.auth === undefined ? [] : [s.auth]))
  }
}

/**
 * The last engine one caller asked for, compared field by field: a `createMandateVerifier` (or the
 * free `verify` called with equal settings) finds its engine without building a key string.
 */
export class EngineMemo {
  #registry: EngineRegistry | undefined
  #generation = -1
  #issuer: unknown
  #audience: unknown
  #zoneId: unknown
  #use: unknown
  #auth: CaracalAuth | undefined
  /** The settings object (never modified once made) and default `use` the engine was last found for. */
  #settings: object | undefined
  #defaultUse: unknown

  /**
   * The engine last found for this very settings object, while the registry still holds it: a
   * verifier's defaults are one object, so its calls skip the field-by-field comparison.
   */
  known(settings: object, defaultUse: unknown): CaracalAuth | undefined {
    return settings === this.#settings &&
      defaultUse === this.#defaultUse &&
      this.#registry !== undefined &&
      this.#generation === this.#registry.generation
      ? this.#auth
      : undefined
  }

  /** Notes that the engine `get` just answered is the one for `settings`. */
  remember(settings: object, defaultUse: unknown): void {
    this.#settings = settings
    this.#defaultUse = defaultUse
  }

  get(
    registry: EngineRegistry,
    issuer: string,
    audience: unknown,
    zoneId: string | undefined,
    use: unknown,
  ): CaracalAuth {
    if (
      this.#auth !== undefined &&
      this.#registry === registry &&
      this.#generation === registry.generation &&
      this.#issuer === issuer &&
      this.#audience === audience &&
      this.#zoneId === zoneId &&
      this.#use === use
    )
      return this.#auth
    const auth = registry.engineFor(issuer, audience, zoneId, use)
    this.#registry = registry
    this.#generation = registry.generation
    this.#issuer = issuer
    this.#audience = audience
    this.#zoneId = zoneId
    this.#use = use
    this.#auth = auth
    return auth
  }
}

/** Where a Caracal STS publishes a zone's keys (README "Keys (JWKS)"), as the engine computes it. */
function jwksUrl(issuer: string, zoneId: string | undefined): string {
  const base = `${issuer.replace(/\/+$/, '')}/.well-known/jwks.json`
  return zoneId ? `${base}?${new URLSearchParams({ zone_id: zoneId })}` : base
}

/** The body as text, or undefined when it is larger than the cap (declared or read). */
async function readCapped(response: Response): Promise<string | undefined> {
  const declared = Number(response.headers.get('content-length'))
  if (Number.isFinite(declared) && declared > MAX_JWKS_BYTES) {
    await response.body?.cancel().catch(() => {})
    return undefined
  }
  if (response.body === null) return ''
  const reader = response.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > MAX_JWKS_BYTES) {
      await reader.cancel().catch(() => {})
      return undefined
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function keysOf(text: string): readonly JsonWebKey[] {
  try {
    const parsed = JSON.parse(text) as { keys?: unknown }
    return Array.isArray(parsed?.keys)
      ? (parsed.keys.filter((k) => typeof k === 'object' && k !== null) as JsonWebKey[])
      : []
  } catch {
    return []
  }
}

/**
 * A jose-style key getter over a document's keys: the one key that fits the header's `kid` and
 * `alg` (public keys for signatures only), as a `KeyObject` jose's `jwtVerify` accepts.
 */
export function keyGetter(keys: readonly JsonWebKey[]): KeyGetter {
  return async (header) => {
    const kty = header.alg?.startsWith('ES')
      ? 'EC'
      : header.alg?.startsWith('RS') || header.alg?.startsWith('PS')
        ? 'RSA'
        : undefined
    const fits = keys.filter(
      (k) =>
        (header.kid === undefined || (k as { kid?: unknown }).kid === header.kid) &&
        (k.alg === undefined || k.alg === header.alg) &&
        (k.use === undefined || k.use === 'sig') &&
        (kty === undefined || k.kty === kty) &&
        (k as { d?: unknown }).d === undefined,
    )
    if (fits.length !== 1)
      throw new Error(
        fits.length === 0
          ? 'no applicable key found in the JSON Web Key Set'
          : 'multiple matching keys found in the JSON Web Key Set',
      )
    return createPublicKey({ key: fits[0] as NodeJsonWebKey, format: 'jwk' })
  }
}
