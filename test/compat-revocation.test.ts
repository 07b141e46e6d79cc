/**
 * `caracal-fastmcp/compat/revocation` as `@caracalai/revocation` is used: Caracal's own tests of its
 * in-memory store with only the import specifier changed, its defaults written out from its source
 * (`packages/revocation/ts/src/inmem.ts`), the differences the module's top comment lists, and the
 * store inside `CaracalAuth` on every backend (revocation anchors, empty claims, epochs).
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import * as compat from '../src/compat/revocation.js'
import { InMemoryRevocationStore, type RevocationStore } from '../src/compat/revocation.js'
import { RevocationStoreFullError } from '../src/revocation/in-memory-store.js'
import { TEST_BACKENDS } from './support/backends.js'
import { mint } from './support/mandates.js'
import { rejection, testVerifier } from './support/verifiers.js'

afterEach(() => {
  vi.useRealTimers()
})

// What Caracal's own unit tests of this store assert, written against the compat entry.
describe('InMemoryRevocationStore, as Caracal tests it', () => {
  it('a revocation holds until its TTL runs out', () => {
    vi.useFakeTimers()
    const store = new InMemoryRevocationStore({ defaultTtlMs: 1_000 })
    store.markRevoked('session-a')
    expect(store.isRevoked('session-a')).toBe(true)
    vi.advanceTimersByTime(1_001)
    expect(store.isRevoked('session-a')).toBe(false)
  })

  it('a full store refuses the next revocation and keeps the ones it holds', () => {
    const store = new InMemoryRevocationStore({ maxEntries: 2 })
    store.markRevoked('session-a')
    store.markRevoked('session-b')
    expect(() => store.markRevoked('session-c')).toThrow('capacity exceeded')
    expect([store.isRevoked('session-a'), store.isRevoked('session-b')]).toEqual([true, true])
  })

  it('expired entries make room when the store is full', () => {
    vi.useFakeTimers()
    const store = new InMemoryRevocationStore({ maxEntries: 2, defaultTtlMs: 1_000 })
    store.markRevoked('session-a')
    store.markRevoked('session-b')
    vi.advanceTimersByTime(1_001)
    store.markRevoked('session-c')
    expect(store.isRevoked('session-c')).toBe(true)
    expect(store.size()).toBe(1)
  })
})

describe("the package's surface, as Caracal's source defines it", () => {
  it('exports InMemoryRevocationStore at run time (RevocationStore is a type), and nothing else', () => {
    expect(Object.keys(compat).sort()).toEqual(['InMemoryRevocationStore'])
    const asContract: RevocationStore = new InMemoryRevocationStore()
    expect(typeof asContract.currentDelegationEpoch).toBe('function')
    expect(typeof asContract.markDelegationEpoch).toBe('function')
  })

  it('size() is a method, counting what is held', () => {
    const store = new InMemoryRevocationStore()
    expect(typeof store.size).toBe('function')
    store.markRevoked('a')
    store.markRevoked('b')
    store.markRevoked('a')
    expect(store.size()).toBe(2)
  })

  it.each([
    // [what, Caracal's value in inmem.ts, how it is observed]
    ['defaultTtlMs', 24 * 60 * 60 * 1000],
  ])('default %s is %d: revoked until then, not after', (_name, ttlMs) => {
    vi.useFakeTimers()
    const store = new InMemoryRevocationStore()
    store.markRevoked('sid-day')
    store.markDelegationEpoch('zone-1', 3)
    vi.advanceTimersByTime(ttlMs - 1)
    expect([store.isRevoked('sid-day'), store.currentDelegationEpoch('zone-1')]).toEqual([true, 3])
    vi.advanceTimersByTime(1)
    expect([store.isRevoked('sid-day'), store.currentDelegationEpoch('zone-1')]).toEqual([false, 0])
  })

  it("default maxEntries is Caracal's 100 000: the next live revocation is refused, none is dropped", () => {
    const store = new InMemoryRevocationStore()
    for (let i = 0; i < 100_000; i++) store.markRevoked(`sid-${i}`)
    expect(() => store.markRevoked('one-too-many')).toThrow(/^Revocation store capacity exceeded/)
    expect(store.size()).toBe(100_000)
    expect(store.isRevoked('sid-0')).toBe(true)
    expect(store.isRevoked('one-too-many')).toBe(false)
  })

  it('an entry is expired once its expiry is reached (ttl 1000: revoked at 999 ms, not at 1000 ms)', () => {
    vi.useFakeTimers()
    const store = new InMemoryRevocationStore()
    store.markRevoked('sid-1', 1_000)
    vi.advanceTimersByTime(999)
    expect(store.isRevoked('sid-1')).toBe(true)
    vi.advanceTimersByTime(1)
    expect(store.isRevoked('sid-1')).toBe(false)
  })

  it('entries live on a monotonic clock: a wall-clock step neither ends nor extends them', () => {
    vi.useFakeTimers()
    const store = new InMemoryRevocationStore({ defaultTtlMs: 1_000 })
    store.markRevoked('sid-1')
    vi.setSystemTime(Date.now() + 10 * 24 * 60 * 60 * 1000)
    expect(store.isRevoked('sid-1')).toBe(true)
    vi.advanceTimersByTime(1_000)
    expect(store.isRevoked('sid-1')).toBe(false)
  })
})

describe('delegation epochs', () => {
  it('0 for an unknown zone; only ever raised; per zone; expire with their TTL', () => {
    vi.useFakeTimers()
    const store = new InMemoryRevocationStore()
    expect(store.currentDelegationEpoch('zone-1')).toBe(0)
    store.markDelegationEpoch('zone-1', 7)
    store.markDelegationEpoch('zone-1', 6)
    store.markDelegationEpoch('zone-1', 7)
    expect(store.currentDelegationEpoch('zone-1')).toBe(7)
    expect(store.currentDelegationEpoch('zone-2')).toBe(0)
    store.markDelegationEpoch('zone-2', 2, 500)
    vi.advanceTimersByTime(500)
    expect(store.currentDelegationEpoch('zone-2')).toBe(0)
    expect(store.currentDelegationEpoch('zone-1')).toBe(7)
    // Expired counts as 0: a lower epoch may be set again after that.
    store.markDelegationEpoch('zone-2', 1)
    expect(store.currentDelegationEpoch('zone-2')).toBe(1)
  })
})

describe('where it is stricter than Caracal (the module comment lists these)', () => {
  it('a revocation never gets shorter: a second, shorter TTL keeps the first', () => {
    vi.useFakeTimers()
    const store = new InMemoryRevocationStore()
    store.markRevoked('sid-1', 10_000)
    store.markRevoked('sid-1', 10)
    vi.advanceTimersByTime(5_000)
    expect(store.isRevoked('sid-1')).toBe(true)
    store.markRevoked('sid-1', 60_000)
    vi.advanceTimersByTime(30_000)
    expect(store.isRevoked('sid-1')).toBe(true)
  })

  it('refuses an empty anchor and a TTL that is not positive (TypeError), instead of recording nothing useful', () => {
    const store = new InMemoryRevocationStore()
    expect(() => store.markRevoked('')).toThrow(new TypeError('anchor must be a non-empty string'))
    for (const ttl of [0, -1, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => store.markRevoked('sid-1', ttl)).toThrow(new TypeError('ttlMs must be a positive number'))
    expect(store.size()).toBe(0)
  })

  it('refuses an empty zone and an epoch that is not a non-negative integer (TypeError)', () => {
    const store = new InMemoryRevocationStore()
    expect(() => store.markDelegationEpoch('', 1)).toThrow(new TypeError('zoneId must be a non-empty string'))
    for (const epoch of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => store.markDelegationEpoch('zone-1', epoch)).toThrow(
        new TypeError('epoch must be a non-negative integer'),
      )
    expect(store.currentDelegationEpoch('zone-1')).toBe(0)
  })

  it("a full store throws this library's RevocationStoreFullError (its code) in Caracal's words; re-marking a held anchor still works", () => {
    const store = new InMemoryRevocationStore({ maxEntries: 2 })
    store.markRevoked('sid-1')
    store.markRevoked('sid-2')
    let thrown: unknown
    try {
      store.markRevoked('sid-3')
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(RevocationStoreFullError)
    expect(thrown).toMatchObject({
      code: 'CARACAL_REVOCATIONS_FULL',
      message:
        'Revocation store capacity exceeded: 2 unexpired revocations (maxEntries); the revocation was not recorded',
    })
    // Caracal's refused this too when full; the anchor is held, so nothing needs room.
    expect(() => store.markRevoked('sid-1', 60_000)).not.toThrow()
  })

  it('an unknown or malformed option is a TypeError naming it', () => {
    expect(() => new InMemoryRevocationStore({ maxEntrys: 5 } as never)).toThrow(
      new TypeError('InMemoryRevocationStore option "maxEntrys" is not an option of InMemoryRevocationStore'),
    )
    expect(() => new InMemoryRevocationStore({ defaultTtlMs: 0 })).toThrow(
      new TypeError('InMemoryRevocationStore option "defaultTtlMs" must be a positive number of milliseconds'),
    )
    expect(() => new InMemoryRevocationStore({ maxEntries: 0 })).toThrow(
      new TypeError('InMemoryRevocationStore option "maxEntries" must be an integer ≥ 1'),
    )
  })
})

describe.each(TEST_BACKENDS)('the compat store as CaracalAuth revocations on %s', (backend) => {
  it('each anchor the mandate carries is checked: sid, root_sid, agent_session_id, delegation_edge_id', async () => {
    const revocations = new InMemoryRevocationStore()
    const { auth } = testVerifier(backend, { revocations })
    const claims = { sid: 'sid-a', root_sid: 'root-a', agent_session_id: 'agent-a', delegation_edge_id: 'edge-a' }
    await expect(auth.verify(mint(claims))).resolves.toMatchObject({ authorityRecordId: 'sid-a' })
    for (const anchor of Object.values(claims)) {
      const fresh = new InMemoryRevocationStore()
      fresh.markRevoked(anchor)
      const { auth: checking } = testVerifier(backend, { revocations: fresh })
      const error = await rejection(checking.verify(mint(claims)))
      expect(error).toMatchObject({
        code: 'session_revoked',
        status: 401,
        description: 'session has been revoked',
        hint: 'The session was revoked: start a new session and obtain a new mandate.',
        unavailable: false,
      })
      await checking.close()
    }
    await auth.close()
  })

  it('a cache hit is checked again: revoked after the first verification, refused on the next', async () => {
    const revocations = new InMemoryRevocationStore()
    const { auth } = testVerifier(backend, { revocations })
    const token = mint({ agent_session_id: 'agent-later' })
    await auth.verify(token)
    revocations.markRevoked('agent-later')
    expect(await rejection(auth.verify(token))).toMatchObject({ code: 'session_revoked' })
    expect(auth.stats().cache.hits).toBe(1)
    await auth.close()
  })

  it('empty optional claims ("" or null) are absent: nothing is asked about them, the mandate passes', async () => {
    const asked: string[] = []
    const inner = new InMemoryRevocationStore()
    const revocations: RevocationStore = {
      isRevoked: (anchor) => {
        asked.push(anchor)
        return inner.isRevoked(anchor)
      },
      markRevoked: (anchor, ttl) => inner.markRevoked(anchor, ttl),
    }
    const { auth } = testVerifier(backend, { revocations })
    await auth.verify(mint({ sid: 'sid-e', root_sid: 'root-e', agent_session_id: '', delegation_edge_id: null }))
    expect(asked.sort()).toEqual(['root-e', 'sid-e'])
    await auth.close()
  })

  it("a mandate below its zone's epoch is delegation_stale (401); equal passes; another zone's epoch does not apply", async () => {
    const revocations = new InMemoryRevocationStore()
    revocations.markDelegationEpoch('zone-1', 5)
    revocations.markDelegationEpoch('zone-2', 50)
    const { auth } = testVerifier(backend, { revocations })
    const error = await rejection(auth.verify(mint({ zone_id: 'zone-1', delegation_graph_epoch: 4 })))
    expect(error).toMatchObject({
      code: 'delegation_stale',
      status: 401,
      description: 'the delegation graph changed after this mandate was issued',
      hint: 'Refresh the mandate: the delegation graph changed after it was issued.',
    })
    await expect(auth.verify(mint({ zone_id: 'zone-1', delegation_graph_epoch: 5 }))).resolves.toMatchObject({
      graphEpoch: 5,
    })
    await auth.close()
  })
})
