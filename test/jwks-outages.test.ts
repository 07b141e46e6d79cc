/**
 * JWKS outages (README "Keys (JWKS)"), against a real loopback endpoint switched between the ways an
 * STS fails (test/support/jwks-outage-server.ts): down, slow, garbage, oversized, and keys rotating
 * under load. What a gateway relies on:
 * - answers stay right: known keys verify, unknown kids are refused with invalid_token and say why;
 * - no request waits for more than one fetch, so none takes longer than `BOUND_MS` (timeoutMs plus
 *   a wide margin for a loaded machine), measured per request with the wall clock;
 * - known keys keep working until `jwks.maxStaleMs`, then fail as unavailable (HTTP 503);
 * - fetches stay bounded (counted at the server): one per cooldown for unknown kids, one per second
 *   once no trusted key is left;
 * - recovery needs nothing but the STS coming back: no restart, no manual refresh;
 * - `stats().jwks` shows the failures and the last error meanwhile.
 * Time beyond one fetch is moved with the injectable clock, never waited for. Cost: about 5 s, most
 * of it the three slow behaviours waiting out timeoutMs (400 ms) two or three times each.
 */
import { afterEach, describe, expect, it } from 'vitest'
import {
  CaracalAuth,
  CaracalAuthError,
  InMemoryRevocationStore,
  renderAuthError,
  type CaracalAuthOptions,
  type Claims,
} from '../src/index.js'
import { resolveBackends } from '../src/backends/index.js'
import { JwksSource } from '../src/jwks/remote-jwks.js'
import { DEFAULT_JWKS_MAX_STALE_MS } from '../src/options.js'
import { generateSigningKey, type SigningKey } from '../src/dev/sign-jws.js'
import { TEST_BACKENDS } from './support/backends.js'
import { eventually } from './support/jwks-server.js'
import {
  REDIRECT_TARGET,
  startOutageServer,
  type OutageBehaviour,
  type OutageServer,
} from './support/jwks-outage-server.js'
import { AUDIENCE, NOW_MS, mint } from './support/mandates.js'
import { testClock, type TestClock } from './support/test-clock.js'
import { testVerifier } from './support/verifiers.js'

const keyA = generateSigningKey('ES256', 'outage-a')
const keyB = generateSigningKey('ES256', 'outage-b')
const keyR = generateSigningKey('RS256', 'outage-r')

const TIMEOUT_MS = 400
/** A request waits for one fetch at most, and a fetch has TIMEOUT_MS for the whole exchange. */
const BOUND_MS = TIMEOUT_MS + 1_600
const TTL_MS = 60_000
const COOLDOWN_MS = 10_000
const MAX_BYTES = 16 * 1024
const HOUR_MS = 3_600_000
const ROTATION_TIMEOUT_MS = 2_000

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c()
})

async function outageServer(keys: readonly SigningKey[]): Promise<OutageServer> {
  const s = await startOutageServer({ keys: keys.map((k) => k.publicJwk) })
  cleanups.push(() => s.close())
  return s
}

function remoteAuth(
  s: OutageServer,
  clock: TestClock,
  jwks: CaracalAuthOptions['jwks'] = {},
  backend: string = TEST_BACKENDS[0]!,
): CaracalAuth {
  const auth = new CaracalAuth({
    issuer: s.issuer,
    audience: AUDIENCE,
    revocations: new InMemoryRevocationStore(),
    backend: backend as never,
    now: clock.now,
    jwks: { ttlMs: TTL_MS, cooldownMs: COOLDOWN_MS, timeoutMs: TIMEOUT_MS, maxBytes: MAX_BYTES, ...jwks },
  })
  cleanups.push(() => auth.close())
  return auth
}

/** A mandate of `s` signed by `key`, valid for `lifeSec` from the clock's now. */
function tokenAt(s: OutageServer, clock: TestClock, key: SigningKey, lifeSec = 600): string {
  const now = Math.floor(clock.ms / 1000)
  return mint({ iss: s.issuer, iat: now - 10, exp: now + lifeSec }, key)
}

interface Timed {
  readonly ms: number
  /** The order answers were given in, across every call of this file. */
  readonly answered: number
  readonly claims?: Claims
  readonly error?: CaracalAuthError
}

let answers = 0

/** Starts `verify` at once and measures its wall-clock latency; anything but a CaracalAuthError fails. */
function timed(auth: CaracalAuth, token: string): Promise<Timed> {
  const started = performance.now()
  return auth.verify(token).then(
    (claims) => ({ ms: performance.now() - started, answered: answers++, claims }),
    (error: unknown) => {
      if (!(error instanceof CaracalAuthError)) throw error
      return { ms: performance.now() - started, answered: answers++, error }
    },
  )
}

const all = (auth: CaracalAuth, tokens: readonly string[]): Promise<Timed[]> =>
  Promise.all(tokens.map((t) => timed(auth, t)))

function expectWithinBound(results: readonly Timed[], bound = BOUND_MS): void {
  expect(Math.max(...results.map((r) => r.ms))).toBeLessThan(bound)
}

function expectAccepted(results: readonly Timed[]): void {
  for (const r of results) expect(r.error?.description, 'a known key must verify').toBeUndefined()
  for (const r of results) expect(r.claims?.sub).toBe('user-1')
}

function expectRefused(results: readonly Timed[], description: string): void {
  for (const r of results) {
    expect(r.claims, 'must be refused').toBeUndefined()
    expect(r.error?.code).toBe('invalid_token')
    expect(r.error?.description).toBe(description)
  }
}

const times = <T>(n: number, make: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => make(i))

/** Each outage, and the lastError it must leave (README "Keys (JWKS)": stats().jwks.lastError). */
const OUTAGES: readonly (readonly [OutageBehaviour, string])[] = [
  ['down', 'JWKS fetch failed (ECONNREFUSED)'],
  ['late', `JWKS fetch timed out after ${TIMEOUT_MS} ms`],
  ['stalled-body', `JWKS fetch timed out after ${TIMEOUT_MS} ms`],
  ['trickle', `JWKS fetch timed out after ${TIMEOUT_MS} ms`],
  ['dropped-mid-body', 'JWKS body could not be read (UND_ERR_SOCKET)'],
  ['html', 'JWKS is not JSON'],
  ['invalid-json', 'JWKS is not JSON'],
  ['json-without-keys', 'JWKS has no "keys" array'],
  ['http-500', 'JWKS endpoint answered HTTP 500'],
  ['http-503', 'JWKS endpoint answered HTTP 503'],
  ['redirect', 'JWKS endpoint answered HTTP 302 (a redirect, not followed)'],
  ['huge-content-length', `JWKS larger than ${MAX_BYTES} bytes`],
  ['huge-chunked', `JWKS larger than ${MAX_BYTES} bytes`],
  ['huge-until-close', `JWKS larger than ${MAX_BYTES} bytes`],
]

/** Behaviours whose fetch fails only at the deadline: a known key answering before it did not wait. */
const SLOW: ReadonlySet<OutageBehaviour> = new Set(['late', 'stalled-body', 'trickle'])

describe('an STS outage after the keys were loaded', () => {
  it.each(OUTAGES)(
    '%s: known keys verify at once, unknown kids are refused within the bound at one fetch per cooldown, and recovery is automatic',
    async (behaviour, lastError) => {
      const s = await outageServer([keyA])
      const clock = testClock()
      const auth = remoteAuth(s, clock)
      await auth.warmup()
      const fetches = (): number => auth.stats().jwks.fetches
      // Nothing reaches a server that is down: the server counts only the healthy fetches then.
      const expectServerSaw = (n: number): void => expect(s.jwksHits).toBe(behaviour === 'down' ? 1 : n)
      // Meanwhile the STS rotated B in: the verifier can learn it only once the STS is back.
      s.keys = { keys: [keyA.publicJwk, keyB.publicJwk] }
      await s.set(behaviour)
      const unknownKid = `no usable key: unknown kid; the JWKS could not be refreshed (${lastError})`

      clock.advance(TTL_MS) // the set is due for its background refresh, which is going to fail
      const known = await timed(auth, tokenAt(s, clock, keyA))
      expectAccepted([known])
      expect(fetches()).toBe(2)
      if (SLOW.has(behaviour)) expect(auth.stats().jwks.fetchFailures, 'answered before the fetch ended').toBe(0)

      // A crowd of unknown kids joins the failing refresh (or waits out its cooldown): no new fetch.
      const crowd = await all(auth, [
        ...times(40, () => tokenAt(s, clock, keyA)),
        ...times(40, () => tokenAt(s, clock, keyB)),
      ])
      expectAccepted(crowd.slice(0, 40))
      expectRefused(crowd.slice(40), unknownKid)
      expectWithinBound(crowd)
      expect(fetches()).toBe(2)
      expectServerSaw(2)
      expect(auth.stats().jwks).toMatchObject({ keys: 1, fetchFailures: 1, lastError, lastFetchAt: NOW_MS })

      clock.advance(COOLDOWN_MS - 1)
      expectRefused(
        await all(
          auth,
          times(20, () => tokenAt(s, clock, keyB)),
        ),
        unknownKid,
      )
      expect(fetches()).toBe(2)
      clock.advance(1) // one cooldown on: exactly one more fetch, however many wait
      const second = await all(auth, [
        ...times(40, () => tokenAt(s, clock, keyB)),
        ...times(10, () => tokenAt(s, clock, keyA)),
      ])
      expectRefused(second.slice(0, 40), unknownKid)
      expectAccepted(second.slice(40))
      expectWithinBound(second)
      expect(fetches()).toBe(3)
      expectServerSaw(3)
      expect(auth.stats().jwks).toMatchObject({ keys: 1, fetchFailures: 2, lastError, lastFetchAt: NOW_MS })
      if (behaviour === 'redirect') expect(s.hits.get(REDIRECT_TARGET), 'a redirect is never followed').toBeUndefined()
      // Every connection the verifier opened is closed again: a stalled or endless body is dropped.
      await eventually(() => s.open === 0, BOUND_MS)

      // The STS is back: the next request after the cooldown brings B in, with no restart.
      await s.set('healthy')
      clock.advance(COOLDOWN_MS)
      const recovered = await timed(auth, tokenAt(s, clock, keyB))
      expectAccepted([recovered])
      expectWithinBound([recovered])
      expectAccepted(await all(auth, [tokenAt(s, clock, keyA), tokenAt(s, clock, keyB)]))
      expect(auth.stats().jwks).toMatchObject({
        keys: 2,
        fetches: 4,
        fetchFailures: 2,
        lastError: undefined,
        lastFetchAt: clock.ms,
      })
      expect(s.jwksHits).toBe(behaviour === 'down' ? 2 : 4)
    },
  )
})

describe('an STS failing from the start', () => {
  it.each(['down', 'late', 'http-503'] as const)(
    '%s: refused within the bound at one fetch however many wait, retried at most once a second, accepted once it is up',
    async (behaviour) => {
      const s = await outageServer([keyA])
      await s.set(behaviour)
      const clock = testClock()
      const auth = remoteAuth(s, clock)
      const reason = {
        down: 'JWKS fetch failed (ECONNREFUSED)',
        late: `JWKS fetch timed out after ${TIMEOUT_MS} ms`,
        'http-503': 'JWKS endpoint answered HTTP 503',
      }[behaviour]
      const description = `no usable key: signing keys unavailable (${reason})`
      const first = await all(
        auth,
        times(30, () => tokenAt(s, clock, keyA)),
      )
      expectRefused(first, description)
      expectWithinBound(first)
      expect(auth.stats().jwks).toMatchObject({ keys: 0, fetches: 1, fetchFailures: 1, lastError: reason })
      clock.advance(999)
      expectRefused(
        await all(
          auth,
          times(10, () => tokenAt(s, clock, keyA)),
        ),
        description,
      )
      expect(auth.stats().jwks.fetches).toBe(1)
      expect(s.jwksHits).toBe(behaviour === 'down' ? 0 : 1)
      await s.set('healthy')
      clock.advance(1)
      const up = await all(
        auth,
        times(10, () => tokenAt(s, clock, keyA)),
      )
      expectAccepted(up)
      expectWithinBound(up)
      expect(auth.stats().jwks).toMatchObject({ keys: 1, fetches: 2, lastError: undefined })
      expect(s.jwksHits).toBe(behaviour === 'down' ? 1 : 2)
    },
  )
})

describe.each(TEST_BACKENDS)('keys rotating under load, on %s', (backend) => {
  it('a key added is learnt with one fetch, a key removed stops at once, and no request sees the old set after one saw the new', async () => {
    const s = await outageServer([keyA, keyR])
    const clock = testClock()
    // Not a timeout test: the deadline is generous, so a loaded machine verifying on the slowest
    // backend (noble ES256, ~3 ms each) between the fetch's event-loop turns does not make it fail.
    const auth = remoteAuth(s, clock, { timeoutMs: ROTATION_TIMEOUT_MS }, backend)
    const bound = ROTATION_TIMEOUT_MS + 1_600
    await auth.warmup()
    // A busy but healthy STS: every answer takes 50 ms, so requests pile up while a fetch runs.
    s.lateMs = 50
    await s.set('late')
    const cachedA = tokenAt(s, clock, keyA, 3 * 3600)
    await auth.verify(cachedA)
    const wave = (n: number): string[] =>
      times(n, () => [tokenAt(s, clock, keyA), tokenAt(s, clock, keyB), tokenAt(s, clock, keyR), cachedA]).flat()

    // B is published next to A: the first unknown kid refetches, the others join that one flight.
    s.keys = { keys: [keyA.publicJwk, keyR.publicJwk, keyB.publicJwk] }
    clock.advance(COOLDOWN_MS)
    const added = await all(auth, wave(15))
    expectAccepted(added)
    expectWithinBound(added, bound)
    expect(s.jwksHits).toBe(2)

    // A is withdrawn. The TTL refresh runs in the background while waves keep arriving.
    s.keys = { keys: [keyR.publicJwk, keyB.publicJwk] }
    clock.advance(TTL_MS)
    const loadedBefore = auth.stats().jwks.lastFetchAt
    const results: { kind: 'A' | 'B' | 'R' | 'cached A'; result: Promise<Timed> }[] = []
    const kinds = ['A', 'B', 'R', 'cached A'] as const
    const refreshEnded = (): boolean =>
      auth.stats().jwks.lastFetchAt !== loadedBefore || auth.stats().jwks.fetchFailures > 0
    for (let round = 0; round < 500 && !refreshEnded(); round++) {
      for (const [i, t] of wave(5).entries()) results.push({ kind: kinds[i % 4]!, result: timed(auth, t) })
      await new Promise((r) => setTimeout(r, 5))
    }
    expect(auth.stats().jwks).toMatchObject({ fetches: 3, fetchFailures: 0, lastError: undefined })
    expect(auth.stats().jwks.lastFetchAt, 'the background refresh completed').not.toBe(loadedBefore)
    const after = await all(auth, wave(15))
    for (const [i, r] of after.entries()) results.push({ kind: kinds[i % 4]!, result: Promise.resolve(r) })
    const settled = await Promise.all(results.map(async (r) => ({ kind: r.kind, ...(await r.result) })))
    expectWithinBound(settled, bound)
    expectAccepted(settled.filter((r) => r.kind === 'B' || r.kind === 'R'))
    // In the order the answers were given: A is accepted up to the switch, refused from it on. (Not
    // the order the requests started in: a cold token waits for the end of its turn of the event
    // loop under load (src/cold-batch.ts) and is then checked against the keys of that moment, so a
    // cache hit that started after it may be answered, from the old set, before it.)
    const aOutcomes = settled.filter((r) => r.kind !== 'B' && r.kind !== 'R').sort((x, y) => x.answered - y.answered)
    const firstRefused = aOutcomes.findIndex((r) => r.error !== undefined)
    expect(firstRefused, 'A kept verifying while the refresh ran, and is refused once it left').toBeGreaterThan(0)
    expectAccepted(aOutcomes.slice(0, firstRefused))
    for (const r of aOutcomes.slice(firstRefused)) {
      expect(r.error?.code).toBe('invalid_token')
      // A cached token gets the answer a fresh one gets: its key is unknown now.
      expect(r.error?.description).toBe('no usable key: unknown kid')
    }
    expect(aOutcomes.slice(-30).every((r) => r.error !== undefined)).toBe(true)
    // One background refresh, and the refused A kids waited out its cooldown.
    expect(s.jwksHits).toBe(3)
    expect(auth.stats().jwks).toMatchObject({ keys: 2, fetches: 3, fetchFailures: 0 })
  })
})

describe('jwks.maxStaleMs: keys that could not be refreshed for that long are not trusted', () => {
  it('known keys verify up to maxStaleMs, are refused past it saying the keys are stale, and come back with the STS', async () => {
    const s = await outageServer([keyA])
    const clock = testClock()
    const auth = remoteAuth(s, clock, { maxStaleMs: HOUR_MS })
    await auth.warmup()
    await s.set('http-503')
    clock.advance(HOUR_MS) // exactly maxStaleMs old: still trusted
    expectAccepted([await timed(auth, tokenAt(s, clock, keyA))])
    await eventually(() => auth.stats().jwks.fetchFailures === 1)

    clock.advance(1)
    const stale = `no usable key: signing keys are stale (not refreshed for more than ${HOUR_MS} ms: JWKS endpoint answered HTTP 503)`
    const refused = await all(auth, [...times(30, () => tokenAt(s, clock, keyA)), tokenAt(s, clock, keyB)])
    expectRefused(refused, stale)
    expectWithinBound(refused)
    // The refresh that failed a millisecond ago is not retried yet…
    expect(auth.stats().jwks).toMatchObject({ fetches: 2, fetchFailures: 1, lastFetchAt: NOW_MS })
    // …but once stale, every second (not every cooldown) — one fetch however many wait.
    clock.advance(1_000)
    expectRefused(
      await all(
        auth,
        times(30, () => tokenAt(s, clock, keyA)),
      ),
      stale,
    )
    expect(auth.stats().jwks).toMatchObject({ fetches: 3, fetchFailures: 2 })
    expect(s.jwksHits).toBe(3)

    await s.set('healthy')
    clock.advance(1_000)
    const back = await all(
      auth,
      times(10, () => tokenAt(s, clock, keyA)),
    )
    expectAccepted(back)
    expectWithinBound(back)
    expect(auth.stats().jwks).toMatchObject({ fetches: 4, lastError: undefined, lastFetchAt: clock.ms })
  })

  it('while stale and the STS slow, waiting requests share one fetch and none waits past the bound', async () => {
    const s = await outageServer([keyA])
    const clock = testClock()
    const auth = remoteAuth(s, clock, { maxStaleMs: HOUR_MS })
    await auth.warmup()
    await s.set('trickle')
    clock.advance(HOUR_MS + 1)
    const refused = await all(
      auth,
      times(50, () => tokenAt(s, clock, keyA)),
    )
    expectRefused(
      refused,
      `no usable key: signing keys are stale (not refreshed for more than ${HOUR_MS} ms: JWKS fetch timed out after ${TIMEOUT_MS} ms)`,
    )
    expectWithinBound(refused)
    expect(s.jwksHits).toBe(2)
  })

  it('a gateway idle for longer than maxStaleMs does not fail its first request when the STS is fine', async () => {
    const s = await outageServer([keyA])
    const clock = testClock()
    const auth = remoteAuth(s, clock, { maxStaleMs: HOUR_MS })
    await auth.warmup()
    clock.advance(5 * HOUR_MS)
    const first = await timed(auth, tokenAt(s, clock, keyA))
    expectAccepted([first])
    expectWithinBound([first])
    expect(auth.stats().jwks).toMatchObject({ fetches: 2, fetchFailures: 0, lastFetchAt: clock.ms })
  })

  it('the default is 24 hours: keys an hour short of it verify through an outage, an hour past it they do not', async () => {
    expect(DEFAULT_JWKS_MAX_STALE_MS).toBe(24 * HOUR_MS)
    const s = await outageServer([keyA])
    const clock = testClock()
    const auth = remoteAuth(s, clock)
    expect(auth.options.jwks.maxStaleMs).toBe(24 * HOUR_MS)
    await auth.warmup()
    await s.set('down')
    clock.advance(23 * HOUR_MS)
    expectAccepted([await timed(auth, tokenAt(s, clock, keyA))])
    clock.advance(2 * HOUR_MS)
    const e = (await timed(auth, tokenAt(s, clock, keyA))).error
    expect(e?.code).toBe('invalid_token')
    expect(e?.description).toMatch(/^no usable key: signing keys are stale \(not refreshed for more than 86400000 ms: /)
  })

  it('a static JWKS never goes stale', async () => {
    const clock = testClock()
    const { auth } = testVerifier(
      TEST_BACKENDS[0]!,
      { jwks: { keys: [keyA.publicJwk], ttlMs: 0, maxStaleMs: 0 } },
      clock,
    )
    clock.advance(365 * 24 * HOUR_MS)
    const now = Math.floor(clock.ms / 1000)
    await expect(auth.verify(mint({ iat: now - 10, exp: now + 60 }, keyA))).resolves.toMatchObject({ sub: 'user-1' })
    await auth.close()
  })
})

describe('jwks.maxStaleMs is validated with the other JWKS options', () => {
  const base = { issuer: 'https://sts.example', audience: AUDIENCE, revocations: new InMemoryRevocationStore() }
  const make = (jwks: Record<string, unknown>) => () => new CaracalAuth({ ...base, jwks } as CaracalAuthOptions)

  it.each([
    ['-1', -1],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['a string', '24h'],
  ])('%s is a TypeError naming jwks.maxStaleMs', (_name, value) => {
    expect(make({ maxStaleMs: value })).toThrow(
      new TypeError('CaracalAuth option "jwks.maxStaleMs" must be a non-negative number of milliseconds'),
    )
  })

  it('below jwks.ttlMs is a TypeError: the keys would go stale before a refresh was tried', () => {
    expect(make({ ttlMs: 60_000, maxStaleMs: 59_999 })).toThrow(
      new TypeError('CaracalAuth option "jwks.maxStaleMs" must be at least jwks.ttlMs (60000 ms)'),
    )
    expect(make({ ttlMs: 60_000, maxStaleMs: 60_000 })().options.jwks.maxStaleMs).toBe(60_000)
  })

  it('unset, it is 24 hours, or ttlMs when that is longer', () => {
    expect(make({})().options.jwks.maxStaleMs).toBe(DEFAULT_JWKS_MAX_STALE_MS)
    expect(make({ ttlMs: 48 * HOUR_MS })().options.jwks.maxStaleMs).toBe(48 * HOUR_MS)
  })
})

describe('JwksSource: what the verifier (and its cache) ask of the keys', () => {
  function source(s: OutageServer, clock: TestClock): JwksSource {
    const src = new JwksSource({
      url: s.jwksUrl,
      ttlMs: TTL_MS,
      cooldownMs: COOLDOWN_MS,
      timeoutMs: TIMEOUT_MS,
      maxBytes: MAX_BYTES,
      maxStaleMs: HOUR_MS,
      fetch: globalThis.fetch,
      now: clock.now,
      backendFor: resolveBackends(TEST_BACKENDS[0]!),
    })
    cleanups.push(() => src.close())
    return src
  }

  it('unavailableReason() says why the keys cannot be trusted now, and is undefined while they can', async () => {
    const s = await outageServer([keyA])
    const clock = testClock()
    const src = source(s, clock)
    expect(src.unavailableReason()).toBe('signing keys unavailable (not loaded)')
    await src.refresh()
    expect(src.unavailableReason()).toBeUndefined()
    await s.set('http-503')
    clock.advance(HOUR_MS)
    expect(src.unavailableReason()).toBeUndefined()
    // It starts the background refresh that is due, so traffic served from a cache still recovers.
    expect(src.stats().fetches).toBe(2)
    await eventually(() => src.stats().fetchFailures === 1)
    clock.advance(1)
    expect(src.unavailableReason()).toBe(
      `signing keys are stale (not refreshed for more than ${HOUR_MS} ms: JWKS endpoint answered HTTP 503)`,
    )
    expect(src.lookup('ES256', 'outage-a')).toEqual({ reason: src.unavailableReason(), unavailable: true })
    await s.set('healthy')
    clock.advance(COOLDOWN_MS)
    expect(src.unavailableReason()).not.toBeUndefined() // the refresh it started is still running
    await eventually(() => src.unavailableReason() === undefined)
    expect(src.lookup('ES256', 'outage-a').key).toBeDefined()
  })

  it('resolve() marks an unknown kid unavailable only while the JWKS cannot be refetched', async () => {
    const s = await outageServer([keyA])
    const clock = testClock()
    const src = source(s, clock)
    await src.refresh()
    clock.advance(COOLDOWN_MS)
    expect(await src.resolve('ES256', 'outage-b')).toEqual({ reason: 'unknown kid' })
    await s.set('http-500')
    clock.advance(COOLDOWN_MS)
    expect(await src.resolve('ES256', 'outage-b')).toEqual({
      reason: 'unknown kid; the JWKS could not be refreshed (JWKS endpoint answered HTTP 500)',
      unavailable: true,
    })
  })
})

/**
 * A JWKS outage is the gateway's problem and temporary: the error carries `unavailable` (503 with
 * Retry-After, no challenge), and a verified-token cache hit does not count while the keys cannot
 * be trusted — it takes the uncached path, which waits for one refresh at most and fails the same way.
 */
describe('the HTTP answer of a JWKS outage is 503 with Retry-After, not a challenge', () => {
  function expect503(e: CaracalAuthError | undefined): void {
    expect(e?.code).toBe('invalid_token')
    expect(e?.unavailable, 'a JWKS outage is ours and temporary').toBe(true)
    const r = renderAuthError(e!)
    expect(r.status).toBe(503)
    expect(r.headers['retry-after']).toBe('5')
    expect(r.headers['www-authenticate']).toBeUndefined()
  }

  it('stale keys, no keys at all, and an unknown kid during the outage are unavailable; an unknown kid otherwise is a 401', async () => {
    const s = await outageServer([keyA])
    const clock = testClock()
    const auth = remoteAuth(s, clock, { maxStaleMs: HOUR_MS })
    await auth.warmup()
    clock.advance(COOLDOWN_MS)
    const healthyUnknown = (await timed(auth, tokenAt(s, clock, keyB))).error
    expect(healthyUnknown?.description).toBe('no usable key: unknown kid')
    expect(healthyUnknown?.unavailable).toBe(false)
    expect(renderAuthError(healthyUnknown!).status).toBe(401)

    await s.set('down')
    clock.advance(COOLDOWN_MS)
    expect503((await timed(auth, tokenAt(s, clock, keyB))).error)
    clock.advance(HOUR_MS)
    expect503((await timed(auth, tokenAt(s, clock, keyA))).error)

    const cold = remoteAuth(s, clock)
    expect503((await timed(cold, tokenAt(s, clock, keyA))).error)
  })

  it('a cached token is refused too once the keys are stale, and accepted again after recovery', async () => {
    const s = await outageServer([keyA])
    const clock = testClock()
    const auth = remoteAuth(s, clock, { maxStaleMs: HOUR_MS })
    await auth.warmup()
    const cached = tokenAt(s, clock, keyA, 3 * 3600)
    expectAccepted([await timed(auth, cached)])
    await s.set('http-503')
    clock.advance(HOUR_MS)
    expectAccepted([await timed(auth, cached)])
    await eventually(() => auth.stats().jwks.fetchFailures === 1)
    clock.advance(1_000)
    const e = (await timed(auth, cached)).error
    expect(e?.description).toBe(
      `no usable key: signing keys are stale (not refreshed for more than ${HOUR_MS} ms: JWKS endpoint answered HTTP 503)`,
    )
    expect503(e)
    await s.set('healthy')
    clock.advance(1_000)
    expectAccepted([await timed(auth, cached)])
  })
})
